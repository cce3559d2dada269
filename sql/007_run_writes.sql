-- 007: the run state machine's writes as database functions, and the
-- runner's batches.
--
-- A status change (kheish_run_set_status) updates the run and returns the
-- events it makes: the run event, run_updated with the new RunView, and
-- session_state_changed when the session's active run changed. The API
-- (store/runs.c, store/sessions.c), restart recovery and the runner's batches
-- all go through it, so the events of a transition are written in one place.
-- Callers append the events last (kheish_append_events), as ever.
--
-- The runner claims several runs (kheish_claim_runs) and ends several
-- (kheish_finish_runs) in one statement each: one round trip, one commit,
-- one events append and one NOTIFY for the batch, whatever its size.

-- The persisted RunEventEntry payload for entering status to.
CREATE FUNCTION kheish_run_event(to_status text, view jsonb, error text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT CASE to_status
    WHEN 'running' THEN jsonb_build_object('type', 'started')
    WHEN 'queued' THEN jsonb_build_object('type', 'queued', 'position', view->'queued_position')
    WHEN 'failed' THEN jsonb_strip_nulls(jsonb_build_object('type', 'failed', 'error', error))
    ELSE jsonb_build_object('type', to_status) END
$$;

-- A stream event as kheish_append_events takes it; data gets its "type".
CREATE FUNCTION kheish_stream_event(name text, session_id text, run_id text, data jsonb)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT jsonb_strip_nulls(jsonb_build_object('name', name, 'session_id', session_id,
                                            'run_id', run_id))
       || jsonb_build_object('data', data || jsonb_build_object('type', name))
$$;

-- session_state_changed for a session, as read now.
CREATE FUNCTION kheish_session_state_event(sid text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT kheish_stream_event('session_state_changed', s.session_id, NULL, jsonb_build_object(
           'session_id', s.session_id, 'agent_id', s.agent_id,
           'status', session_status(s.session_id), 'pending_approvals', 0,
           'pending_questions', 0))
FROM sessions s WHERE s.session_id = sid
$$;

-- The events of a run that just became visible as queued (a submission):
-- accepted, queued and run_updated. Returns {view, stream, run}.
CREATE FUNCTION kheish_run_submitted(id text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'view', v,
    'stream', jsonb_build_array(
        kheish_stream_event('run_updated', v->>'session_id', id, jsonb_build_object('run', v))),
    'run', jsonb_build_array(
        jsonb_build_object('run_id', id, 'session_id', v->'session_id', 'agent_id', v->'agent_id',
                           'event', jsonb_build_object('type', 'accepted')),
        jsonb_build_object('run_id', id, 'session_id', v->'session_id', 'agent_id', v->'agent_id',
                           'event', kheish_run_event('queued', v, NULL))))
FROM (SELECT run_view(r) AS v FROM runs r WHERE r.run_id = id) x
$$;

-- Moves a run to status to (the transition trigger refuses what the state
-- machine does not allow, SQLSTATE KH409). error, when given, is recorded;
-- lease_owner and lease_expires_at_ms are kept only while running (given
-- ones replace them); outputs, when given, replace the run's. Returns
-- {view, stream, run} (the events to append), or NULL when there is no such
-- run.
CREATE FUNCTION kheish_run_set_status(id text, to_status text, error text,
                                      lease_owner text DEFAULT NULL,
                                      lease_expires_at_ms bigint DEFAULT NULL,
                                      outputs jsonb DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
    active text[] := ARRAY['running', 'waiting_for_approval', 'waiting_for_user_question'];
    old_status text;
    v jsonb;
    stream jsonb;
BEGIN
    SELECT r.status INTO old_status FROM runs r WHERE r.run_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE runs r SET
        status = to_status, updated_at_ms = now_ms,
        started_at_ms = CASE WHEN to_status = 'running' THEN coalesce(r.started_at_ms, now_ms)
                             ELSE r.started_at_ms END,
        finished_at_ms = CASE WHEN to_status IN ('completed', 'failed', 'interrupted', 'cancelled')
                              THEN now_ms END,
        error = coalesce(kheish_run_set_status.error, r.error),
        outputs = coalesce(kheish_run_set_status.outputs, r.outputs),
        lease_owner = CASE WHEN to_status = 'running'
            THEN coalesce(kheish_run_set_status.lease_owner, r.lease_owner) END,
        lease_expires_at_ms = CASE WHEN to_status = 'running'
            THEN coalesce(kheish_run_set_status.lease_expires_at_ms, r.lease_expires_at_ms) END
    WHERE r.run_id = id;
    SELECT run_view(r) INTO v FROM runs r WHERE r.run_id = id;
    stream := jsonb_build_array(
        kheish_stream_event('run_updated', v->>'session_id', id, jsonb_build_object('run', v)));
    IF old_status = ANY (active) OR to_status = ANY (active) THEN
        stream := stream || kheish_session_state_event(v->>'session_id');
    END IF;
    RETURN jsonb_build_object(
        'view', v, 'stream', stream,
        'run', jsonb_build_array(jsonb_build_object(
            'run_id', id, 'session_id', v->'session_id', 'agent_id', v->'agent_id',
            'event', kheish_run_event(to_status, v, error))));
END
$$;

-- The conversation of a session before run run_no: its last history_runs
-- completed runs, each one's input then its outputs, oldest first, as
-- [{role, text}].
CREATE FUNCTION kheish_conversation(sid text, run_no bigint, history_runs int) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
WITH h AS (SELECT r.run_no, r.payload->>'content' AS input, r.outputs FROM runs r
           WHERE r.session_id = sid AND r.status = 'completed'
           AND r.run_no < kheish_conversation.run_no
           ORDER BY r.run_no DESC LIMIT history_runs)
SELECT coalesce(jsonb_agg(m ORDER BY n, k), '[]') FROM (
    SELECT h.run_no AS n, 0 AS k, jsonb_build_object('role', 'user', 'text', h.input) AS m
    FROM h WHERE h.input <> ''
    UNION ALL
    SELECT h.run_no, 1, jsonb_build_object('role', 'assistant', 'text', o->>'content')
    FROM h, jsonb_array_elements(h.outputs) o WHERE o->>'content' <> '') t
$$;
-- ... and the index it reads (the session view's outputs read it too).
DROP INDEX runs_session_outputs;
CREATE INDEX runs_session_no ON runs (session_id, run_no);

-- Claims up to max runnable runs for owner, oldest first: a queued run at
-- the head of its session with nothing active before it, skipping runs
-- another runner is claiming. Each becomes running with the lease; their
-- events are appended. Returns [{run_id, session_id, agent_id, kind,
-- payload, history}], history being the conversation so far.
CREATE FUNCTION kheish_claim_runs(owner text, lease_ms bigint, max int, history_runs int)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    q record;
    ch jsonb;
    claimed jsonb := '[]';
    stream jsonb := '[]';
    run jsonb := '[]';
BEGIN
    FOR q IN SELECT c.run_id, c.session_id, c.agent_id, c.kind, c.run_no, c.payload FROM runs c
             WHERE c.status = 'queued' AND NOT EXISTS (
                 SELECT 1 FROM runs o WHERE o.session_id = c.session_id AND o.run_no < c.run_no
                 AND o.status IN ('queued', 'running', 'waiting_for_approval',
                                  'waiting_for_user_question'))
             ORDER BY c.run_no LIMIT max FOR UPDATE OF c SKIP LOCKED LOOP
        ch := kheish_run_set_status(q.run_id, 'running', NULL, owner, kheish_now_ms() + lease_ms);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        claimed := claimed || jsonb_build_object(
            'run_id', q.run_id, 'session_id', q.session_id, 'agent_id', q.agent_id,
            'kind', q.kind, 'payload', q.payload,
            'history', kheish_conversation(q.session_id, q.run_no, history_runs));
    END LOOP;
    IF jsonb_array_length(claimed) > 0 THEN
        PERFORM kheish_append_events(stream, run);
    END IF;
    RETURN claimed;
END
$$;

-- Ends runs of owner, each as [{run_id, status, error, text, traces}] says:
-- its trace events not sent yet (traces, an array of trace objects), its
-- output (text, when not null: one DaemonOutputRecord and an output event),
-- and its status (completed, failed or interrupted) with error. A run that
-- is no longer owner's running run (cancelled, interrupted or recovered in
-- the meantime) is left as it is. Returns the ids of the runs it ended.
CREATE FUNCTION kheish_finish_runs(owner text, outcomes jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    o jsonb;
    sid text;
    rid text;
    output jsonb;
    ch jsonb;
    ended jsonb := '[]';
    stream jsonb := '[]';
    run jsonb := '[]';
BEGIN
    FOR o IN SELECT e FROM jsonb_array_elements(outcomes) e LOOP
        rid := o->>'run_id';
        SELECT r.session_id INTO sid FROM runs r
        WHERE r.run_id = rid AND r.status = 'running' AND r.lease_owner = owner FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        stream := stream || coalesce((SELECT jsonb_agg(kheish_stream_event(
                      'trace', sid, rid, jsonb_build_object('trace', t)) ORDER BY i)
                  FROM jsonb_array_elements(o->'traces') WITH ORDINALITY AS x(t, i)), '[]');
        output := CASE WHEN o->>'text' IS NOT NULL THEN jsonb_build_object(
                      'session_id', sid, 'run_id', rid, 'plugin', 'api', 'address', NULL,
                      'content', o->>'text', 'parts', '[]'::jsonb, 'artifacts', '[]'::jsonb,
                      'source_kind', 'assistant_text') END;
        IF output IS NOT NULL THEN
            stream := stream || kheish_stream_event('output', sid, rid,
                                                    jsonb_build_object('output', output));
        END IF;
        ch := kheish_run_set_status(rid, o->>'status', o->>'error', NULL, NULL,
                                    CASE WHEN output IS NOT NULL THEN jsonb_build_array(output) END);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        ended := ended || to_jsonb(rid);
    END LOOP;
    IF jsonb_array_length(ended) > 0 THEN
        PERFORM kheish_append_events(stream, run);
    END IF;
    RETURN ended;
END
$$;
