/*
 * The permission engine of common/ (contract §8), without a database: every
 * cell of the mode matrix, rule precedence across scopes, wildcard order,
 * ties, hook updates, explicit denies, the mode precedence, rule documents
 * refused with their message, and the field names of the audit record, the
 * dry-run explanation and the matrix.
 */
#include "check.h"
#include "permissions.h"

#define A PERM_ALLOW
#define Q PERM_ASK
#define D PERM_DENY
#define U PERM_MODE_UNSET

static struct perm_rules rules, hooks;
static char err[256];

/* Replaces *out with the rules of text (hook: as hook updates). */
static void
load(struct perm_rules *out, const char *text, int hook)
{
    perm_rules_free(out);
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    CHECK(doc != NULL);
    CHECK(perm_rules_parse(doc, hook ? "hook_updates" : "rules", hook, out, err, sizeof err) == 0);
    json_decref(doc);
}

static void
reset(void)
{
    perm_rules_free(&rules);
    perm_rules_free(&hooks);
}

static struct perm_decision
decide3(const char *tool, enum perm_mode runtime, enum perm_mode session, enum perm_mode override)
{
    struct perm_request req = {tool, "call-1", runtime, session, override, &rules, &hooks, NULL};
    struct perm_decision d;
    perm_decide(&req, &d);
    return d;
}

static struct perm_decision
decide(const char *tool, enum perm_mode mode)
{
    return decide3(tool, mode, U, U);
}

static const char *const mode_effects[] = {
#define EFFECT(id, name) name,
    NULL, PERM_MODE_EFFECTS(EFFECT)
#undef EFFECT
};

/* ---- the matrix ----------------------------------------------------------- */

/* One row of the contract's matrix: a tool, its class, and the decision under
 * default, acceptEdits, bypassPermissions, plan, dontAsk. */
struct row {
    const char *tool;
    enum perm_tool_class cls;
    enum perm_behavior cell[PERM_MODE_COUNT];
};

static const struct row matrix[] = {
    {"bash", PERM_CLASS_SHELL, {Q, Q, A, D, D}},
    {"write_file", PERM_CLASS_EDIT, {Q, A, A, D, D}},
    {"edit_file", PERM_CLASS_EDIT, {Q, A, A, D, D}},
    {"apply_patch", PERM_CLASS_EDIT, {Q, A, A, D, D}},
    {"mcp__linear__create_issue", PERM_CLASS_MCP, {Q, Q, A, D, D}},
    {"mcp__x", PERM_CLASS_MCP, {Q, Q, A, D, D}},
    {"list_mcp_resources", PERM_CLASS_MCP_RESOURCE, {Q, Q, A, Q, D}},
    {"list_mcp_resource_templates", PERM_CLASS_MCP_RESOURCE, {Q, Q, A, Q, D}},
    {"read_mcp_resource", PERM_CLASS_MCP_RESOURCE, {Q, Q, A, Q, D}},
    {"read_file", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"list_files", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"glob_search", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"grep_search", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"task_get", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"schedule_list", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"get_goal", PERM_CLASS_READ_ONLY, {A, A, A, A, A}},
    {"exit_plan_mode", PERM_CLASS_EXIT_PLAN_MODE, {Q, Q, A, Q, D}},
    {"ask_user_question", PERM_CLASS_COORDINATION, {A, A, A, A, A}},
    {"spawn_agent", PERM_CLASS_COORDINATION, {A, A, A, A, A}},
    {"emit_output", PERM_CLASS_OTHER, {A, A, A, D, A}},
    {"task_create", PERM_CLASS_OTHER, {A, A, A, D, A}},
    {"mcp_", PERM_CLASS_OTHER, {A, A, A, D, A}},
    {"bash2", PERM_CLASS_OTHER, {A, A, A, D, A}},
};

