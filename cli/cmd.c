#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_exact.h"

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
cmd_get(const struct cli *c, int argc, char **argv, const char *path,
        const struct output_view *view)
{
    struct client_url url;
    if (args_parse(argc, argv, NULL, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    client_url_path(&url, path);
    return cmd_show(c, &(struct client_req){"GET", &url, NULL, NULL}, view);
}

int
cmd_json_input(const char *json, const char *file, int from_stdin, json_t **out)
{
    char *text = NULL;
    size_t len;
    json_error_t err;
    *out = NULL;
    if ((json != NULL) + (file != NULL) + (from_stdin != 0) != 1) {
        fprintf(stderr, "kheish: give the document once: --json J, --file F or --stdin\n");
        return ARGS_USAGE;
    }
    if (!json && args_read_file(file ? file : "-", CMD_JSON_MAX_BYTES, &text, &len) != 0)
        return EXIT_BAD_REQUEST;
    *out = json_loads(json ? json : text, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (*out == NULL) {
        fprintf(stderr, "kheish: the document is not JSON: %s (line %d)\n", err.text, err.line);
        return ARGS_USAGE;
    }
    return 0;
}

int
cmd_json_object(const char *name, const char *json, const char *file, json_t **out)
{
    char *text = NULL;
    size_t len;
    json_error_t err = {.text = ""};
    struct json_exact_err inexact = {NULL, 0};
    *out = NULL;
    if (json && file) {
        fprintf(stderr, "kheish: --%s-json and --%s-file cannot be used together\n", name, name);
        return ARGS_USAGE;
    }
    if (file && args_read_file(file, CMD_JSON_MAX_BYTES, &text, &len) != 0)
        return EXIT_BAD_REQUEST;
    const char *doc = json ? json : text, *how = json ? "json" : "file";
    int rc = 0;
    /* Checked before jansson reads it: jansson would turn 1e-400 into 0 and
     * send that, where the API refuses the number the user wrote. */
    if (doc && json_exact_check(doc, strlen(doc), &inexact) != 0) {
        fprintf(stderr, "kheish: --%s-%s: %s at byte %zu\n", name, how, inexact.reason,
                inexact.offset);
        rc = ARGS_USAGE;
    } else if (doc &&
               (*out = json_loads(doc, JSON_REJECT_DUPLICATES, &err), !json_is_object(*out))) {
        /* (json_is_object is a macro that names its argument twice: the
         * document is read before it looks.) */
        fprintf(stderr, "kheish: --%s-%s is not a JSON object%s%s\n", name, how, *out ? "" : ": ",
                *out ? "" : err.text);
        json_decref(*out);
        *out = NULL;
        rc = ARGS_USAGE;
    }
    free(text);
    return rc;
}

int
cmd_set_document(const struct cli *c, int argc, char **argv, const char *path, const char *key,
                 const struct output_view *view)
{
    const char *json = NULL, *file = NULL;
    int from_stdin = 0;
    int64_t expected = ARGS_UNSET;
    json_t *doc;
    struct client_url url;
    const struct args_opt opts[] = {
        {.name = "json", .str = &json},
        {.name = "file", .str = &file},
        {.name = "stdin", .flag = &from_stdin},
        {.name = "expected-revision", .num = &expected, .min = 1, .max = INT64_MAX},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    int rc = cmd_json_input(json, file, from_stdin, &doc);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:o}", key, doc);
    cmd_body_int(body, "expected_revision", expected);
    client_url_path(&url, path);
    rc = cmd_show(c, &(struct client_req){"POST", &url, body, NULL}, view);
    json_decref(body);
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
