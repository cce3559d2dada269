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

#define EXTERNAL_ACTIONS_PAGE 10000 /* records per request: the API's largest page */

/* `runs external-actions <id>`: the run's signed records (contract §9),
 * every page, as one JSON array like upstream's. */
int
cmd_runs_external_actions(const struct cli *c, int argc, char **argv)
{
    const char *id;
    if (args_parse(argc, argv, NULL, &id, 1, 1) != 0)
        return ARGS_USAGE;
    json_t *all = json_array(), *page = NULL;
    int rc;
    do {
        struct client_url url;
        char after[24], limit[16];
        json_decref(page);
        snprintf(after, sizeof after, "%zu", json_array_size(all));
        snprintf(limit, sizeof limit, "%d", EXTERNAL_ACTIONS_PAGE);
        client_url_path(&url, "/v1/runs/%s/external-actions", id);
        client_url_query(&url, "after", after);
        client_url_query(&url, "limit", limit);
        rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &page, NULL);
        if (rc == EXIT_OK && !json_is_array(page)) {
            fprintf(stderr, "kheish: the external actions are not a JSON array\n");
            rc = EXIT_SCHEMA;
        }
        if (rc == EXIT_OK)
            json_array_extend(all, page);
    } while (rc == EXIT_OK && json_array_size(page) == EXTERNAL_ACTIONS_PAGE);
    if (rc == EXIT_OK)
        output_print(c, all, &view_external_actions);
    json_decref(page);
    json_decref(all);
    return rc;
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

/* What a wait has said on stderr about its run: it speaks when the run's
 * state changes (status, queue position, lease owner, whether a runner is
 * live), again every WAIT_PROGRESS_REPEAT_MS of the same state (with how
 * long it has lasted), and never in its first WAIT_PROGRESS_AFTER_MS, so
 * the wait of a run that ends at once stays silent. */
struct wait_progress {
    char said[512];     /* the state the last line told, "" before the first */
    int64_t said_ms;    /* when it went out (the wait's clock) */
    int64_t checked_ms; /* when /v1/status was last asked about runners; -1 never */
    json_int_t live;    /* the live runners it counted; -1 unknown */
    int no_status;      /* it could not tell once: not asked again */
};

/* While the run is queued: the live runners, from /v1/status, at most every
 * WAIT_RUNNERS_CHECK_MS. Its refusal goes to stderr only (the json output
 * mode would print the problem on stdout, where the wait's result goes). */
static void
count_runners(const struct cli *c, struct wait_progress *p, int64_t elapsed_ms)
{
    if (p->no_status || (p->checked_ms >= 0 && elapsed_ms - p->checked_ms < WAIT_RUNNERS_CHECK_MS))
        return;
    struct cli quiet = *c;
    struct client_url url;
    json_t *doc = NULL;
    quiet.json = 0;
    client_url_path(&url, "/v1/status");
    int rc = client_request(&quiet, &(struct client_req){"GET", &url, NULL, NULL}, &doc, NULL);
    const json_t *live = json_object_get(json_object_get(doc, "runners"), "live_count");
    p->checked_ms = elapsed_ms;
    p->live = rc == EXIT_OK && json_is_integer(live) ? json_integer_value(live) : -1;
    if (p->live < 0) {
        fprintf(stderr, "kheish: /v1/status does not say whether a runner is live; "
                        "not asking again\n");
        p->no_status = 1;
    }
    json_decref(doc);
}

/* Seconds from a RunView time (ms since the epoch) to now, for display. */
static long long
seconds_since(const json_t *run, const char *field)
{
    int64_t ms = util_now_ms() - json_integer_value(json_object_get(run, field));
    return ms > 0 ? (long long)(ms / 1000) : 0;
}

