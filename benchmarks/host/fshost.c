/*
 * fshost.c -- a stand-in for FreeSWITCH's mod_lua xml_handler, for tests and benchmarks.
 *
 * Build (also: `make` in this folder):
 *   cc -O2 -pthread -Wall -Wextra -o fshost fshost.c -I/usr/include/lua5.3 -llua5.3 -Wl,-E
 * -Wl,-E exports the host's symbols to modules loaded with dlopen, as FreeSWITCH does, so a
 * Lua C module that is NOT linked against liblua (as mod_lua requires) can be loaded.
 *
 * Per lookup it does what mod_lua.cpp's lua_fetch does:
 *   luaL_newstate -> luaL_openlibs (GC stopped meanwhile) -> register a `freeswitch` table
 *   -> replace os.exit (the same Lua snippet mod_lua runs) -> XML_REQUEST table ->
 *   `params` userdata (an Event-like userdata whose metatable __index holds getHeader,
 *   serialize, ...; headers stored in C) -> argv = {[0]=SHIM} -> luaL_loadfile(SHIM)
 *   (a new read from disk each time) -> lua_pcall -> lua_tostring(XML_STRING) -> lua_close.
 * It does NOT create SWIG's full freeswitch binding (Session, API, Dbh, ...), so its fixed
 * per-lookup cost is lower than a real mod_lua's: its rate is an upper bound for mod_lua.
 *
 * Usage:
 *   fshost --shim PATH [--threads N] [--requests N | --seconds S]
 *          [--section S] [--tag T] [--key-name N] [--key-value V]
 *          [--param NAME=VALUE ...] [--param-template NAME=VALUE-with-%d ...]
 *          [--keyspace K] [--key-base B] [--random] [--no-params]
 *          [--global NAME=VALUE ...] [--expect SUBSTRING] [--print] [--quiet]
 *
 *   --threads N          worker threads (default 1); each lookup gets its own lua_State.
 *   --requests N         total lookups, split across threads (default 1000; 1 with --print).
 *   --seconds S          run for S seconds (float) instead of a fixed count.
 *   --section/--tag/--key-name/--key-value   XML_REQUEST fields (default "").
 *   --param NAME=VALUE   a fixed event header (repeatable; order kept).
 *   --param-template NAME=VALUE  a header whose value has each "%d" replaced by
 *                        B + (counter mod K) ("%%" is a literal %). The counter is
 *                        round-robin (thread t uses t, t+N, t+2N, ...) or, with --random,
 *                        uniform in [0,K) from a per-thread xorshift64 generator.
 *   --keyspace K         (default 1)   --key-base B (default 1): values B..B+K-1.
 *   --no-params          `params` is nil (as for lookups that carry no event); by default
 *                        params is an event holding the --param/--param-template headers.
 *   --global NAME=VALUE  freeswitch.getGlobalVariable(NAME) returns VALUE (else nil).
 *   --expect SUBSTRING   a lookup whose XML_STRING is nil or lacks SUBSTRING is "failed".
 *   --print              print each XML_STRING (followed by "\n"; nothing for nil) to stdout.
 *   --warm N             before the measured run, N lookups on the main thread over keys
 *                        B, B+1, ... (round-robin), not counted: warms a cache in the library.
 *   --watch PREFIX       the text after PREFIX (up to the next '"') is watched: whenever a
 *                        lookup sees a new value, print "change realtime_ms=T value=V"
 *                        (CLOCK_REALTIME ms) to stdout: time-to-visible across processes.
 *   --until VALUE        with --watch: the run ends once a lookup sees VALUE (--seconds or
 *                        --requests still bound it), so a test waits for an event, not a time.
 *   --quiet              freeswitch.consoleLog / consoleCleanLog write nothing.
 *   --arg WORD           append WORD to argv (argv[1], argv[2], ...).
 *   --report-ms N        every N ms, print "tick ms=T ok=N failed=N nil=N" on stderr
 *                        (counts for that interval), to watch recovery during a run.
 *
 * Output: one final line on stdout,
 *   threads=T requests=N ok=N failed=N nil=N errors=N seconds=S rate=R p50_us=X p99_us=Y max_us=Z cpu_us=C
 *   (cpu_us: this process's CPU time, user + system, per lookup of the measured run: on a
 *   machine shared with other work it varies less than the rate does)
 *   requests = ok + failed + errors. errors = the script failed to load or raised an error
 *   (each distinct message is printed once on stderr, at most 16). nil = lookups that ran
 *   but left XML_STRING nil or "" (informational; they count as ok unless --expect is
 *   given, then they are failed). rate = requests / wall seconds. Latency is measured
 *   around the whole newstate..close cycle; percentiles are nearest-rank over all lookups.
 * Exit status: 0 if failed == 0 and errors == 0, 1 otherwise, 2 on a usage error.
 *
 * The event's Lua methods (like SWIG's Event): getHeader(name) -> string|nil (name is
 * case-insensitive), serialize() -> "Name: urlencoded\n"... + "\n", serialize("json") ->
 * cJSON-style unformatted object, addHeader(n, v), delHeader(n), getBody(), getType(),
 * setPriority() (no-op). Calling them on anything but the event raises a Lua error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* ------------------------------------------------------------------------ options */

