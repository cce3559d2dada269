/* permissions: rule documents, the decision, and its JSON (see permissions.h). */
#include "permissions.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"
#include "util.h"

#define TOOL_NAME(name) name,
const char *const perm_builtin_tools[] = {PERM_BUILTIN_TOOLS(TOOL_NAME) NULL};
#undef TOOL_NAME

#define NAME2(id, name) name,
static const char *const scope_names[] = {PERM_SCOPES(NAME2)};
static const char *const behavior_names[] = {PERM_BEHAVIORS(NAME2)};
static const char *const origin_names[] = {PERM_ORIGINS(NAME2)};
static const char *const effect_names[] = {NULL, PERM_MODE_EFFECTS(NAME2)};
#undef NAME2
#define PLAN(id, plan) plan,
static const int class_in_plan[] = {PERM_TOOL_CLASSES(PLAN)};
#undef PLAN

/*
 * Upstream's tools, by class. The tools that need approval by default,
 * X(name, class, reason), are also the built-in rule layer: one ask rule
 * each, in this order, then `*` allow. The others, X(name, class), are named
 * for plan mode's allowlist. Our own tools are among them (bash, read_file,
 * write_file, edit_file, apply_patch, list_files, glob_search, grep_search,
 * ask_user_question); emit_output, like upstream's, is in no list: an
 * "other" tool.
 */
#define ASK_TOOLS(X)                                                                               \
    X("bash", SHELL, "shell command requires approval")                                            \
    X("write_file", EDIT, "file write requires approval")                                          \
    X("edit_file", EDIT, "file edit requires approval")                                            \
    X("apply_patch", EDIT, "file patch requires approval")                                         \
    X("mcp__*", MCP, "MCP tool calls can affect external systems and require approval")            \
    X("list_mcp_resources", MCP_RESOURCE, "MCP resource listing requires approval")                \
    X("list_mcp_resource_templates", MCP_RESOURCE,                                                 \
      "MCP resource template listing requires approval")                                           \
    X("read_mcp_resource", MCP_RESOURCE, "MCP resource reads require approval")                    \
    X("exit_plan_mode", EXIT_PLAN_MODE, "leaving plan mode requires approval")
#define PLAIN_TOOLS(X)                                                                             \
    X("read_file", READ_ONLY)                                                                      \
    X("list_files", READ_ONLY)                                                                     \
    X("glob_search", READ_ONLY)                                                                    \
    X("grep_search", READ_ONLY)                                                                    \
    X("web_fetch", READ_ONLY)                                                                      \
    X("web_search", READ_ONLY)                                                                     \
    X("list_skills", READ_ONLY)                                                                    \
    X("read_channel_thread", READ_ONLY)                                                            \
    X("task_get", READ_ONLY)                                                                       \
    X("task_list", READ_ONLY)                                                                      \
    X("task_output", READ_ONLY)                                                                    \
    X("schedule_get", READ_ONLY)                                                                   \
    X("schedule_list", READ_ONLY)                                                                  \
    X("get_goal", READ_ONLY)                                                                       \
    X("ask_operator", COORDINATION)                                                                \
    X("ask_user_question", COORDINATION)                                                           \
    X("request_parent_clarification", COORDINATION)                                                \
    X("spawn_agent", COORDINATION)                                                                 \
    X("list_agents", COORDINATION)                                                                 \
    X("list_agent_summaries", COORDINATION)                                                        \
    X("message_agent", COORDINATION)                                                               \
    X("wait_agent", COORDINATION)                                                                  \
    X("get_agent", COORDINATION)                                                                   \
    X("enter_plan_mode", COORDINATION)

static const struct known_tool {
    const char *pattern;
    enum perm_tool_class cls;
} known_tools[] = {
#define ASK_TOOL(name, cls, reason) {name, PERM_CLASS_##cls},
#define PLAIN_TOOL(name, cls)       {name, PERM_CLASS_##cls},
    ASK_TOOLS(ASK_TOOL) PLAIN_TOOLS(PLAIN_TOOL)
#undef ASK_TOOL
#undef PLAIN_TOOL
};

