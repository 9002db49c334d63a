#include "fsconf_glue.h"
#include <lua5.3/lua.h>
#include <lua5.3/lauxlib.h>
#include <string.h>

// Stack of a protected call: 1 = lightuserdata (the request), then its inputs.
// Every string handed back to Swift is one of the call's results, so it stays on
// the caller's stack (alive) until the caller pops it: nothing needs an anchor
// table, and no Lua code run later (a getHeader metamethod) can free it.

// Converts the value on top of the stack, in place, and stores it in `out`
// (ptr NULL when it is neither a string, a number nor a boolean). Leaves it there.
static void take_value(lua_State *L, fsconf_str *out) {
    out->ptr = NULL;
    out->len = 0;
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        out->ptr = lua_tolstring(L, -1, &out->len);  // a number becomes a string in this slot
    } else if (t == LUA_TBOOLEAN) {
        out->ptr = lua_toboolean(L, -1) ? "true" : "false";
        out->len = strlen(out->ptr);
    }
}

static int read_args(lua_State *L) {
    fsconf_args *args = (fsconf_args *)lua_touserdata(L, 1);
    // 2 = XML_REQUEST, 3 = params, 4 = settings (a string, a table or nil)
    int base = lua_gettop(L);
    if (args->mod_lua) {
        // The xml_handler entry point: mod_lua's globals, read here under the same
        // protected call.
        lua_getglobal(L, "XML_REQUEST");
        lua_replace(L, 2);
        lua_getglobal(L, "params");
        lua_replace(L, 3);
    }
    fsconf_str *fields[4] = {&args->section, &args->tag_name, &args->key_name, &args->key_value};
    static const char *const names[4] = {"section", "tag_name", "key_name", "key_value"};
    int is_table = lua_type(L, 2) == LUA_TTABLE;
    for (int i = 0; i < 4; i++) {
        if (is_table) {
            lua_pushstring(L, names[i]);  // XML_REQUEST's own keys: already interned
            lua_rawget(L, 2);
        } else {
            lua_pushnil(L);
        }
        take_value(L, fields[i]);
    }
    // params.getHeader, through the event's metatable (may raise): fetched once,
    // returned for fsconf_glue_header.
    args->has_params = !lua_isnoneornil(L, 3);
    if (args->has_params) lua_getfield(L, 3, "getHeader"); else lua_pushnil(L);
    lua_pushvalue(L, 3);  // params itself, for fsconf_glue_header
    // Settings: the generated shim passes one string of "name=value" lines; a table
    // (older shims, scripts) is read by the known names.
    args->config_text.ptr = NULL;
    args->config_text.len = 0;
    for (int i = 0; i < args->config_count; i++) { args->config_values[i].ptr = NULL; args->config_values[i].len = 0; }
    int t = lua_type(L, 4);
    if (t == LUA_TSTRING) {
        lua_pushvalue(L, 4);
        take_value(L, &args->config_text);
    } else if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 4) != 0) {
            // key at -2, value at -1; only string keys name settings.
            int found = -1;
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *key = lua_tostring(L, -2);
                for (int i = 0; i < args->config_count; i++) {
                    if (!strcmp(key, args->config_names[i])) { found = i; break; }
                }
            }
            if (found >= 0 && lua_checkstack(L, 3)) {
                take_value(L, &args->config_values[found]);  // stays: one more result
                lua_pushvalue(L, -2);                          // the key, for lua_next
            } else {
                lua_pop(L, 1);
            }
        }
    }
    return lua_gettop(L) - base;
}

int fsconf_glue_read_args(lua_State *L, fsconf_args *args) {
    if (!lua_checkstack(L, 16 + args->config_count)) return -1;
    int base = lua_gettop(L);
    lua_pushcclosure(L, read_args, 0);  // no allocation for a light C function
    lua_pushlightuserdata(L, args);
    if (args->mod_lua) {
        lua_pushnil(L);
        lua_pushnil(L);
        lua_pushvalue(L, 1);
    } else {
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
    }
    int status = lua_pcallk(L, 4, LUA_MULTRET, 0, 0, NULL);
    if (status == 0) {
        // results: the 4 fields, getHeader, params, then the settings' values
        args->method_index = base + 5;
        args->params_index = base + 6;
    }
    return status;
}