typedef struct {
	char *name;
	char *value;
	int is_template;
} kv_t;

static const char *opt_shim = NULL;
static int opt_threads = 1;
static long opt_requests = -1;
static double opt_seconds = 0;
static const char *opt_section = "";
static const char *opt_tag = "";
static const char *opt_key_name = "";
static const char *opt_key_value = "";
static kv_t *opt_params = NULL;
static int opt_nparams = 0;
static kv_t *opt_globals = NULL;
static int opt_nglobals = 0;
static const char **opt_args = NULL;
static int opt_nargs = 0;
static long opt_keyspace = 1;
static long opt_key_base = 1;
static int opt_random = 0;
static int opt_no_params = 0;
static const char *opt_expect = NULL;
static int opt_print = 0;
static int opt_quiet = 0;
static long opt_report_ms = 0;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *opt_watch = NULL;
static const char *opt_until = NULL;
static char watch_last[256];
static int until_seen = 0; /* atomic: --until's value was seen, every worker stops */

/* --watch PREFIX: the text after PREFIX up to the next '"' is "the value"; each
 * time a lookup sees a value different from the last one, print
 * "change realtime_ms=T value=V" (CLOCK_REALTIME, comparable across processes). */
static void watch_value(const char *xml)
{
	const char *p = strstr(xml, opt_watch);
	if (!p) return;
	p += strlen(opt_watch);
	const char *q = strchr(p, '"');
	size_t n = q ? (size_t)(q - p) : strlen(p);
	if (n >= sizeof(watch_last)) n = sizeof(watch_last) - 1;
	pthread_mutex_lock(&out_lock);
	if (strncmp(watch_last, p, n) != 0 || watch_last[n] != 0) {
		memcpy(watch_last, p, n);
		watch_last[n] = 0;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("change realtime_ms=%.3f value=%s\n", ts.tv_sec * 1e3 + ts.tv_nsec / 1e6, watch_last);
		fflush(stdout);
		if (opt_until && !strcmp(watch_last, opt_until)) __atomic_store_n(&until_seen, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------------------ the event */

typedef struct {
	int n, cap;
	char **names;  /* owned */
	char **values; /* owned */
	char *body;    /* owned, may be NULL */
} event_t;

static void event_init(event_t *ev)
{
	memset(ev, 0, sizeof(*ev));
}

static void event_free(event_t *ev)
{
	for (int i = 0; i < ev->n; i++) {
		free(ev->names[i]);
		free(ev->values[i]);
	}
	free(ev->names);
	free(ev->values);
	free(ev->body);
	memset(ev, 0, sizeof(*ev));
}

static int event_add(event_t *ev, const char *name, const char *value)
{
	if (ev->n == ev->cap) {
		int cap = ev->cap ? ev->cap * 2 : 16;
		char **nn = realloc(ev->names, sizeof(char *) * cap);
		if (!nn) return -1;
		ev->names = nn;
		char **nv = realloc(ev->values, sizeof(char *) * cap);
		if (!nv) return -1;
		ev->values = nv;
		ev->cap = cap;
	}
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -1;
	}
	ev->names[ev->n] = n;
	ev->values[ev->n] = v;
	ev->n++;
	return 0;
}

static const char *event_get(const event_t *ev, const char *name)
{
	for (int i = 0; i < ev->n; i++) {
		if (!strcasecmp(ev->names[i], name)) return ev->values[i];
	}
	return NULL;
}

/* The userdata holds only a pointer: the event lives in the worker's C frame and
 * outlives the lua_State (which is closed before the event is freed). */
typedef struct {
	event_t *ev;
} event_ud_t;

#define EVENT_MT "fshost.Event"

static event_t *check_event(lua_State *L, const char *method)
{
	event_ud_t *ud = luaL_testudata(L, 1, EVENT_MT);
	if (!ud || !ud->ev) {
		luaL_error(L, "Error in Event::%s (arg 1), expected 'Event *' got '%s'", method, luaL_typename(L, 1));
		return NULL;
	}
	return ud->ev;
}

/* SWIG accepts nil (-> NULL) or a string/number for char* arguments */
static const char *opt_cstr(lua_State *L, int idx, const char *method)
{
	if (lua_isnoneornil(L, idx)) return NULL;
	if (!lua_isstring(L, idx)) {
		luaL_error(L, "Error in Event::%s (arg %d), expected 'char const *' got '%s'", method, idx, luaL_typename(L, idx));
		return NULL;
	}
	return lua_tostring(L, idx);
}

static int ev_getHeader(lua_State *L)
{
	event_t *ev = check_event(L, "getHeader");
	const char *name = opt_cstr(L, 2, "getHeader");
	const char *v = name ? event_get(ev, name) : NULL;
	if (v) lua_pushstring(L, v);
	else lua_pushnil(L);
	return 1;
}

static int ev_addHeader(lua_State *L)
{
	event_t *ev = check_event(L, "addHeader");
	const char *n = opt_cstr(L, 2, "addHeader");
	const char *v = opt_cstr(L, 3, "addHeader");
	lua_pushboolean(L, n && v && event_add(ev, n, v) == 0);
	return 1;
}

static int ev_delHeader(lua_State *L)
{
	event_t *ev = check_event(L, "delHeader");
	const char *n = opt_cstr(L, 2, "delHeader");
	int found = 0;
	if (n) {
		int j = 0;
		for (int i = 0; i < ev->n; i++) {
			if (!strcasecmp(ev->names[i], n)) {
				free(ev->names[i]);
				free(ev->values[i]);
				found = 1;
			} else {
				ev->names[j] = ev->names[i];
				ev->values[j] = ev->values[i];
				j++;
			}
		}
		ev->n = j;
	}
	lua_pushboolean(L, found);
	return 1;
}

static int ev_getBody(lua_State *L)
{
	event_t *ev = check_event(L, "getBody");
	if (ev->body) lua_pushstring(L, ev->body);
	else lua_pushnil(L);
	return 1;
}

static int ev_getType(lua_State *L)
{
	event_t *ev = check_event(L, "getType");
	const char *t = event_get(ev, "Event-Name");
	lua_pushstring(L, t ? t : "REQUEST_PARAMS");
	return 1;
}

static int ev_setPriority(lua_State *L)
{
	check_event(L, "setPriority");
	lua_pushboolean(L, 1);
	return 1;
}

/* switch_url_encode: bytes < 0x20 or > 0x7E and SWITCH_URL_UNSAFE become %XX */
static void add_url_encoded(luaL_Buffer *b, const char *s)
{
	static const char unsafe[] = "\r\n #%&+:;<=>?@[\\]^`{|}\"";
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p > 0x7E || strchr(unsafe, *p)) {
			luaL_addchar(b, '%');
			luaL_addchar(b, hex[*p >> 4]);
			luaL_addchar(b, hex[*p & 0x0F]);
		} else {
			luaL_addchar(b, (char)*p);
		}
	}
}