static const struct perm_rule builtin_rules[] = {
#define ASK_RULE(name, cls, reason) {PERM_SESSION, PERM_ASK, name, reason, NULL},
    ASK_TOOLS(ASK_RULE){PERM_SESSION, PERM_ALLOW, "*", NULL, NULL},
#undef ASK_RULE
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Reasons upstream gives when a mode decides. */
#define REASON_APPROVAL  "approval required"
#define REASON_BYPASS    "bypass permissions mode"
#define REASON_EDITS     "accept edits mode"
#define REASON_PLAN_OK   "plan mode allowed a read-only or coordination tool"
#define REASON_PLAN_DENY "plan mode only allows read-only and coordination tools"

/* [A-Za-z0-9_.:-], whatever the locale. */
static int
name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

int
perm_tool_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > PERM_NAME_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* How closely pattern matches name: 0 not at all, 1 for `*`, 2 plus the
 * prefix's length for a prefix wildcard, INT_MAX for the exact name. A
 * longer prefix is more specific; any prefix beats `*`. */
static int
specificity(const char *name, const char *pattern)
{
    if (!strcmp(pattern, name))
        return INT_MAX;
    if (!strcmp(pattern, "*"))
        return 1;
    size_t n = strlen(pattern);
    if (n > 1 && pattern[n - 1] == '*' && !strncmp(name, pattern, n - 1))
        return 2 + (int)(n - 1);
    return 0;
}

enum perm_tool_class
perm_tool_class(const char *tool_name)
{
    enum perm_tool_class cls = PERM_CLASS_OTHER;
    int best = 1; /* a prefix or the exact name; never a bare `*` */
    for (size_t i = 0; i < COUNT(known_tools); i++) {
        int s = specificity(tool_name, known_tools[i].pattern);
        if (s > best) {
            best = s;
            cls = known_tools[i].cls;
        }
    }
    return cls;
}

enum perm_mode
perm_mode_parse(const char *name)
{
    for (int m = 0; m < PERM_MODE_COUNT; m++)
        if (!strcmp(name, names_permission_modes[m]))
            return (enum perm_mode)m;
    return PERM_MODE_UNSET;
}

/* ---- rule documents ------------------------------------------------------ */

/* The value of one of names (n of them) into *out; at names the field in
 * messages ("rules[2].scope"). */
static int
parse_choice(const json_t *v, const char *const *names, size_t n, int *out, const char *at,
             char *err, size_t errsz)
{
    if (v == NULL)
        return util_fail(err, errsz, "%s: required", at);
    if (!json_is_string(v))
        return util_fail(err, errsz, "%s: must be a string", at);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(json_string_value(v), names[i]) && strlen(names[i]) == json_string_length(v)) {
            *out = (int)i;
            return 0;
        }
    char list[64] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return util_fail(err, errsz, "%s: must be one of %s", at, list);
}

static int
parse_pattern(const json_t *v, const char *at, char **out, char *err, size_t errsz)
{
    if (v == NULL)
        return util_fail(err, errsz, "%s: required", at);
    if (!json_is_string(v))
        return util_fail(err, errsz, "%s: must be a string", at);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0)
        return util_fail(err, errsz, "%s: must not be empty", at);
    if (len > PERM_NAME_MAX_BYTES)
        return util_fail(err, errsz, "%s: longer than %d bytes", at, PERM_NAME_MAX_BYTES);
    size_t name_len = s[len - 1] == '*' ? len - 1 : len;
    for (size_t i = 0; i < name_len; i++) {
        if (s[i] == '*')
            return util_fail(err, errsz, "%s: a '*' may only end the pattern", at);
        if (!name_char((unsigned char)s[i]))
            return util_fail(err, errsz,
                             "%s: holds a character outside [A-Za-z0-9_.:-] (patterns match tool "
                             "names, never tool input)",
                             at);
    }
    *out = strndup(s, len);
    return *out ? 0 : util_fail(err, errsz, "%s: out of memory", at);
}

