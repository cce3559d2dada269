/*
 * The tail reader of the event log. Events are appended by the database
 * functions that make them (kheish_append_events, sql/functions/events.sql,
 * holds the event-id rule of ARCHITECTURE.md).
 */
#include <inttypes.h>

#include "internal.h"

enum store_rc
store_events_after(struct store *s, int64_t cursor, int limit, json_t **items)
{
    char c[24], l[16];
    snprintf(c, sizeof c, "%" PRId64, cursor);
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {c, l};
    return db_json_rows(s, items,
                        "SELECT jsonb_build_object('id', id::text, 'name', name, "
                        "'session_id', session_id, 'run_id', run_id, 'data', data) "
                        "FROM events WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                        2, params);
}