/* cJSON print_string */
static void add_json_string(luaL_Buffer *b, const char *s)
{
	luaL_addchar(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': luaL_addstring(b, "\\\""); break;
		case '\\': luaL_addstring(b, "\\\\"); break;
		case '\b': luaL_addstring(b, "\\b"); break;
		case '\f': luaL_addstring(b, "\\f"); break;
		case '\n': luaL_addstring(b, "\\n"); break;
		case '\r': luaL_addstring(b, "\\r"); break;
		case '\t': luaL_addstring(b, "\\t"); break;
		default:
			if (*p < 32) {
				char tmp[8];
				snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
				luaL_addstring(b, tmp);
			} else {
				luaL_addchar(b, (char)*p);
			}
		}
	}
	luaL_addchar(b, '"');
}

static int ev_serialize(lua_State *L)
{
	event_t *ev = check_event(L, "serialize");
	const char *fmt = opt_cstr(L, 2, "serialize");
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (fmt && !strcasecmp(fmt, "json")) {
		luaL_addchar(&b, '{');
		for (int i = 0; i < ev->n; i++) {
			if (i) luaL_addchar(&b, ',');
			add_json_string(&b, ev->names[i]);
			luaL_addchar(&b, ':');
			add_json_string(&b, ev->values[i]);
		}
		if (ev->body) {
			char tmp[32];
			snprintf(tmp, sizeof(tmp), "%zu", strlen(ev->body));
			if (ev->n) luaL_addchar(&b, ',');
			add_json_string(&b, "Content-Length");
			luaL_addchar(&b, ':');
			add_json_string(&b, tmp);
			luaL_addchar(&b, ',');
			add_json_string(&b, "_body");
			luaL_addchar(&b, ':');
			add_json_string(&b, ev->body);
		}
		luaL_addchar(&b, '}');
	} else {
		/* plain (also used for "xml", which this host does not render) */
		for (int i = 0; i < ev->n; i++) {
			luaL_addstring(&b, ev->names[i]);
			luaL_addstring(&b, ": ");
			if (*ev->values[i]) add_url_encoded(&b, ev->values[i]);
			else luaL_addstring(&b, "_undef_");
			luaL_addchar(&b, '\n');
		}
		if (ev->body && *ev->body) {
			char tmp[48];
			snprintf(tmp, sizeof(tmp), "Content-Length: %zu\n\n", strlen(ev->body));
			luaL_addstring(&b, tmp);
			luaL_addstring(&b, ev->body);
		} else {
			luaL_addchar(&b, '\n');
		}
	}
	luaL_pushresult(&b);
	return 1;
}