static int
parse_reason(const json_t *v, const char *at, char **out, char *err, size_t errsz)
{
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return util_fail(err, errsz, "%s: must be a string or null", at);
    size_t len = json_string_length(v);
    if (len == 0)
        return util_fail(err, errsz, "%s: must not be empty (leave it out instead)", at);
    if (len > PERM_REASON_MAX_BYTES)
        return util_fail(err, errsz, "%s: longer than %d bytes", at, PERM_REASON_MAX_BYTES);
    if (!util_utf8_printable(json_string_value(v), len))
        return util_fail(err, errsz, "%s: must be printable UTF-8", at);
    *out = strndup(json_string_value(v), len);
    return *out ? 0 : util_fail(err, errsz, "%s: out of memory", at);
}

/* A rule's session_id: absent or null, or a session id on a static rule of
 * the session scope. */
static int
parse_session_id(const json_t *v, const char *at, int scope, int hook_updates, char **out,
                 char *err, size_t errsz)
{
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (hook_updates)
        return util_fail(err, errsz, "%s: hook updates are the session's own: they name no session",
                         at);
    if (scope != PERM_SESSION)
        return util_fail(err, errsz, "%s: only a rule of the session scope names a session", at);
    if (!json_is_string(v))
        return util_fail(err, errsz, "%s: must be a string or null", at);
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        !uri_valid_id(json_string_value(v)))
        return util_fail(err, errsz, "%s: must be a session id (1..%d of [A-Za-z0-9._:@-])", at,
                         URI_ID_MAX_BYTES);
    *out = strdup(json_string_value(v));
    return *out ? 0 : util_fail(err, errsz, "%s: out of memory", at);
}

/* A field name fit to repeat in a message (short, of name characters), else "". */
static const char *
plain_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 32)
        return "";
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)key[i]))
            return "";
    return key;
}

static int
parse_rule(const json_t *o, const char *at, int hook_updates, struct perm_rule *r, char *err,
           size_t errsz)
{
    static const char *const fields[] = {"scope",  "tool_name_pattern", "behavior",
                                         "reason", "session_id",        NULL};
    char field_at[96];
    if (!json_is_object(o))
        return util_fail(err, errsz, "%s: must be an object", at);
    for (void *it = json_object_iter((json_t *)o); it;
         it = json_object_iter_next((json_t *)o, it)) {
        const char *key = json_object_iter_key(it), *k = plain_key(key);
        /* a key with a NUL is no field either */
        if (strlen(key) != json_object_iter_key_len(it) || !util_in_list(key, fields))
            return util_fail(
                err, errsz,
                "%s: unknown field%s%s%s (the fields: scope, tool_name_pattern, behavior, "
                "reason, session_id)",
                at, *k ? " '" : "", k, *k ? "'" : "");
    }
    int scope, behavior;
    snprintf(field_at, sizeof field_at, "%s.scope", at);
    if (parse_choice(json_object_get(o, "scope"), scope_names, COUNT(scope_names), &scope, field_at,
                     err, errsz) != 0)
        return -1;
    if (hook_updates && scope != PERM_SESSION)
        return util_fail(err, errsz, "%s: hook updates may only have the session scope", field_at);
    snprintf(field_at, sizeof field_at, "%s.behavior", at);
    if (parse_choice(json_object_get(o, "behavior"), behavior_names, COUNT(behavior_names),
                     &behavior, field_at, err, errsz) != 0)
        return -1;
    char *pattern, *reason = NULL, *session_id = NULL;
    snprintf(field_at, sizeof field_at, "%s.tool_name_pattern", at);
    if (parse_pattern(json_object_get(o, "tool_name_pattern"), field_at, &pattern, err, errsz) != 0)
        return -1;
    snprintf(field_at, sizeof field_at, "%s.reason", at);
    if (parse_reason(json_object_get(o, "reason"), field_at, &reason, err, errsz) != 0)
        goto fail;
    snprintf(field_at, sizeof field_at, "%s.session_id", at);
    if (parse_session_id(json_object_get(o, "session_id"), field_at, scope, hook_updates,
                         &session_id, err, errsz) != 0)
        goto fail;
    *r = (struct perm_rule){scope, behavior, pattern, reason, session_id};
    return 0;
fail:
    free(reason);
    free(pattern);
    return -1;
}