/* The mode_effect a cell must carry: the mode's name for the change it made. */
static enum perm_mode_effect
expected_effect(const struct row *r, enum perm_mode m)
{
    enum perm_behavior base = r->cell[PERM_MODE_DEFAULT];
    switch (m) {
    case PERM_MODE_ACCEPT_EDITS:
        return base == Q && r->cls == PERM_CLASS_EDIT ? PERM_EFFECT_ACCEPT_EDITS : PERM_EFFECT_NONE;
    case PERM_MODE_BYPASS_PERMISSIONS:
        return base == Q ? PERM_EFFECT_BYPASS : PERM_EFFECT_NONE;
    case PERM_MODE_DONT_ASK:
        return base == Q ? PERM_EFFECT_DONT_ASK : PERM_EFFECT_NONE;
    case PERM_MODE_PLAN:
        if (base == Q && r->cell[PERM_MODE_PLAN] == Q)
            return PERM_EFFECT_NONE;
        return r->cell[PERM_MODE_PLAN] == A ? PERM_EFFECT_PLAN_ALLOWED : PERM_EFFECT_PLAN_DENIED;
    default:
        return PERM_EFFECT_NONE;
    }
}

static void
test_matrix(void)
{
    reset();
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        const struct row *r = &matrix[i];
        CHECK(perm_tool_class(r->tool) == r->cls);
        for (int m = 0; m < PERM_MODE_COUNT; m++) {
            struct perm_decision d = decide(r->tool, (enum perm_mode)m);
            check_count++;
            if (d.decision != r->cell[m] || d.mode_effect != expected_effect(r, m) ||
                d.base_decision != r->cell[PERM_MODE_DEFAULT] ||
                d.effective_mode != (enum perm_mode)m || d.matched_rule_origin != PERM_STATIC) {
                check_failures++;
                fprintf(stderr, "matrix: %s under %s: decision %d effect %d, expected %d %d\n",
                        r->tool, names_permission_modes[m], d.decision, d.mode_effect, r->cell[m],
                        expected_effect(r, m));
            }
        }
    }
    /* The built-in rules: the sensitive tools' own, and `*` for the rest. */
    CHECK_STR(decide("bash", PERM_MODE_DEFAULT).matched_rule->pattern, "bash");
    CHECK_STR(decide("bash", PERM_MODE_DEFAULT).reason, "shell command requires approval");
    CHECK_STR(decide("mcp__a__b", PERM_MODE_DEFAULT).matched_rule->pattern, "mcp__*");
    CHECK_STR(decide("emit_output", PERM_MODE_DEFAULT).matched_rule->pattern, "*");
    CHECK(decide("emit_output", PERM_MODE_DEFAULT).reason == NULL);
    CHECK(decide("emit_output", PERM_MODE_DEFAULT).scope == PERM_SESSION);
    /* Mode reasons and scopes, as upstream gives them. */
    struct perm_decision d = decide("bash", PERM_MODE_BYPASS_PERMISSIONS);
    CHECK_STR(d.reason, "bypass permissions mode");
    d = decide("write_file", PERM_MODE_ACCEPT_EDITS);
    CHECK_STR(d.reason, "accept edits mode");
    d = decide("read_file", PERM_MODE_PLAN);
    CHECK_STR(d.reason, "plan mode allowed a read-only or coordination tool");
    d = decide("emit_output", PERM_MODE_PLAN);
    CHECK_STR(d.reason, "plan mode only allows read-only and coordination tools");
    d = decide("bash", PERM_MODE_DONT_ASK);
    CHECK_STR(d.reason, "shell command requires approval"); /* dontAsk keeps the rule's */
    CHECK_STR(mode_effects[d.mode_effect], "dont_ask_denied_approval");
}

/* ---- rules ---------------------------------------------------------------- */

