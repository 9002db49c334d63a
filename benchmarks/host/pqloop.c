/*
 * pqloop.c -- ceiling B of the benchmark: the physical limit of one directory
 * lookup through libpq, with no Lua, no shim and no rendering. N threads, each
 * with its own connection, run the SAME prepared statement the node library runs
 * (printed by `fsconf debug statement fsconf_user_by_id`) in a loop.
 *
 *   pqloop --conninfo C --sql-file F [--threads N] [--seconds S] [--keyspace K]
 *          [--domain D] [--user-template 'user%d']
 * Output: threads=T requests=N ok=N failed=N seconds=S rate=R p50_us=X p99_us=Y max_us=Z
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *conninfo = "", *sql = NULL, *domain = "bench.test", *user_tmpl = "%d";
static int threads = 1;
static double seconds = 5;
static long keyspace = 1000;

typedef struct { int id; uint64_t *lat; size_t n, cap; long ok, failed; } worker_t;

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t deadline;

static void *run(void *arg) {
	worker_t *w = arg;
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "pqloop: %s", PQerrorMessage(c)); exit(2); }
	PGresult *r = PQexec(c, "SET jit = off");
	PQclear(r);
	r = PQprepare(c, "q", sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) { fprintf(stderr, "pqloop: %s", PQerrorMessage(c)); exit(2); }
	PQclear(r);
	uint64_t x = 88172645463325252ull + (uint64_t)w->id * 7919;
	char user[64];
	while (now_ns() < deadline) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		snprintf(user, sizeof user, user_tmpl, (int)(1 + x % (uint64_t)keyspace));
		/* $3: the asking node's name (NULL: a node with no name, unscoped rows only) */
		const char *params[3] = {domain, user, NULL};
		uint64_t t0 = now_ns();
		r = PQexecPrepared(c, "q", 3, params, NULL, NULL, 0);
		int good = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 1;
		/* read every value, as the node does */
		for (int i = 0; i < PQntuples(r); i++)
			for (int j = 0; j < PQnfields(r); j++) (void)PQgetvalue(r, i, j);
		PQclear(r);
		uint64_t t1 = now_ns();
		if (good) w->ok++; else w->failed++;
		if (w->n == w->cap) { w->cap = w->cap ? w->cap * 2 : 65536; w->lat = realloc(w->lat, w->cap * sizeof(uint64_t)); }
		w->lat[w->n++] = t1 - t0;
	}
	PQfinish(c);
	return NULL;
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
	for (int t = 0; t < threads; t++) { total += ws[t].n; ok += ws[t].ok; failed += ws[t].failed; }
	uint64_t *all = malloc((total ? total : 1) * sizeof(uint64_t));
	size_t k = 0;
	for (int t = 0; t < threads; t++) { memcpy(all + k, ws[t].lat, ws[t].n * sizeof(uint64_t)); k += ws[t].n; free(ws[t].lat); }
	qsort(all, total, sizeof(uint64_t), cmp);
/* Nearest rank, as fshost computes it, so B and the shims' percentiles compare. */
#define PCT(p) (total ? (double)all[(size_t)((p) * (double)total + 0.999999999) - 1] / 1000.0 : 0)
	printf("threads=%d requests=%zu ok=%ld failed=%ld seconds=%.3f rate=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
	       threads, total, ok, failed, secs, (double)total / secs, PCT(0.50), PCT(0.99), PCT(1.0));
	return failed ? 1 : 0;
}
