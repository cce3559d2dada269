/*
 * /v1/runtime/secrets (contract §1.4, §5): slots are written sealed with
 * the master key this process was started with; reads show AuthSlotStatus,
 * never a value. No error here quotes a request's state.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "router.h"
#include "sealed.h"
#include "util.h"
#include "validate.h"

#define SECRET_VALUE_MAX_BYTES 16384

static const struct field record_fields[] = {
    {"slot_id", F_ID, 1, URI_ID_MAX_BYTES, NULL, NULL, REQUIRED},
    {"provider", F_STRING, 1, 32, names_slot_providers, NULL, REQUIRED},
    {"mode", F_STRING, 1, 32, names_slot_modes, NULL, REQUIRED},
    {"state", F_OBJECT, 0, 0, NULL, NULL, REQUIRED},
    {"updated_at_ms", F_INT, 0, INT64_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};
static const struct field opaque_state[] = {
    {"value", F_STRING, 1, SECRET_VALUE_MAX_BYTES, NULL, NULL, REQUIRED},
    FIELDS_END,
};
static const char *const api_key_kind[] = {"api_key", NULL};
static const struct field api_key_state[] = {
    {"kind", F_STRING, 1, 16, api_key_kind, NULL, REQUIRED},
    {"api_key", F_STRING, 1, SECRET_VALUE_MAX_BYTES, NULL, NULL, REQUIRED},
    {"organization", F_STRING, 1, 256, NULL, NULL, OPTIONAL},
    {"project", F_STRING, 1, 256, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

/* The mode's state shape, and which providers it takes. Returns 0 or a 400. */
static int
check_record(const json_t *rec, struct http_resp *resp)
{
    const char *provider = json_string_value(json_object_get(rec, "provider"));
    const char *mode = json_string_value(json_object_get(rec, "mode"));
    const json_t *state = json_object_get(rec, "state");
    /* An mcp_oauth slot holds an MCP server's OAuth account. */
    if (!strcmp(mode, "oauth_account") || !strcmp(provider, "mcp_oauth"))
        return http_problem(resp, 400, "secrets", "unsupported_slot_mode",
                            "oauth_account slots (and mcp_oauth, which holds one) are not "
                            "supported by this control plane"),
               -1;
    int generic = !strcmp(provider, "generic");
    if (generic != !strcmp(mode, "opaque_secret"))
        return http_problem(resp, 400, NULL, "bad_request",
                            "provider 'generic' goes with mode 'opaque_secret', every other "
                            "provider with 'api_key'"),
               -1;
    return validate_object(state, generic ? opaque_state : api_key_state, resp);
}

struct seal_ctx {
    const struct sealed_key *key;
    const char *slot_id;
    const char *plain;
    size_t len;
};

static int
seal(void *arg, int64_t version, unsigned char nonce[SEALED_NONCE_BYTES], unsigned char **ct,
     size_t *ct_len)
{
    struct seal_ctx *x = arg;
    return sealed_seal(x->key, x->slot_id, version, x->plain, x->len, nonce, ct, ct_len);
}

static int
secrets_put(struct http_req *req, struct http_resp *resp)
{
    json_t *rec = req->json, *status = NULL;
    if (check_record(rec, resp) != 0)
        return resp->status;
    if (!req->cfg->has_master_key)
        return http_problem(resp, 503, "secrets", "master_key_unavailable",
                            "kheish-fcgi has no auth store master key "
                            "(KHEISH_AUTH_STORE_MASTER_KEY or KHEISH_AUTH_STORE_MASTER_KEY_FILE); "
                            "set the secret with `kheish secrets set --offline` instead");
    char *plain = json_dumps(json_object_get(rec, "state"), JSON_COMPACT | JSON_SORT_KEYS);
    const char *slot_id = json_string_value(json_object_get(rec, "slot_id"));
    struct seal_ctx x = {&req->cfg->master_key, slot_id, plain, plain ? strlen(plain) : 0};
    struct store_slot_write w = {
        slot_id,
        json_string_value(json_object_get(rec, "provider")),
        json_string_value(json_object_get(rec, "mode")),
        req->cfg->master_key.id,
        seal,
        &x,
        req->recorded_by,
    };
    enum store_rc rc = plain ? store_slot_put(req->db, req->actor, &w, &status) : STORE_ERROR;
    if (plain)
        sodium_memzero(plain, x.len);
    free(plain);
    return rc == STORE_OK ? http_json(resp, 200, status) : http_store_problem(resp, rc);
}

static int
secrets_list(struct http_req *req, struct http_resp *resp)
{
    json_t *list;
    enum store_rc rc = store_slot_list(req->db, &list);
    return rc == STORE_OK ? http_json(resp, 200, list) : http_store_problem(resp, rc);
}