static void
test_scopes(void)
{
    reset();
    load(&rules,
         "[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"allow\"},"
         " {\"scope\":\"project\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\","
         "  \"reason\":\"project asks\"},"
         " {\"scope\":\"user\",\"tool_name_pattern\":\"emit_output\",\"behavior\":\"deny\"},"
         " {\"scope\":\"session\",\"tool_name_pattern\":\"read_file\",\"behavior\":\"deny\","
         "  \"reason\":\"session denies reads\"}]",
         0);
    /* project over user; the user's rule never reached */
    struct perm_decision d = decide("bash", PERM_MODE_DEFAULT);
    CHECK(d.decision == Q && d.scope == PERM_PROJECT);
    CHECK_STR(d.reason, "project asks");
    /* a session rule for another tool does not shadow the lower scopes */
    d = decide("emit_output", PERM_MODE_DEFAULT);
    CHECK(d.decision == D && d.scope == PERM_USER && d.reason == NULL);
    /* the user's rule applies where nothing above matches, over the built-in */
    load(&rules, "[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"allow\"}]", 0);
    d = decide("bash", PERM_MODE_DEFAULT);
    CHECK(d.decision == A && d.scope == PERM_USER && d.reason == NULL);
    /* session over project over user */
    load(&rules,
         "[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"deny\"},"
         " {\"scope\":\"project\",\"tool_name_pattern\":\"bash\",\"behavior\":\"deny\"},"
         " {\"scope\":\"session\",\"tool_name_pattern\":\"bash*\",\"behavior\":\"allow\"}]",
         0);
    d = decide("bash", PERM_MODE_DEFAULT);
    CHECK(d.decision == A && d.scope == PERM_SESSION);
    CHECK_STR(d.matched_rule->pattern, "bash*"); /* a wildcard of a higher scope still wins */
    /* a rule that matches nothing leaves the built-in */
    load(&rules,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"bashful\",\"behavior\":\"deny\"}]", 0);
    CHECK(decide("bash", PERM_MODE_DEFAULT).decision == Q);
}

static void
test_wildcards(void)
{
    reset();
    /* the same project rules in two orders: specificity, not order, decides */
    static const char *const docs[] = {
        "[{\"scope\":\"project\",\"tool_name_pattern\":\"*\",\"behavior\":\"deny\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"mcp__*\",\"behavior\":\"deny\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"mcp__linear__*\",\"behavior\":\"ask\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"mcp__linear__get\",\"behavior\":"
        "\"allow\"}]",
        "[{\"scope\":\"project\",\"tool_name_pattern\":\"mcp__linear__get\",\"behavior\":"
        "\"allow\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"mcp__linear__*\",\"behavior\":\"ask\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"mcp__*\",\"behavior\":\"deny\"},"
        " {\"scope\":\"project\",\"tool_name_pattern\":\"*\",\"behavior\":\"deny\"}]",
    };
    for (int i = 0; i < 2; i++) {
        load(&rules, docs[i], 0);
        struct perm_decision d = decide("mcp__linear__get", PERM_MODE_DEFAULT);
        CHECK(d.decision == A);
        CHECK_STR(d.matched_rule->pattern, "mcp__linear__get");
        d = decide("mcp__linear__create", PERM_MODE_DEFAULT);
        CHECK(d.decision == Q);
        CHECK_STR(d.matched_rule->pattern, "mcp__linear__*");
        CHECK_STR(d.reason, "approval required"); /* an ask rule without a reason */
        d = decide("mcp__github__x", PERM_MODE_DEFAULT);
        CHECK_STR(d.matched_rule->pattern, "mcp__*");
        d = decide("read_file", PERM_MODE_DEFAULT);
        CHECK(d.decision == D && d.scope == PERM_PROJECT);
        CHECK_STR(d.matched_rule->pattern, "*");
    }
    /* a prefix matches the name itself too, below the exact name */
    load(&rules, "[{\"scope\":\"user\",\"tool_name_pattern\":\"bash*\",\"behavior\":\"deny\"}]", 0);
    CHECK(decide("bash", PERM_MODE_DEFAULT).decision == D);
    CHECK(decide("bas", PERM_MODE_DEFAULT).decision == A);
}

