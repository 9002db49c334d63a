#ifndef FSCONF_CLIBPQ_SHIM_H
#define FSCONF_CLIBPQ_SHIM_H
// libpq's public header. Debian installs it under /usr/include/postgresql;
// pkg-config (libpq.pc) supplies that include path.
#include <libpq-fe.h>

// libpq reports notices on stderr by default. Inside FreeSWITCH that would write
// to the console behind the logger's back: this no-op processor silences them.
static inline void fsconf_pq_silent_notice(void *arg, const char *message) {
    (void)arg; (void)message;
}
// Install the no-op processor (a C function pointer is simplest to form in C).
static inline void fsconf_pq_silence_notices(PGconn *conn) {
    PQsetNoticeProcessor(conn, fsconf_pq_silent_notice, 0);
}
#endif
