/* Liveness and readiness, outside /v1 and without auth. */
#include "router.h"

static int
probes_healthz(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    resp->text = "ok\n";
    return resp->status = 200;
}

/* Ready when not draining and the database answers. */
static int
probes_readyz(struct http_req *req, struct http_resp *resp)
{
    if (req->draining)
        return http_problem(resp, 503, "readiness", "daemon_draining",
                            "the control plane is draining");
    enum store_rc rc = store_ping(req->db);
    if (rc != STORE_OK)
        return http_problem(resp, 503, "readiness", "database_unavailable",
                            "the database is not reachable");
    resp->text = "ready\n";
    return resp->status = 200;
}

const struct http_route probes_routes[] = {
    {"GET", "/healthz", AUTH_ACCESS_NONE, probes_healthz, NULL, NULL, NULL},
    {"GET", "/readyz", AUTH_ACCESS_NONE, probes_readyz, NULL, NULL, NULL},
    ROUTES_END,
};