struct header_request { const char *name; fsconf_str *out; };

// 1 = the request, 2 = getHeader, 3 = params.
static int read_header(lua_State *L) {
    struct header_request *r = (struct header_request *)lua_touserdata(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushstring(L, r->name);
    lua_call(L, 2, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
        r->out->ptr = lua_tolstring(L, -1, &r->out->len);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
    return 1;
}

int fsconf_glue_header(lua_State *L, int method_index, int params_index, const char *name, fsconf_str *out) {
    out->ptr = NULL;
    out->len = 0;
    if (!lua_checkstack(L, 6)) return -1;
    struct header_request r = {name, out};
    lua_pushcclosure(L, read_header, 0);
    lua_pushlightuserdata(L, &r);
    lua_pushvalue(L, method_index);
    lua_pushvalue(L, params_index);
    int status = lua_pcallk(L, 3, 1, 0, 0, NULL);
    if (status != 0) { out->ptr = NULL; out->len = 0; }
    return status;
}

struct headers_request { const char *const *names; int count; fsconf_str *out; };

// 1 = the request, 2 = getHeader, 3 = params. Leaves one value per name (a string,
// or nil) as the call's results, so each stays alive on the caller's stack.
static int read_headers(lua_State *L) {
    struct headers_request *r = (struct headers_request *)lua_touserdata(L, 1);
    for (int i = 0; i < r->count; i++) {
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_pushstring(L, r->names[i]);
        lua_call(L, 2, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            r->out[i].ptr = lua_tolstring(L, -1, &r->out[i].len);
        } else {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
    }
    return r->count;
}

int fsconf_glue_headers(lua_State *L, int method_index, int params_index, const char *const *names, int count,
                        fsconf_str *out) {
    for (int i = 0; i < count; i++) { out[i].ptr = NULL; out[i].len = 0; }
    if (!lua_checkstack(L, 6 + count)) return -1;
    struct headers_request r = {names, count, out};
    lua_pushcclosure(L, read_headers, 0);
    lua_pushlightuserdata(L, &r);
    lua_pushvalue(L, method_index);
    lua_pushvalue(L, params_index);
    int status = lua_pcallk(L, 3, count, 0, 0, NULL);
    if (status != 0) for (int i = 0; i < count; i++) { out[i].ptr = NULL; out[i].len = 0; }
    return status;
}

static int global_variable(lua_State *L) {
    const char *name = (const char *)lua_touserdata(L, 1);
    if (lua_getglobal(L, "freeswitch") != LUA_TTABLE) { lua_pushnil(L); return 1; }
    if (lua_getfield(L, -1, "getGlobalVariable") != LUA_TFUNCTION) { lua_pushnil(L); return 1; }
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); lua_pushnil(L); }
    return 1;
}

int fsconf_glue_global_variable(lua_State *L, const char *name) {
    if (!lua_checkstack(L, 4)) return -1;
    lua_pushcclosure(L, global_variable, 0);
    lua_pushlightuserdata(L, (void *)name);
    return lua_pcallk(L, 1, 1, 0, 0, NULL);
}

// The node's switchname, for lookups without params: a fresh event carries it
// (switch_event_create adds FreeSWITCH-Switchname to every event it makes:
// switch_event_prep_for_delivery_detailed, src/switch_event.c), so
// freeswitch.Event("REQUEST_PARAMS"):getHeader("FreeSWITCH-Switchname"). Nil when
// freeswitch.Event is missing or gives no string. The event is left to Lua's GC.
static int switchname(lua_State *L) {
    if (lua_getglobal(L, "freeswitch") != LUA_TTABLE) { lua_pushnil(L); return 1; }
    if (lua_getfield(L, -1, "Event") == LUA_TNIL) { lua_pushnil(L); return 1; }
    lua_pushliteral(L, "REQUEST_PARAMS");
    lua_call(L, 1, 1);
    if (lua_isnoneornil(L, -1)) { lua_pushnil(L); return 1; }
    lua_getfield(L, -1, "getHeader");
    lua_pushvalue(L, -2);
    lua_pushliteral(L, "FreeSWITCH-Switchname");
    lua_call(L, 2, 1);
    if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); lua_pushnil(L); }
    return 1;
}

