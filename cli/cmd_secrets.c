/*
 * `kheish secrets ...` (contract §5): generate, list, get, set, delete.
 * Online through the API (admin token); with --offline straight to the
 * database: KHEISH_DATABASE_URL, else the embedded cluster of the state root
 * (--state-root, KHEISH_STATE_ROOT), which `set` creates when there is none
 * yet. Offline writes seal with the master key from the environment, else
 * the state root's own (<root>.keys/auth-store-master.key). No value is ever
 * printed, and none goes into an argument list we build.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "sealed.h"
#include "stack.h"
#include "views.h"

#define SECRET_VALUE_MAX_BYTES 16384

/* A provider as the CLI spells it, as the API does, and its slot mode. */
static const struct {
    const char *cli, *api, *mode;
} providers[] = {
    {"generic", "generic", "opaque_secret"},  {"anthropic", "anthropic", "api_key"},
    {"google", "google", "api_key"},          {"openai", "open_ai", "api_key"},
    {"openrouter", "open_router", "api_key"}, {"xai", "x_ai", "api_key"},
};
static const char *const provider_names[] = {"generic",    "anthropic", "google", "openai",
                                             "openrouter", "xai",       NULL};

/* Flags every verb but generate takes. */
struct where {
    int offline;
    const char *state_root;
};
#define WHERE_OPTS(w)                                                                              \
    {.name = "offline", .flag = &(w)->offline},                                                    \
    {                                                                                              \
        .name = "state-root", .str = &(w)->state_root                                              \
    }

/* An offline verb's database, opened for fn and closed after. */
struct offline {
    struct stack st;
    struct store *db;
    int started;
};

static int
offline_open(const struct where *w, int create, struct offline *o)
{
    char url[STACK_URL_MAX];
    memset(o, 0, sizeof *o);
    if (stack_db_open(w->state_root, create, &o->st, url, sizeof url, &o->started) != 0)
        return -1;
    o->db = store_open(url, NULL);
    return o->db ? 0 : -1;
}

static void
offline_close(struct offline *o)
{
    store_close(o->db);
    stack_db_close(&o->st, o->started);
}

/* Prints an offline result like the API's; maps the store's verdict to an
 * exit code. */
static int
offline_result(const struct cli *c, struct offline *o, enum store_rc rc, json_t *doc,
               const struct output_view *view)
{
    if (rc == STORE_OK)
        output_print(c, doc, view);
    else
        fprintf(stderr, "kheish: %s%s%s\n", store_strerror(rc), rc == STORE_ERROR ? ": " : "",
                rc == STORE_ERROR ? store_last_error(o->db) : "");
    json_decref(doc);
    offline_close(o);
    return rc == STORE_OK                 ? EXIT_OK
           : rc == STORE_SECRET_NOT_FOUND ? EXIT_NOT_FOUND
           : rc == STORE_KEY_MISMATCH     ? EXIT_CONFLICT
           : rc == STORE_UNAVAILABLE      ? EXIT_UNREACHABLE
                                          : EXIT_GENERIC;
}

/* An online request (body stolen); when the control plane cannot be
 * reached, says how to do it offline. */
static int
online(const struct cli *c, const char *method, const char *path, const char *id, json_t *body,
       const struct output_view *view)
{
    struct client_url url;
    client_url_path(&url, path, id);
    int rc = cmd_show(c, &(struct client_req){method, &url, body, NULL}, view);
    json_decref(body);
    if (rc == EXIT_UNREACHABLE)
        fprintf(stderr, "kheish: rerun with --offline --state-root DIR to use the database "
                        "directly\n");
    return rc;
}