static int ev_tostring(lua_State *L)
{
	lua_pushfstring(L, "Event userdata (%p)", lua_touserdata(L, 1));
	return 1;
}

static const luaL_Reg event_methods[] = {
	{"getHeader", ev_getHeader},
	{"serialize", ev_serialize},
	{"addHeader", ev_addHeader},
	{"delHeader", ev_delHeader},
	{"getBody", ev_getBody},
	{"getType", ev_getType},
	{"setPriority", ev_setPriority},
	{NULL, NULL}
};

/* ------------------------------------------------------------------------ freeswitch table */

static void log_write(const char *s, size_t len)
{
	pthread_mutex_lock(&out_lock);
	fwrite(s, 1, len, stderr);
	pthread_mutex_unlock(&out_lock);
}

static int fs_consoleLog(lua_State *L)
{
	const char *level = luaL_optstring(L, 1, "info");
	const char *msg = luaL_optstring(L, 2, "");
	if (opt_quiet) return 0;
	size_t ml = strlen(msg), ll = strlen(level);
	char *line = malloc(ll + ml + 5);
	if (!line) return 0;
	size_t k = 0;
	line[k++] = '[';
	for (size_t i = 0; i < ll; i++) line[k++] = (char)((level[i] >= 'a' && level[i] <= 'z') ? level[i] - 32 : level[i]);
	line[k++] = ']';
	line[k++] = ' ';
	memcpy(line + k, msg, ml);
	k += ml;
	if (ml == 0 || msg[ml - 1] != '\n') line[k++] = '\n';
	log_write(line, k);
	free(line);
	return 0;
}

static int fs_consoleCleanLog(lua_State *L)
{
	size_t len;
	const char *msg = luaL_optlstring(L, 1, "", &len);
	if (!opt_quiet) log_write(msg, len);
	return 0;
}

static int fs_getGlobalVariable(lua_State *L)
{
	const char *name = lua_tostring(L, 1);
	if (name) {
		for (int i = opt_nglobals - 1; i >= 0; i--) {
			if (!strcmp(opt_globals[i].name, name)) {
				lua_pushstring(L, opt_globals[i].value);
				return 1;
			}
		}
	}
	lua_pushnil(L);
	return 1;
}

static int fs_msleep(lua_State *L)
{
	lua_Integer ms = luaL_optinteger(L, 1, 0);
	if (ms > 0) {
		struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
	}
	return 0;
}

static const luaL_Reg fs_funcs[] = {
	{"consoleLog", fs_consoleLog},
	{"consoleCleanLog", fs_consoleCleanLog},
	{"getGlobalVariable", fs_getGlobalVariable},
	{"msleep", fs_msleep},
	{NULL, NULL}
};

/* ------------------------------------------------------------------------ one lookup */

typedef enum { RES_OK, RES_NIL, RES_FAILED, RES_ERROR } result_t;

#define MAX_DISTINCT_ERRORS 16
static char *seen_errors[MAX_DISTINCT_ERRORS];
static int n_seen_errors = 0;
static int errors_suppressed_noted = 0;

static void report_error(const char *msg)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", msg ? msg : "(error object is not a string)");
	pthread_mutex_lock(&out_lock);
	int seen = 0;
	for (int i = 0; i < n_seen_errors; i++) {
		if (!strcmp(seen_errors[i], buf)) {
			seen = 1;
			break;
		}
	}
	if (!seen) {
		if (n_seen_errors < MAX_DISTINCT_ERRORS) {
			seen_errors[n_seen_errors++] = strdup(buf);
			fprintf(stderr, "fshost: shim error: %s\n", buf);
		} else if (!errors_suppressed_noted) {
			errors_suppressed_noted = 1;
			fprintf(stderr, "fshost: more distinct shim errors; not printing them\n");
		}
	}
	pthread_mutex_unlock(&out_lock);
}

static const char os_exit_snippet[] =
	"os.exit = function() freeswitch.consoleLog(\"err\", \"Surely you jest! exiting is a bad plan....\\n\") end";