int fsconf_glue_switchname(lua_State *L) {
    if (!lua_checkstack(L, 6)) return -1;
    lua_pushcclosure(L, switchname, 0);
    return lua_pcallk(L, 0, 1, 0, 0, NULL);
}

struct log_request { const char *level; const char *message; };

static int console_log(lua_State *L) {
    struct log_request *r = (struct log_request *)lua_touserdata(L, 1);
    if (lua_getglobal(L, "freeswitch") != LUA_TTABLE) return 0;
    if (lua_getfield(L, -1, "consoleLog") != LUA_TFUNCTION) return 0;
    lua_pushstring(L, r->level);
    lua_pushfstring(L, "%s\n", r->message);
    lua_call(L, 2, 0);
    return 0;
}

int fsconf_glue_log(lua_State *L, const char *level, const char *message) {
    if (!lua_checkstack(L, 4)) return -1;
    struct log_request r = {level, message};
    lua_pushcclosure(L, console_log, 0);
    lua_pushlightuserdata(L, &r);
    int status = lua_pcallk(L, 1, 0, 0, 0, NULL);
    if (status != 0) lua_pop(L, 1);
    return status;
}

struct push_request { const char *xml; size_t len; const char *message; int set_global; };

static int push_result(lua_State *L) {
    struct push_request *r = (struct push_request *)lua_touserdata(L, 1);
    if (r->xml) lua_pushlstring(L, r->xml, r->len); else lua_pushnil(L);
    if (r->set_global) {
        lua_pushvalue(L, -1);
        lua_setglobal(L, "XML_STRING");
    }
    if (r->message) { lua_pushstring(L, r->message); return 2; }
    return 1;
}

int fsconf_glue_push_result(lua_State *L, const char *xml, size_t xml_len, const char *message, int set_global) {
    if (!lua_checkstack(L, 4)) return -1;
    struct push_request r = {xml, xml_len, message, set_global};
    int base = lua_gettop(L);
    lua_pushcclosure(L, push_result, 0);
    lua_pushlightuserdata(L, &r);
    if (lua_pcallk(L, 1, LUA_MULTRET, 0, 0, NULL) != 0) { lua_settop(L, base); return -1; }
    return lua_gettop(L) - base;
}

struct stats_request { const char *const *names; const long long *values; int count; };

static int push_stats(lua_State *L) {
    struct stats_request *r = (struct stats_request *)lua_touserdata(L, 1);
    lua_createtable(L, 0, r->count);
    for (int i = 0; i < r->count; i++) {
        lua_pushinteger(L, (lua_Integer)r->values[i]);
        lua_setfield(L, -2, r->names[i]);
    }
    return 1;
}

int fsconf_glue_push_stats(lua_State *L, const char *const *names, const long long *values, int count) {
    if (!lua_checkstack(L, 4)) return -1;
    struct stats_request r = {names, values, count};
    int base = lua_gettop(L);
    lua_pushcclosure(L, push_stats, 0);
    lua_pushlightuserdata(L, &r);
    if (lua_pcallk(L, 1, 1, 0, 0, NULL) != 0) { lua_settop(L, base); return -1; }
    return 1;
}

struct open_request { int (*handle)(lua_State *); int (*stats)(lua_State *); const char *version; };

static int open_module(lua_State *L) {
    struct open_request *r = (struct open_request *)lua_touserdata(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, "fsconf");
    lua_setfield(L, -2, "_NAME");
    lua_pushstring(L, r->version);
    lua_setfield(L, -2, "_VERSION");
    lua_pushcclosure(L, r->handle, 0);
    lua_setfield(L, -2, "handle");
    lua_pushcclosure(L, r->stats, 0);
    lua_setfield(L, -2, "stats");
    return 1;
}

int fsconf_glue_open(lua_State *L, int (*handle)(lua_State *), int (*stats)(lua_State *), const char *version) {
    if (!lua_checkstack(L, 4)) return -1;
    struct open_request r = {handle, stats, version};
    lua_pushcclosure(L, open_module, 0);
    lua_pushlightuserdata(L, &r);
    return lua_pcallk(L, 1, 1, 0, 0, NULL);
}