int
cmd_secrets_generate(const struct cli *c, int argc, char **argv)
{
    unsigned char raw[SEALED_KEY_BYTES];
    char out[sodium_base64_ENCODED_LEN(SEALED_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    (void)c;
    if (args_parse(argc, argv, NULL, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof raw);
    puts(out);
    sodium_memzero(out, sizeof out);
    return EXIT_OK;
}

int
cmd_secrets_list(const struct cli *c, int argc, char **argv)
{
    struct where w = {0};
    const struct args_opt opts[] = {WHERE_OPTS(&w), {0}};
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    if (!w.offline)
        return online(c, "GET", "/v1/runtime/secrets", NULL, NULL, &view_secret_list);
    struct offline o;
    json_t *list = NULL;
    if (offline_open(&w, 0, &o) != 0)
        return EXIT_GENERIC;
    enum store_rc rc = store_slot_list(o.db, &list);
    return offline_result(c, &o, rc, list, &view_secret_list);
}

/* get and delete: `<verb> <ref> [--offline --state-root]`. */
static int
by_ref(const struct cli *c, int argc, char **argv, int del)
{
    struct where w = {0};
    const char *ref;
    const struct args_opt opts[] = {WHERE_OPTS(&w), {0}};
    if (args_parse(argc, argv, opts, &ref, 1, 1) != 0)
        return ARGS_USAGE;
    if (!w.offline)
        return online(c, del ? "DELETE" : "GET", "/v1/runtime/secrets/%s", ref, NULL,
                      del ? &view_accepted : &view_secret);
    struct offline o;
    json_t *doc = NULL;
    if (offline_open(&w, 0, &o) != 0)
        return EXIT_GENERIC;
    enum store_rc rc =
        del ? store_slot_delete(o.db, NULL, ref, "kheish-cli") : store_slot_status(o.db, ref, &doc);
    if (del && rc == STORE_OK)
        doc = json_pack("{s:b}", "accepted", 1);
    return offline_result(c, &o, rc, doc, del ? &view_accepted : &view_secret);
}

int
cmd_secrets_get(const struct cli *c, int argc, char **argv)
{
    return by_ref(c, argc, argv, 0);
}

int
cmd_secrets_delete(const struct cli *c, int argc, char **argv)
{
    return by_ref(c, argc, argv, 1);
}

/* The value of `set`, from exactly one source, into a malloc'd string. */
static char *
read_value(const char *value, const char *from_env, const char *from_file, int from_stdin)
{
    char *out = NULL;
    size_t len = 0;
    if (!!value + !!from_env + !!from_file + !!from_stdin != 1) {
        fprintf(stderr, "kheish: give the value with exactly one of --value, --from-env, "
                        "--from-file, --stdin\n");
        return NULL;
    }
    if (from_env && (value = getenv(from_env)) == NULL) {
        fprintf(stderr, "kheish: the environment variable %s is not set\n", from_env);
        return NULL;
    }
    if (value)
        out = strdup(value);
    else if (args_read_file(from_stdin ? "-" : from_file, SECRET_VALUE_MAX_BYTES, &out, &len) != 0)
        return NULL;
    /* One trailing newline (echo, a file) is not part of the secret. */
    len = out ? strlen(out) : 0;
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    if (out && len == 0) {
        fprintf(stderr, "kheish: the secret value is empty\n");
        free(out);
        return NULL;
    }
    return out;
}

/* The slot state for a provider, as the API takes it. */
static json_t *
slot_state(int generic, const char *value, const char *org, const char *project)
{
    json_t *st = generic ? json_pack("{s:s}", "value", value)
                         : json_pack("{s:s, s:s}", "kind", "api_key", "api_key", value);
    if (st && org)
        json_object_set_new(st, "organization", json_string(org));
    if (st && project)
        json_object_set_new(st, "project", json_string(project));
    return st;
}

struct offline_seal {
    struct sealed_key key;
    const char *slot_id;
    char *plain;
};

static int
seal(void *arg, int64_t version, unsigned char nonce[SEALED_NONCE_BYTES], unsigned char **ct,
     size_t *ct_len)
{
    struct offline_seal *x = arg;
    return sealed_seal(&x->key, x->slot_id, version, x->plain, strlen(x->plain), nonce, ct, ct_len);
}

/* The master key for an offline write: the environment's, else the state
 * root's own. Returns 0 or -1 after printing why. */
static int
offline_key(const struct offline *o, struct sealed_key *key)
{
    char err[256], path[PATH_MAX];
    int rc = sealed_key_from_env(key, err, sizeof err);
    if (rc == 0 && o->st.root[0] && stack_master_key_file(&o->st, path))
        rc = sealed_key_from_file(path, key, err, sizeof err) == 0 ? 1 : -1;
    if (rc == 0)
        snprintf(err, sizeof err,
                 "no master key: set KHEISH_AUTH_STORE_MASTER_KEY or "
                 "KHEISH_AUTH_STORE_MASTER_KEY_FILE");
    if (rc <= 0)
        fprintf(stderr, "kheish: %s\n", err);
    return rc > 0 ? 0 : -1;
}

static int
set_offline(const struct cli *c, const struct where *w, const char *ref, size_t p, json_t *state)
{
    struct offline o;
    struct offline_seal x = {.slot_id = ref};
    json_t *status = NULL;
    if (offline_open(w, 1, &o) != 0)
        return EXIT_GENERIC;
    if (offline_key(&o, &x.key) != 0) {
        offline_close(&o);
        return EXIT_GENERIC;
    }
    x.plain = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    struct store_slot_write sw = {ref, providers[p].api, providers[p].mode, x.key.id, seal,
                                  &x,  "kheish-cli"};
    enum store_rc rc = x.plain ? store_slot_put(o.db, NULL, &sw, &status) : STORE_ERROR;
    if (x.plain)
        sodium_memzero(x.plain, strlen(x.plain));
    free(x.plain);
    sealed_key_wipe(&x.key);
    return offline_result(c, &o, rc, status, &view_secret);
}

int
cmd_secrets_set(const struct cli *c, int argc, char **argv)
{
    struct where w = {0};
    const char *ref, *provider = NULL, *value = NULL, *from_env = NULL, *from_file = NULL;
    const char *org = NULL, *project = NULL;
    int from_stdin = 0;
    const struct args_opt opts[] = {
        WHERE_OPTS(&w),
        {.name = "provider", .str = &provider, .choices = provider_names},
        {.name = "value", .str = &value},
        {.name = "from-env", .str = &from_env},
        {.name = "from-file", .str = &from_file},
        {.name = "stdin", .flag = &from_stdin},
        {.name = "organization", .str = &org},
        {.name = "project", .str = &project},
        {0},
    };
    if (args_parse(argc, argv, opts, &ref, 1, 1) != 0)
        return ARGS_USAGE;
    if (provider == NULL) {
        fprintf(stderr, "kheish: --provider is required\n");
        return ARGS_USAGE;
    }
    size_t p = 0;
    while (strcmp(providers[p].cli, provider))
        p++;
    char *secret = read_value(value, from_env, from_file, from_stdin);
    if (secret == NULL)
        return EXIT_BAD_REQUEST;
    json_t *state = slot_state(p == 0, secret, org, project);
    sodium_memzero(secret, strlen(secret));
    free(secret);
    if (state == NULL) {
        fprintf(stderr, "kheish: the secret value must be UTF-8 text\n");
        return EXIT_BAD_REQUEST;
    }
    int rc = w.offline
                 ? set_offline(c, &w, ref, p, state)
                 : online(c, "POST", "/v1/runtime/secrets", NULL,
                          json_pack("{s:s, s:s, s:s, s:O}", "slot_id", ref, "provider",
                                    providers[p].api, "mode", providers[p].mode, "state", state),
                          &view_secret);
    json_decref(state);
    return rc;
}