/* One line on stderr when the run's state is news (struct wait_progress). */
static void
progress(const struct cli *c, struct wait_progress *p, const json_t *run, const char *id,
         const char *status, int64_t elapsed_ms)
{
    const char *owner = json_string_value(json_object_get(run, "lease_owner"));
    json_int_t position = json_integer_value(json_object_get(run, "queued_position"));
    int queued = !strcmp(status, "queued");
    char state[sizeof p->said], line[1024];
    if (elapsed_ms < WAIT_PROGRESS_AFTER_MS)
        return;
    if (queued)
        count_runners(c, p, elapsed_ms);
    snprintf(state, sizeof state, "%s %lld %s %lld", status, (long long)position,
             owner ? owner : "-", queued ? (long long)p->live : -2LL);
    if (!strcmp(state, p->said) && elapsed_ms - p->said_ms < WAIT_PROGRESS_REPEAT_MS)
        return;
    if (queued)
        snprintf(line, sizeof line, "run %s is queued (position %lld in its session, for %lld s)%s",
                 id, (long long)position, seconds_since(run, "submitted_at_ms"),
                 p->live == 0 ? "; no runner is claiming runs (start one: kheish up "
                                "--routes-file FILE, or the kheish-runner service)"
                              : "");
    else if (!strcmp(status, "running"))
        snprintf(line, sizeof line, "run %s is running, claimed by %s, for %lld s", id,
                 owner ? owner : "an unknown runner", seconds_since(run, "started_at_ms"));
    else
        snprintf(line, sizeof line, "run %s is %s", id, status);
    if (queued && p->live > 0)
        snprintf(line + strlen(line), sizeof line - strlen(line), "; %lld live runner%s",
                 (long long)p->live, p->live == 1 ? "" : "s");
    fputs("kheish: ", stderr);
    output_text(stderr, line, strlen(line), sizeof line); /* owner comes from the daemon */
    fputc('\n', stderr);
    snprintf(p->said, sizeof p->said, "%s", state);
    p->said_ms = elapsed_ms;
}

/* Looks at one RunView: EXIT_OK when the wait is over, gives up when the
 * time is out (EXIT_UNAVAILABLE), else says what is new and asks for another
 * poll. */
static int
wait_step(const struct cli *c, struct wait_progress *p, const json_t *run, const char *id,
          int64_t elapsed_ms, int64_t timeout_ms, enum cmd_wait_end end)
{
    static const char *const operator_waits[] = {"waiting_for_approval",
                                                 "waiting_for_user_question", NULL};
    const char *status = json_string_value(json_object_get(run, "status"));
    if (status == NULL) {
        fprintf(stderr, "kheish: the view of run %s has no status\n", id);
        return EXIT_SCHEMA;
    }
    if (util_in_list(status, names_terminal_statuses) ||
        (end == WAIT_SETTLED && util_in_list(status, operator_waits)))
        return EXIT_OK;
    if (timeout_ms != ARGS_UNSET && elapsed_ms >= timeout_ms) {
        fprintf(stderr, "kheish: run %s is still %s after %lld ms\n", id, status,
                (long long)elapsed_ms);
        return EXIT_UNAVAILABLE;
    }
    progress(c, p, run, id, status, elapsed_ms);
    return WAIT_AGAIN;
}

/*
 * Polls GET /v1/runs/{id} until the run is terminal and prints that RunView.
 * Each poll is one ordinary request, so an HTTP or transport error ends the
 * wait with that request's exit code. Without --timeout-ms it waits as long
 * as the run lives (a run may wait days for an approval); with it, running
 * out of time is EXIT_UNAVAILABLE, like any other timeout. Its progress goes
 * to stderr (struct wait_progress).
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
    return cmd_wait_run(c, id, poll, timeout, WAIT_TERMINAL);
}

int
cmd_wait_run(const struct cli *c, const char *id, int64_t poll, int64_t timeout,
             enum cmd_wait_end end)
{
    json_t *run;
    int rc = cmd_run_settle(c, id, poll, timeout, end, &run);
    if (rc == EXIT_OK)
        output_print(c, run, &view_run);
    json_decref(run);
    return rc;
}

int
cmd_run_settle(const struct cli *c, const char *id, int64_t poll, int64_t timeout,
               enum cmd_wait_end end, json_t **run)
{
    struct client_url url;
    struct wait_progress said = {.checked_ms = -1, .live = -1};
    client_url_path(&url, "/v1/runs/%s", id);
    int64_t start_ms = util_monotonic_us() / 1000;
    for (;;) {
        int rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, run, NULL);
        int64_t elapsed = util_monotonic_us() / 1000 - start_ms;
        if (rc == EXIT_OK)
            rc = wait_step(c, &said, *run, id, elapsed, timeout, end);
        if (rc == EXIT_OK)
            return rc;
        json_decref(*run);
        *run = NULL;
        if (rc != WAIT_AGAIN)
            return rc;
        sleep_ms(timeout != ARGS_UNSET && timeout - elapsed < poll ? timeout - elapsed : poll);
    }
}
