/*
 * The closed lists of names every binary reads: run statuses, stream and
 * run events, secret slot providers and modes, permission modes. (Provider
 * drivers are in routes.h, store errors in store.h, the permission engine's
 * own lists in permissions.h.) The database keeps its own copies, as
 * CHECK constraints and in sql/functions/; tests/unit/names.c compares each
 * with this file, so the two cannot drift.
 */
#ifndef KHEISH_NAMES_H
#define KHEISH_NAMES_H

/* Run statuses (contract §3): X(name, terminal, active). A terminal run never
 * changes again; an active one holds its session (one at a time). */
#define NAMES_RUN_STATUSES(X)                                                                      \
    X("queued", 0, 0)                                                                              \
    X("running", 0, 1)                                                                             \
    X("waiting_for_approval", 0, 1)                                                                \
    X("waiting_for_user_question", 0, 1)                                                           \
    X("completed", 1, 0)                                                                           \
    X("failed", 1, 0)                                                                              \
    X("interrupted", 1, 0)                                                                         \
    X("cancelled", 1, 0)

/* Stream events (contract §2, the SSE `event:` names): X(name). heartbeat
 * and stream_gap are the relay's own; the database makes the others. */
#define NAMES_STREAM_EVENTS(X)                                                                     \
    X("trace")                                                                                     \
    X("session_state_changed")                                                                     \
    X("session_snapshot")                                                                          \
    X("output")                                                                                    \
    X("run_updated")                                                                               \
    X("session_goal_updated")                                                                      \
    X("interrupted")                                                                               \
    X("runtime_updated")                                                                           \
    X("heartbeat")                                                                                 \
    X("stream_gap")

/* Run events (RunEventEntry.event.type, GET /v1/runs/{id}/events): X(name). */
#define NAMES_RUN_EVENTS(X)                                                                        \
    X("accepted")                                                                                  \
    X("queued")                                                                                    \
    X("started")                                                                                   \
    X("waiting_for_approval")                                                                      \
    X("approval_resolved")                                                                         \
    X("waiting_for_user_question")                                                                 \
    X("completed")                                                                                 \
    X("failed")                                                                                    \
    X("interrupted")                                                                               \
    X("cancelled")

/* Secret slots (contract §1.4): providers and modes. */
#define NAMES_SLOT_PROVIDERS(X)                                                                    \
    X("generic") X("mcp_oauth") X("open_ai") X("anthropic") X("google") X("open_router") X("x_ai")
#define NAMES_SLOT_MODES(X) X("opaque_secret") X("api_key") X("oauth_account")

/* Permission modes (contract §8): X(ID, JSON name, CLI name). The API and
 * the database speak the JSON names; the CLI takes the kebab-case ones. */
#define NAMES_PERMISSION_MODES(X)                                                                  \
    X(DEFAULT, "default", "default")                                                               \
    X(ACCEPT_EDITS, "acceptEdits", "accept-edits")                                                 \
    X(BYPASS_PERMISSIONS, "bypassPermissions", "bypass-permissions")                               \
    X(PLAN, "plan", "plan")                                                                        \
    X(DONT_ASK, "dontAsk", "dont-ask")

/* The lists binaries look names up in, NULL-terminated (util_in_list,
 * option choices). */
extern const char *const names_run_statuses[];
extern const char *const names_terminal_statuses[];
extern const char *const names_slot_providers[];
extern const char *const names_slot_modes[];
extern const char *const names_permission_modes[]; /* the JSON names */

#endif
