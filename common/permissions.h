/*
 * permissions: the permission engine of tool calls (contract §8, issue 15).
 *
 * Pure: no database, no I/O, no clock. Before a tool runs, the runner asks
 * perm_decide() for allow, ask or deny and persists perm_audit_json(); the
 * API asks the same question as a dry run (POST /v1/runtime/permissions/check:
 * perm_explain_json) and for every tool under every mode (.../matrix:
 * perm_matrix_json). GET /v1/sessions/{id}/permission-audits answers
 * {session_id, audits: [the audit records, in order]}.
 *
 * A decision, in upstream's order:
 *
 * 1. The rule. Layers are searched in turn, and the first layer with a
 *    matching rule decides: the session's (its hook updates first, then its
 *    static rules), the project's, the user's, then the built-in layer (the
 *    default sensitive-tool rules and a final `*` allow, so a rule always
 *    matches). Within a layer the most specific pattern wins: the exact tool
 *    name, then the longest prefix wildcard (`mcp__linear__*` before
 *    `mcp__*`), then `*`; among equals, the earliest rule. Its behaviour is
 *    the base decision.
 * 2. The mode transform (the effective mode: a dry run's mode_override, else
 *    the session's mode, else the runtime's). default changes nothing;
 *    bypassPermissions turns ask into allow; acceptEdits turns ask into allow
 *    for the edit tools; dontAsk turns ask into deny; plan lets a base allow
 *    or ask stand only for the tools of its allowlist and denies the rest. A
 *    base deny is never changed, so an explicit deny rule denies in every
 *    mode. A transform is named in mode_effect.
 *
 * Rules match tool names only, as upstream's do: there are no patterns on a
 * tool's input (no `bash(git *)`).
 */
#ifndef KHEISH_PERMISSIONS_H
#define KHEISH_PERMISSIONS_H

#include <jansson.h>
#include <stddef.h>

#include "names.h"

#define PERM_RULES_MAX        256  /* rules in one document */
#define PERM_NAME_MAX_BYTES   128  /* a tool name, and a pattern */
#define PERM_REASON_MAX_BYTES 1024 /* a rule's reason */

/* The tools the runner implements itself (runner/tool_*.c), X(name): the
 * tools of the matrix endpoint (POST /v1/runtime/permissions/matrix), and the
 * list the runner's tool registry is to be checked against
 * (tests/unit/tool_files.c holds the file tools to it). Each one's class is
 * in permissions.c's table. */
#define PERM_BUILTIN_TOOLS(X)                                                                      \
    X("bash")                                                                                      \
    X("read_file")                                                                                 \
    X("write_file")                                                                                \
    X("edit_file")                                                                                 \
    X("apply_patch")                                                                               \
    X("list_files")                                                                                \
    X("glob_search")                                                                               \
    X("grep_search")                                                                               \
    X("emit_output")                                                                               \
    X("ask_user_question")
extern const char *const perm_builtin_tools[]; /* PERM_BUILTIN_TOOLS, NULL-terminated */

#define PERM_MODE_ENUM(id, json, cli) PERM_MODE_##id,
enum perm_mode { PERM_MODE_UNSET = -1, NAMES_PERMISSION_MODES(PERM_MODE_ENUM) PERM_MODE_COUNT };
#undef PERM_MODE_ENUM

/* Rule scopes, behaviours (also the decisions), and where a rule came from:
 * X(ID, name). */
#define PERM_SCOPES(X)    X(USER, "user") X(PROJECT, "project") X(SESSION, "session")
#define PERM_BEHAVIORS(X) X(ALLOW, "allow") X(DENY, "deny") X(ASK, "ask")
#define PERM_ORIGINS(X)   X(STATIC, "static") X(HOOK_UPDATE, "hook_update")

/* The named mode transforms, X(ID, mode_effect). */
#define PERM_MODE_EFFECTS(X)                                                                       \
    X(BYPASS, "bypass_permissions_auto_allowed_approval")                                          \
    X(ACCEPT_EDITS, "accept_edits_auto_allowed_edit_approval")                                     \
    X(DONT_ASK, "dont_ask_denied_approval")                                                        \
    X(PLAN_ALLOWED, "plan_mode_allowed_read_only_or_coordination_tool")                            \
    X(PLAN_DENIED, "plan_mode_denied_non_whitelisted_tool")

/* The tool classes, X(ID, plan): plan is 1 when plan mode's allowlist of
 * read-only and coordination tools holds the class. Which tool is in which
 * class is the table in permissions.c (upstream's names). */
#define PERM_TOOL_CLASSES(X)                                                                       \
    X(SHELL, 0)          /* bash */                                                                \
    X(EDIT, 0)           /* write_file, edit_file, apply_patch: what acceptEdits allows */         \
    X(MCP, 0)            /* mcp__*: the tools of MCP servers */                                    \
    X(MCP_RESOURCE, 1)   /* listing and reading MCP resources */                                   \
    X(READ_ONLY, 1)      /* file, search and list reads; task, schedule and goal inspection */     \
    X(COORDINATION, 1)   /* questions to the user, agents, entering plan mode */                   \
    X(EXIT_PLAN_MODE, 1) /* exit_plan_mode */                                                      \
    X(OTHER, 0)          /* every other tool (emit_output among them) */