static void
test_ties(void)
{
    reset();
    load(&rules,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"deny\","
         "  \"reason\":\"first\"},"
         " {\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"allow\","
         "  \"reason\":\"second\"},"
         " {\"scope\":\"user\",\"tool_name_pattern\":\"x*\",\"behavior\":\"ask\"},"
         " {\"scope\":\"user\",\"tool_name_pattern\":\"x*\",\"behavior\":\"deny\"}]",
         0);
    CHECK_STR(decide("bash", PERM_MODE_DEFAULT).reason, "first");
    CHECK(decide("xy", PERM_MODE_DEFAULT).decision == Q);
    /* hook updates come before the static session rules: they win ties */
    load(&hooks,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"allow\","
         "  \"reason\":\"sticky allow\"},"
         " {\"scope\":\"session\",\"tool_name_pattern\":\"*\",\"behavior\":\"ask\"}]",
         1);
    struct perm_decision d = decide("bash", PERM_MODE_DEFAULT);
    CHECK(d.decision == A && d.matched_rule_origin == PERM_HOOK_UPDATE);
    CHECK_STR(d.reason, "sticky allow");
    /* but a more specific static rule beats a hook's wildcard */
    load(&rules,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"emit_output\",\"behavior\":"
         "\"deny\"}]",
         0);
    d = decide("emit_output", PERM_MODE_DEFAULT);
    CHECK(d.decision == D && d.matched_rule_origin == PERM_STATIC);
    d = decide("read_file", PERM_MODE_DEFAULT);
    CHECK(d.decision == Q && d.matched_rule_origin == PERM_HOOK_UPDATE);
}

/* An explicit deny denies in every mode, whatever the tool's class; an allow
 * rule does not open plan mode; bypass and dontAsk transform an ask rule. */
static void
test_explicit_rules(void)
{
    static const char *const tools[] = {
        "bash",      "write_file",     "mcp__a__b",         "read_mcp_resource",
        "read_file", "exit_plan_mode", "ask_user_question", "emit_output"};
    reset();
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "[{\"scope\":\"session\",\"tool_name_pattern\":\"%s\",\"behavior\":\"deny\","
                 "\"reason\":\"no\"}]",
                 tools[i]);
        load(&rules, doc, 0);
        for (int m = 0; m < PERM_MODE_COUNT; m++) {
            struct perm_decision d = decide(tools[i], (enum perm_mode)m);
            CHECK(d.decision == D && d.base_decision == D && d.mode_effect == PERM_EFFECT_NONE);
            CHECK(d.scope == PERM_SESSION);
            CHECK_STR(d.reason, "no");
        }
    }
    load(&rules,
         "[{\"scope\":\"project\",\"tool_name_pattern\":\"bash\",\"behavior\":\"allow\"},"
         " {\"scope\":\"project\",\"tool_name_pattern\":\"read_file\",\"behavior\":\"ask\","
         "  \"reason\":\"reads ask\"}]",
         0);
    struct perm_decision d = decide("bash", PERM_MODE_PLAN);
    CHECK(d.decision == D && d.base_decision == A && d.mode_effect == PERM_EFFECT_PLAN_DENIED);
    CHECK(d.scope == PERM_SESSION); /* the mode owns what it decided */
    CHECK(decide("bash", PERM_MODE_DEFAULT).decision == A);
    CHECK(decide("bash", PERM_MODE_DONT_ASK).decision == A);
    d = decide("read_file", PERM_MODE_BYPASS_PERMISSIONS);
    CHECK(d.decision == A && d.mode_effect == PERM_EFFECT_BYPASS && d.scope == PERM_SESSION);
    d = decide("read_file", PERM_MODE_DONT_ASK);
    CHECK(d.decision == D && d.scope == PERM_PROJECT);
    CHECK_STR(d.reason, "reads ask");
    d = decide("read_file", PERM_MODE_PLAN); /* whitelisted: the ask stands */
    CHECK(d.decision == Q && d.mode_effect == PERM_EFFECT_NONE && d.scope == PERM_PROJECT);
    CHECK(decide("read_file", PERM_MODE_ACCEPT_EDITS).decision == Q); /* not an edit tool */
}

