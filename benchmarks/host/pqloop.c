/*
 * pqloop.c -- ceiling B of the benchmark: the physical limit of one directory
 * lookup through libpq, with no Lua, no shim and no rendering. N threads, each
 * with its own connection, run the SAME prepared statement the node library runs
 * (printed by `fsconf debug statement fsconf_user_by_id`) in a loop.
 *
 *   pqloop --conninfo C --sql-file F [--threads N] [--seconds S] [--keyspace K] [--key-base B]
 *          [--domain D] [--user-template 'user%d'] [--server-time N]
 * Users are B..B+K-1 (default 1..K), picked at random, formatted with the template.
 * Like the node, each connection runs with jit off and generic plans forced, sends the
 * globals version it holds as the last parameter (NULL at first; before it, the asking node's
 * name, NULL: a node with no name, docs/cluster.md) and keeps the one the
 * `Q` row returns (column 2), so the global variables come back only on a connection's
 * first execution.
 * Output: threads=T requests=N ok=N failed=N seconds=S rate=R p50_us=X p99_us=Y max_us=Z
 *         server_cpu_us=C (the backends' CPU time per execution, from /proc/PID/stat:
 *         the server is local; steadier than wall time on a shared machine)
 * --server-time N: afterwards, on a new connection that has run the statement 50 times,
 * N random users through EXPLAIN (ANALYZE, TIMING OFF) EXECUTE: the database's own
 * planning + execution time, appended as server_p50_us=X server_p99_us=Y, and the plans
 * PostgreSQL's plan cache used (generic_plans=G custom_plans=C, from
 * pg_prepared_statements).
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *conninfo = "", *sql = NULL, *domain = "bench.test", *user_tmpl = "%d";
static int threads = 1;
static double seconds = 5;
static long keyspace = 1000, key_base = 1;
static int server_samples = 0;

typedef struct { int id; uint64_t *lat; size_t n, cap; long ok, failed; double cpu_s; } worker_t;

/* CPU seconds (user + system) a local backend process has used so far, from
 * /proc/PID/stat (the server runs on this machine); -1 when unreadable. */
static double backend_cpu(int pid) {
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p) return -1;
	unsigned long utime = 0, stime = 0;
	/* after "pid (comm)": state is field 3; utime and stime are fields 14 and 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t deadline;

/* The globals version of the `Q` row (the last row: rec 'Q', column 2). */
static void keep_version(PGresult *r, char *version, size_t size) {
	int n = PQntuples(r);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && n > 0 && PQnfields(r) > 2 && !strcmp(PQgetvalue(r, n - 1, 0), "Q"))
		snprintf(version, size, "%s", PQgetvalue(r, n - 1, 2));
}

static void *run(void *arg) {
	worker_t *w = arg;
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "pqloop: %s", PQerrorMessage(c)); exit(2); }
	PGresult *r = PQexec(c, "SET jit = off; SET plan_cache_mode = force_generic_plan");  /* as on node connections */
	PQclear(r);
	r = PQprepare(c, "q", sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) { fprintf(stderr, "pqloop: %s", PQerrorMessage(c)); exit(2); }
	PQclear(r);
	uint64_t x = 88172645463325252ull + (uint64_t)w->id * 7919;
	char user[64], version[32] = "";
	double cpu0 = backend_cpu(PQbackendPID(c));
	while (now_ns() < deadline) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		snprintf(user, sizeof user, user_tmpl, (int)(key_base + (long)(x % (uint64_t)keyspace)));
		const char *params[4] = {domain, user, NULL, version[0] ? version : NULL};
		uint64_t t0 = now_ns();
		r = PQexecPrepared(c, "q", 4, params, NULL, NULL, 0);
		int good = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 1;
		/* read every value, as the node does */
		for (int i = 0; i < PQntuples(r); i++)
			for (int j = 0; j < PQnfields(r); j++) (void)PQgetvalue(r, i, j);
		keep_version(r, version, sizeof version);
		PQclear(r);
		uint64_t t1 = now_ns();
		if (good) w->ok++; else w->failed++;
		if (w->n == w->cap) { w->cap = w->cap ? w->cap * 2 : 65536; w->lat = realloc(w->lat, w->cap * sizeof(uint64_t)); }
		w->lat[w->n++] = t1 - t0;
	}
	double cpu1 = backend_cpu(PQbackendPID(c));
	w->cpu_s = cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0;
	PQfinish(c);
	return NULL;
}

static int cmp(const void *a, const void *b);

