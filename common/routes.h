/*
 * routes: the routes file (contract §6) and the route model built from it.
 *
 * The file is TOML, read by a small strict parser for exactly the subset the
 * format needs (Debian packages no C TOML library):
 *
 *     version = 1                      # required, only 1
 *     default_route = "main"           # required when there are several routes
 *
 *     [routes.main]                    # or [routes."main"]
 *     driver = "anthropic"             # anthropic | google | openai | openrouter | xai
 *     default_model = "claude-sonnet-4-5"
 *     auth_ref = "anthropic-main"      # or api_key, or api_key_env: at most one
 *     anthropic_beta_headers = ["prompt-caching-2024-07-31"]
 *     native_web_search = false        # capability overrides
 *
 * TOML accepted: `#` comments, blank lines, `key = value` with bare or quoted
 * keys, basic strings with TOML's escapes, literal strings, decimal integers,
 * booleans, single-line arrays of strings (trailing comma allowed), table
 * headers, LF or CRLF line ends, a leading UTF-8 byte-order mark. Multi-line
 * strings and arrays, inline tables, dotted keys, arrays of tables, floats,
 * dates and non-decimal integers are refused as "unsupported TOML".
 *
 * Strict: unknown keys and tables, duplicate keys and tables, bad ids, bad
 * URLs, wrong types and every other mistake are errors. A route id is 1..64
 * bytes of printable ASCII [A-Za-z0-9._:@-] starting with a letter, a digit
 * or '_' (so never "." or "..", never taken for a flag, never with '/' or
 * whitespace); an auth_ref slot id is the same up to 128 bytes (uri_valid_id).
 * Every string value is non-empty and holds no control character, escaped or
 * not; values sent as HTTP header values (api_key, organization, project,
 * anthropic_version, beta headers) are visible ASCII; *_env values are
 * environment variable names.
 *
 * Errors read "<name>:<line>: what is wrong" (the first error only; whole-file
 * errors such as a missing `version` say line 1) and never quote a value, so
 * an `api_key` cannot leak through one.
 */
#ifndef KHEISH_ROUTES_H
#define KHEISH_ROUTES_H

#include <jansson.h>
#include <stddef.h>

#define ROUTES_FILE_MAX_BYTES   (1024 * 1024)
#define ROUTES_LINE_MAX_BYTES   8192 /* without its line end */
#define ROUTES_STRING_MAX_BYTES 4096 /* a string value, decoded */
#define ROUTES_MAX_ROUTES       64
#define ROUTES_ARRAY_MAX_ITEMS  32
#define ROUTES_ID_MAX_BYTES     64 /* a route id, and any key */

/* Capabilities, named in the file and the inventory as their override keys. */
/* The version of the capability flags below (contract: matrix_version). */
#define ROUTE_CAPABILITY_MATRIX_VERSION 2
#define ROUTE_CAP_MULTIMODAL_INPUT      (1u << 0)
#define ROUTE_CAP_NATIVE_WEB_SEARCH     (1u << 1)
#define ROUTE_CAP_IMAGE_GENERATION      (1u << 2)
#define ROUTE_CAP_IMAGE_EDIT            (1u << 3)
#define ROUTE_CAP_AUDIO_GENERATION      (1u << 4)
#define ROUTE_CAP_TRANSCRIPTION         (1u << 5)
#define ROUTE_CAPS_IMAGE                (ROUTE_CAP_IMAGE_GENERATION | ROUTE_CAP_IMAGE_EDIT)
#define ROUTE_CAPS_AUDIO                (ROUTE_CAP_AUDIO_GENERATION | ROUTE_CAP_TRANSCRIPTION)

/* The wire formats the runner speaks (runner/provider.c) and the ways a
 * credential is sent. */
enum route_wire {
    ROUTE_WIRE_NONE,      /* not served by this build: calls fail with a clear error */
    ROUTE_WIRE_RESPONSES, /* POST {base}/responses (OpenAI Responses API) */
    ROUTE_WIRE_CHAT,      /* POST {base}/chat/completions (OpenAI-compatible chat) */
    ROUTE_WIRE_MESSAGES,  /* POST {base}/messages (Anthropic Messages API) */
};
enum route_auth {
    ROUTE_AUTH_BEARER,    /* Authorization: Bearer */
    ROUTE_AUTH_OPENAI,    /* Bearer, and OpenAI-Organization / OpenAI-Project */
    ROUTE_AUTH_ANTHROPIC, /* x-api-key, anthropic-version, anthropic-beta */
};

/* The provider drivers, in one table: X(ID, name, wire, auth, default base
 * URL, capabilities, slot provider). The slot provider is the provider an
 * auth_ref's secret slot must have (names.h). Adding a driver is a line
 * here, and its wire format in runner/provider.c if it is a new one. */