/* The {secret_ref} of the path, or a 404 when it cannot name a slot. */
static const char *
slot_param(struct http_req *req, struct http_resp *resp)
{
    const char *id = req->params[0];
    if (!uri_valid_id(id)) {
        http_problem(resp, 404, "secrets", "secret_not_found", "no secret slot with this id");
        return NULL;
    }
    return id;
}

static int
secrets_get(struct http_req *req, struct http_resp *resp)
{
    json_t *status;
    const char *id = slot_param(req, resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_slot_status(req->db, id, &status);
    return rc == STORE_OK ? http_json(resp, 200, status) : http_store_problem(resp, rc);
}

static int
secrets_delete(struct http_req *req, struct http_resp *resp)
{
    const char *id = slot_param(req, resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_slot_delete(req->db, req->actor, id, req->recorded_by);
    return rc == STORE_OK ? http_json(resp, 200, json_pack("{s:b}", "accepted", 1))
                          : http_store_problem(resp, rc);
}

static int
secrets_revoke_slot(struct http_req *req, struct http_resp *resp)
{
    int revoked = 0;
    const char *id = slot_param(req, resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc =
        store_slot_revoke_leases(req->db, req->actor, id, req->recorded_by, &revoked);
    return rc == STORE_OK
               ? http_json(resp, 200,
                           json_pack("{s:s, s:i}", "slot_id", id, "revoked_leases", revoked))
               : http_store_problem(resp, rc);
}

/* A subject id: daemon, or session:, agent:, connector: and an id. */
static int
valid_subject(const char *id)
{
    static const char *const kinds[] = {"session:", "agent:", "connector:"};
    if (!strcmp(id, "daemon"))
        return 1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strncmp(id, kinds[i], strlen(kinds[i])))
            return uri_valid_id(id + strlen(kinds[i]));
    return 0;
}

/* The broker's reads (read) and revocations (revoke, by the request's
 * actor), one of them given: one path id in, one document out. */
static int
broker(struct http_req *req, struct http_resp *resp,
       enum store_rc (*read)(struct store *, const char *, json_t **),
       enum store_rc (*revoke)(struct store *, const char *, const char *, json_t **), int subject)
{
    json_t *out = NULL;
    const char *id = req->params[0];
    if (subject && !valid_subject(id))
        return http_problem(resp, 400, NULL, "bad_request",
                            "a subject id is daemon, or session:, agent: or connector: and an id");
    enum store_rc rc = !subject && !uri_valid_id(id) ? STORE_LEASE_NOT_FOUND
                       : read                        ? read(req->db, id, &out)
                                                     : revoke(req->db, req->actor, id, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

static int
secrets_subject_get(struct http_req *req, struct http_resp *resp)
{
    return broker(req, resp, store_subject_status, NULL, 1);
}

static int
secrets_subject_revoke(struct http_req *req, struct http_resp *resp)
{
    return broker(req, resp, NULL, store_subject_revoke, 1);
}

static int
secrets_lease_get(struct http_req *req, struct http_resp *resp)
{
    return broker(req, resp, store_lease_status, NULL, 0);
}

static int
secrets_lease_revoke(struct http_req *req, struct http_resp *resp)
{
    return broker(req, resp, NULL, store_lease_revoke, 0);
}

const struct http_route secrets_routes[] = {
    {"GET", "/v1/runtime/secrets", AUTH_ACCESS_ADMIN, secrets_list, NULL, NULL, NULL},
    {"POST", "/v1/runtime/secrets", AUTH_ACCESS_ADMIN, secrets_put, NULL, record_fields, NULL},
    {"GET", "/v1/runtime/secrets/*", AUTH_ACCESS_ADMIN, secrets_get, NULL, NULL, NULL},
    {"DELETE", "/v1/runtime/secrets/*", AUTH_ACCESS_ADMIN, secrets_delete, NULL, NULL, NULL},
    {"POST", "/v1/runtime/auth/slots/*/revoke", AUTH_ACCESS_ADMIN, secrets_revoke_slot, NULL, NULL,
     NULL},
    {"GET", "/v1/runtime/auth/subjects/*", AUTH_ACCESS_ADMIN, secrets_subject_get, NULL, NULL,
     NULL},
    {"POST", "/v1/runtime/auth/subjects/*/revoke", AUTH_ACCESS_ADMIN, secrets_subject_revoke, NULL,
     NULL, NULL},
    {"GET", "/v1/runtime/auth/leases/*", AUTH_ACCESS_ADMIN, secrets_lease_get, NULL, NULL, NULL},
    {"POST", "/v1/runtime/auth/leases/*/revoke", AUTH_ACCESS_ADMIN, secrets_lease_revoke, NULL,
     NULL, NULL},
    ROUTES_END,
};
