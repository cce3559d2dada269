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

CREATE OR REPLACE FUNCTION session_summary(s sessions) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN jsonb_build_object(
    'session_id', s.session_id, 'agent_id', s.agent_id, 'status', session_status(s.session_id),
    'thread_id', s.thread_id, 'pending_approvals', 0, 'pending_questions', 0,
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
        'ended', s.ended_at_ms IS NOT NULL,
        'ended_at_ms', s.ended_at_ms, 'end_reason', s.end_reason),
    'outputs', coalesce((SELECT jsonb_agg(o ORDER BY n, i) FROM (
        SELECT r.run_no AS n, t.i, t.o FROM (
            SELECT run_no, outputs FROM runs WHERE session_id = s.session_id
            AND outputs <> '[]' ORDER BY run_no DESC LIMIT 50) r,
        jsonb_array_elements(r.outputs) WITH ORDINALITY AS t(o, i)) x), '[]'::jsonb));
END
$$;

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
                                           'pending_approvals', 0, 'pending_questions', 0))
            FROM sessions s WHERE s.session_id = sid);
END
$$;
