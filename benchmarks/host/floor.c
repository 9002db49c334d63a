/*
 * floor.c -- the floor of any C-module handler, for the benchmark's paired rounds:
 * loaded by a shim exactly like fsconf's (package.loadlib of a .so, one call with
 * one string argument), it only sets XML_STRING to a constant answer (the file
 * named by its argument, read once per process). Whatever a cached fsconf lookup
 * costs beyond this is fsconf's; what this costs beyond A (a shim setting a
 * constant XML_STRING in Lua) is what loading a C module costs mod_lua.
 *
 *   local h, e = package.loadlib("/path/floor.so", "floor_xml_handler")
 *   if h then h("/path/answer.xml") else error(e) end
 *
 * Linked with -z nodelete, as fsconf's library is (docs/node.md): without it each
 * lua_close unloads it and the next lookup maps it again.
 */
#include <lua5.3/lua.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *answer;
static size_t answer_len;

static int load(const char *path) {
	FILE *f = fopen(path, "rb");
	if (!f) return -1;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (len + 4096 > cap) {
			char *grown = realloc(buf, cap = cap * 2 + 4096);
			if (!grown) { free(buf); fclose(f); return -1; }
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	answer = buf;
	answer_len = len;
	return 0;
}

int floor_xml_handler(lua_State *L) {
	const char *path = lua_tostring(L, 1);
	pthread_mutex_lock(&lock);
	int ok = answer != NULL || (path && load(path) == 0);
	pthread_mutex_unlock(&lock);
	if (!ok) {
		lua_pushnil(L);
		lua_pushstring(L, "floor: cannot read the answer");
		return 2;
	}
	lua_pushlstring(L, answer, answer_len);
	lua_pushvalue(L, -1);
	lua_setglobal(L, "XML_STRING");
	return 1;
}