/* "Planning Time: X ms" + "Execution Time: Y ms" of one EXPLAIN ANALYZE, in microseconds. */
static double explain_us(PGconn *c, const char *user, const char *version) {
	char *d = PQescapeLiteral(c, domain, strlen(domain)), *u = PQescapeLiteral(c, user, strlen(user));
	char q[512];
	snprintf(q, sizeof q, "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) EXECUTE q(%s, %s, NULL, %s)", d, u, version[0] ? version : "NULL");
	PQfreemem(d); PQfreemem(u);
	PGresult *r = PQexec(c, q);
	double total = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		total = 0;
		for (int i = 0; i < PQntuples(r); i++) {
			const char *line = PQgetvalue(r, i, 0), *p;
			if ((p = strstr(line, "Planning Time: ")) || (p = strstr(line, "Execution Time: ")))
				total += atof(strchr(p, ':') + 1) * 1000.0;
		}
	} else fprintf(stderr, "pqloop: %s", PQerrorMessage(c));
	PQclear(r);
	return total;
}

/* The server-time samples: the same prepared statement, executed `warm` times first
 * (the node forces generic plans; with PostgreSQL's default it would choose after 5). */
static void server_time(long warm) {
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "pqloop: %s", PQerrorMessage(c)); exit(2); }
	PQclear(PQexec(c, "SET jit = off; SET plan_cache_mode = force_generic_plan"));
	PQclear(PQprepare(c, "q", sql, 0, NULL));
	uint64_t x = 0x9E3779B97F4A7C15ull;
	char user[64], version[32] = "";
	uint64_t *lat = calloc((size_t)server_samples, sizeof(uint64_t));
	for (long i = 0; i < warm + server_samples; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		snprintf(user, sizeof user, user_tmpl, (int)(key_base + (long)(x % (uint64_t)keyspace)));
		if (i < warm) {
			const char *params[4] = {domain, user, NULL, version[0] ? version : NULL};
			PGresult *r = PQexecPrepared(c, "q", 4, params, NULL, NULL, 0);
			keep_version(r, version, sizeof version);
			PQclear(r);
		} else {
			lat[i - warm] = (uint64_t)(explain_us(c, user, version) * 1000.0);
		}
	}
	PGresult *r = PQexec(c, "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'q'");
	qsort(lat, (size_t)server_samples, sizeof(uint64_t), cmp);
	size_t total = (size_t)server_samples;
	uint64_t *all = lat;
#define SPCT(p) ((double)all[(size_t)((p) * (double)total + 0.999999999) - 1] / 1000.0)
	printf(" server_p50_us=%.1f server_p99_us=%.1f generic_plans=%s custom_plans=%s", SPCT(0.50), SPCT(0.99),
	       PQntuples(r) ? PQgetvalue(r, 0, 0) : "?", PQntuples(r) ? PQgetvalue(r, 0, 1) : "?");
	PQclear(r);
	free(lat);
	PQfinish(c);
}

static int cmp(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	const char *sql_file = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--conninfo")) conninfo = argv[i + 1];
		else if (!strcmp(argv[i], "--sql-file")) sql_file = argv[i + 1];
		else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--keyspace")) keyspace = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--key-base")) key_base = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--server-time")) server_samples = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--domain")) domain = argv[i + 1];
		else if (!strcmp(argv[i], "--user-template")) user_tmpl = argv[i + 1];
		else { fprintf(stderr, "pqloop: unknown option %s\n", argv[i]); return 2; }
	}
	if (!sql_file) { fprintf(stderr, "pqloop: --sql-file is required\n"); return 2; }
	FILE *f = fopen(sql_file, "r");
	if (!f) { perror(sql_file); return 2; }
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	sql = buf;
	worker_t *ws = calloc((size_t)threads, sizeof(worker_t));
	pthread_t *ts = calloc((size_t)threads, sizeof(pthread_t));
	uint64_t start = now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);
	for (int t = 0; t < threads; t++) { ws[t].id = t; pthread_create(&ts[t], NULL, run, &ws[t]); }
	for (int t = 0; t < threads; t++) pthread_join(ts[t], NULL);
	double secs = (double)(now_ns() - start) / 1e9;
	size_t total = 0;
	long ok = 0, failed = 0;
	double cpu = 0;
	for (int t = 0; t < threads; t++) {
		total += ws[t].n; ok += ws[t].ok; failed += ws[t].failed;
		cpu = cpu < 0 || ws[t].cpu_s < 0 ? -1 : cpu + ws[t].cpu_s;
	}
	uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
	size_t k = 0;
	for (int t = 0; t < threads; t++) { memcpy(all + k, ws[t].lat, ws[t].n * sizeof(uint64_t)); k += ws[t].n; free(ws[t].lat); }
	qsort(all, total, sizeof(uint64_t), cmp);
/* Nearest rank, as fshost computes it, so B and the shims' percentiles compare. */
#define PCT(p) (total ? (double)all[(size_t)((p) * (double)total + 0.999999999) - 1] / 1000.0 : 0)
	printf("threads=%d requests=%zu ok=%ld failed=%ld seconds=%.3f rate=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f",
	       threads, total, ok, failed, secs, (double)total / secs, PCT(0.50), PCT(0.99), PCT(1.0));
	if (cpu >= 0 && total > 0) printf(" server_cpu_us=%.1f", cpu * 1e6 / (double)total);
	if (server_samples > 0) server_time(50);
	printf("\n");
	return failed ? 1 : 0;
}