int
perm_rules_parse(const json_t *doc, const char *name, int hook_updates, struct perm_rules *out,
                 char *err, size_t errsz)
{
    *out = (struct perm_rules){NULL, 0};
    if (!json_is_array(doc))
        return util_fail(err, errsz, "%.32s: must be an array of rules", name);
    size_t n = json_array_size(doc);
    if (n > PERM_RULES_MAX)
        return util_fail(err, errsz, "%.32s: more than %d rules", name, PERM_RULES_MAX);
    if (n == 0)
        return 0;
    out->v = calloc(n, sizeof *out->v);
    if (out->v == NULL)
        return util_fail(err, errsz, "%.32s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        char at[64];
        snprintf(at, sizeof at, "%.32s[%zu]", name, i);
        if (parse_rule(json_array_get(doc, i), at, hook_updates, &out->v[i], err, errsz) != 0) {
            perm_rules_free(out);
            return -1;
        }
        out->n = i + 1;
    }
    return 0;
}

void
perm_rules_free(struct perm_rules *rules)
{
    for (size_t i = 0; i < rules->n; i++) {
        free((char *)rules->v[i].pattern);
        free((char *)rules->v[i].reason);
        free((char *)rules->v[i].session_id);
    }
    free(rules->v);
    *rules = (struct perm_rules){NULL, 0};
}

/* ---- the decision --------------------------------------------------------- */

struct match {
    const struct perm_rule *rule;
    int specificity;
    enum perm_origin origin;
};

/* 1 when rule r applies to the session asking (session, NULL for none). */
static int
for_session(const struct perm_rule *r, const char *session)
{
    return r->session_id == NULL || (session && !strcmp(r->session_id, session));
}

/* Keeps in *best the most specific of the n rules of scope that match tool
 * and apply to session, the earliest among equals (a strictly better one
 * replaces it). */
static void
consider(const struct perm_rule *v, size_t n, enum perm_scope scope, enum perm_origin origin,
         const char *tool, const char *session, struct match *best)
{
    for (size_t i = 0; i < n; i++) {
        int s = v[i].scope == scope && for_session(&v[i], session) ? specificity(tool, v[i].pattern)
                                                                   : 0;
        if (s > best->specificity)
            *best = (struct match){&v[i], s, origin};
    }
}

/* The first layer with a match decides: session (hook updates before static
 * rules, so they win ties), project, user, then the built-in rules, whose
 * final `*` always matches. */
static struct match
select_rule(const struct perm_request *req)
{
    static const enum perm_scope layers[] = {PERM_SESSION, PERM_PROJECT, PERM_USER};
    struct match m = {NULL, 0, PERM_STATIC};
    for (size_t k = 0; k < COUNT(layers) && m.rule == NULL; k++) {
        if (layers[k] == PERM_SESSION && req->hook_updates)
            consider(req->hook_updates->v, req->hook_updates->n, PERM_SESSION, PERM_HOOK_UPDATE,
                     req->tool_name, req->session_id, &m);
        if (req->rules)
            consider(req->rules->v, req->rules->n, layers[k], PERM_STATIC, req->tool_name,
                     req->session_id, &m);
    }
    if (m.rule == NULL)
        consider(builtin_rules, COUNT(builtin_rules), PERM_SESSION, PERM_STATIC, req->tool_name,
                 NULL, &m);
    return m;
}

/* A change the mode decided: it is owned by the session scope and carries
 * the mode's reason. */
static void
mode_decides(struct perm_decision *d, enum perm_mode_effect effect, enum perm_behavior to,
             const char *reason)
{
    d->mode_effect = effect;
    d->decision = to;
    d->scope = PERM_SESSION;
    d->reason = reason;
}

