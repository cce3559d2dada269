-- Permission audits (migration 017): the guard of the append-only table,
-- the runner's append, and the record as the API shows it.

CREATE OR REPLACE TRIGGER permission_audits_append_only BEFORE UPDATE OR DELETE
    ON permission_audits FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER permission_audits_no_truncate BEFORE TRUNCATE
    ON permission_audits FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- Appends one audit: rec is the engine's record (perm_audit_json: scope,
-- tool_name, tool_call_id, decision, base_decision, effective_mode,
-- mode_effect?, matched_rule_pattern, matched_rule_origin, justification,
-- reason, approval_request_id) with session_id and run_id (null for none)
-- added. A missing required field fails the statement (NOT NULL). Returns
-- the row's id. The runner calls it in the transaction that acts on the
-- decision (opening the approval, or running the tool).
CREATE OR REPLACE FUNCTION kheish_permission_audit_append(rec jsonb)
    RETURNS bigint
    LANGUAGE sql
    AS $$
    INSERT INTO permission_audits (at_ms, session_id, run_id, tool_call_id, tool_name, scope,
                                   decision, base_decision, effective_mode, mode_effect,
                                   matched_rule_pattern, matched_rule_origin, justification,
                                   reason, approval_request_id)
    VALUES (kheish_now_ms(), rec->>'session_id', rec->>'run_id', rec->>'tool_call_id',
            rec->>'tool_name', rec->>'scope', rec->>'decision', rec->>'base_decision',
            rec->>'effective_mode', rec->>'mode_effect', rec->>'matched_rule_pattern',
            rec->>'matched_rule_origin', rec->>'justification', rec->>'reason',
            rec->>'approval_request_id')
    RETURNING id
$$;
COMMENT ON FUNCTION kheish_permission_audit_append(jsonb) IS
    'The runner''s append of one permission decision: the engine''s audit record plus '
    'session_id and run_id; returns its id.';

-- A row as GET /v1/sessions/{id}/permission-audits lists it: the engine's
-- record, field for field (mode_effect only when set).
CREATE OR REPLACE FUNCTION kheish_permission_audit_record(a permission_audits)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT jsonb_build_object('scope', a.scope, 'tool_name', a.tool_name,
               'tool_call_id', a.tool_call_id, 'decision', a.decision,
               'base_decision', a.base_decision, 'effective_mode', a.effective_mode,
               'matched_rule_pattern', a.matched_rule_pattern,
               'matched_rule_origin', a.matched_rule_origin, 'justification', a.justification,
               'reason', a.reason, 'approval_request_id', a.approval_request_id)
           || CASE WHEN a.mode_effect IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('mode_effect', a.mode_effect) END
$$;
COMMENT ON FUNCTION kheish_permission_audit_record(permission_audits) IS
    'A permission audit as the API shows it (upstream''s PermissionAuditRecord).';

-- The auditor's view (docs/auditing.md; rules at the top of audit.sql).
CREATE OR REPLACE VIEW audit.permission_audits AS
SELECT a.id, to_timestamp(a.at_ms / 1000.0) AS at, a.at_ms, a.session_id, a.run_id,
       a.tool_call_id, a.tool_name, a.decision, a.base_decision, a.effective_mode, a.mode_effect,
       a.scope, a.matched_rule_pattern, a.matched_rule_origin, a.reason, a.justification,
       a.approval_request_id
FROM permission_audits a;
COMMENT ON VIEW audit.permission_audits IS
    'Every permission decision of a tool call (table permission_audits, append-only).';
COMMENT ON COLUMN audit.permission_audits.id IS 'Append order.';
COMMENT ON COLUMN audit.permission_audits.at IS 'When it was recorded.';
COMMENT ON COLUMN audit.permission_audits.at_ms IS 'The same, ms since the epoch.';
COMMENT ON COLUMN audit.permission_audits.session_id IS 'The session.';
COMMENT ON COLUMN audit.permission_audits.run_id IS 'The run that called the tool, if any.';
COMMENT ON COLUMN audit.permission_audits.tool_call_id IS 'The model''s id of the call.';
COMMENT ON COLUMN audit.permission_audits.tool_name IS 'The tool.';
COMMENT ON COLUMN audit.permission_audits.decision IS 'allow, ask or deny.';
COMMENT ON COLUMN audit.permission_audits.base_decision IS 'The rule''s decision before the mode.';
COMMENT ON COLUMN audit.permission_audits.effective_mode IS 'The permission mode it was made under.';
COMMENT ON COLUMN audit.permission_audits.mode_effect IS 'What the mode changed; NULL: nothing.';
COMMENT ON COLUMN audit.permission_audits.scope IS 'The scope owning the decision.';
COMMENT ON COLUMN audit.permission_audits.matched_rule_pattern IS 'The matched rule''s pattern.';
COMMENT ON COLUMN audit.permission_audits.matched_rule_origin IS 'static or hook_update.';
COMMENT ON COLUMN audit.permission_audits.reason IS 'The reason shown to operators.';
COMMENT ON COLUMN audit.permission_audits.justification IS 'An operator''s justification, if any.';
COMMENT ON COLUMN audit.permission_audits.approval_request_id IS 'The approval an ask opened.';
GRANT SELECT ON audit.permission_audits TO kheish_auditor;
