#include "problem.h"

#include <stdio.h>

#include "util.h"

struct status_name {
    int status;
    const char *title;
    const char *code;
};

static const struct status_name statuses[] = {
    {400, "Bad Request", "bad_request"},
    {401, "Unauthorized", "unauthorized"},
    {403, "Forbidden", "forbidden"},
    {404, "Not Found", "not_found"},
    {405, "Method Not Allowed", "method_not_allowed"},
    {409, "Conflict", "conflict"},
    {413, "Payload Too Large", "payload_too_large"},
    {422, "Unprocessable Entity", "unprocessable_entity"},
    {429, "Too Many Requests", "rate_limited"},
    {500, "Internal Server Error", "internal_error"},
    {503, "Service Unavailable", "service_unavailable"},
};

static const struct status_name *
status_name(int status)
{
    static const struct status_name other = {0, "Daemon Error", "daemon_error"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].status == status)
            return &statuses[i];
    return &other;
}

json_t *
problem_doc(int status, const char *domain, const char *code, const char *detail)
{
    const struct status_name *n = status_name(status);
    if (code == NULL)
        code = n->code;
    char type[128];
    snprintf(type, sizeof type, "urn:kheish:problem:%s", code);
    json_t *doc = json_pack("{s:s, s:s, s:i, s:o, s:s}", "type", type, "title", n->title, "status",
                            status, "detail", util_json_str(detail), "code", code);
    if (domain)
        json_object_set_new(doc, "domain", json_string(domain));
    return doc;
}