/* The mode's change to d's base decision, as upstream makes it. A base deny
 * is never changed. */
static void
apply_mode(struct perm_decision *d)
{
    int ask = d->base_decision == PERM_ASK, plan_ok = class_in_plan[d->tool_class];
    switch (d->effective_mode) {
    case PERM_MODE_BYPASS_PERMISSIONS:
        if (ask)
            mode_decides(d, PERM_EFFECT_BYPASS, PERM_ALLOW, REASON_BYPASS);
        break;
    case PERM_MODE_ACCEPT_EDITS:
        if (ask && d->tool_class == PERM_CLASS_EDIT)
            mode_decides(d, PERM_EFFECT_ACCEPT_EDITS, PERM_ALLOW, REASON_EDITS);
        break;
    case PERM_MODE_DONT_ASK:
        /* Refused at once instead of waiting for an approval; the rule's
         * scope and reason stay. */
        if (ask) {
            d->mode_effect = PERM_EFFECT_DONT_ASK;
            d->decision = PERM_DENY;
        }
        break;
    case PERM_MODE_PLAN:
        if (d->base_decision == PERM_DENY || (ask && plan_ok))
            break;
        if (plan_ok)
            mode_decides(d, PERM_EFFECT_PLAN_ALLOWED, PERM_ALLOW, REASON_PLAN_OK);
        else
            mode_decides(d, PERM_EFFECT_PLAN_DENIED, PERM_DENY, REASON_PLAN_DENY);
        break;
    default:
        break;
    }
}

static enum perm_mode
effective_mode(const struct perm_request *req)
{
    if (req->mode_override != PERM_MODE_UNSET)
        return req->mode_override;
    return req->session_mode != PERM_MODE_UNSET ? req->session_mode : req->runtime_mode;
}

void
perm_decide(const struct perm_request *req, struct perm_decision *out)
{
    struct match m = select_rule(req);
    *out = (struct perm_decision){
        .tool_name = req->tool_name,
        .tool_call_id = req->tool_call_id ? req->tool_call_id : "dry-run",
        .tool_class = perm_tool_class(req->tool_name),
        .decision = m.rule->behavior,
        .base_decision = m.rule->behavior,
        .effective_mode = effective_mode(req),
        .mode_effect = PERM_EFFECT_NONE,
        .scope = m.rule->scope,
        .reason =
            m.rule->behavior == PERM_ASK && !m.rule->reason ? REASON_APPROVAL : m.rule->reason,
        .matched_rule = m.rule,
        .matched_rule_origin = m.origin,
    };
    apply_mode(out);
}

/* ---- JSON ----------------------------------------------------------------- */

static json_t *
str_or_null(const char *s)
{
    return s ? util_json_str(s) : json_null();
}

json_t *
perm_audit_json(const struct perm_decision *d, const char *approval_request_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "scope", json_string(scope_names[d->scope]));
    json_object_set_new(o, "tool_name", util_json_str(d->tool_name));
    json_object_set_new(o, "tool_call_id", util_json_str(d->tool_call_id));
    json_object_set_new(o, "decision", json_string(behavior_names[d->decision]));
    json_object_set_new(o, "base_decision", json_string(behavior_names[d->base_decision]));
    json_object_set_new(o, "effective_mode",
                        json_string(names_permission_modes[d->effective_mode]));
    if (d->mode_effect != PERM_EFFECT_NONE)
        json_object_set_new(o, "mode_effect", json_string(effect_names[d->mode_effect]));
    json_object_set_new(o, "matched_rule_pattern", json_string(d->matched_rule->pattern));
    json_object_set_new(o, "matched_rule_origin",
                        json_string(origin_names[d->matched_rule_origin]));
    json_object_set_new(o, "justification", json_null());
    json_object_set_new(o, "reason", str_or_null(d->reason));
    json_object_set_new(o, "approval_request_id", str_or_null(approval_request_id));
    return o;
}

