/*
 * Permission audits (sql/migrations/017, sql/functions/permissions.sql):
 * what the API lists. The runner appends them (kheish_permission_audit_append).
 */
#include <stdio.h>

#include "internal.h"

enum store_rc
store_permission_audits(struct store *s, const char *session_id, int limit, json_t **out)
{
    json_t *audits;
    char lim[16];
    *out = NULL;
    enum store_rc rc = store_session_exists(s, session_id);
    if (rc != STORE_OK)
        return rc;
    snprintf(lim, sizeof lim, "%d", limit);
    rc = db_json_rows(s, &audits,
                      "SELECT kheish_permission_audit_record(t) FROM (SELECT * FROM "
                      "permission_audits WHERE session_id = $1 ORDER BY id DESC LIMIT $2::int) t "
                      "ORDER BY t.id",
                      2, (const char *const[]){session_id, lim});
    if (rc == STORE_OK)
        *out = json_pack("{s:s, s:o}", "session_id", session_id, "audits", audits);
    return rc;
}
