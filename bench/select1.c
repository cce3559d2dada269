/*
 * The baseline of bench/run.sh: a FastCGI no-op route shaped like
 * kheish-fcgi (prefork workers on one unix socket, one libpq connection per
 * worker) that answers every request with the result of `SELECT 1`.
 *
 *   bench-select1 SOCKET WORKERS CONNINFO
 */
#include <fcgiapp.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
serve(int fd, const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    FCGX_Request r;
    FCGX_InitRequest(&r, fd, 0);
    while (FCGX_Accept_r(&r) >= 0) {
        PGresult *res = PQexecParams(pg, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
        int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        char body[64], head[160];
        int blen =
            snprintf(body, sizeof body, "{\"select\":%s}", ok ? PQgetvalue(res, 0, 0) : "null");
        int hlen =
            snprintf(head, sizeof head,
                     "Status: %d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                     ok ? 200 : 503, blen);
        PQclear(res);
        FCGX_PutStr(head, hlen, r.out);
        FCGX_PutStr(body, blen, r.out);
        FCGX_Finish_r(&r);
    }
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench-select1 SOCKET WORKERS CONNINFO\n");
        return 2;
    }
    int workers = atoi(argv[2]);
    FCGX_Init();
    int fd = FCGX_OpenSocket(argv[1], 1024);
    chmod(argv[1], 0666);
    for (int i = 0; i < workers; i++) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* a baseline: no graceful stop needed */
            serve(fd, argv[3]);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    return 0;
}