json_t *
perm_explain_json(const struct perm_decision *d)
{
    const struct perm_rule *r = d->matched_rule;
    json_t *o = json_object();
    json_object_set_new(o, "tool_call_id", util_json_str(d->tool_call_id));
    json_object_set_new(o, "tool_name", util_json_str(d->tool_name));
    json_object_set_new(o, "effective_mode",
                        json_string(names_permission_modes[d->effective_mode]));
    json_object_set_new(o, "decision", json_string(behavior_names[d->decision]));
    json_object_set_new(o, "base_decision", json_string(behavior_names[d->base_decision]));
    json_object_set_new(o, "mode_applied", json_boolean(d->mode_effect != PERM_EFFECT_NONE));
    if (d->mode_effect != PERM_EFFECT_NONE)
        json_object_set_new(o, "mode_effect", json_string(effect_names[d->mode_effect]));
    json_object_set_new(o, "approval_required", json_boolean(d->decision == PERM_ASK));
    json_object_set_new(o, "hooks_evaluated", json_false());
    json_object_set_new(o, "hook_policy", json_string("not_executed_in_dry_run"));
    json_object_set_new(o, "scope", json_string(scope_names[d->scope]));
    if (d->reason)
        json_object_set_new(o, "reason", util_json_str(d->reason));
    json_t *rule = json_pack("{s:s, s:s, s:s, s:o}", "scope", scope_names[r->scope],
                             "tool_name_pattern", r->pattern, "behavior",
                             behavior_names[r->behavior], "reason", str_or_null(r->reason));
    if (r->session_id)
        json_object_set_new(rule, "session_id", util_json_str(r->session_id));
    json_object_set_new(o, "matched_rule", rule);
    json_object_set_new(o, "matched_rule_origin",
                        json_string(origin_names[d->matched_rule_origin]));
    json_object_set_new(o, "audit_preview", perm_audit_json(d, NULL));
    return o;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tools of mode m, each a dry run named as upstream names it:
 * "dry-run-<Mode>-<tool>", Mode the mode's name with a capital. */
static json_t *
mode_tools(const struct perm_request *req, enum perm_mode m, const char **sorted, size_t n)
{
    char mode_name[32];
    snprintf(mode_name, sizeof mode_name, "%s", names_permission_modes[m]);
    mode_name[0] = (char)toupper((unsigned char)mode_name[0]);
    json_t *tools = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && !strcmp(sorted[i], sorted[i - 1]))
            continue;
        size_t idsz = sizeof "dry-run--" + strlen(mode_name) + strlen(sorted[i]);
        char *id = malloc(idsz);
        if (id == NULL) {
            json_decref(tools);
            return NULL;
        }
        snprintf(id, idsz, "dry-run-%s-%s", mode_name, sorted[i]);
        struct perm_request cell = *req;
        cell.tool_name = sorted[i];
        cell.tool_call_id = id;
        cell.mode_override = m;
        struct perm_decision d;
        perm_decide(&cell, &d);
        json_array_append_new(tools, perm_explain_json(&d));
        free(id);
    }
    return tools;
}

json_t *
perm_matrix_json(const struct perm_request *req, const char *const *tools, size_t ntools,
                 const char *session_id)
{
    const char **sorted = malloc((ntools ? ntools : 1) * sizeof *sorted);
    if (sorted == NULL)
        return NULL;
    if (ntools > 0) {
        memcpy(sorted, tools, ntools * sizeof *sorted);
        qsort(sorted, ntools, sizeof *sorted, by_name);
    }
    json_t *out = json_object(), *modes = json_array();
    if (session_id)
        json_object_set_new(out, "session_id", util_json_str(session_id));
    json_object_set_new(out, "modes", modes);
    for (int m = 0; m < PERM_MODE_COUNT; m++) {
        json_t *list = mode_tools(req, (enum perm_mode)m, sorted, ntools);
        if (list == NULL) {
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(
            modes, json_pack("{s:s, s:o}", "mode", names_permission_modes[m], "tools", list));
    }
    free(sorted);
    return out;
}
