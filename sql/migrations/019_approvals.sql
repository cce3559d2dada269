-- 019: approvals (contract §8; issue 15).
--
-- A tool call the permission engine answers with ask opens an approval: the
-- runner reports its turn with the status waiting_for_approval, and
-- kheish_work (sql/functions/work.sql) moves the run there and opens one
-- approval per call asked, in the statement that records the turn. The run
-- then holds no runner: an operator resolves the approvals (allow, with the
-- input maybe changed, or deny) through the API, in atomic batches
-- (kheish_approvals_resolve, sql/functions/approvals.sql), and once none of
-- the run's is pending the run is running again without a lease: any
-- runner claims it, rebuilds its conversation from run_turns and tool_calls
-- and carries on. An approval may expire (the runner's
-- KHEISH_APPROVAL_TTL_MS; upstream has no expiry): the maintenance pass then
-- records it as expired, which the model is told apart from a denial.
--
-- A run resumed: running with no lease owner. The claim takes those first
-- (runs_resumable), and recovery leaves them alone: no runner holds them.

CREATE TABLE approvals (
    request_id        text PRIMARY KEY,
    run_id            text NOT NULL,
    tool_call_id      text NOT NULL,
    session_id        text NOT NULL,
    tool_name         text NOT NULL,
    input             jsonb NOT NULL,
    scope             text NOT NULL,
    reason            text NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'allowed', 'denied', 'expired', 'withdrawn')),
    created_at_ms     bigint NOT NULL,
    expires_at_ms     bigint,
    resolved_at_ms    bigint,
    updated_input     jsonb,
    justification     text,
    resolution_reason text,
    admin_action_id   bigint,
    FOREIGN KEY (run_id, tool_call_id) REFERENCES tool_calls,
    UNIQUE (run_id, tool_call_id),
    CHECK ((status = 'pending') = (resolved_at_ms IS NULL))
);
CREATE INDEX approvals_pending ON approvals (run_id) WHERE status = 'pending';
CREATE INDEX approvals_pending_session ON approvals (session_id) WHERE status = 'pending';
CREATE INDEX approvals_expiring ON approvals (expires_at_ms)
    WHERE status = 'pending' AND expires_at_ms IS NOT NULL;

-- The idempotency keys of resolutions: the same key and body again answer
-- the run as it is now; another body under the key is refused.
CREATE TABLE resolution_keys (
    session_id      text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('approvals')),
    idempotency_key text NOT NULL,
    run_id          text NOT NULL,
    fingerprint     text NOT NULL,
    created_at_ms   bigint NOT NULL,
    PRIMARY KEY (session_id, kind, idempotency_key)
);

-- The permission audit of a call (an approval copies the decision it resolves).
CREATE INDEX permission_audits_call ON permission_audits (run_id, tool_call_id);

CREATE INDEX runs_resumable ON runs (updated_at_ms)
    WHERE status = 'running' AND lease_owner IS NULL;

-- An operator's resolution is an admin action like the others.
ALTER TABLE admin_actions DROP CONSTRAINT admin_actions_action_check,
    ADD CONSTRAINT admin_actions_action_check CHECK (action IN (
        'session_create', 'session_interrupt', 'session_end', 'run_submit', 'run_cancel',
        'run_transition', 'runtime_change', 'slot_put', 'slot_delete', 'slot_revoke_leases',
        'subject_revoke', 'lease_revoke', 'approval_resolve'));

GRANT SELECT, INSERT, UPDATE ON approvals TO kheish_app;
GRANT SELECT, INSERT ON resolution_keys TO kheish_app;

COMMENT ON TABLE approvals IS
    'Each approval a run waited for (contract §8): the tool call asked, and how it was resolved.';
COMMENT ON COLUMN approvals.request_id IS 'The approval''s id: approval-<run number>-<turn>-<position>.';
COMMENT ON COLUMN approvals.run_id IS 'The run that waits for it.';
COMMENT ON COLUMN approvals.tool_call_id IS 'The tool call it is for (tool_calls).';
COMMENT ON COLUMN approvals.session_id IS 'The run''s session.';
COMMENT ON COLUMN approvals.tool_name IS 'The tool the model called.';
COMMENT ON COLUMN approvals.input IS 'The input the model gave the tool.';
COMMENT ON COLUMN approvals.scope IS 'The scope of the permission decision (user, project or session).';
COMMENT ON COLUMN approvals.reason IS 'Why the permission engine asked.';
COMMENT ON COLUMN approvals.status IS
    'pending; allowed or denied by an operator; expired (no answer in time); withdrawn (the run ended first).';
COMMENT ON COLUMN approvals.created_at_ms IS 'When it was opened (the database''s clock).';
COMMENT ON COLUMN approvals.expires_at_ms IS 'When it expires unanswered; NULL: never.';
COMMENT ON COLUMN approvals.resolved_at_ms IS 'When it stopped being pending.';
COMMENT ON COLUMN approvals.updated_input IS 'The input the operator allowed instead of the model''s, if any.';
COMMENT ON COLUMN approvals.justification IS 'The operator''s justification, if given.';
COMMENT ON COLUMN approvals.resolution_reason IS 'Why it was denied, expired or withdrawn.';
COMMENT ON COLUMN approvals.admin_action_id IS 'The operator''s request that resolved it (admin_actions).';
COMMENT ON TABLE resolution_keys IS
    'Idempotency keys of approval resolutions: a retry with the same key and body is answered again.';
COMMENT ON COLUMN resolution_keys.session_id IS 'The session of the run resolved.';
COMMENT ON COLUMN resolution_keys.kind IS 'What was resolved: approvals.';
COMMENT ON COLUMN resolution_keys.idempotency_key IS 'The client''s key.';
COMMENT ON COLUMN resolution_keys.run_id IS 'The run the first request resolved.';
COMMENT ON COLUMN resolution_keys.fingerprint IS 'SHA-256 of the first request''s canonical body.';
COMMENT ON COLUMN resolution_keys.created_at_ms IS 'When the first request was answered.';
COMMENT ON INDEX approvals_pending IS 'The pending approvals of a run.';
COMMENT ON INDEX approvals_pending_session IS 'The pending approvals of a session.';
COMMENT ON INDEX permission_audits_call IS 'The permission audits of a tool call.';
COMMENT ON INDEX approvals_expiring IS 'Pending approvals that may expire, soonest first.';
COMMENT ON INDEX runs_resumable IS 'Runs resumed after a wait, for any runner to claim.';
