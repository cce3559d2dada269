/*
 * The one event-append function (ARCHITECTURE.md, "Event ids") and the tail
 * reader. The rule itself lives in the database function kheish_append_events
 * (sql/functions/events.sql). A transaction records its append here; store_tx
 * sends it with the COMMIT, so it is always the transaction's last statement.
 */
#include <inttypes.h>

#include "internal.h"

enum store_rc
store_events_append(struct store *s, json_t *stream, json_t *run_events)
{
    if (!s->in_tx || s->append[0])
        return STORE_ERROR; /* once per transaction */
    s->append[0] = db_json_param(stream);
    s->append[1] = db_json_param(run_events);
    return s->append[0] && s->append[1] ? STORE_OK : STORE_ERROR;
}

/* Commits the transaction with its recorded append in one round trip (see
 * db_exec_commit for why). */
enum store_rc
db_append_and_commit(struct store *s)
{
    return db_exec_commit(s, "SELECT kheish_append_events($1::jsonb, $2::jsonb)", 2,
                          (const char *const *)s->append);
}

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

void
db_events_init(struct db_events *e)
{
    e->stream = json_array();
    e->run = json_array();
}

void
db_events_free(struct db_events *e)
{
    json_decref(e->stream);
    json_decref(e->run);
    e->stream = e->run = NULL;
}

void
db_events_stream(struct db_events *e, const char *name, const char *session_id, const char *run_id,
                 json_t *data)
{
    json_object_set_new(data, "type", json_string(name));
    json_array_append_new(e->stream, json_pack("{s:s, s:s?, s:s?, s:o}", "name", name, "session_id",
                                               session_id, "run_id", run_id, "data", data));
}

void
db_events_extend(struct db_events *e, const json_t *stream, const json_t *run)
{
    json_array_extend(e->stream, (json_t *)stream);
    json_array_extend(e->run, (json_t *)run);
}

enum store_rc
db_events_append(struct store *s, struct db_events *e)
{
    enum store_rc rc = store_events_append(s, e->stream, e->run);
    db_events_free(e);
    return rc;
}
