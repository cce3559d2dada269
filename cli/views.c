#include "views.h"

#define PREVIEW_CHARS 40

static const struct output_col status_fields[] = {
    {"status", "status", OUT_TEXT, 0},
    {"ready", "ready", OUT_TEXT, 0},
    {"sessions", "sessions.total", OUT_TEXT, 0},
    {"runs total", "runs.total", OUT_TEXT, 0},
    {"runs queued", "runs.queued", OUT_TEXT, 0},
    {"runs running", "runs.running", OUT_TEXT, 0},
    {"runs waiting for approval", "runs.waiting_for_approval", OUT_TEXT, 0},
    {"runs waiting for question", "runs.waiting_for_user_question", OUT_TEXT, 0},
    {"runs completed", "runs.completed", OUT_TEXT, 0},
    {"runs failed", "runs.failed", OUT_TEXT, 0},
    {"runs interrupted", "runs.interrupted", OUT_TEXT, 0},
    {"runs cancelled", "runs.cancelled", OUT_TEXT, 0},
    {"runners live", "runners.live_count", OUT_TEXT, 0},
    {"maintenance lock", "runners.maintenance_lock_holder", OUT_TEXT, 0},
    {"storage ok", "storage.ok", OUT_TEXT, 0},
    {"health ok", "health.ok", OUT_TEXT, 0},
    {"permission mode", "runtime.permission_mode", OUT_TEXT, 0},
    {"debug level", "runtime.debug_level", OUT_TEXT, 0},
    {"runtime revision", "runtime.config.revision", OUT_TEXT, 0},
};

static const struct output_col warning_cols[] = {
    {"SEVERITY", "severity", OUT_TEXT, 0},
    {"CODE", "code", OUT_TEXT, 0},
    {"MESSAGE", "message", OUT_TEXT, 100},
    {"ACTION", "action", OUT_TEXT, 80},
};

static const struct output_col runner_cols[] = {
    {"RUNNER", "runner_id", OUT_TEXT, 0},
    {"HOST", "host", OUT_TEXT, 0},
    {"PID", "pid", OUT_TEXT, 0},
    {"STARTED", "started_at_ms", OUT_TIME, 0},
    {"LAST HEARTBEAT", "last_heartbeat_at_ms", OUT_TIME, 0},
    {"RUNS HELD", "runs_held", OUT_TEXT, 0},
    {"SLOTS", "concurrency", OUT_TEXT, 0},
};

static const struct output_section status_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(status_fields)},
    {OUTPUT_TABLE, "runners.live", "live runners", OUTPUT_COLS(runner_cols)},
    {OUTPUT_TABLE, "health.warnings", "warnings", OUTPUT_COLS(warning_cols)},
};
const struct output_view view_status = OUTPUT_VIEW(status_sections);

static const struct output_col runtime_fields[] = {
    {"permission mode", "permission_mode", OUT_TEXT, 0},
    {"debug level", "debug_level", OUT_TEXT, 0},
    {"revision", "config.revision", OUT_TEXT, 0},
    {"updated", "config.updated_at_ms", OUT_TIME, 0},
    {"route", "route_id", OUT_TEXT, 0},
    {"provider", "provider", OUT_TEXT, 0},
    {"model", "model", OUT_TEXT, 0},
    {"state root", "state_root", OUT_TEXT, 0},
    {"workspace root", "workspace_root", OUT_TEXT, 0},
};
static const struct output_section runtime_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(runtime_fields)},
};
const struct output_view view_runtime = OUTPUT_VIEW(runtime_sections);

static const struct output_col revision_cols[] = {
    {"REVISION", "revision", OUT_TEXT, 0},
    {"UPDATED", "updated_at_ms", OUT_TIME, 0},
    {"SOURCE", "source", OUT_TEXT, 0},
    {"SETTING", "setting", OUT_TEXT, 0},
    {"PERMISSION MODE", "permission_mode", OUT_TEXT, 0},
    {"DEBUG LEVEL", "debug_level", OUT_TEXT, 0},
    {"ROLLBACK OF", "rollback_of_revision", OUT_TEXT, 0},
};
static const struct output_section revision_sections[] = {
    {OUTPUT_TABLE, "revisions", NULL, OUTPUT_COLS(revision_cols)},
};
const struct output_view view_revisions = OUTPUT_VIEW(revision_sections);

