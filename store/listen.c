/*
 * A connection LISTENing on some channels, for processes that wait on the
 * database: the SSE relay (kheish_events), the runner (kheish_runs,
 * kheish_control). A notification is a hint; its payload is never trusted
 * as data.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct store_listener {
    PGconn *conn;
};

struct store_listener *
store_listen(const char *conninfo, const char *const *channels, char *err, size_t errsz)
{
    struct store_listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    l->conn = PQconnectdb(conninfo);
    int ok = PQstatus(l->conn) == CONNECTION_OK;
    for (; ok && *channels; channels++) {
        char *chan = PQescapeIdentifier(l->conn, *channels, strlen(*channels));
        char sql[128];
        snprintf(sql, sizeof sql, "LISTEN %s", chan ? chan : "");
        PQfreemem(chan);
        PGresult *r = PQexec(l->conn, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok || PQsetnonblocking(l->conn, 1) != 0) {
        snprintf(err, errsz, "%s", PQerrorMessage(l->conn));
        err[strcspn(err, "\n")] = '\0';
        store_listener_close(l);
        return NULL;
    }
    return l;
}

int
store_listener_fd(const struct store_listener *l)
{
    return PQsocket(l->conn);
}

int
store_listener_drain(struct store_listener *l, store_notify_fn fn, void *arg)
{
    if (PQconsumeInput(l->conn) == 0)
        return -1;
    int n = 0;
    PGnotify *note;
    while ((note = PQnotifies(l->conn)) != NULL) {
        if (fn)
            fn(arg, note->relname, note->extra);
        PQfreemem(note);
        n++;
    }
    return n;
}

void
store_listener_close(struct store_listener *l)
{
    if (l == NULL)
        return;
    PQfinish(l->conn);
    free(l);
}
