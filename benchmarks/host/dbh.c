/*
 * dbh.c -- baseline D of the benchmark: the database handle a FusionPBX-style Lua
 * handler uses, `freeswitch.Dbh` (mod_lua's binding of switch_cache_db): a pooled
 * connection kept between lookups (here: one per thread, as switch_cache_db hands a
 * thread its idle handle), and `query(sql, callback)` running plain SQL text
 * (switch_cache_db_execute_sql_callback: no parameters, the script quotes values)
 * and calling the Lua callback with each row as a table {column = value}.
 * A Lua C module, loaded by the host like fsconf's (not linked with liblua).
 *
 *   local dbh = package.loadlib("/path/dbh.so", "luaopen_benchdbh")().connect(conninfo)
 *   dbh:query("SELECT ...", function(row) ... end)   -- true, or nil and a message
 */
#include <libpq-fe.h>
#include <lua5.3/lauxlib.h>
#include <lua5.3/lua.h>
#include <string.h>

static __thread PGconn *conn;

static int query(lua_State *L) {
	const char *sql = luaL_checkstring(L, 2);
	int callback = lua_isfunction(L, 3);
	PGresult *r = PQexec(conn, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		lua_pushnil(L);
		lua_pushstring(L, PQerrorMessage(conn));
		PQclear(r);
		return 2;
	}
	int rows = PQntuples(r), cols = PQnfields(r);
	for (int i = 0; i < rows && callback; i++) {
		lua_pushvalue(L, 3);
		lua_createtable(L, 0, cols);
		for (int j = 0; j < cols; j++) {
			lua_pushstring(L, PQgetvalue(r, i, j));
			lua_setfield(L, -2, PQfname(r, j));
		}
		if (lua_pcall(L, 1, 1, 0) != 0) {   /* never longjmp past the result: free it first */
			PQclear(r);
			return lua_error(L);
		}
		int stop = lua_toboolean(L, -1) && lua_isnumber(L, -1) && lua_tointeger(L, -1) != 0;
		lua_pop(L, 1);
		if (stop) break;
	}
	PQclear(r);
	lua_pushboolean(L, 1);
	return 1;
}

static int connect(lua_State *L) {
	const char *conninfo = luaL_checkstring(L, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		if (conn) PQfinish(conn);
		conn = PQconnectdb(conninfo);
		if (PQstatus(conn) != CONNECTION_OK) {
			lua_pushnil(L);
			lua_pushstring(L, PQerrorMessage(conn));
			PQfinish(conn);
			conn = NULL;
			return 2;
		}
		PQclear(PQexec(conn, "SET jit = off"));
	}
	lua_newtable(L);
	lua_pushcfunction(L, query);
	lua_setfield(L, -2, "query");
	return 1;
}

int luaopen_benchdbh(lua_State *L) {
	lua_newtable(L);
	lua_pushcfunction(L, connect);
	lua_setfield(L, -2, "connect");
	return 1;
}