static void
test_mode_precedence(void)
{
    reset();
    CHECK(decide3("bash", PERM_MODE_DEFAULT, U, U).effective_mode == PERM_MODE_DEFAULT);
    CHECK(decide3("bash", PERM_MODE_DEFAULT, PERM_MODE_PLAN, U).effective_mode == PERM_MODE_PLAN);
    struct perm_decision d =
        decide3("bash", PERM_MODE_DEFAULT, PERM_MODE_PLAN, PERM_MODE_BYPASS_PERMISSIONS);
    CHECK(d.effective_mode == PERM_MODE_BYPASS_PERMISSIONS && d.decision == A);
    CHECK(perm_mode_parse("dontAsk") == PERM_MODE_DONT_ASK);
    CHECK(perm_mode_parse("dont-ask") == PERM_MODE_UNSET);
    CHECK(perm_mode_parse("") == PERM_MODE_UNSET);
    for (int m = 0; m < PERM_MODE_COUNT; m++)
        CHECK(perm_mode_parse(names_permission_modes[m]) == (enum perm_mode)m);
    CHECK(names_permission_modes[PERM_MODE_COUNT] == NULL);
}

/* ---- rule documents ------------------------------------------------------- */

/* A user rule for bash, then body (fields with their leading comma). */
#define R(body) "[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\"" body "}]"

static void
refused(int line, const char *text, int hook, const char *message)
{
    json_t *doc = json_loads(text, JSON_ALLOW_NUL, NULL);
    struct perm_rules out = {(struct perm_rule *)1, 99};
    err[0] = '\0';
    check_count++;
    if (doc == NULL ||
        perm_rules_parse(doc, hook ? "hook_updates" : "rules", hook, &out, err, sizeof err) == 0 ||
        strcmp(err, message) || out.v != NULL || out.n != 0) {
        check_failures++;
        fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, line, message, err);
    }
    json_decref(doc);
}
#define REFUSED(text, message)      refused(__LINE__, text, 0, message)
#define REFUSED_HOOK(text, message) refused(__LINE__, text, 1, message)

