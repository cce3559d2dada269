/*
 * Approvals (sql/functions/approvals.sql): an operator's batch of
 * resolutions, and their expiry by the maintenance pass.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_approvals_resolve(struct store *s, const char *actor, const struct store_resolution *req,
                        json_t **view, char *session_id, size_t session_size)
{
    json_t *res = NULL;
    const char *result;
    char *resolutions = db_json_param(req->resolutions);
    enum store_rc rc =
        resolutions
            ? db_call_result(s, &res, &result,
                             "SELECT kheish_approvals_resolve($1, $2, $3::jsonb, $4, $5, "
                             "$6::jsonb)",
                             6,
                             (const char *const[]){req->session_id, req->run_id, resolutions,
                                                   req->idempotency_key, req->fingerprint, actor})
            : STORE_ERROR;
    free(resolutions);
    *view = rc == STORE_OK ? json_incref(json_object_get(res, "view")) : NULL;
    const char *sid = json_string_value(json_object_get(res, "session_id"));
    snprintf(session_id, session_size, "%s", sid ? sid : "");
    json_decref(res);
    return rc;
}

#define EXPIRE_MAX "100" /* runs one pass settles */

enum store_rc
store_approvals_expire(struct store *s, json_t **out)
{
    return db_call(s, out, "SELECT kheish_approvals_expire($1::int)", 1,
                   (const char *const[]){EXPIRE_MAX});
}
