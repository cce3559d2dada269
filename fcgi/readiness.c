/*
 * Provider readiness (contract §6): each route's state from where its
 * credential comes from, and for an auth_ref from the slot's status. Shown
 * in /v1/status; a submission to a route in error is refused with
 * routes/route_not_ready and persists nothing.
 */
#include <string.h>

#include "readiness.h"

static void
state(json_t *e, const char *st, const char *code, const char *message, const char *action)
{
    json_object_set_new(e, "state", json_string(st));
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(message));
    if (action)
        json_object_set_new(e, "action", json_string(action));
}

/* Fills the readiness fields of one route's inventory entry. */
static void
route_state(struct store *db, const struct route *rt, json_t *e)
{
    char msg[400];
    json_t *slot = NULL;
    if (rt->auth_ref == NULL) {
        state(e, "ok", "inline_credentials_configured",
              "the route's key comes from the routes file or the runner's environment",
              "store the key in a secret slot and point auth_ref at it");
        return;
    }
    enum store_rc rc = store_slot_status(db, rt->auth_ref, &slot);
    const char *provider = json_string_value(json_object_get(slot, "provider"));
    if (rc == STORE_SECRET_NOT_FOUND) {
        snprintf(msg, sizeof msg, "auth_ref slot '%s' does not exist", rt->auth_ref);
        state(e, "error", "route_auth_ref_missing", msg,
              "kheish secrets set <slot> --provider ...");
    } else if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "the status of slot '%s' cannot be read: %s", rt->auth_ref,
                 store_strerror(rc));
        state(e, "error", "route_auth_status_error", msg, NULL);
    } else if (strcmp(provider, route_drivers[rt->driver].slot_provider)) {
        snprintf(msg, sizeof msg, "slot '%s' holds a %s credential, the %s driver needs %s",
                 rt->auth_ref, provider, route_drivers[rt->driver].name,
                 route_drivers[rt->driver].slot_provider);
        state(e, "error", "route_auth_provider_mismatch", msg, NULL);
    } else {
        state(e, "ok", "route_auth_ready", "the route's secret slot is ready", NULL);
        json_object_set(e, "auth_mode", json_object_get(slot, "mode"));
        json_object_set(e, "auth_summary", json_object_get(slot, "summary"));
        json_object_set(e, "auth_updated_at_ms", json_object_get(slot, "updated_at_ms"));
    }
    json_decref(slot);
}

json_t *
readiness_block(struct http_req *req, json_t *warnings, int *errors, int *warns)
{
    const struct routes *rs = &req->cfg->routes;
    json_t *inv = routes_inventory(rs), *list = json_object_get(inv, "routes");
    int ready = 0, active_ready = 0, inline_creds = 0;
    size_t i;
    json_t *e;
    *errors = *warns = 0;
    json_array_foreach(list, i, e)
    {
        const struct route *rt = &rs->v[i];
        int active = !strcmp(rt->id, rs->default_route);
        route_state(req->db, rt, e);
        const char *st = json_string_value(json_object_get(e, "state"));
        json_object_set_new(e, "active", json_boolean(active));
        ready += !strcmp(st, "ok");
        *errors += !strcmp(st, "error");
        *warns += !strcmp(st, "warning");
        active_ready |= active && strcmp(st, "error");
        inline_creds |= rt->auth_ref == NULL;
    }
    if (*errors)
        status_warn(warnings, "error", "provider_readiness_error",
                    "a route cannot run: see provider_readiness.routes", NULL);
    if (*warns)
        status_warn(warnings, "warning", "provider_readiness_warning",
                    "a route needs attention: see provider_readiness.routes", NULL);
    if (inline_creds)
        status_warn(
            warnings, "info", "provider_inline_credentials",
            "a route takes its key from the routes file or the environment, not a secret slot",
            NULL);
    /* Which file the routes came from, and its digest then: `doctor routes`
     * compares it with the file as it is now (route_file_drift). */
    json_t *block = json_pack(
        "{s:i, s:i, s:i, s:i, s:b, s:s, s:{s:s, s:O}, s:O}", "route_count", (int)rs->n,
        "ready_route_count", ready, "warning_route_count", *warns, "error_route_count", *errors,
        "active_route_ready", active_ready, "default_route", rs->default_route, "routes_file",
        "path", req->cfg->routes_file, "sha256", json_object_get(inv, "sha256"), "routes", list);
    json_decref(inv);
    return block;
}

int
readiness_check_submission(struct http_req *req, const json_t *payload, struct http_resp *resp)
{
    char why[300];
    const char *model;
    if (!req->cfg->has_routes)
        return 0;
    const struct route *rt = routes_select(
        &req->cfg->routes, json_string_value(json_object_get(payload, "provider")),
        json_string_value(json_object_get(json_object_get(payload, "generation"), "model")), &model,
        why, sizeof why);
    if (rt == NULL)
        return http_problem(resp, 400, "routes", "unknown_route", "%s", why), -1;
    json_t *e = json_object();
    route_state(req->db, rt, e);
    int refused = !strcmp(json_string_value(json_object_get(e, "state")), "error");
    if (refused)
        http_problem(resp, 409, "routes", "route_not_ready", "route %s is not ready: %s: %s",
                     rt->id, json_string_value(json_object_get(e, "code")),
                     json_string_value(json_object_get(e, "message")));
    json_decref(e);
    return refused ? -1 : 0;
}