static void
test_documents(void)
{
    reset();
    load(&rules, "[]", 0);
    CHECK(rules.n == 0 && rules.v == NULL);
    load(&rules,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"*\",\"behavior\":\"allow\","
         "  \"reason\":null},"
         " {\"behavior\":\"deny\",\"tool_name_pattern\":\"mcp__gh.x:y-z*\",\"scope\":\"project\","
         "  \"reason\":\"n\\u00e9 \\\"quoted\\\"\"}]",
         0);
    CHECK(rules.n == 2 && rules.v[0].reason == NULL && rules.v[1].scope == PERM_PROJECT);
    CHECK(rules.v[1].behavior == D);
    CHECK_STR(rules.v[1].pattern, "mcp__gh.x:y-z*");
    CHECK_STR(rules.v[1].reason, "n\xc3\xa9 \"quoted\"");

    REFUSED("{}", "rules: must be an array of rules");
    REFUSED("[1]", "rules[0]: must be an object");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\"}, null]",
            "rules[1]: must be an object");
    REFUSED(R(",\"when\":1"), "rules[0]: unknown field 'when' (the fields: scope, "
                              "tool_name_pattern, behavior, reason, session_id)");
    REFUSED(R(",\"a b\":1"), "rules[0]: unknown field (the fields: scope, tool_name_pattern, "
                             "behavior, reason, session_id)");
    REFUSED("[{\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\"}]", "rules[0].scope: required");
    REFUSED("[{\"scope\":7,\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\"}]",
            "rules[0].scope: must be a string");
    REFUSED("[{\"scope\":\"global\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\"}]",
            "rules[0].scope: must be one of user, project, session");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"Allow\"}]",
            "rules[0].behavior: must be one of allow, deny, ask");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\"}]", "rules[0].behavior: required");
    REFUSED("[{\"scope\":\"user\",\"behavior\":\"ask\"}]", "rules[0].tool_name_pattern: required");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":[],\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: must be a string");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"\",\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: must not be empty");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"bash(git *)\",\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: holds a character outside [A-Za-z0-9_.:-] (patterns "
            "match tool names, never tool input)");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"mcp__*__x\",\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: a '*' may only end the pattern");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"**\",\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: a '*' may only end the pattern");
    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"a\\u0000b\",\"behavior\":\"ask\"}]",
            "rules[0].tool_name_pattern: holds a character outside [A-Za-z0-9_.:-] (patterns "
            "match tool names, never tool input)");
    REFUSED(R(",\"reason\":5"), "rules[0].reason: must be a string or null");
    REFUSED(R(",\"reason\":\"\""), "rules[0].reason: must not be empty (leave it out instead)");
    REFUSED(R(",\"reason\":\"a\\u0007\""), "rules[0].reason: must be printable UTF-8");
    REFUSED_HOOK(R(""), "hook_updates[0].scope: hook updates may only have the session scope");

    /* the limits: pattern length, reason length, rule count */
    char doc[PERM_RULES_MAX * 80 + PERM_REASON_MAX_BYTES * 2];
    char name[PERM_NAME_MAX_BYTES + 2];
    memset(name, 'a', sizeof name - 1);
    name[PERM_NAME_MAX_BYTES] = '\0';
    snprintf(doc, sizeof doc,
             "[{\"scope\":\"user\",\"tool_name_pattern\":\"%s\",\"behavior\":\"ask\"}]", name);
    load(&rules, doc, 0);
    CHECK(rules.n == 1 && perm_tool_name_valid(name, strlen(name)));
    name[PERM_NAME_MAX_BYTES] = '*';
    name[PERM_NAME_MAX_BYTES + 1] = '\0';
    snprintf(doc, sizeof doc,
             "[{\"scope\":\"user\",\"tool_name_pattern\":\"%s\",\"behavior\":\"ask\"}]", name);
    REFUSED(doc, "rules[0].tool_name_pattern: longer than 128 bytes");
    CHECK(!perm_tool_name_valid(name, strlen(name)));
    char reason[PERM_REASON_MAX_BYTES + 2];
    memset(reason, 'r', sizeof reason - 1);
    reason[PERM_REASON_MAX_BYTES] = '\0';
    snprintf(doc, sizeof doc, R(",\"reason\":\"%s\""), reason);
    load(&rules, doc, 0);
    reason[PERM_REASON_MAX_BYTES] = 'r';
    reason[PERM_REASON_MAX_BYTES + 1] = '\0';
    snprintf(doc, sizeof doc, R(",\"reason\":\"%s\""), reason);
    REFUSED(doc, "rules[0].reason: longer than 1024 bytes");
    size_t len = 0;
    doc[len++] = '[';
    for (int i = 0; i <= PERM_RULES_MAX; i++)
        len += (size_t)snprintf(doc + len, sizeof doc - len,
                                "%s{\"scope\":\"user\",\"tool_name_pattern\":\"t%d\","
                                "\"behavior\":\"ask\"}",
                                i ? "," : "", i);
    snprintf(doc + len, sizeof doc - len, "]");
    REFUSED(doc, "rules: more than 256 rules");
    *strrchr(doc, '{') = '\0';
    doc[strlen(doc) - 1] = ']';
    load(&rules, doc, 0);
    CHECK(rules.n == PERM_RULES_MAX);

    CHECK(!perm_tool_name_valid("", 0) && !perm_tool_name_valid("a b", 3));
    CHECK(perm_tool_name_valid("mcp__srv.x:y-z_1", 16));
}

/* ---- JSON ----------------------------------------------------------------- */

/* 1 when o's keys are exactly keys, in that order. */
static int
keys_are(const json_t *o, const char *const *keys)
{
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)o, key, v)
    {
        if (keys[i] == NULL || strcmp(key, keys[i]))
            return 0;
        i++;
    }
    return keys[i] == NULL;
}

static const char *
str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A session rule naming a session applies to it alone; one naming none, to
 * every session; a dry run without a session sees only the latter. */
