#include "cmd.h"

#include <stdio.h>

int
cmd_show(const struct cli *c, const struct client_req *req, const struct output_view *view)
{
    json_t *doc;
    int rc = client_request(c, req, &doc, NULL);
    if (rc == EXIT_OK)
        output_print(c, doc, view);
    json_decref(doc);
    return rc;
}

int
cmd_id_verb(const struct cli *c, int argc, char **argv, const char *method, const char *path_fmt,
            const struct output_view *view)
{
    const char *id;
    struct client_url url;
    if (args_parse(argc, argv, NULL, &id, 1, 1) != 0)
        return ARGS_USAGE;
    client_url_path(&url, path_fmt, id);
    return cmd_show(c, &(struct client_req){method, &url, NULL, NULL}, view);
}

int
cmd_body_str(json_t *body, const char *key, const char *value)
{
    if (value == NULL)
        return 0;
    if (json_object_set_new(body, key, json_string(value)) != 0) {
        fprintf(stderr, "kheish: the value for %s is not valid UTF-8\n", key);
        return ARGS_USAGE;
    }
    return 0;
}

void
cmd_body_int(json_t *body, const char *key, int64_t n)
{
    if (n != ARGS_UNSET)
        json_object_set_new(body, key, json_integer(n));
}

void
cmd_page_query(struct client_url *u, int page, int64_t limit, const char *cursor)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)limit);
    client_url_query(u, "page", page ? "true" : NULL);
    client_url_query(u, "limit", limit != ARGS_UNSET ? n : NULL);
    client_url_query(u, "cursor", cursor);
}
