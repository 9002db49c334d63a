/*
 * percall.c -- baseline C of the benchmark: what a per-request Lua database script
 * does (luasql, freeswitch.Dbh with a fresh handle): open a new PostgreSQL
 * connection for every lookup, run the query, close. A Lua C module, loaded by the
 * host like fsconf's (not linked with liblua).
 *
 *   local percall = package.loadlib("/path/percall.so", "luaopen_percall")()
 *   local rows = percall.lookup(conninfo, sql, domain, user)   -- rows or nil, message
 */
#include <libpq-fe.h>
#include <lua5.3/lauxlib.h>
#include <lua5.3/lua.h>

static int lookup(lua_State *L) {
	const char *conninfo = luaL_checkstring(L, 1), *sql = luaL_checkstring(L, 2);
	/* domain, user, the node's name (NULL: only rows every node sees) and the globals
	 * version (NULL, as a node without a copy sends): fsconf_user_by_id's parameters */
	const char *params[4] = {luaL_checkstring(L, 3), luaL_checkstring(L, 4), NULL, NULL};
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		lua_pushnil(L);
		lua_pushstring(L, PQerrorMessage(c));
		PQfinish(c);
		return 2;
	}
	PGresult *r = PQexec(c, "SET jit = off");
	PQclear(r);
	r = PQexecParams(c, sql, 4, NULL, params, NULL, NULL, 0);
	int rows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1;
	for (int i = 0; i < rows; i++)
		for (int j = 0; j < PQnfields(r); j++) (void)PQgetvalue(r, i, j);
	PQclear(r);
	PQfinish(c);
	lua_pushinteger(L, rows);
	return 1;
}

int luaopen_percall(lua_State *L) {
	lua_newtable(L);
	lua_pushcfunction(L, lookup);
	lua_setfield(L, -2, "lookup");
	return 1;
}
