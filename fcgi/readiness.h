/* readiness: each route's provider readiness (contract §6), for /v1/status
 * and the submission guard. Only with a routes file (config.has_routes). */
#ifndef KHEISH_FCGI_READINESS_H
#define KHEISH_FCGI_READINESS_H

#include <jansson.h>

#include "router.h"

/* The provider_readiness block; adds its health warnings, counts the routes
 * in error and in warning. */
json_t *readiness_block(struct http_req *req, json_t *warnings, int *errors, int *warns);

/* 0 when the route a submission asks for may run; else -1 with a 400
 * routes/unknown_route or 409 routes/route_not_ready problem in resp. */
int readiness_check_submission(struct http_req *req, const json_t *payload, struct http_resp *resp);

#endif
