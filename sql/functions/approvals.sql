-- Approvals (migration 019, contract §8): opened when a run waits, resolved
-- by operators in atomic batches, expired by the maintenance pass, and the
-- run resumed by whichever runner claims it (kheish_work, work.sql).

-- The id of the approval of the call at position of turn of run rid:
-- approval-<run number>-<turn>-<position>, the same every time it is made.
CREATE OR REPLACE FUNCTION kheish_approval_id(rid text, turn int, "position" int) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'approval-' || substr(rid, 5) || '-' || turn || '-' || "position" $$;
COMMENT ON FUNCTION kheish_approval_id(text, integer, integer) IS
    'The id of the approval of a run''s tool call: approval-<run number>-<turn>-<position>.';

-- Opens an approval for each call of run rid (session sid) that the
-- permission engine asked for and that has no result, expiring ttl_ms after
-- now when ttl_ms > 0. Returns how many are pending.
CREATE OR REPLACE FUNCTION kheish_approvals_open(rid text, sid text, ttl_ms bigint) RETURNS int
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
BEGIN
    INSERT INTO approvals (request_id, run_id, tool_call_id, session_id, tool_name, input, scope,
                           reason, created_at_ms, expires_at_ms)
    SELECT kheish_approval_id(rid, c.turn, c.position), rid, c.tool_call_id, sid, c.name,
           coalesce(c.input, '{}'), coalesce(p.scope, 'session'),
           coalesce(c.reason, 'approval required'), now_ms,
           CASE WHEN ttl_ms > 0 THEN now_ms + ttl_ms END
      FROM tool_calls c
      LEFT JOIN LATERAL (SELECT a.scope FROM permission_audits a
                          WHERE a.run_id = rid AND a.tool_call_id = c.tool_call_id
                          ORDER BY a.id LIMIT 1) p ON true
     WHERE c.run_id = rid AND c.decision = 'ask' AND c.result IS NULL
        ON CONFLICT DO NOTHING;
    RETURN (SELECT count(*) FROM approvals a WHERE a.run_id = rid AND a.status = 'pending');
END
$$;
COMMENT ON FUNCTION kheish_approvals_open(text, text, bigint) IS
    'Opens the approvals of a run''s calls asked and not answered; returns how many are pending.';

-- After approvals of run rid were resolved (resolved: the resolutions as the
-- approval_resolved run event lists them), caused by admin action act (NULL:
-- the maintenance pass): appends approval_resolved, then, when none of the
-- run's is pending any more, moves it to running without a runner, for any
-- to claim; else its run_updated and session_state_changed (the pending list
-- changed). Returns the RunView.
CREATE OR REPLACE FUNCTION kheish_approvals_settle(rid text, resolved jsonb, act bigint)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    r record;
    ch jsonb;
    v jsonb;
    stream jsonb;
    run jsonb;
BEGIN
    SELECT x.session_id, x.agent_id INTO r FROM runs x WHERE x.run_id = rid;
    run := jsonb_build_array(jsonb_build_object(
        'run_id', rid, 'session_id', r.session_id, 'agent_id', r.agent_id,
        'event', jsonb_build_object('type', 'approval_resolved', 'resolutions', resolved)));
    IF EXISTS (SELECT 1 FROM approvals a WHERE a.run_id = rid AND a.status = 'pending') THEN
        SELECT rv.view::jsonb INTO v FROM run_views rv WHERE rv.run_id = rid;
        stream := jsonb_build_array(
            kheish_stream_event('run_updated', r.session_id, rid, jsonb_build_object('run', v)),
            kheish_session_state_event(r.session_id));
    ELSE
        ch := kheish_run_set_status(rid, 'running', NULL);
        v := ch->'view';
        stream := ch->'stream';
        run := run || (ch->'run');
    END IF;
    PERFORM kheish_append_events(stream, kheish_run_events_by(run, act));
    RETURN v;
END
$$;
COMMENT ON FUNCTION kheish_approvals_settle(text, jsonb, bigint) IS
    'Appends approval_resolved for a run and resumes it once none of its approvals is pending; '
    'returns its RunView.';

