/*
 * fuzz-perm_rules: a flags byte, then a permission rule document (JSON), through
 * perm_rules_parse and perm_decide (common/permissions.c). Flags: bit 0 parses
 * the document as a session's hook updates. A refused document gets one
 * message naming it ("rules..." or "hook_updates...") and leaves nothing
 * parsed. An accepted one holds at most PERM_RULES_MAX rules of valid
 * patterns and printable reasons (hook updates: session scope only); each of
 * them, and a few known tools, then decided under every mode, gives a rule
 * that matches the tool, a base decision that is its behaviour, a deny no mode
 * lifts, no ask left by bypassPermissions or dontAsk, no allow in plan mode
 * outside its allowlist, and an explanation whose matched_rule parses back to
 * the same rule. The decisions are session "s"'s: a rule naming another
 * session never matches.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "permissions.h"
#include "util.h"

#define PLAN(id, plan) plan,
static const int class_in_plan[] = {PERM_TOOL_CLASSES(PLAN)};
#undef PLAN

static int
pattern_ok(const char *p)
{
    size_t n = strlen(p);
    if (n >= 1 && p[n - 1] == '*')
        n--;
    return (n == 0 && p[0] == '*') || (n > 0 && perm_tool_name_valid(p, n));
}

static int
matches(const char *pattern, const char *tool)
{
    size_t n = strlen(pattern);
    return !strcmp(pattern, tool) || !strcmp(pattern, "*") ||
           (n > 1 && pattern[n - 1] == '*' && !strncmp(pattern, tool, n - 1));
}

/* The explanation's matched_rule, parsed again, is d's rule. */
static void
check_round_trip(const json_t *explanation, const struct perm_rule *r)
{
    json_t *doc = json_pack("[O]", json_object_get(explanation, "matched_rule"));
    struct perm_rules back;
    char err[256];
    FUZZ_CHECK(perm_rules_parse(doc, "rules", 0, &back, err, sizeof err) == 0 && back.n == 1);
    FUZZ_CHECK(back.v[0].scope == r->scope && back.v[0].behavior == r->behavior);
    FUZZ_CHECK(!strcmp(back.v[0].pattern, r->pattern));
    FUZZ_CHECK((back.v[0].reason == NULL) == (r->reason == NULL));
    FUZZ_CHECK(r->reason == NULL || !strcmp(back.v[0].reason, r->reason));
    FUZZ_CHECK((back.v[0].session_id == NULL) == (r->session_id == NULL));
    FUZZ_CHECK(r->session_id == NULL || !strcmp(back.v[0].session_id, r->session_id));
    perm_rules_free(&back);
    json_decref(doc);
}

static void
check_decisions(const struct perm_rules *rules, int hook, const char *tool)
{
    for (int m = 0; m < PERM_MODE_COUNT; m++) {
        struct perm_request req = {tool,
                                   NULL,
                                   PERM_MODE_DEFAULT,
                                   PERM_MODE_UNSET,
                                   (enum perm_mode)m,
                                   hook ? NULL : rules,
                                   hook ? rules : NULL,
                                   "s"};
        struct perm_decision d;
        perm_decide(&req, &d);
        FUZZ_CHECK(d.matched_rule && matches(d.matched_rule->pattern, tool));
        FUZZ_CHECK(!d.matched_rule->session_id || !strcmp(d.matched_rule->session_id, "s"));
        FUZZ_CHECK(d.base_decision == d.matched_rule->behavior && d.effective_mode == m);
        FUZZ_CHECK((d.decision != d.base_decision) <= (d.mode_effect != PERM_EFFECT_NONE));
        if (d.base_decision == PERM_DENY || m == PERM_MODE_DEFAULT)
            FUZZ_CHECK(d.decision == d.base_decision && d.mode_effect == PERM_EFFECT_NONE);
        if (m == PERM_MODE_BYPASS_PERMISSIONS || m == PERM_MODE_DONT_ASK)
            FUZZ_CHECK(d.decision != PERM_ASK);
        if (m == PERM_MODE_PLAN && d.decision != PERM_DENY)
            FUZZ_CHECK(class_in_plan[d.tool_class]);
        json_t *e = perm_explain_json(&d);
        FUZZ_CHECK(json_is_boolean(json_object_get(e, "approval_required")) &&
                   json_boolean_value(json_object_get(e, "approval_required")) ==
                       (d.decision == PERM_ASK));
        check_round_trip(e, d.matched_rule);
        json_decref(e);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int hook = data[0] & 1;
    const char *name = hook ? "hook_updates" : "rules";
    json_t *doc = json_loadb((const char *)data + 1, size - 1,
                             JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (doc == NULL)
        return 0;
    struct perm_rules rules;
    char err[256] = "";
    if (perm_rules_parse(doc, name, hook, &rules, err, sizeof err) != 0) {
        FUZZ_CHECK(!strncmp(err, name, strlen(name)) && strlen(err) > strlen(name) + 2);
        FUZZ_CHECK(rules.v == NULL && rules.n == 0);
        json_decref(doc);
        return 0;
    }
    FUZZ_CHECK(rules.n <= PERM_RULES_MAX && (rules.n == 0) == (rules.v == NULL));
    for (size_t i = 0; i < rules.n; i++) {
        const struct perm_rule *r = &rules.v[i];
        FUZZ_CHECK(pattern_ok(r->pattern));
        FUZZ_CHECK(!hook || r->scope == PERM_SESSION);
        FUZZ_CHECK(r->reason == NULL || (*r->reason && strlen(r->reason) <= PERM_REASON_MAX_BYTES &&
                                         util_utf8_printable(r->reason, strlen(r->reason))));
    }
    static const char *const tools[] = {"bash", "read_file", "emit_output", "mcp__a__b",
                                        "exit_plan_mode"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        check_decisions(&rules, hook, tools[i]);
    /* the names the first rules are about: a prefix's own, and one longer */
    for (size_t i = 0; i < rules.n && i < 8; i++) {
        char tool[PERM_NAME_MAX_BYTES + 2];
        size_t n = strlen(rules.v[i].pattern);
        n -= rules.v[i].pattern[n - 1] == '*';
        snprintf(tool, sizeof tool, "%.*sx", (int)n, rules.v[i].pattern);
        check_decisions(&rules, hook, tool);
        tool[n] = '\0';
        check_decisions(&rules, hook, tool);
    }
    perm_rules_free(&rules);
    json_decref(doc);
    return 0;
}