static const struct output_col session_fields[] = {
    {"session", "session_id", OUT_TEXT, 0},
    {"agent", "agent_id", OUT_TEXT, 0},
    {"status", "status", OUT_TEXT, 0},
    {"thread", "thread_id", OUT_TEXT, 0},
    {"persona", "persona.persona_id", OUT_TEXT, 0},
    {"active run", "snapshot.active_run_id", OUT_TEXT, 0},
    {"queued runs", "snapshot.queued_run_ids", OUT_TEXT, 0},
    {"runs", "snapshot.run_count", OUT_TEXT, 0},
    {"created", "created_at_ms", OUT_TIME, 0},
    {"updated", "updated_at_ms", OUT_TIME, 0},
    {"ended", "ended_at_ms", OUT_TIME, 0},
    {"end reason", "end_reason", OUT_TEXT, 0},
};
static const struct output_section session_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(session_fields)},
};
const struct output_view view_session = OUTPUT_VIEW(session_sections);

/* QUEUED reads the snapshot, which only full session views carry today. */
static const struct output_col session_cols[] = {
    {"SESSION", "session_id", OUT_TEXT, 0},
    {"STATUS", "status", OUT_TEXT, 0},
    {"QUEUED", "snapshot.queued_run_ids", OUT_COUNT, 0},
    {"CREATED", "created_at_ms", OUT_TIME, 0},
};
static const struct output_section session_list_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(session_cols)},
};
const struct output_view view_session_list = OUTPUT_VIEW(session_list_sections);

static const struct output_col event_cols[] = {
    {"TIME", "timestamp_ms", OUT_TIME, 0},
    {"RUN", "run_id", OUT_TEXT, 0},
    {"TYPE", "event.type", OUT_TEXT, 0},
};
static const struct output_section session_event_sections[] = {
    {OUTPUT_TABLE, "run_events", NULL, OUTPUT_COLS(event_cols)},
};
const struct output_view view_session_events = OUTPUT_VIEW(session_event_sections);
static const struct output_section run_event_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(event_cols)},
};
const struct output_view view_run_events = OUTPUT_VIEW(run_event_sections);

static const struct output_col external_action_cols[] = {
    {"time", "timestamp_ms", OUT_TIME, 0},
    {"phase", "phase", OUT_TEXT, 0},
    {"kind", "kind", OUT_TEXT, 0},
    {"target", "target", OUT_TEXT, 0},
    {"outcome", "outcome", OUT_TEXT, 0},
    {"grant", "grant_id", OUT_TEXT, 0},
    {"record hash", "record_hash", OUT_TEXT, 16},
};
static const struct output_section external_action_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(external_action_cols)},
};
const struct output_view view_external_actions = OUTPUT_VIEW(external_action_sections);

static const struct output_col interrupt_fields[] = {
    {"interrupted", "interrupted", OUT_TEXT, 0},
    {"status", "snapshot.status", OUT_TEXT, 0},
    {"active run", "snapshot.active_run_id", OUT_TEXT, 0},
    {"queued runs", "snapshot.queued_run_ids", OUT_TEXT, 0},
};
static const struct output_section interrupt_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(interrupt_fields)},
};
const struct output_view view_interrupt = OUTPUT_VIEW(interrupt_sections);

static const struct output_col run_fields[] = {
    {"run", "run_id", OUT_TEXT, 0},
    {"session", "session_id", OUT_TEXT, 0},
    {"agent", "agent_id", OUT_TEXT, 0},
    {"kind", "kind", OUT_TEXT, 0},
    {"status", "status", OUT_TEXT, 0},
    {"queued position", "queued_position", OUT_TEXT, 0},
    {"submitted", "submitted_at_ms", OUT_TIME, 0},
    {"started", "started_at_ms", OUT_TIME, 0},
    {"finished", "finished_at_ms", OUT_TIME, 0},
    {"lease owner", "lease_owner", OUT_TEXT, 0},
    {"lease expires", "lease_expires_at_ms", OUT_TIME, 0},
    {"preview", "request.text_preview", OUT_TEXT, 0},
    {"provider", "request.provider", OUT_TEXT, 0},
    {"model", "request.model", OUT_TEXT, 0},
    {"outputs", "outputs", OUT_COUNT, 0},
    {"error", "error", OUT_TEXT, 0},
};
static const struct output_section run_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(run_fields)},
};
const struct output_view view_run = OUTPUT_VIEW(run_sections);