-- POST /v1/runs/{id}/approvals (rid given) and /v1/sessions/{id}/approvals
-- and /approval-runs (sid given: the session's run waiting for approval).
-- resolutions: [{request_id, behavior allow|deny, updated_input?,
-- justification?, reason?}], checked for shape by the API. The batch is
-- atomic: a request id twice (approval_duplicate), one that is not the
-- run's (approval_unknown) or no longer pending (approval_stale) refuses
-- it all. idem_key, when given, with fingerprint (of the body): the same
-- key and body again answer the run as it is now (replayed), another body
-- is idempotency_conflict. Each resolution copies the call's permission
-- audit with its new decision. Returns {result, view, session_id}; actor's
-- action is recorded and linked from the run events.
CREATE OR REPLACE FUNCTION kheish_approvals_resolve(sid text, rid text, resolutions jsonb,
                                                    idem_key text, fingerprint text, actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
    st text;
    prior record;
    bad text;
    act bigint;
    resolved jsonb;
BEGIN
    IF rid IS NOT NULL THEN
        SELECT r.session_id INTO sid FROM runs r WHERE r.run_id = rid;
        IF NOT FOUND THEN
            RETURN kheish_admin_answer(actor, 'approval_resolve', NULL, rid, NULL,
                                       jsonb_build_object('result', 'run_not_found'));
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = sid) THEN
        RETURN kheish_admin_answer(actor, 'approval_resolve', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_not_found'));
    END IF;
    IF idem_key IS NOT NULL THEN
        -- Requests with the same key wait for each other here: the later
        -- one then sees the key the first committed (a replay, or a
        -- conflict), never a half-done race.
        PERFORM pg_advisory_xact_lock(hashtext('kheish_resolution_key'),
                                      hashtext(sid || '/' || idem_key));
        SELECT k.run_id, k.fingerprint = kheish_approvals_resolve.fingerprint
                         AND (rid IS NULL OR k.run_id = rid) AS same
          INTO prior FROM resolution_keys k
         WHERE k.session_id = sid AND k.kind = 'approvals' AND k.idempotency_key = idem_key;
        IF FOUND THEN
            RETURN kheish_admin_answer(actor, 'approval_resolve', sid, prior.run_id, NULL,
                jsonb_build_object('result', CASE WHEN prior.same THEN 'replayed'
                                                  ELSE 'idempotency_conflict' END,
                                   'session_id', sid,
                                   'view', (SELECT rv.view::jsonb FROM run_views rv
                                             WHERE rv.run_id = prior.run_id)));
        END IF;
    END IF;
    IF rid IS NULL THEN
        SELECT r.run_id INTO rid FROM runs r
         WHERE r.session_id = sid AND r.status = 'waiting_for_approval';
    END IF;
    SELECT r.status INTO st FROM runs r WHERE r.run_id = rid FOR UPDATE;
    IF st IS DISTINCT FROM 'waiting_for_approval' THEN
        RETURN kheish_admin_answer(actor, 'approval_resolve', sid, rid, NULL,
                                   jsonb_build_object('result', 'approval_state_conflict'));
    END IF;
    SELECT CASE WHEN n > 1 THEN 'approval_duplicate'
                WHEN a.request_id IS NULL THEN 'approval_unknown'
                ELSE 'approval_stale' END
      INTO bad
      FROM (SELECT x->>'request_id' AS id, count(*) AS n
              FROM jsonb_array_elements(resolutions) x GROUP BY 1) q
      LEFT JOIN approvals a ON a.request_id = q.id AND a.run_id = rid
     WHERE n > 1 OR a.request_id IS NULL OR a.status <> 'pending'
     ORDER BY n > 1 DESC, a.request_id IS NULL DESC LIMIT 1;
    IF bad IS NOT NULL THEN
        RETURN kheish_admin_answer(actor, 'approval_resolve', sid, rid, NULL,
                                   jsonb_build_object('result', bad));
    END IF;
    act := kheish_admin_action(actor, 'approval_resolve', sid, rid, NULL, 'ok');
    WITH done AS (
        UPDATE approvals a SET
            status = CASE x->>'behavior' WHEN 'allow' THEN 'allowed' ELSE 'denied' END,
            resolved_at_ms = now_ms,
            updated_input = CASE WHEN jsonb_typeof(x->'updated_input') = 'object'
                                 THEN x->'updated_input' END,
            justification = x->>'justification',
            resolution_reason = CASE x->>'behavior' WHEN 'allow' THEN x->>'reason'
                                     ELSE coalesce(x->>'reason', 'approval denied') END,
            admin_action_id = act
          FROM jsonb_array_elements(resolutions) WITH ORDINALITY AS t(x, i)
         WHERE a.request_id = x->>'request_id' AND a.run_id = rid AND a.status = 'pending'
        RETURNING a.*, t.x, t.i),
    audited AS (
        INSERT INTO permission_audits (at_ms, session_id, run_id, tool_call_id, tool_name,
                                       scope, decision, base_decision, effective_mode,
                                       mode_effect, matched_rule_pattern, matched_rule_origin,
                                       justification, reason, approval_request_id)
        SELECT now_ms, d.session_id, d.run_id, d.tool_call_id, d.tool_name, p.scope,
               CASE d.status WHEN 'allowed' THEN 'allow' ELSE 'deny' END, p.base_decision,
               p.effective_mode, p.mode_effect, p.matched_rule_pattern, p.matched_rule_origin,
               d.justification, d.resolution_reason, d.request_id
          FROM done d
          JOIN LATERAL (SELECT * FROM permission_audits a
                         WHERE a.run_id = d.run_id AND a.tool_call_id = d.tool_call_id
                         ORDER BY a.id LIMIT 1) p ON true)
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'request_id', d.request_id, 'behavior', d.x->'behavior',
               'justification', d.justification, 'reason', d.resolution_reason))
               || CASE WHEN d.updated_input IS NOT NULL
                       THEN jsonb_build_object('updated_input', d.updated_input)
                       ELSE '{}' END
               ORDER BY d.i)
      INTO resolved FROM done d;
    IF idem_key IS NOT NULL THEN
        INSERT INTO resolution_keys VALUES (sid, 'approvals', idem_key, rid, fingerprint, now_ms);
    END IF;
    RETURN jsonb_build_object('result', 'ok', 'session_id', sid,
                              'view', kheish_approvals_settle(rid, resolved, act));
