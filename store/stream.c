/*
 * What the SSE relay reads: stream events rendered as SSE frames by the
 * database, the newest id, what retention pruned, and its own report in
 * relay_stats. (The hint that new events have committed is a NOTIFY on
 * kheish_events: store/listen.c.)
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One statement per filter combination, so each keeps an index plan:
 * [session filter | run filter << 1]. A page ends at $4 rows or once it
 * holds $5 bytes (always at least one row). jsonb's text form has no
 * newline, so `data:` is one line. */
#define FRAMES_FROM(filter)                                                                        \
    "SELECT id, session_id, run_id, frame, page_rows FROM (SELECT *, count(*) OVER () AS "         \
    "page_rows, sum(octet_length(frame)) OVER (ORDER BY id) - octet_length(frame) AS before "      \
    "FROM (SELECT id, session_id, run_id, "                                                        \
    "'id: ' || id || E'\\nevent: ' || name || E'\\ndata: ' || data::text || E'\\n\\n' AS frame "   \
    "FROM events WHERE id > $1::bigint AND " filter " ORDER BY id LIMIT $4::int) page) sized "     \
    "WHERE before < $5::bigint ORDER BY id"
static const char *const frame_sql[4] = {
    FRAMES_FROM("$2::text IS NULL AND $3::text IS NULL"),
    FRAMES_FROM("session_id = $2 AND $3::text IS NULL"),
    FRAMES_FROM("$2::text IS NULL AND run_id = $3"),
    FRAMES_FROM("session_id = $2 AND run_id = $3"),
};

static char *
column(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

enum store_rc
store_stream_frames(struct store *s, int64_t after, const char *session_id, const char *run_id,
                    int limit, int64_t max_bytes, struct store_frame **out, int *n, int *more)
{
    char a[24], l[16], b[24];
    enum store_rc rc;
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(l, sizeof l, "%d", limit);
    snprintf(b, sizeof b, "%" PRId64, max_bytes);
    *out = NULL;
    *n = *more = 0;
    /* Durable before it is sent: events commit without waiting for their
     * flush (sql/functions/events.sql). */
    PGresult *r = db_exec_durable(s, &rc, frame_sql[(session_id != NULL) | (run_id != NULL) << 1],
                                  5, (const char *const[]){a, session_id, run_id, l, b});
    if (r == NULL)
        return rc;
    int rows = PQntuples(r);
    struct store_frame *f = rows ? calloc((size_t)rows, sizeof *f) : NULL;
    if (rows && f == NULL) {
        PQclear(r);
        return STORE_ERROR;
    }
    for (int i = 0; i < rows; i++) {
        f[i].id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        f[i].session_id = column(r, i, 1);
        f[i].run_id = column(r, i, 2);
        f[i].text = column(r, i, 3);
        f[i].len = (size_t)PQgetlength(r, i, 3);
    }
    /* Cut by bytes, or a full page: there may be more. */
    int page_rows = rows ? atoi(PQgetvalue(r, 0, 4)) : 0;
    *more = rows && (rows < page_rows || page_rows == limit);
    PQclear(r);
    *out = f;
    *n = rows;
    return STORE_OK;
}

void
store_frames_free(struct store_frame *f, int n)
{
    for (int i = 0; i < n; i++) {
        free(f[i].session_id);
        free(f[i].run_id);
        free(f[i].text);
    }
    free(f);
}

enum store_rc
store_stream_newest(struct store *s, int64_t *newest)
{
    enum store_rc rc;
    /* Durable first (db_exec_durable): a stream starting after an id must
     * never see that id given again to another event after a crash. */
    PGresult *r = db_exec_durable(s, &rc, "SELECT last_id FROM event_ids", 0, NULL);
    if (r == NULL)
        return rc;
    *newest = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return STORE_OK;
}

/* Ids are dense (sql/migrations/004), so the global stream's loss is exact; a filtered
 * stream's is its scope's pruned count, exact when all of them came after
 * the cursor. A run filter is the narrower scope. */
enum store_rc
store_stream_gap(struct store *s, int64_t after, const char *session_id, const char *run_id,
                 struct store_gap *gap, int *found)
{
    char a[24];
    enum store_rc rc;
    snprintf(a, sizeof a, "%" PRId64, after);
    PGresult *r = db_exec(
        s, &rc,
        "SELECT coalesce(p.pruned, r.pruned_through - $1::bigint), r.pruned_through, "
        "coalesce(p.first_id <= $1::bigint, false) FROM event_retention r "
        "LEFT JOIN event_scope_pruned p ON p.scope = CASE WHEN $3::text IS NULL THEN 'session' "
        "ELSE 'run' END AND p.scope_id = coalesce($3::text, $2::text) "
        "WHERE r.pruned_through > $1::bigint "
        "AND (($2::text IS NULL AND $3::text IS NULL) OR p.last_id > $1::bigint)",
        3, (const char *const[]){a, session_id, run_id});
    if (r == NULL)
        return rc;
    *found = PQntuples(r) == 1;
    if (*found) {
        gap->skipped = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        gap->resume_after = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        gap->estimate = PQgetvalue(r, 0, 2)[0] == 't';
    }
    PQclear(r);
    return STORE_OK;
}

enum store_rc
store_relay_report(struct store *s, const struct store_relay_stats *st)
{
    char started[24], subs[16], rep[16], newest[24], lagged[24], gaps[24];
    snprintf(started, sizeof started, "%" PRId64, st->started_at_ms);
    snprintf(subs, sizeof subs, "%d", st->subscribers);
    snprintf(rep, sizeof rep, "%d", st->replaying);
    snprintf(newest, sizeof newest, "%" PRId64, st->newest_event_id);
    snprintf(lagged, sizeof lagged, "%" PRId64, st->lagged_total);
    snprintf(gaps, sizeof gaps, "%" PRId64, st->gaps_total);
    return db_command(
        s,
        "INSERT INTO relay_stats (relay_id, started_at_ms, updated_at_ms, subscribers, replaying, "
        "newest_event_id, lagged_total, gaps_total) VALUES ($1, $2::bigint, kheish_now_ms(), "
        "$3::int, $4::int, $5::bigint, $6::bigint, $7::bigint) ON CONFLICT (relay_id) DO UPDATE "
        "SET updated_at_ms = EXCLUDED.updated_at_ms, subscribers = EXCLUDED.subscribers, "
        "replaying = EXCLUDED.replaying, newest_event_id = EXCLUDED.newest_event_id, "
        "lagged_total = EXCLUDED.lagged_total, gaps_total = EXCLUDED.gaps_total",
        7, (const char *const[]){st->relay_id, started, subs, rep, newest, lagged, gaps});
}

enum store_rc
store_relay_forget(struct store *s, const char *relay_id)
{
    return db_command(s, "DELETE FROM relay_stats WHERE relay_id = $1", 1,
                      (const char *const[]){relay_id});
}