static void
test_session_rules(void)
{
    reset();
    load(&rules,
         "[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"deny\","
         "  \"session_id\":\"s-1\"},"
         " {\"scope\":\"session\",\"tool_name_pattern\":\"read_file\",\"behavior\":\"deny\"}]",
         0);
    CHECK_STR(rules.v[0].session_id, "s-1");
    CHECK(rules.v[1].session_id == NULL);
    const char *sessions[] = {"s-1", "s-2", NULL};
    enum perm_behavior bash[] = {D, Q, Q}, read[] = {D, D, D};
    for (int i = 0; i < 3; i++) {
        struct perm_request req = {"bash", NULL, PERM_MODE_DEFAULT, U, U,
                                   &rules, NULL, sessions[i]};
        struct perm_decision d;
        perm_decide(&req, &d);
        CHECK(d.decision == bash[i]);
        req.tool_name = "read_file";
        perm_decide(&req, &d);
        CHECK(d.decision == read[i]);
    }
    struct perm_request req = {"bash", NULL, PERM_MODE_DEFAULT, U, U, &rules, NULL, "s-1"};
    struct perm_decision d;
    perm_decide(&req, &d);
    json_t *x = perm_explain_json(&d);
    CHECK_STR(json_string_value(json_object_get(json_object_get(x, "matched_rule"), "session_id")),
              "s-1");
    json_decref(x);

    REFUSED("[{\"scope\":\"user\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\","
            "\"session_id\":\"s\"}]",
            "rules[0].session_id: only a rule of the session scope names a session");
    REFUSED("[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\","
            "\"session_id\":\"../x\"}]",
            "rules[0].session_id: must be a session id (1..128 of [A-Za-z0-9._:@-])");
    REFUSED("[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\","
            "\"session_id\":7}]",
            "rules[0].session_id: must be a string or null");
    REFUSED_HOOK("[{\"scope\":\"session\",\"tool_name_pattern\":\"bash\",\"behavior\":\"ask\","
                 "\"session_id\":\"s\"}]",
                 "hook_updates[0].session_id: hook updates are the session's own: they name no "
                 "session");
    reset();
}

