/* `kheish status`: the operator snapshot (GET /v1/status). */
#include <stdio.h>

#include "cmd.h"
#include "views.h"

/* Scripts rely on the exit code telling a live daemon from something else
 * answering on the port, so a body without a boolean "ready" is exit 8. */
int
cmd_status_fetch(const struct cli *c, json_t **doc)
{
    struct client_url url;
    client_url_path(&url, "/v1/status");
    int rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, doc, NULL);
    if (rc == EXIT_OK && !json_is_boolean(json_object_get(*doc, "ready"))) {
        fprintf(stderr, "kheish: failed to decode daemon status response\n");
        json_decref(*doc);
        *doc = NULL;
        rc = EXIT_SCHEMA;
    }
    return rc;
}

int
cmd_status(const struct cli *c, int argc, char **argv)
{
    json_t *doc;
    if (args_parse(argc, argv, NULL, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    int rc = cmd_status_fetch(c, &doc);
    if (rc == EXIT_OK)
        output_print(c, doc, &view_status);
    json_decref(doc);
    return rc;
}