static const struct output_col run_cols[] = {
    {"RUN", "run_id", OUT_TEXT, 0},
    {"SESSION", "session_id", OUT_TEXT, 0},
    {"STATUS", "status", OUT_TEXT, 0},
    {"KIND", "kind", OUT_TEXT, 0},
    {"SUBMITTED", "submitted_at_ms", OUT_TIME, 0},
    {"PREVIEW", "request.text_preview", OUT_TEXT, PREVIEW_CHARS},
};
static const struct output_section run_list_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(run_cols)},
};
const struct output_view view_run_list = OUTPUT_VIEW(run_list_sections);

static const struct output_col approval_fields[] = {
    {"request", "request.id", OUT_TEXT, 0},
    {"session", "session_id", OUT_TEXT, 0},
    {"agent", "agent_id", OUT_TEXT, 0},
    {"run", "run_id", OUT_TEXT, 0},
    {"tool call", "request.tool_call_id", OUT_TEXT, 0},
    {"tool", "request.tool_name", OUT_TEXT, 0},
    {"input", "request.input", OUT_TEXT, 0},
    {"scope", "request.scope", OUT_TEXT, 0},
    {"reason", "request.reason", OUT_TEXT, 0},
};
static const struct output_section approval_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(approval_fields)},
};
const struct output_view view_approval = OUTPUT_VIEW(approval_sections);

static const struct output_col approval_cols[] = {
    {"REQUEST", "request.id", OUT_TEXT, 0},
    {"SESSION", "session_id", OUT_TEXT, 0},
    {"RUN", "run_id", OUT_TEXT, 0},
    {"TOOL", "request.tool_name", OUT_TEXT, 0},
    {"INPUT", "request.input", OUT_TEXT, PREVIEW_CHARS},
};
static const struct output_section approval_list_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(approval_cols)},
};
const struct output_view view_approval_list = OUTPUT_VIEW(approval_list_sections);

static const struct output_col resolved_fields[] = {
    {"resolved requests", "resolved_requests", OUT_TEXT, 0},
    {"affected sessions", "affected_sessions", OUT_TEXT, 0},
};
static const struct output_section resolved_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(resolved_fields)},
    {OUTPUT_TABLE, "runs", "runs", OUTPUT_COLS(run_cols)},
};
const struct output_view view_approvals_resolved = OUTPUT_VIEW(resolved_sections);

static const struct output_col secret_fields[] = {
    {"slot", "slot_id", OUT_TEXT, 0},
    {"provider", "provider", OUT_TEXT, 0},
    {"mode", "mode", OUT_TEXT, 0},
    {"summary", "summary", OUT_TEXT, 0},
    {"updated", "updated_at_ms", OUT_TIME, 0},
};
static const struct output_section secret_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(secret_fields)},
};
const struct output_view view_secret = OUTPUT_VIEW(secret_sections);

static const struct output_col secret_cols[] = {
    {"SLOT", "slot_id", OUT_TEXT, 0},
    {"PROVIDER", "provider", OUT_TEXT, 0},
    {"MODE", "mode", OUT_TEXT, 0},
    {"SUMMARY", "summary", OUT_TEXT, 0},
    {"UPDATED", "updated_at_ms", OUT_TIME, 0},
};
static const struct output_section secret_list_sections[] = {
    {OUTPUT_TABLE, NULL, NULL, OUTPUT_COLS(secret_cols)},
};
const struct output_view view_secret_list = OUTPUT_VIEW(secret_list_sections);

static const struct output_col accepted_fields[] = {
    {"accepted", "accepted", OUT_TEXT, 0},
};
static const struct output_section accepted_sections[] = {
    {OUTPUT_FIELDS, NULL, NULL, OUTPUT_COLS(accepted_fields)},
};
const struct output_view view_accepted = OUTPUT_VIEW(accepted_sections);