static void
test_json(void)
{
    reset();
    struct perm_request req = {"bash", NULL, PERM_MODE_DEFAULT, U, U, &rules, &hooks, NULL};
    struct perm_decision d;
    perm_decide(&req, &d);
    json_t *e = perm_explain_json(&d);
    static const char *const explanation[] = {"tool_call_id",
                                              "tool_name",
                                              "effective_mode",
                                              "decision",
                                              "base_decision",
                                              "mode_applied",
                                              "approval_required",
                                              "hooks_evaluated",
                                              "hook_policy",
                                              "scope",
                                              "reason",
                                              "matched_rule",
                                              "matched_rule_origin",
                                              "audit_preview",
                                              NULL};
    CHECK(keys_are(e, explanation));
    CHECK_STR(str(e, "tool_call_id"), "dry-run");
    CHECK_STR(str(e, "decision"), "ask");
    CHECK_STR(str(e, "hook_policy"), "not_executed_in_dry_run");
    CHECK(json_is_false(json_object_get(e, "hooks_evaluated")));
    CHECK(json_is_true(json_object_get(e, "approval_required")));
    CHECK(json_is_false(json_object_get(e, "mode_applied")));
    static const char *const rule[] = {"scope", "tool_name_pattern", "behavior", "reason", NULL};
    CHECK(keys_are(json_object_get(e, "matched_rule"), rule));
    CHECK_STR(str(json_object_get(e, "matched_rule"), "tool_name_pattern"), "bash");
    CHECK_STR(str(e, "matched_rule_origin"), "static");
    static const char *const audit[] = {
        "scope",         "tool_name",      "tool_call_id",         "decision",
        "base_decision", "effective_mode", "matched_rule_pattern", "matched_rule_origin",
        "justification", "reason",         "approval_request_id",  NULL};
    json_t *preview = json_object_get(e, "audit_preview");
    CHECK(keys_are(preview, audit));
    CHECK(json_is_null(json_object_get(preview, "approval_request_id")));
    CHECK(json_is_null(json_object_get(preview, "justification")));
    json_decref(e);

    /* a mode effect adds mode_effect; no reason, no reason field */
    req = (struct perm_request){
        "emit_output", "call-9", PERM_MODE_DEFAULT, PERM_MODE_PLAN, U, &rules, &hooks, NULL};
    perm_decide(&req, &d);
    json_t *a = perm_audit_json(&d, "approval-1");
    static const char *const audit_effect[] = {"scope",
                                               "tool_name",
                                               "tool_call_id",
                                               "decision",
                                               "base_decision",
                                               "effective_mode",
                                               "mode_effect",
                                               "matched_rule_pattern",
                                               "matched_rule_origin",
                                               "justification",
                                               "reason",
                                               "approval_request_id",
                                               NULL};
    CHECK(keys_are(a, audit_effect));
    CHECK_STR(str(a, "mode_effect"), "plan_mode_denied_non_whitelisted_tool");
    CHECK_STR(str(a, "effective_mode"), "plan");
    CHECK_STR(str(a, "decision"), "deny");
    CHECK_STR(str(a, "base_decision"), "allow");
    CHECK_STR(str(a, "matched_rule_pattern"), "*");
    CHECK_STR(str(a, "tool_call_id"), "call-9");
    CHECK_STR(str(a, "approval_request_id"), "approval-1");
    json_decref(a);
    req.session_mode = U;
    perm_decide(&req, &d);
    e = perm_explain_json(&d);
    CHECK(json_object_get(e, "reason") == NULL && json_object_get(e, "mode_effect") == NULL);
    CHECK(json_is_null(json_object_get(json_object_get(e, "matched_rule"), "reason")));
    json_decref(e);

    /* the matrix: every mode in order, the tools sorted and once each */
    static const char *const tools[] = {"write_file", "bash", "read_file", "bash"};
    req = (struct perm_request){NULL, NULL, PERM_MODE_PLAN, U, U, &rules, &hooks, NULL};
    json_t *mx = perm_matrix_json(&req, tools, 4, "s-1");
    static const char *const top[] = {"session_id", "modes", NULL};
    CHECK(keys_are(mx, top));
    CHECK_STR(str(mx, "session_id"), "s-1");
    json_t *modes = json_object_get(mx, "modes");
    CHECK(json_array_size(modes) == PERM_MODE_COUNT);
    for (int m = 0; m < PERM_MODE_COUNT && m < (int)json_array_size(modes); m++) {
        json_t *mode = json_array_get(modes, (size_t)m);
        static const char *const mode_keys[] = {"mode", "tools", NULL};
        CHECK(keys_are(mode, mode_keys));
        CHECK_STR(str(mode, "mode"), names_permission_modes[m]);
        json_t *list = json_object_get(mode, "tools");
        CHECK(json_array_size(list) == 3);
        CHECK_STR(str(json_array_get(list, 0), "tool_name"), "bash");
        CHECK_STR(str(json_array_get(list, 2), "tool_name"), "write_file");
        CHECK_STR(str(json_array_get(list, 0), "effective_mode"), names_permission_modes[m]);
    }
    json_t *edits = json_object_get(json_array_get(modes, PERM_MODE_ACCEPT_EDITS), "tools");
    CHECK_STR(str(json_array_get(edits, 0), "tool_call_id"), "dry-run-AcceptEdits-bash");
    CHECK_STR(str(json_array_get(edits, 2), "decision"), "allow");
    CHECK_STR(str(json_array_get(edits, 2), "mode_effect"),
              "accept_edits_auto_allowed_edit_approval");
    json_decref(mx);
    mx = perm_matrix_json(&req, NULL, 0, NULL);
    CHECK(json_object_get(mx, "session_id") == NULL);
    CHECK(json_array_size(
              json_object_get(json_array_get(json_object_get(mx, "modes"), 0), "tools")) == 0);
    json_decref(mx);
}

int
main(void)
{
    json_object_seed(1);
    test_matrix();
    test_scopes();
    test_wildcards();
    test_ties();
    test_explicit_rules();
    test_mode_precedence();
    test_documents();
    test_session_rules();
    test_json();
    reset();
    return check_report("permissions");
}
