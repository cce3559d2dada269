-- Sessions: their status, views and state event.

-- The agent status of a session follows its active run.
CREATE OR REPLACE FUNCTION session_status(sid text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce((SELECT CASE status WHEN 'waiting_for_user_question' THEN 'waiting_for_user_input'
                                    ELSE status END
                 FROM runs WHERE session_id = sid
                   AND status IN ('running', 'waiting_for_approval', 'waiting_for_user_question')),
                'idle');
END
$$;
COMMENT ON FUNCTION session_status(text) IS
    'A session''s agent status, from its active run (idle when none).';

-- How many approvals a session's runs wait for.
CREATE OR REPLACE FUNCTION session_pending_approvals(sid text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT count(*) FROM approvals a WHERE a.session_id = sid AND a.status = 'pending');
END
$$;
COMMENT ON FUNCTION session_pending_approvals(text) IS
    'How many approvals a session''s runs wait for.';

CREATE OR REPLACE FUNCTION session_summary(s sessions) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN jsonb_build_object(
    'session_id', s.session_id, 'agent_id', s.agent_id, 'status', session_status(s.session_id),
    'thread_id', s.thread_id, 'pending_approvals', session_pending_approvals(s.session_id),
    'pending_questions', 0,
    'route_policy', NULL, 'goal', NULL,
    'capability_scope', s.capability_scope, 'effective_capability_scope', s.capability_scope,
    'credential_scope', s.credential_scope, 'effective_credential_scope', s.credential_scope,
    'persona', CASE WHEN s.persona_id IS NULL THEN NULL
                    ELSE jsonb_build_object('persona_id', s.persona_id) END,
    'operator', NULL, 'tool_overrides', NULL, 'input_contract', NULL, 'output_contract', NULL,
    'reply_targets', '[]'::jsonb,
    'created_at_ms', s.created_at_ms, 'updated_at_ms', s.updated_at_ms,
    'ended_at_ms', s.ended_at_ms, 'end_reason', s.end_reason);
END
$$;
COMMENT ON FUNCTION session_summary(sessions) IS
    'The SessionSummary of a session, as the API shows it.';

-- The SessionView: the summary, a snapshot of its runs, and the newest 50
-- runs' outputs, oldest first.
CREATE OR REPLACE FUNCTION session_view(s sessions) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN session_summary(s) || jsonb_build_object(
    'snapshot', jsonb_build_object(
        'status', session_status(s.session_id),
        'active_run_id', (SELECT run_id FROM runs WHERE session_id = s.session_id
                            AND status IN ('running', 'waiting_for_approval',
                                           'waiting_for_user_question')),
        'queued_run_ids', coalesce((SELECT jsonb_agg(run_id ORDER BY run_no) FROM runs
                                    WHERE session_id = s.session_id AND status = 'queued'),
                                   '[]'::jsonb),
        'run_count', (SELECT count(*) FROM runs WHERE session_id = s.session_id),
        'pending_approvals', coalesce((SELECT rv.view::jsonb->'pending_approvals'
                                         FROM run_views rv WHERE rv.session_id = s.session_id
                                          AND rv.status = 'waiting_for_approval'), '[]'::jsonb),
        'ended', s.ended_at_ms IS NOT NULL,
        'ended_at_ms', s.ended_at_ms, 'end_reason', s.end_reason),
    'outputs', coalesce((SELECT jsonb_agg(o ORDER BY n, i) FROM (
        SELECT r.run_no AS n, t.i, t.o FROM (
            SELECT run_no, outputs FROM runs WHERE session_id = s.session_id
            AND outputs <> '[]' ORDER BY run_no DESC LIMIT 50) r,
        jsonb_array_elements(r.outputs) WITH ORDINALITY AS t(o, i)) x), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION session_view(sessions) IS
    'The SessionView: the summary, a snapshot of its runs, the newest 50 runs'' outputs.';

-- session_state_changed for a session, as read now. (Functions that read
-- tables are plpgsql: their plans are cached per connection, where a SQL
-- function is planned again at every call.)
CREATE OR REPLACE FUNCTION kheish_session_state_event(sid text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT kheish_stream_event('session_state_changed', s.session_id, NULL,
                                       jsonb_build_object(
                                           'session_id', s.session_id, 'agent_id', s.agent_id,
                                           'status', session_status(s.session_id),
                                           'pending_approvals',
                                           session_pending_approvals(s.session_id),
                                           'pending_questions', 0))
            FROM sessions s WHERE s.session_id = sid);
END
$$;
COMMENT ON FUNCTION kheish_session_state_event(text) IS
    'session_state_changed for a session, as read now.';

-- POST /v1/sessions: creates session sid, or reuses it when it exists and
-- the persona and scopes given (not null) are its own. Returns {result,
-- view}, result being created (its session_state_changed appended), reused,
-- or session_conflict (no view); actor's action records it.
CREATE OR REPLACE FUNCTION kheish_session_create(sid text, thread text, persona text,
                                                 capability jsonb, credential jsonb, actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
    s sessions;
BEGIN
    INSERT INTO sessions (session_id, agent_id, thread_id, persona_id, capability_scope,
                          credential_scope, created_at_ms, updated_at_ms)
        VALUES (sid, 'agent-' || sid, thread, persona, capability, credential, now_ms, now_ms)
        ON CONFLICT (session_id) DO NOTHING
        RETURNING * INTO s;
    IF FOUND THEN
        PERFORM kheish_append_events(jsonb_build_array(kheish_session_state_event(sid)), '[]');
        RETURN kheish_admin_answer(actor, 'session_create', sid, NULL, NULL,
            jsonb_build_object('result', 'created', 'view', session_view(s)));
    END IF;
    SELECT * INTO s FROM sessions x WHERE x.session_id = sid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session % was removed while it was created', sid
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF (persona IS NULL OR s.persona_id IS NOT DISTINCT FROM persona)
       AND (capability IS NULL OR s.capability_scope IS NOT DISTINCT FROM capability)
       AND (credential IS NULL OR s.credential_scope IS NOT DISTINCT FROM credential) THEN
        RETURN kheish_admin_answer(actor, 'session_create', sid, NULL, NULL,
            jsonb_build_object('result', 'reused', 'view', session_view(s)));
    END IF;
    RETURN kheish_admin_answer(actor, 'session_create', sid, NULL, NULL,
                               jsonb_build_object('result', 'session_conflict'));
END
$$;
COMMENT ON FUNCTION kheish_session_create(text, text, text, jsonb, jsonb, jsonb) IS
    'POST /v1/sessions: creates or reuses a session, recording actor''s action.';

-- Moves the runs of session sid that are active (queued false) or queued
-- (queued true) to to_status, oldest first. Returns {count, stream, run},
-- the events for the caller to append.
CREATE OR REPLACE FUNCTION kheish_session_stop_runs(sid text, queued boolean, to_status text)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    q record;
    ch jsonb;
    n int := 0;
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
BEGIN
    FOR q IN SELECT r.run_id FROM runs r WHERE r.session_id = sid
             AND CASE WHEN queued THEN r.status = 'queued'
                      ELSE r.status IN ('running', 'waiting_for_approval',
                                        'waiting_for_user_question') END
             ORDER BY r.run_no FOR UPDATE LOOP
        ch := kheish_run_set_status(q.run_id, to_status, NULL);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        n := n + 1;
    END LOOP;
    RETURN jsonb_build_object('count', n, 'stream', kheish_flatten(stream),
                              'run', kheish_flatten(run));
END
$$;
COMMENT ON FUNCTION kheish_session_stop_runs(text, boolean, text) IS
    'Moves a session''s active (or queued) runs to a status; returns the count and the events to append.';

-- POST /v1/sessions/{id}/interrupt: the active run, if any, is interrupted,
-- then the session's interrupted event. Returns {result: ok, interrupted,
-- snapshot} or {result: session_not_found}. actor's action is recorded and
-- linked from the run's interrupted event.
CREATE OR REPLACE FUNCTION kheish_session_interrupt(sid text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    agent text;
    stopped jsonb;
    act bigint;
BEGIN
    SELECT s.agent_id INTO agent FROM sessions s WHERE s.session_id = sid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'session_interrupt', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_not_found'));
    END IF;
    act := kheish_admin_action(actor, 'session_interrupt', sid, NULL, NULL, 'ok');
    stopped := kheish_session_stop_runs(sid, false, 'interrupted');
    IF (stopped->>'count')::int > 0 THEN
        PERFORM kheish_append_events(
            stopped->'stream' || jsonb_build_array(kheish_stream_event('interrupted', sid, NULL,
                jsonb_build_object('session_id', sid, 'agent_id', agent))),
            kheish_run_events_by(stopped->'run', act));
    END IF;
    RETURN jsonb_build_object('result', 'ok', 'interrupted', (stopped->>'count')::int > 0,
        'snapshot', (SELECT session_view(s) FROM sessions s WHERE s.session_id = sid)->'snapshot');
END
$$;
COMMENT ON FUNCTION kheish_session_interrupt(text, jsonb) IS
    'POST /v1/sessions/{id}/interrupt: interrupts the active run, recording actor''s action.';

-- POST /v1/sessions/{id}/end: its active run interrupted, its queued runs
-- cancelled, the session ended with reason, and its session_state_changed;
-- an ended session is left as it is. Returns {result: ok, view} or
-- {result: session_not_found}. actor's action is recorded; the session's
-- ended_by and the runs' events link to it.
CREATE OR REPLACE FUNCTION kheish_session_end(sid text, reason text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    ended bigint;
    active jsonb;
    queued jsonb;
    act bigint;
BEGIN
    SELECT s.ended_at_ms INTO ended FROM sessions s WHERE s.session_id = sid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'session_end', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_not_found'));
    END IF;
    act := kheish_admin_action(actor, 'session_end', sid, NULL, NULL, 'ok');
    IF ended IS NULL THEN
        active := kheish_session_stop_runs(sid, false, 'interrupted');
        queued := kheish_session_stop_runs(sid, true, 'cancelled');
        UPDATE sessions SET ended_at_ms = kheish_now_ms(), end_reason = reason,
                            updated_at_ms = kheish_now_ms(), ended_by = act
        WHERE session_id = sid;
        PERFORM kheish_append_events(
            (active->'stream') || (queued->'stream')
                || jsonb_build_array(kheish_session_state_event(sid)),
            kheish_run_events_by((active->'run') || (queued->'run'), act));
    END IF;
    RETURN jsonb_build_object('result', 'ok',
        'view', (SELECT session_view(s) FROM sessions s WHERE s.session_id = sid));
END
$$;
COMMENT ON FUNCTION kheish_session_end(text, text, jsonb) IS
    'POST /v1/sessions/{id}/end: stops its runs and ends the session, recording actor''s '
    'action (sessions.ended_by).';