#define PERM_ENUM2(id, x) PERM_##id,
enum perm_scope { PERM_SCOPES(PERM_ENUM2) };
enum perm_behavior { PERM_BEHAVIORS(PERM_ENUM2) };
enum perm_origin { PERM_ORIGINS(PERM_ENUM2) };
#undef PERM_ENUM2
#define PERM_EFFECT_ENUM(id, name) PERM_EFFECT_##id,
enum perm_mode_effect { PERM_EFFECT_NONE, PERM_MODE_EFFECTS(PERM_EFFECT_ENUM) };
#undef PERM_EFFECT_ENUM
#define PERM_CLASS_ENUM(id, plan) PERM_CLASS_##id,
enum perm_tool_class { PERM_TOOL_CLASSES(PERM_CLASS_ENUM) PERM_CLASS_COUNT };
#undef PERM_CLASS_ENUM

/* One rule, as upstream's JSON has it:
 *   {"scope": "user"|"project"|"session", "tool_name_pattern": "...",
 *    "behavior": "allow"|"deny"|"ask", "reason": "..."|null}
 * A pattern is a tool name, a prefix ending in '*', or '*'. Ours: a rule of
 * the session scope may name one session ("session_id": "..."), and then
 * applies to that session only; without it, to every session. */
struct perm_rule {
    enum perm_scope scope;
    enum perm_behavior behavior;
    const char *pattern;
    const char *reason;     /* NULL: none */
    const char *session_id; /* NULL: every session (session scope only) */
};

struct perm_rules {
    struct perm_rule *v;
    size_t n;
};

/* Parses a rule document: a JSON array of at most PERM_RULES_MAX rules.
 * Unknown fields, wrong types and bad values are errors; session_id is a
 * session id (uri_valid_id) on a rule of the session scope. With
 * hook_updates set, every rule must have the session scope (the only scope
 * hook updates may change, as upstream) and none names a session (they are
 * the session's own already). Returns 0, or -1 with out empty and err holding
 * "<name>[i].<field>: what is wrong" (values are never quoted). */
int perm_rules_parse(const json_t *doc, const char *name, int hook_updates, struct perm_rules *out,
                     char *err, size_t errsz);
void perm_rules_free(struct perm_rules *rules);

/* 1 when the len bytes at s are a tool name: 1..PERM_NAME_MAX_BYTES of
 * [A-Za-z0-9_.:-]. */
int perm_tool_name_valid(const char *s, size_t len);
enum perm_tool_class perm_tool_class(const char *tool_name);

/* The mode of a JSON name, or PERM_MODE_UNSET. */
enum perm_mode perm_mode_parse(const char *name);

/* What one decision sees. The strings and rules must outlive the decision,
 * which points into them. */
struct perm_request {
    const char *tool_name;
    const char *tool_call_id;              /* NULL: "dry-run" */
    enum perm_mode runtime_mode;           /* the runtime settings' */
    enum perm_mode session_mode;           /* the session's own, or PERM_MODE_UNSET */
    enum perm_mode mode_override;          /* a dry run's, or PERM_MODE_UNSET */
    const struct perm_rules *rules;        /* static rules of every scope; NULL: none */
    const struct perm_rules *hook_updates; /* the session's, session scope; NULL: none */
    const char *session_id; /* the session asking; rules naming another are skipped; NULL: none */
};

/* A decision with every audit field. */
struct perm_decision {
    const char *tool_name;
    const char *tool_call_id;
    enum perm_tool_class tool_class;
    enum perm_behavior decision;
    enum perm_behavior base_decision; /* the matched rule's behaviour */
    enum perm_mode effective_mode;
    enum perm_mode_effect mode_effect; /* PERM_EFFECT_NONE: the mode changed nothing */
    enum perm_scope scope;             /* the scope the final decision is owned by */
    const char *reason;                /* NULL: none */
    const struct perm_rule *matched_rule;
    enum perm_origin matched_rule_origin;
};

void perm_decide(const struct perm_request *req, struct perm_decision *out);

/* The audit record persisted for a real decision (upstream's
 * PermissionAuditRecord): scope, tool_name, tool_call_id, decision,
 * base_decision, effective_mode, mode_effect?, matched_rule_pattern,
 * matched_rule_origin, justification (null), reason, approval_request_id
 * (the approval a decision of ask opened, else null). */
json_t *perm_audit_json(const struct perm_decision *d, const char *approval_request_id);

/* The dry-run explanation (upstream's PermissionExplanation): the decision
 * with mode_applied, approval_required, hooks_evaluated false, hook_policy
 * "not_executed_in_dry_run", matched_rule, and the audit_preview a real run
 * would persist. */
json_t *perm_explain_json(const struct perm_decision *d);

/* The matrix: {session_id?, modes: [{mode, tools: [explanation]}]}, every
 * mode in order, the tools sorted by name and each named once; req gives the
 * rules and the session's hook updates (its tool name, call id and modes are
 * not used: each cell is the dry run "dry-run-<Mode>-<tool>" under that mode). */
json_t *perm_matrix_json(const struct perm_request *req, const char *const *tools, size_t ntools,
                         const char *session_id);

#endif
