/*
 * valueloop.c -- the baseline of a stored-document lookup (directory-bench's
 * dialplan scenarios): one parameterless statement returning one value, run N
 * times over one libpq connection in a C loop (no Lua, no node library), with the
 * result in text or binary format. What a node cannot go below for a context it
 * reads as one stored value: the database reading it and sending it, libpq
 * receiving it.
 *
 *   valueloop --conninfo C --sql S [--requests N] [--binary]
 * Output: requests=N bytes=B p50_us=X p99_us=Y
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	const char *conninfo = "", *sql = NULL;
	int requests = 40, binary = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conninfo") && i + 1 < argc) conninfo = argv[++i];
		else if (!strcmp(argv[i], "--sql") && i + 1 < argc) sql = argv[++i];
		else if (!strcmp(argv[i], "--requests") && i + 1 < argc) requests = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--binary")) binary = 1;
		else { fprintf(stderr, "valueloop: unknown argument %s\n", argv[i]); return 2; }
	}
	if (!sql || requests < 1) { fprintf(stderr, "valueloop: --sql and --requests >= 1 are required\n"); return 2; }
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "valueloop: %s", PQerrorMessage(c)); return 1; }
	PGresult *r = PQprepare(c, "v", sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) { fprintf(stderr, "valueloop: %s", PQerrorMessage(c)); return 1; }
	PQclear(r);
	uint64_t *lat = calloc((size_t)requests, sizeof *lat);
	if (!lat) return 1;
	long bytes = -1;
	for (int i = 0; i < requests; i++) {
		uint64_t t0 = now_ns();
		r = PQexecPrepared(c, "v", 0, NULL, NULL, NULL, binary);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			fprintf(stderr, "valueloop: expected one row: %s", PQerrorMessage(c));
			return 1;
		}
		bytes = PQgetlength(r, 0, 0);
		PQclear(r);
		lat[i] = now_ns() - t0;
	}
	qsort(lat, (size_t)requests, sizeof *lat, compare);
	printf("requests=%d bytes=%ld p50_us=%.1f p99_us=%.1f\n", requests, bytes, lat[requests / 2] / 1000.0,
	       lat[(size_t)((requests - 1) * 0.99)] / 1000.0);
	PQfinish(c);
	free(lat);
	return 0;
}
