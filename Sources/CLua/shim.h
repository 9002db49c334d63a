#ifndef FSCONF_CLUA_SHIM_H
#define FSCONF_CLUA_SHIM_H
#include <lua5.3/lua.h>
#include <lua5.3/lauxlib.h>

// Lua's API is partly macros, which Swift cannot call. Each wrapper below exists
// only because the name it wraps is a macro. None of them can raise a Lua error.

// lua_pop is a macro over lua_settop.
static inline void fsconf_lua_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
// lua_newtable is a macro over lua_createtable.
static inline void fsconf_lua_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
// lua_pushcfunction is a macro over lua_pushcclosure.
static inline void fsconf_lua_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcclosure(L, f, 0); }
// lua_upvalueindex is a macro.
static inline int fsconf_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
// lua_pcall is a macro over lua_pcallk.
static inline int fsconf_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcallk(L, nargs, nresults, msgh, 0, 0);
}
// lua_tostring is a macro over lua_tolstring (which never raises on strings).
static inline const char *fsconf_lua_tostring(lua_State *L, int idx, size_t *len) {
    return lua_tolstring(L, idx, len);
}
// LUA_REGISTRYINDEX is a macro expression Swift does not import.
static inline int fsconf_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
#endif
