/* The control-plane auth audit ledger (sql/migrations/002_auth_audit.sql): append only. */
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_auth_audit_append(struct store *s, const json_t *record, const char *recorded_by)
{
    char *r = db_json_param(record);
    if (r == NULL)
        return STORE_ERROR;
    enum store_rc rc =
        db_command(s,
                   "INSERT INTO auth_audit (timestamp_ms, event, method, path, reason, origin, "
                   "remote_addr, required_access, recorded_by) "
                   "SELECT (r->>'timestamp_ms')::bigint, r->>'event', r->>'method', r->>'path', "
                   "r->>'reason', r->>'origin', r->>'remote_addr', r->>'required_access', $2 "
                   "FROM (SELECT $1::jsonb AS r) x",
                   2, (const char *const[]){r, recorded_by});
    free(r);
    return rc;
}