#define ROUTE_DRIVERS(X)                                                                           \
    X(ANTHROPIC, "anthropic", ROUTE_WIRE_MESSAGES, ROUTE_AUTH_ANTHROPIC,                           \
      "https://api.anthropic.com/v1", ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAP_NATIVE_WEB_SEARCH,    \
      "anthropic")                                                                                 \
    X(GOOGLE, "google", ROUTE_WIRE_NONE, ROUTE_AUTH_BEARER, NULL,                                  \
      ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAPS_IMAGE, "google")                                     \
    X(OPENAI, "openai", ROUTE_WIRE_RESPONSES, ROUTE_AUTH_OPENAI, "https://api.openai.com/v1",      \
      ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAP_NATIVE_WEB_SEARCH | ROUTE_CAPS_IMAGE |                \
          ROUTE_CAPS_AUDIO,                                                                        \
      "open_ai")                                                                                   \
    X(OPENROUTER, "openrouter", ROUTE_WIRE_CHAT, ROUTE_AUTH_BEARER,                                \
      "https://openrouter.ai/api/v1",                                                              \
      ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAPS_IMAGE | ROUTE_CAPS_AUDIO, "open_router")             \
    X(XAI, "xai", ROUTE_WIRE_CHAT, ROUTE_AUTH_BEARER, "https://api.x.ai/v1",                       \
      ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAP_NATIVE_WEB_SEARCH | ROUTE_CAPS_IMAGE, "x_ai")

enum route_driver {
#define ROUTE_DRIVER_ID(id, ...) ROUTE_DRIVER_##id,
    ROUTE_DRIVERS(ROUTE_DRIVER_ID)
#undef ROUTE_DRIVER_ID
        ROUTE_DRIVER_COUNT
};

struct route_driver_info {
    const char *name;
    enum route_wire wire;
    enum route_auth auth;
    const char *default_base_url;
    unsigned caps;
    const char *slot_provider;
};
extern const struct route_driver_info route_drivers[ROUTE_DRIVER_COUNT];
/* The driver called name (its index in route_drivers), or -1. */
int route_driver_named(const char *name);

/* One [routes.<id>] table. Optional strings are NULL when absent. */
struct route {
    char *id;
    enum route_driver driver;
    char *default_model;
    char *auth_ref, *api_key, *api_key_env; /* at most one is set */
    char *base_url;
    char *organization, *organization_env, *project, *project_env;
    char *anthropic_version;
    char **beta_headers; /* anthropic_beta_headers */
    size_t nbeta;
    int model_support_any; /* model_support = "any"; "family" is the default */
    unsigned caps;         /* ROUTE_CAP_*: the driver's defaults and the overrides */
    int line;              /* of the table header */
};

struct routes {
    char *default_route; /* always names one of v[] */
    struct route *v;     /* in file order, 1..ROUTES_MAX_ROUTES */
    size_t n;
    unsigned char sha256[32]; /* of the file's bytes */
};

/* Parses text[0..len) (NUL bytes included, no terminator needed). name is
 * what messages call the file, "routes file" when NULL. Returns 0 with *out
 * filled (free with routes_free), or -1 with a message in err and *out
 * empty. */
int routes_parse(const char *text, size_t len, const char *name, struct routes *out, char *err,
                 size_t errsz);

/* Reads a regular file of at most ROUTES_FILE_MAX_BYTES and parses it, the
 * path naming it in messages. Errors as routes_parse; those of reading read
 * "<path>: reason". */
int routes_load(const char *path, struct routes *out, char *err, size_t errsz);

/* The route with that id, or NULL. */
const struct route *routes_find(const struct routes *r, const char *id);

/* The route and model a run asks for (contract §6's selector): `provider`
 * naming a route, else a `model` of the form <route_id>/<model> whose
 * prefix is a route, else the default route; the model is the selector's
 * or the route's default. NULL, with why, when `provider` names no route. */
const struct route *routes_select(const struct routes *r, const char *provider, const char *model,
                                  const char **model_out, char *why, size_t whysz);

/* What `doctor routes` and the route inventory show: {default_route,
 * route_count, sha256 (hex), routes: [{route_id, provider, model, auth_ref,
 * auth_kind ("auth_ref" | "api_key" | "api_key_env" | "none"),
 * model_support, capabilities: {<name>: bool, ...}}]}. Never a credential
 * value. NULL when out of memory. */
json_t *routes_inventory(const struct routes *r);

/* Frees what routes_parse filled (the api_key is wiped first) and empties
 * *r; safe on an emptied struct. */
/* The routes part of the RuntimeSettingsView (GET /v1/runtime): {default_route
 * (the route object, or null), routes[]}; an empty object for NULL. */
json_t *routes_runtime(const struct routes *r);

void routes_free(struct routes *r);

#endif
