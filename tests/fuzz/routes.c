/*
 * fuzz-routes: the bytes of a routes file through routes_parse and
 * routes_inventory (common/routes.c), unterminated as they come. An accepted
 * file has 1..ROUTES_MAX_ROUTES routes, each with a unique valid id, a known
 * driver, a model, printable strings, at most one credential source, and
 * audio or transcription only where the driver has them; the default names
 * one of them; the inventory and the runtime view's routes list them all. A refused file gets one
 * message, "fuzz.toml:LINE: what", LINE within the file, and an empty model.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "routes.h"
#include "uri.h"
#include "util.h"

#define ALL_CAPS  0x3fu
#define CAP_AUDIO (ROUTE_CAP_AUDIO_GENERATION | ROUTE_CAP_TRANSCRIPTION)

static int
ok_string(const char *s)
{
    return s == NULL || (*s && util_utf8_printable(s, strlen(s)));
}

static void
check_route(const struct routes *rs, const struct route *r)
{
    FUZZ_CHECK(r->id && strlen(r->id) <= ROUTES_ID_MAX_BYTES && uri_valid_id(r->id));
    FUZZ_CHECK(routes_find(rs, r->id) == r);
    FUZZ_CHECK(r->driver <= ROUTE_DRIVER_XAI && r->line >= 1);
    FUZZ_CHECK(r->default_model && ok_string(r->default_model));
    const char *strings[] = {r->auth_ref, r->api_key,      r->api_key_env,
                             r->base_url, r->organization, r->organization_env,
                             r->project,  r->project_env,  r->anthropic_version};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        FUZZ_CHECK(ok_string(strings[i]));
    FUZZ_CHECK(!!r->auth_ref + !!r->api_key + !!r->api_key_env <= 1);
    FUZZ_CHECK(!(r->organization && r->organization_env) && !(r->project && r->project_env));
    FUZZ_CHECK(r->base_url == NULL || !strncasecmp(r->base_url, "http", 4));
    FUZZ_CHECK(r->nbeta <= ROUTES_ARRAY_MAX_ITEMS && (r->nbeta == 0) == (r->beta_headers == NULL));
    for (size_t i = 0; i < r->nbeta; i++)
        FUZZ_CHECK(ok_string(r->beta_headers[i]));
    FUZZ_CHECK((r->caps & ~ALL_CAPS) == 0);
    if (r->driver != ROUTE_DRIVER_OPENAI && r->driver != ROUTE_DRIVER_OPENROUTER)
        FUZZ_CHECK((r->caps & CAP_AUDIO) == 0);
}

static void
check_inventory(const struct routes *rs)
{
    json_t *inv = routes_inventory(rs);
    FUZZ_CHECK(inv != NULL);
    json_t *list = json_object_get(inv, "routes");
    FUZZ_CHECK(json_array_size(list) == rs->n);
    FUZZ_CHECK(json_integer_value(json_object_get(inv, "route_count")) == (json_int_t)rs->n);
    FUZZ_CHECK(
        !strcmp(json_string_value(json_object_get(inv, "default_route")), rs->default_route));
    for (size_t i = 0; i < rs->n; i++) {
        json_t *r = json_array_get(list, i);
        FUZZ_CHECK(!strcmp(json_string_value(json_object_get(r, "route_id")), rs->v[i].id));
        FUZZ_CHECK(json_object_size(json_object_get(r, "capabilities")) == 7);
    }
    json_decref(inv);
    /* The runtime view's part: the default route's object among them all. */
    json_t *rt = routes_runtime(rs);
    FUZZ_CHECK(json_array_size(json_object_get(rt, "routes")) == rs->n);
    FUZZ_CHECK(!strcmp(
        json_string_value(json_object_get(json_object_get(rt, "default_route"), "route_id")),
        rs->default_route));
    json_decref(rt);
}

/* "fuzz.toml:LINE: message" with 1 <= LINE <= the lines of the input. */
static void
check_error(const char *err, const uint8_t *data, size_t size)
{
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    int line = 0, used = 0;
    FUZZ_CHECK(sscanf(err, "fuzz.toml:%d: %n", &line, &used) == 1 && used > 0);
    FUZZ_CHECK(line >= 1 && (size_t)line <= lines);
    FUZZ_CHECK(err[used] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct routes rs;
    char err[256] = "";
    if (routes_parse((const char *)data, size, "fuzz.toml", &rs, err, sizeof err) != 0) {
        check_error(err, data, size);
        FUZZ_CHECK(rs.n == 0 && rs.v == NULL && rs.default_route == NULL);
        return 0;
    }
    FUZZ_CHECK(rs.n >= 1 && rs.n <= ROUTES_MAX_ROUTES);
    FUZZ_CHECK(rs.default_route && routes_find(&rs, rs.default_route) != NULL);
    for (size_t i = 0; i < rs.n; i++)
        check_route(&rs, &rs.v[i]);
    check_inventory(&rs);
    routes_free(&rs);
    return 0;
}