static void set_field(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

/* ev may be NULL (no params); *was_nil is set when XML_STRING was nil or "" */
static result_t run_lookup(event_t *ev, int *was_nil)
{
	result_t res;
	lua_State *L = luaL_newstate();
	if (!L) {
		report_error("luaL_newstate failed (out of memory)");
		return RES_ERROR;
	}
	lua_gc(L, LUA_GCSTOP, 0);
	luaL_openlibs(L);
	luaL_newlib(L, fs_funcs);
	lua_setglobal(L, "freeswitch");
	lua_gc(L, LUA_GCRESTART, 0);

	if (luaL_loadbuffer(L, os_exit_snippet, sizeof(os_exit_snippet) - 1, "line") || lua_pcall(L, 0, 0, 0)) {
		report_error(lua_tostring(L, -1));
		lua_close(L);
		return RES_ERROR;
	}

	lua_createtable(L, 0, 4);
	set_field(L, "section", opt_section);
	set_field(L, "tag_name", opt_tag);
	set_field(L, "key_name", opt_key_name);
	set_field(L, "key_value", opt_key_value);
	lua_setglobal(L, "XML_REQUEST");

	if (ev) {
		event_ud_t *ud = lua_newuserdata(L, sizeof(*ud));
		ud->ev = ev;
		if (luaL_newmetatable(L, EVENT_MT)) {
			luaL_newlib(L, event_methods);
			lua_setfield(L, -2, "__index");
			lua_pushcfunction(L, ev_tostring);
			lua_setfield(L, -2, "__tostring");
			lua_pushliteral(L, "Event");
			lua_setfield(L, -2, "__name");
		}
		lua_setmetatable(L, -2);
		lua_setglobal(L, "params");
	}

	lua_createtable(L, opt_nargs, 1);
	lua_pushstring(L, opt_shim);
	lua_rawseti(L, -2, 0);
	for (int i = 0; i < opt_nargs; i++) {
		lua_pushstring(L, opt_args[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setglobal(L, "argv");

	if (luaL_loadfile(L, opt_shim) || lua_pcall(L, 0, 0, 0)) {
		report_error(lua_tostring(L, -1));
		lua_close(L);
		return RES_ERROR;
	}

	lua_getglobal(L, "XML_STRING");
	const char *xml = lua_tostring(L, -1);
	*was_nil = (!xml || !*xml);
	if (!xml || !*xml) {
		res = opt_expect ? RES_FAILED : RES_NIL;
	} else if (opt_expect && !strstr(xml, opt_expect)) {
		res = RES_FAILED;
	} else {
		res = RES_OK;
	}
	if (opt_watch && xml) watch_value(xml);
	if (opt_print && xml) {
		pthread_mutex_lock(&out_lock);
		fputs(xml, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
	lua_close(L);
	return res;
}

/* ------------------------------------------------------------------------ workers */

typedef struct {
	int id;
	long todo; /* -1: until deadline */
	uint64_t *lat_ns;
	size_t n_lat, cap_lat;
	long ok, failed, nil, errors;
	uint64_t rng;
	char **tmpl_buf; /* one buffer per template param */
	size_t *tmpl_cap;
	int oom;
} worker_t;

static pthread_barrier_t start_barrier;
static struct timespec deadline;

/* CPU time (user + system) of this process so far, in seconds. */
static double process_cpu_seconds(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* expand "%d" -> number, "%%" -> "%" into *buf */
static const char *expand_template(const char *tmpl, long num, char **buf, size_t *cap)
{
	char nbuf[32];
	int nl = snprintf(nbuf, sizeof(nbuf), "%ld", num);
	size_t need = 1;
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '%' && p[1] == 'd') { need += (size_t)nl; p++; }
		else if (p[0] == '%' && p[1] == '%') { need += 1; p++; }
		else need += 1;
	}
	if (need > *cap) {
		char *nb = realloc(*buf, need);
		if (!nb) return NULL;
		*buf = nb;
		*cap = need;
	}
	char *o = *buf;
	for (const char *p = tmpl; *p; p++) {
		if (p[0] == '%' && p[1] == 'd') { memcpy(o, nbuf, (size_t)nl); o += nl; p++; }
		else if (p[0] == '%' && p[1] == '%') { *o++ = '%'; p++; }
		else *o++ = *p;
	}
	*o = '\0';
	return *buf;
}

/* The lookup's params for key `keynum` (templates expanded into bufs/caps, one per
 * param). Returns 0, or -1 when out of memory. */
static int build_event(event_t *ev, long keynum, char **bufs, size_t *caps)
{
	event_init(ev);
	if (opt_no_params) return 0;
	for (int i = 0; i < opt_nparams; i++) {
		const char *v = opt_params[i].value;
		if (opt_params[i].is_template && !(v = expand_template(opt_params[i].value, keynum, &bufs[i], &caps[i]))) return -1;
		if (event_add(ev, opt_params[i].name, v)) return -1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	long counter = w->id;
	pthread_barrier_wait(&start_barrier);
	uint64_t deadline_ns = (uint64_t)deadline.tv_sec * 1000000000ull + (uint64_t)deadline.tv_nsec;

	for (long done = 0;; done++) {
		if (w->todo >= 0 && done >= w->todo) break;
		uint64_t t0 = now_ns();
		if (w->todo < 0 && t0 >= deadline_ns) break;
		if (__atomic_load_n(&until_seen, __ATOMIC_RELAXED)) break;

		long keynum = 0;
		if (opt_random) keynum = (long)(xorshift64(&w->rng) % (uint64_t)opt_keyspace);
		else keynum = counter % opt_keyspace;
		counter += opt_threads;
		keynum += opt_key_base;

		event_t ev;
		int bad = build_event(&ev, keynum, w->tmpl_buf, w->tmpl_cap) != 0;
		result_t r;
		int was_nil = 0;
		if (bad) {
			report_error("out of memory building the event");
			r = RES_ERROR;
		} else {
			r = run_lookup(opt_no_params ? NULL : &ev, &was_nil);
		}
		event_free(&ev);
		uint64_t t1 = now_ns();

		if (w->n_lat == w->cap_lat) {
			size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
			uint64_t *nl = realloc(w->lat_ns, cap * sizeof(uint64_t));
			if (!nl) {
				w->oom = 1;
				break;
			}
			w->lat_ns = nl;
			w->cap_lat = cap;
		}
		w->lat_ns[w->n_lat++] = t1 - t0;

		/* relaxed atomics: --report-ms reads these while the worker runs */
		switch (r) {
		case RES_OK: __atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED); break;
		case RES_NIL: __atomic_fetch_add(&w->ok, 1, __ATOMIC_RELAXED); break;
		case RES_FAILED: __atomic_fetch_add(&w->failed, 1, __ATOMIC_RELAXED); break;
		case RES_ERROR: __atomic_fetch_add(&w->errors, 1, __ATOMIC_RELAXED); break;
		}
		if (was_nil) __atomic_fetch_add(&w->nil, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* --warm N: N lookups (keys base, base+1, ... round-robin) on the main thread before
 * the measured run, so a process-wide cache in the library is warm. Not counted. */
static long opt_warm = 0;
static void warm_up(void)
{
	char **bufs = calloc((size_t)opt_nparams + 1, sizeof(char *));
	size_t *caps = calloc((size_t)opt_nparams + 1, sizeof(size_t));
	if (!bufs || !caps) return;
	for (long k = 0; k < opt_warm; k++) {
		long keynum = k % opt_keyspace + opt_key_base;
		event_t ev;
		int was_nil = 0;
		if (build_event(&ev, keynum, bufs, caps) == 0) (void)run_lookup(opt_no_params ? NULL : &ev, &was_nil);
		event_free(&ev);
	}
	for (int i = 0; i < opt_nparams; i++) free(bufs[i]);
	free(bufs);
	free(caps);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, size_t n, double p)
{
	if (!n) return 0;
	size_t rank = (size_t)(p * (double)n + 0.999999999); /* ceil(p*n) */
	if (rank < 1) rank = 1;
	if (rank > n) rank = n;
	return (double)v[rank - 1] / 1000.0;
}

/* ------------------------------------------------------------------------ main */

static void usage(const char *msg)
{
	if (msg) fprintf(stderr, "fshost: %s\n", msg);
	fprintf(stderr,
		"usage: fshost --shim PATH [--threads N] [--requests N | --seconds S]\n"
		"              [--section S] [--tag T] [--key-name N] [--key-value V]\n"
		"              [--param NAME=VALUE ...] [--param-template NAME=VALUE%%d ...]\n"
		"              [--keyspace K] [--key-base B] [--random] [--no-params]\n"
		"              [--global NAME=VALUE ...] [--arg WORD ...]\n"
		"              [--expect SUBSTRING] [--print] [--quiet] [--warm N]\n"
		"              [--watch PREFIX [--until VALUE]] [--report-ms N]\n");
	exit(2);
}

static int split_kv(const char *s, kv_t *out, int is_template)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s) return -1;
	out->name = strndup(s, (size_t)(eq - s));
	out->value = strdup(eq + 1);
	out->is_template = is_template;
	return (out->name && out->value) ? 0 : -1;
}

static long parse_long(const char *s, const char *opt, long min)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min) {
		char m[128];
		snprintf(m, sizeof(m), "%s needs an integer >= %ld", opt, min);
		usage(m);
	}
	return v;
}

int main(int argc, char **argv)
{
	opt_params = calloc((size_t)argc, sizeof(kv_t));
	opt_globals = calloc((size_t)argc, sizeof(kv_t));
	opt_args = calloc((size_t)argc, sizeof(char *));
	if (!opt_params || !opt_globals || !opt_args) return 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
#define NEEDVAL() do { if (i + 1 >= argc) { char m_[96]; snprintf(m_, sizeof(m_), "%s needs a value", a); usage(m_); } } while (0)
		if (!strcmp(a, "--shim")) { NEEDVAL(); opt_shim = argv[++i]; }
		else if (!strcmp(a, "--threads")) { NEEDVAL(); opt_threads = (int)parse_long(argv[++i], a, 1); }
		else if (!strcmp(a, "--requests")) { NEEDVAL(); opt_requests = parse_long(argv[++i], a, 0); }
		else if (!strcmp(a, "--seconds")) {
			NEEDVAL();
			char *end;
			opt_seconds = strtod(argv[++i], &end);
			if (*end || opt_seconds <= 0) usage("--seconds needs a positive number");
		}
		else if (!strcmp(a, "--section")) { NEEDVAL(); opt_section = argv[++i]; }
		else if (!strcmp(a, "--tag") || !strcmp(a, "--tag-name")) { NEEDVAL(); opt_tag = argv[++i]; }
		else if (!strcmp(a, "--key-name")) { NEEDVAL(); opt_key_name = argv[++i]; }
		else if (!strcmp(a, "--key-value")) { NEEDVAL(); opt_key_value = argv[++i]; }
		else if (!strcmp(a, "--param") || !strcmp(a, "--param-template")) {
			NEEDVAL();
			if (split_kv(argv[++i], &opt_params[opt_nparams], !strcmp(a, "--param-template"))) usage("--param needs NAME=VALUE");
			opt_nparams++;
		}
		else if (!strcmp(a, "--global")) {
			NEEDVAL();
			if (split_kv(argv[++i], &opt_globals[opt_nglobals], 0)) usage("--global needs NAME=VALUE");
			opt_nglobals++;
		}
		else if (!strcmp(a, "--arg")) { NEEDVAL(); opt_args[opt_nargs++] = argv[++i]; }
		else if (!strcmp(a, "--keyspace")) { NEEDVAL(); opt_keyspace = parse_long(argv[++i], a, 1); }
		else if (!strcmp(a, "--key-base")) { NEEDVAL(); opt_key_base = parse_long(argv[++i], a, -2147483647L); }
		else if (!strcmp(a, "--random")) opt_random = 1;
		else if (!strcmp(a, "--no-params")) opt_no_params = 1;
		else if (!strcmp(a, "--expect")) { NEEDVAL(); opt_expect = argv[++i]; }
		else if (!strcmp(a, "--print")) opt_print = 1;
		else if (!strcmp(a, "--watch")) { NEEDVAL(); opt_watch = argv[++i]; }
		else if (!strcmp(a, "--until")) { NEEDVAL(); opt_until = argv[++i]; }
		else if (!strcmp(a, "--warm")) { NEEDVAL(); opt_warm = parse_long(argv[++i], a, 0); }
		else if (!strcmp(a, "--quiet")) opt_quiet = 1;
		else if (!strcmp(a, "--report-ms")) { NEEDVAL(); opt_report_ms = parse_long(argv[++i], a, 1); }
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage(NULL);
		else {
			char m[256];
			snprintf(m, sizeof(m), "unknown option %s", a);
			usage(m);
		}
#undef NEEDVAL
	}
	if (!opt_shim) usage("--shim is required");
	if (opt_requests >= 0 && opt_seconds > 0) usage("use --requests or --seconds, not both");
	if (opt_until && !opt_watch) usage("--until needs --watch");
	if (opt_requests < 0 && opt_seconds <= 0) opt_requests = opt_print ? 1 : 1000;

	worker_t *ws = calloc((size_t)opt_threads, sizeof(worker_t));
	pthread_t *tids = calloc((size_t)opt_threads, sizeof(pthread_t));
	if (!ws || !tids) return 2;
	uint64_t seed0 = now_ns() ^ ((uint64_t)getpid() << 32);
	for (int t = 0; t < opt_threads; t++) {
		ws[t].id = t;
		if (opt_seconds > 0) ws[t].todo = -1;
		else ws[t].todo = opt_requests / opt_threads + (t < opt_requests % opt_threads ? 1 : 0);
		ws[t].rng = seed0 + 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
		if (!ws[t].rng) ws[t].rng = 1;
		ws[t].tmpl_buf = calloc((size_t)opt_nparams + 1, sizeof(char *));
		ws[t].tmpl_cap = calloc((size_t)opt_nparams + 1, sizeof(size_t));
		if (!ws[t].tmpl_buf || !ws[t].tmpl_cap) return 2;
	}

	if (opt_warm > 0) {
		int print = opt_print, watch = opt_watch != NULL;
		const char *w = opt_watch;
		opt_print = 0;
		opt_watch = NULL;
		warm_up();
		opt_print = print;
		opt_watch = watch ? w : NULL;
	}
	pthread_barrier_init(&start_barrier, NULL, (unsigned)opt_threads + 1);
	for (int t = 0; t < opt_threads; t++) {
		if (pthread_create(&tids[t], NULL, worker_main, &ws[t])) {
			fprintf(stderr, "fshost: pthread_create failed\n");
			return 2;
		}
	}
	/* set the deadline, then release everyone */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	uint64_t start = now_ns();
	double cpu_start = process_cpu_seconds();
	if (opt_seconds > 0) {
		uint64_t d = start + (uint64_t)(opt_seconds * 1e9);
		deadline.tv_sec = (time_t)(d / 1000000000ull);
		deadline.tv_nsec = (long)(d % 1000000000ull);
	}
	pthread_barrier_wait(&start_barrier);
	if (opt_report_ms > 0) {
		/* one line per interval on stderr: counts of that interval only */
		long last_ok = 0, last_bad = 0, last_nil = 0;
		for (;;) {
			struct timespec pause = {opt_report_ms / 1000, (opt_report_ms % 1000) * 1000000L};
			nanosleep(&pause, NULL);
			long ok = 0, bad = 0, nl = 0;
			int running = 0;
			for (int t = 0; t < opt_threads; t++) {
				ok += __atomic_load_n(&ws[t].ok, __ATOMIC_RELAXED);
				bad += __atomic_load_n(&ws[t].failed, __ATOMIC_RELAXED) + __atomic_load_n(&ws[t].errors, __ATOMIC_RELAXED);
				nl += __atomic_load_n(&ws[t].nil, __ATOMIC_RELAXED);
			}
			uint64_t elapsed = now_ns() - start;
			fprintf(stderr, "tick ms=%llu ok=%ld failed=%ld nil=%ld\n", (unsigned long long)(elapsed / 1000000ull),
			        ok - last_ok, bad - last_bad, nl - last_nil);
			last_ok = ok; last_bad = bad; last_nil = nl;
			if (opt_seconds > 0) running = elapsed < (uint64_t)(opt_seconds * 1e9);
			else {
				long done = 0;
				for (int t = 0; t < opt_threads; t++) done += __atomic_load_n(&ws[t].ok, __ATOMIC_RELAXED)
					+ __atomic_load_n(&ws[t].failed, __ATOMIC_RELAXED) + __atomic_load_n(&ws[t].errors, __ATOMIC_RELAXED);
				running = done < opt_requests;
			}
			if (__atomic_load_n(&until_seen, __ATOMIC_RELAXED)) running = 0;
			if (!running) break;
		}
	}
	for (int t = 0; t < opt_threads; t++) pthread_join(tids[t], NULL);
	uint64_t end = now_ns();
	double cpu = process_cpu_seconds() - cpu_start;
	pthread_barrier_destroy(&start_barrier);

	long ok = 0, failed = 0, nil = 0, errors = 0;
	size_t total = 0;
	int oom = 0;
	for (int t = 0; t < opt_threads; t++) {
		ok += ws[t].ok;
		failed += ws[t].failed;
		nil += ws[t].nil;
		errors += ws[t].errors;
		total += ws[t].n_lat;
		oom |= ws[t].oom;
	}
	uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
	if (!all) return 2;
	size_t k = 0;
	for (int t = 0; t < opt_threads; t++) {
		if (ws[t].n_lat) memcpy(all + k, ws[t].lat_ns, ws[t].n_lat * sizeof(uint64_t));
		k += ws[t].n_lat;
		free(ws[t].lat_ns);
		for (int i = 0; i < opt_nparams; i++) free(ws[t].tmpl_buf[i]);
		free(ws[t].tmpl_buf);
		free(ws[t].tmpl_cap);
	}
	qsort(all, total, sizeof(uint64_t), cmp_u64);
	double secs = (double)(end - start) / 1e9;
	long requests = ok + failed + errors;
	if (oom) fprintf(stderr, "fshost: out of memory storing latencies; run stopped early\n");

	printf("threads=%d requests=%ld ok=%ld failed=%ld nil=%ld errors=%ld seconds=%.3f rate=%.1f "
	       "p50_us=%.1f p99_us=%.1f max_us=%.1f cpu_us=%.2f\n",
	       opt_threads, requests, ok, failed, nil, errors, secs, secs > 0 ? (double)requests / secs : 0.0,
	       pct_us(all, total, 0.50), pct_us(all, total, 0.99), total ? (double)all[total - 1] / 1000.0 : 0.0,
	       requests > 0 ? cpu * 1e6 / (double)requests : 0.0);
	fflush(stdout);

	free(all);
	free(ws);
	free(tids);
	for (int i = 0; i < opt_nparams; i++) {
		free(opt_params[i].name);
		free(opt_params[i].value);
	}
	for (int i = 0; i < opt_nglobals; i++) {
		free(opt_globals[i].name);
		free(opt_globals[i].value);
	}
	free(opt_params);
	free(opt_globals);
	free(opt_args);
	for (int i = 0; i < n_seen_errors; i++) free(seen_errors[i]);

	return (failed == 0 && errors == 0 && !oom) ? 0 : 1;
}
