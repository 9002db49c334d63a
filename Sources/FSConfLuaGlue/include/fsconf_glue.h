#ifndef FSCONF_GLUE_H
#define FSCONF_GLUE_H
// The Lua calls fsconf makes that could raise a Lua error (a metamethod, an
// allocation failure, a failing freeswitch.* function) all run here, in C, under
// lua_pcall. A raised error then unwinds only C frames, never Swift ones.
#include <stddef.h>

typedef struct lua_State lua_State;

typedef struct {
    const char *ptr;   // NULL when absent
    size_t len;
} fsconf_str;

typedef struct {
    // Settings given as a table: in, the names to read; out, the values (ptr NULL
    // when missing).
    int config_count;
    const char *const *config_names;
    fsconf_str *config_values;
    // Out: settings given as one string (ptr NULL when not a string).
    fsconf_str config_text;
    // Out: XML_REQUEST's four fields, and whether a params object was given.
    fsconf_str section, tag_name, key_name, key_value;
    int has_params;
    // In: read XML_REQUEST and params from mod_lua's globals (the xml_handler entry
    // point, whose only argument, at stack index 1, is the settings).
    int mod_lua;
    // Out: the stack indexes of params.getHeader (nil without params) and of
    // params, for fsconf_glue_header.
    int method_index, params_index;
} fsconf_args;

// Reads fsconf.handle's arguments (stack index 1: XML_REQUEST table, 2: params
// event or nil, 3: settings string, table or nil; with mod_lua, 1: settings) into
// `args`. Returns 0 and leaves
// the values read on the stack (they keep every returned string alive: settop back
// when done), or non-zero with an error message on the stack. Headers are not read
// here: the planner asks for the few it needs (fsconf_glue_header).
int fsconf_glue_read_args(lua_State *L, fsconf_args *args);

// params:getHeader(name) with the method read_args fetched (call it only when
// has_params). Returns 0 and leaves
// the value (a string, `out` set; or nil, `out->ptr` NULL) on the stack, where it
// stays alive; non-zero with an error message on the stack.
int fsconf_glue_header(lua_State *L, int method_index, int params_index, const char *name, fsconf_str *out);

// params:getHeader(names[i]) for each of `count` names, in one protected call (the
// headers a lookup will ask for, read at once). Returns 0 and leaves `count` values
// (strings, `out[i]` set; or nil, `out[i].ptr` NULL) on the stack, where they stay
// alive; non-zero with an error message on the stack (-1: nothing pushed, the stack
// cannot grow), every `out[i].ptr` NULL.
int fsconf_glue_headers(lua_State *L, int method_index, int params_index, const char *const *names, int count,
                        fsconf_str *out);

// freeswitch.getGlobalVariable(name). Returns 0 and leaves the result (string or
// nil) on the stack, or non-zero with an error message on the stack.
int fsconf_glue_global_variable(lua_State *L, const char *name);

// freeswitch.Event("REQUEST_PARAMS"):getHeader("FreeSWITCH-Switchname"): the node's
// name when a lookup carries no params. Returns 0 and leaves the result (string or
// nil) on the stack, or non-zero with an error message on the stack (-1: nothing
// pushed, the stack cannot grow).
int fsconf_glue_switchname(lua_State *L);

// freeswitch.consoleLog(level, message .. "\n"). Returns 0 or non-zero; leaves nothing.
int fsconf_glue_log(lua_State *L, const char *level, const char *message);

// Pushes the results of fsconf.handle: the string (or nil) and, when `message` is
// not NULL, the message; with `set_global`, also sets the global XML_STRING to the
// string (or nil). Returns the number of values pushed, or -1 when even that
// failed (then nothing usable is on the stack).
int fsconf_glue_push_result(lua_State *L, const char *xml, size_t xml_len, const char *message, int set_global);

// Pushes a table {names[i] = values[i]} (fsconf.stats()). Returns 1, or -1 when
// that failed (then nothing is on the stack).
int fsconf_glue_push_stats(lua_State *L, const char *const *names, const long long *values, int count);

// Builds the module table: fields _NAME, _VERSION and the functions `handle` and
// `stats`. Returns 0 with the table on the stack, non-zero with an error message.
int fsconf_glue_open(lua_State *L, int (*handle)(lua_State *), int (*stats)(lua_State *), const char *version);
#endif
