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
    // In: the names to read. Out: the values (ptr NULL when missing).
    int header_count;
    const char *const *header_names;
    fsconf_str *header_values;
    // Optional (NULL: read every header): per header, the section bits that need it
    // (1 directory, 2 dialplan, 4 configuration, 8 languages/phrases); only the
    // headers of the asked section are read.
    const unsigned char *header_masks;
    int config_count;
    const char *const *config_names;
    fsconf_str *config_values;
    // Out: XML_REQUEST's four fields, and whether a params object was given.
    fsconf_str section, tag_name, key_name, key_value;
    int has_params;
} fsconf_args;

// Reads fsconf.handle's arguments (stack index 1: XML_REQUEST table, 2: params
// event or nil, 3: config table or nil) into `args`. Returns 0 and leaves one
// anchor value on the stack that keeps every returned string alive (pop it when
// done), or non-zero with an error message on the stack.
int fsconf_glue_read_args(lua_State *L, fsconf_args *args);

// freeswitch.getGlobalVariable(name). Returns 0 and leaves the result (string or
// nil) on the stack, or non-zero with an error message on the stack.
int fsconf_glue_global_variable(lua_State *L, const char *name);

// freeswitch.consoleLog(level, message .. "\n"). Returns 0 or non-zero; leaves nothing.
int fsconf_glue_log(lua_State *L, const char *level, const char *message);

// Pushes the results of fsconf.handle: the string (or nil) and, when `message` is
// not NULL, the message. Returns the number of values pushed, or -1 when even that
// failed (then nothing usable is on the stack).
int fsconf_glue_push_result(lua_State *L, const char *xml, size_t xml_len, const char *message);

// Pushes a table {names[i] = values[i]} (fsconf.stats()). Returns 1, or -1 when
// that failed (then nothing is on the stack).
int fsconf_glue_push_stats(lua_State *L, const char *const *names, const long long *values, int count);

// Builds the module table: fields _NAME, _VERSION and the functions `handle` and
// `stats`. Returns 0 with the table on the stack, non-zero with an error message.
int fsconf_glue_open(lua_State *L, int (*handle)(lua_State *), int (*stats)(lua_State *), const char *version);
#endif
