/* `kheish runs ...` (alias `run`). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "names.h"
#include "util.h"
#include "views.h"

int
cmd_runs_list(const struct cli *c, int argc, char **argv)
{
    const char *session = NULL, *status = NULL, *cursor = NULL, *order = NULL;
    int64_t limit = ARGS_UNSET;
    int page = 0;
    struct client_url url;
    const struct args_opt opts[] = {
        {.name = "session-id", .str = &session},
        {.name = "status", .str = &status, .choices = names_run_statuses},
        {.name = "page", .flag = &page},
        {.name = "limit", .num = &limit, .min = 1, .max = INT32_MAX},
        {.name = "cursor", .str = &cursor},
        {.name = "order", .str = &order, .choices = (const char *const[]){"asc", "desc", NULL}},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    client_url_path(&url, "/v1/runs");
    client_url_query(&url, "session_id", session);
    client_url_query(&url, "status", status);
    client_url_query(&url, "order", order);
    cmd_page_query(&url, page, limit, cursor);
    return cmd_show(c, &(struct client_req){"GET", &url, NULL, NULL}, &view_run_list);
}

int
cmd_runs_get(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/runs/%s", &view_run);
}

int
cmd_runs_events(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/runs/%s/events", &view_run_events);
}

int
cmd_runs_cancel(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "POST", "/v1/runs/%s/cancel", &view_run);
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#define WAIT_AGAIN (-2) /* wait_step: not terminal yet, time left */

/* Looks at one RunView: prints it when terminal (EXIT_OK), gives up when the
 * time is out (EXIT_UNAVAILABLE), else asks for another poll. */
static int
wait_step(const struct cli *c, const json_t *run, const char *id, int64_t elapsed_ms,
          int64_t timeout_ms)
{
    const char *status = json_string_value(json_object_get(run, "status"));
    if (status == NULL) {
        fprintf(stderr, "kheish: the view of run %s has no status\n", id);
        return EXIT_SCHEMA;
    }
    if (util_in_list(status, names_terminal_statuses)) {
        output_print(c, run, &view_run);
        return EXIT_OK;
    }
    if (timeout_ms != ARGS_UNSET && elapsed_ms >= timeout_ms) {
        fprintf(stderr, "kheish: run %s is still %s after %lld ms\n", id, status,
                (long long)elapsed_ms);
        return EXIT_UNAVAILABLE;
    }
    return WAIT_AGAIN;
}

/*
 * Polls GET /v1/runs/{id} until the run is terminal and prints that RunView.
 * Each poll is one ordinary request, so an HTTP or transport error ends the
 * wait with that request's exit code. Without --timeout-ms it waits as long
 * as the run lives (a run may wait days for an approval); with it, running
 * out of time is EXIT_UNAVAILABLE, like any other timeout.
 */
int
cmd_runs_wait(const struct cli *c, int argc, char **argv)
{
    const char *id;
    int64_t poll = WAIT_POLL_DEFAULT_MS, timeout = ARGS_UNSET;
    const struct args_opt opts[] = {
        {.name = "poll-interval-ms",
         .num = &poll,
         .min = WAIT_POLL_MIN_MS,
         .max = WAIT_POLL_MAX_MS},
        {.name = "timeout-ms", .num = &timeout, .min = 1, .max = WAIT_TIMEOUT_MAX_MS},
        {0},
    };
    if (args_parse(argc, argv, opts, &id, 1, 1) != 0)
        return ARGS_USAGE;
    return cmd_wait_run(c, id, poll, timeout);
}

int
cmd_wait_run(const struct cli *c, const char *id, int64_t poll, int64_t timeout)
{
    struct client_url url;
    json_t *doc;
    client_url_path(&url, "/v1/runs/%s", id);
    int64_t start_ms = util_monotonic_us() / 1000;
    for (;;) {
        int rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &doc, NULL);
        int64_t elapsed = util_monotonic_us() / 1000 - start_ms;
        if (rc == EXIT_OK)
            rc = wait_step(c, doc, id, elapsed, timeout);
        json_decref(doc);
        if (rc != WAIT_AGAIN)
            return rc;
        sleep_ms(timeout != ARGS_UNSET && timeout - elapsed < poll ? timeout - elapsed : poll);
    }
}