END
$$;
COMMENT ON FUNCTION kheish_approvals_resolve(text, text, jsonb, text, text, jsonb) IS
    'Resolves a batch of a run''s approvals atomically (allow or deny), with idempotency; '
    'resumes the run once none is pending.';

-- The maintenance pass: approvals pending past their expires_at_ms are
-- expired, up to max waiting runs (longest waiting first), each on its own (a run that cannot be settled is
-- reported and left). Returns {expired: runs settled, failed: [{run_id,
-- reason}]}.
CREATE OR REPLACE FUNCTION kheish_approvals_expire(max int) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
    q record;
    resolved jsonb;
    n int := 0;
    failed jsonb := '[]';
BEGIN
    FOR q IN SELECT r.run_id FROM runs r
              WHERE r.status = 'waiting_for_approval'
                AND EXISTS (SELECT 1 FROM approvals a WHERE a.run_id = r.run_id
                               AND a.status = 'pending' AND a.expires_at_ms <= now_ms)
              ORDER BY r.updated_at_ms LIMIT max FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            WITH done AS (
                UPDATE approvals a SET status = 'expired', resolved_at_ms = now_ms,
                       resolution_reason = 'the approval request expired unanswered'
                 WHERE a.run_id = q.run_id AND a.status = 'pending' AND a.expires_at_ms <= now_ms
                RETURNING a.request_id, a.resolution_reason)
            SELECT jsonb_agg(jsonb_build_object('request_id', d.request_id, 'behavior', 'deny',
                                                'reason', d.resolution_reason, 'expired', true)
                             ORDER BY d.request_id)
              INTO resolved FROM done d;
            PERFORM kheish_approvals_settle(q.run_id, resolved, NULL);
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            failed := failed || jsonb_build_object('run_id', q.run_id, 'reason', SQLERRM);
        END;
    END LOOP;
    RETURN jsonb_build_object('expired', n, 'failed', failed);
