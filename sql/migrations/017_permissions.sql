-- 017: the permission audits of tool calls (contract §8; issue 15).
--
-- Before a run calls a tool, the runner asks the permission engine
-- (common/permissions.c) for allow, ask or deny and appends the decision's
-- audit record (perm_audit_json) here with kheish_permission_audit_append
-- (sql/functions/permissions.sql). GET /v1/sessions/{id}/permission-audits
-- lists a session's records as upstream shapes them; the auditor reads them
-- all in audit.permission_audits.
--
-- The names in scope, decision, effective_mode and the like are the
-- engine's (common/permissions.h, common/names.h); the database keeps no
-- copy of those lists. There is no foreign key to sessions or runs: an audit
-- outlives what it audits.
--
-- Append-only: the application role may INSERT and SELECT; triggers refuse
-- UPDATE, DELETE and TRUNCATE to everyone, the owner included.

CREATE TABLE permission_audits (
    id                   bigserial PRIMARY KEY,
    at_ms                bigint NOT NULL,
    session_id           text NOT NULL,
    run_id               text,
    tool_call_id         text NOT NULL,
    tool_name            text NOT NULL,
    scope                text NOT NULL,
    decision             text NOT NULL,
    base_decision        text NOT NULL,
    effective_mode       text NOT NULL,
    mode_effect          text,
    matched_rule_pattern text NOT NULL,
    matched_rule_origin  text NOT NULL,
    justification        text,
    reason               text,
    approval_request_id  text
);
CREATE INDEX permission_audits_session ON permission_audits (session_id, id);

GRANT SELECT, INSERT ON permission_audits TO kheish_app;
GRANT USAGE ON SEQUENCE permission_audits_id_seq TO kheish_app;

COMMENT ON TABLE permission_audits IS
    'The permission decision of every tool call a run made (contract §8; append-only): the '
    'engine''s audit record (common/permissions.c, perm_audit_json) with its session and run.';
COMMENT ON COLUMN permission_audits.id IS 'Append order.';
COMMENT ON COLUMN permission_audits.at_ms IS 'When it was appended, by the database''s clock (kheish_now_ms).';
COMMENT ON COLUMN permission_audits.session_id IS 'The session of the run that called the tool.';
COMMENT ON COLUMN permission_audits.run_id IS 'The run that called it; NULL when none.';
COMMENT ON COLUMN permission_audits.tool_call_id IS 'The model''s id of the tool call.';
COMMENT ON COLUMN permission_audits.tool_name IS 'The tool called.';
COMMENT ON COLUMN permission_audits.scope IS 'The scope that owns the decision: user, project or session.';
COMMENT ON COLUMN permission_audits.decision IS 'allow, ask (an approval was opened) or deny.';
COMMENT ON COLUMN permission_audits.base_decision IS 'The matched rule''s decision, before the mode changed it.';
COMMENT ON COLUMN permission_audits.effective_mode IS 'The permission mode the decision was made under (default, acceptEdits, bypassPermissions, plan, dontAsk).';
COMMENT ON COLUMN permission_audits.mode_effect IS 'What the mode changed (bypass_permissions_auto_allowed_approval, ...); NULL when it changed nothing.';
COMMENT ON COLUMN permission_audits.matched_rule_pattern IS 'The tool name pattern of the rule that matched.';
COMMENT ON COLUMN permission_audits.matched_rule_origin IS 'Where that rule came from: static or hook_update.';
COMMENT ON COLUMN permission_audits.justification IS 'An operator''s justification, if one was given.';
COMMENT ON COLUMN permission_audits.reason IS 'The reason shown to operators: the rule''s, or the mode''s.';
COMMENT ON COLUMN permission_audits.approval_request_id IS 'The approval a decision of ask opened; NULL otherwise.';

-- Two more runtime settings are revisioned (sql/functions/runtime.sql): the
-- tool runtime limits and the permission rules.
COMMENT ON COLUMN runtime_revisions.setting IS
    'What changed: permission_mode, debug_level, tool_runtime_limits, permission_rules, rollback, or initial.';
COMMENT ON COLUMN runtime_revisions.settings IS
    'Every setting as of this revision; permission_rules absent (before migration 017) is no rule.';
