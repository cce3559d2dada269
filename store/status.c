/* The database side of GET /v1/status: run counts, lag, staleness, write probe. */
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

#define STALE_RUN_IDS_MAX "20"

enum store_rc
store_status_counts(struct store *s, const struct store_status_thresholds *t, json_t **runs,
                    int64_t *session_total)
{
    char lag[24], stale[24];
    snprintf(lag, sizeof lag, "%" PRId64, t->queued_run_lag_ms);
    snprintf(stale, sizeof stale, "%" PRId64, t->stale_non_terminal_ms);
    json_t *row;
    enum store_rc rc = db_json(
        s, &row,
        "WITH c AS (SELECT status, count(*) AS n FROM runs GROUP BY status), "
        "live AS (SELECT run_id, session_id, status, submitted_at_ms, updated_at_ms FROM runs "
        "  WHERE status IN ('queued', 'running', 'waiting_for_approval', "
        "  'waiting_for_user_question')), "
        "oq AS (SELECT run_id, submitted_at_ms FROM live WHERE status = 'queued' "
        "  ORDER BY submitted_at_ms, run_id LIMIT 1), "
        "onl AS (SELECT run_id, submitted_at_ms FROM live ORDER BY submitted_at_ms, run_id "
        "  LIMIT 1), "
        "idle AS (SELECT run_id, updated_at_ms FROM live ORDER BY updated_at_ms, run_id LIMIT 1), "
        "ow AS (SELECT run_id, updated_at_ms FROM live WHERE status IN ('waiting_for_approval', "
        "  'waiting_for_user_question') ORDER BY updated_at_ms, run_id LIMIT 1), "
        "st AS (SELECT run_id, updated_at_ms FROM live WHERE kheish_now_ms() - updated_at_ms > "
        "  $2::bigint) "
        "SELECT jsonb_build_array(jsonb_build_object("
        "'total', (SELECT coalesce(sum(n), 0) FROM c), "
        "'queued', coalesce((SELECT n FROM c WHERE status = 'queued'), 0), "
        "'running', coalesce((SELECT n FROM c WHERE status = 'running'), 0), "
        "'waiting_for_approval', coalesce((SELECT n FROM c WHERE status = "
        "  'waiting_for_approval'), 0), "
        "'waiting_for_user_question', coalesce((SELECT n FROM c WHERE status = "
        "  'waiting_for_user_question'), 0), "
        "'completed', coalesce((SELECT n FROM c WHERE status = 'completed'), 0), "
        "'failed', coalesce((SELECT n FROM c WHERE status = 'failed'), 0), "
        "'interrupted', coalesce((SELECT n FROM c WHERE status = 'interrupted'), 0), "
        "'cancelled', coalesce((SELECT n FROM c WHERE status = 'cancelled'), 0), "
        "'pending_approval_count', (SELECT count(*) FROM approvals WHERE status = 'pending'), "
        "'pending_question_count', 0, "
        "'oldest_waiting_run_id', (SELECT run_id FROM ow), "
        "'oldest_waiting_run_age_ms', (SELECT kheish_now_ms() - updated_at_ms FROM ow), "
        "'max_session_queue_depth', coalesce((SELECT max(k) FROM (SELECT count(*) AS k FROM live "
        "  WHERE status = 'queued' GROUP BY session_id) q), 0), "
        "'oldest_queued_run_id', (SELECT run_id FROM oq), "
        "'oldest_queued_run_age_ms', (SELECT kheish_now_ms() - submitted_at_ms FROM oq), "
        "'queued_run_lag_threshold_ms', $1::bigint, "
        "'oldest_non_terminal_run_id', (SELECT run_id FROM onl), "
        "'oldest_non_terminal_run_age_ms', (SELECT kheish_now_ms() - submitted_at_ms FROM onl), "
        "'oldest_idle_non_terminal_run_id', (SELECT run_id FROM idle), "
        "'oldest_non_terminal_run_idle_ms', (SELECT kheish_now_ms() - updated_at_ms FROM idle), "
        "'stale_non_terminal_run_threshold_ms', $2::bigint, "
        "'stale_non_terminal_run_count', (SELECT count(*) FROM st), "
        "'stale_non_terminal_run_ids', coalesce((SELECT jsonb_agg(run_id) FROM (SELECT run_id "
        "  FROM st ORDER BY updated_at_ms, run_id LIMIT " STALE_RUN_IDS_MAX ") x), '[]'::jsonb)), "
        "(SELECT count(*) FROM sessions))",
        2, (const char *const[]){lag, stale});
    if (rc != STORE_OK)
        return rc;
    *runs = json_incref(json_array_get(row, 0));
    *session_total = json_integer_value(json_array_get(row, 1));
    json_decref(row);
    return STORE_OK;
}

enum store_rc
store_write_probe(struct store *s, const char *who)
{
    return db_command(s,
                      "UPDATE storage_probe SET checked_at_ms = kheish_now_ms(), checked_by = $1 "
                      "WHERE id = 1",
                      1, (const char *const[]){who});
}

enum store_rc
store_events_status(struct store *s, int64_t relay_stale_ms, json_t **block)
{
    char stale[24];
    snprintf(stale, sizeof stale, "%lld", (long long)relay_stale_ms);
    return db_json(
        s, block,
        /* O(1): ids are dense (sql/migrations/004), so the retained events are the
         * ids between the prune mark and the newest. */
        "WITH w AS (SELECT (SELECT min(id) FROM events) AS oldest, i.last_id AS newest, "
        "CASE WHEN i.last_id > p.pruned_through THEN i.last_id - p.pruned_through ELSE 0 END "
        "AS n, p.* FROM event_ids i, event_retention p), "
        "r AS (SELECT * FROM relay_stats WHERE kheish_now_ms() - updated_at_ms <= $1::bigint) "
        "SELECT jsonb_build_object("
        "'history_capacity', NULL, 'retained_event_count', w.n, "
        "'oldest_event_id', w.oldest::text, 'newest_event_id', nullif(w.newest, 0)::text, "
        "'next_event_id', (w.newest + 1)::text, 'tail_event_id_cursor', w.newest::text, "
        "'replay_buffer_utilization_percent', 0, 'evicted_event_count', w.pruned_total, "
        "'subscriber_count', (SELECT coalesce(sum(subscribers), 0) FROM r), "
        "'replay_gap_count', (SELECT coalesce(sum(gaps_total), 0) FROM r), "
        "'stream_lagged_event_count', (SELECT coalesce(sum(lagged_total), 0) FROM r), "
        "'pruned_through_event_id', w.pruned_through::text, "
        "'scope_eviction_floor_id', '0', 'evicted_session_scope_count', w.session_scopes, "
        "'evicted_run_scope_count', w.run_scopes, "
        "'relays', coalesce((SELECT jsonb_agg(jsonb_build_object('relay_id', relay_id, "
        "  'subscribers', subscribers, 'replaying', replaying, 'newest_event_id', "
        "  newest_event_id::text, 'lagged_total', lagged_total, 'gaps_total', gaps_total, "
        "  'started_at_ms', started_at_ms, 'updated_at_ms', updated_at_ms) ORDER BY relay_id) "
        "  FROM r), '[]'::jsonb)) FROM w",
        1, (const char *const[]){stale});
}