END
$$;
COMMENT ON FUNCTION kheish_approvals_expire(integer) IS
    'Expires approvals pending past their expiry, each run on its own, and resumes the runs.';

-- What a runner resuming run rid needs of it: its turns, oldest first, each
-- {turn, text, calls: [{tool_call_id, name, input, result, is_error,
-- approval: {request_id, status, updated_input, reason} or null}]} in
-- their order. A call without a result is one to make (or refuse) now.
CREATE OR REPLACE FUNCTION kheish_run_resume(rid text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce((
        SELECT jsonb_agg(jsonb_build_object('turn', t.turn, 'text', t.text, 'calls', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'tool_call_id', c.tool_call_id, 'name', c.name, 'input', c.input,
                              'result', c.result, 'is_error', c.is_error,
                              'approval', (SELECT jsonb_build_object(
                                                      'request_id', a.request_id,
                                                      'status', a.status,
                                                      'updated_input', a.updated_input,
                                                      'reason', a.resolution_reason)
                                             FROM approvals a
                                            WHERE a.run_id = rid
                                              AND a.tool_call_id = c.tool_call_id))
                                    ORDER BY c.position)
                     FROM tool_calls c WHERE c.run_id = rid AND c.turn = t.turn), '[]'))
               ORDER BY t.turn)
          FROM run_turns t WHERE t.run_id = rid), '[]');
END
$$;
COMMENT ON FUNCTION kheish_run_resume(text) IS
    'A resumed run''s turns and tool calls (with their approvals), for the runner that claims it.';

CREATE OR REPLACE VIEW audit.approvals AS
SELECT a.request_id, a.run_id, a.session_id, a.tool_call_id, a.tool_name, a.input, a.scope,
       a.reason, a.status, to_timestamp(a.created_at_ms / 1000.0) AS created_at,
       to_timestamp(a.expires_at_ms / 1000.0) AS expires_at,
       to_timestamp(a.resolved_at_ms / 1000.0) AS resolved_at, a.updated_input,
       a.justification, a.resolution_reason, a.admin_action_id
FROM approvals a;
COMMENT ON VIEW audit.approvals IS
    'Every approval a run waited for, and how it was resolved (table approvals).';
COMMENT ON COLUMN audit.approvals.request_id IS 'The approval''s id.';
COMMENT ON COLUMN audit.approvals.run_id IS 'The run that waited.';
COMMENT ON COLUMN audit.approvals.session_id IS 'Its session.';
COMMENT ON COLUMN audit.approvals.tool_call_id IS 'The tool call asked about.';
COMMENT ON COLUMN audit.approvals.tool_name IS 'The tool.';
COMMENT ON COLUMN audit.approvals.input IS 'The input the model gave it.';
COMMENT ON COLUMN audit.approvals.scope IS 'The scope of the permission decision.';
COMMENT ON COLUMN audit.approvals.reason IS 'Why the permission engine asked.';
COMMENT ON COLUMN audit.approvals.status IS 'pending, allowed, denied, expired or withdrawn.';
COMMENT ON COLUMN audit.approvals.created_at IS 'When it was opened.';
COMMENT ON COLUMN audit.approvals.expires_at IS 'When it expires unanswered; NULL: never.';
COMMENT ON COLUMN audit.approvals.resolved_at IS 'When it stopped being pending.';
COMMENT ON COLUMN audit.approvals.updated_input IS 'The input the operator allowed instead, if any.';
COMMENT ON COLUMN audit.approvals.justification IS 'The operator''s justification, if given.';
COMMENT ON COLUMN audit.approvals.resolution_reason IS 'Why it was denied, expired or withdrawn.';
COMMENT ON COLUMN audit.approvals.admin_action_id IS 'The operator''s request that resolved it (audit.admin_actions).';
GRANT SELECT ON audit.approvals TO kheish_auditor;
