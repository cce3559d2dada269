/* router: method + path to handler; 404 route_not_found and 405 otherwise. */
#ifndef KHEISH_FCGI_ROUTER_H
#define KHEISH_FCGI_ROUTER_H

#include "http.h"

typedef int (*handler_fn)(struct http_req *req, struct http_resp *resp);

/* Finds the handler for req->method and req->path, filling req->params with
 * the path's '*' segments, and runs it; or sets the 404/405 problem. */
int router_dispatch(struct http_req *req, struct http_resp *resp);

/* Handlers, one file per resource group. */
int probes_healthz(struct http_req *req, struct http_resp *resp);
int probes_readyz(struct http_req *req, struct http_resp *resp);
int status_get(struct http_req *req, struct http_resp *resp);
int status_capabilities(struct http_req *req, struct http_resp *resp);
int sessions_create(struct http_req *req, struct http_resp *resp);
int sessions_list(struct http_req *req, struct http_resp *resp);
int sessions_get(struct http_req *req, struct http_resp *resp);
int sessions_events(struct http_req *req, struct http_resp *resp);
int sessions_interrupt(struct http_req *req, struct http_resp *resp);
int sessions_end(struct http_req *req, struct http_resp *resp);
int runs_submit(struct http_req *req, struct http_resp *resp);
int sessions_input(struct http_req *req, struct http_resp *resp);
int runs_list(struct http_req *req, struct http_resp *resp);
int runs_get(struct http_req *req, struct http_resp *resp);
int runs_events(struct http_req *req, struct http_resp *resp);
int runs_cancel(struct http_req *req, struct http_resp *resp);
int runtime_get(struct http_req *req, struct http_resp *resp);
int runtime_permission_mode(struct http_req *req, struct http_resp *resp);
int runtime_debug_level(struct http_req *req, struct http_resp *resp);
int runtime_revisions(struct http_req *req, struct http_resp *resp);
int runtime_rollback(struct http_req *req, struct http_resp *resp);
/* Appends a health warning {severity, code, message, related_id?} (status.c). */
void status_warn(json_t *warnings, const char *severity, const char *code, const char *message,
                 const json_t *related_id);

int secrets_list(struct http_req *req, struct http_resp *resp);
int secrets_put(struct http_req *req, struct http_resp *resp);
int secrets_get(struct http_req *req, struct http_resp *resp);
int secrets_delete(struct http_req *req, struct http_resp *resp);
int secrets_revoke_slot(struct http_req *req, struct http_resp *resp);
int auth_subject_get(struct http_req *req, struct http_resp *resp);
int auth_subject_revoke(struct http_req *req, struct http_resp *resp);
int auth_lease_get(struct http_req *req, struct http_resp *resp);
int auth_lease_revoke(struct http_req *req, struct http_resp *resp);

#endif
