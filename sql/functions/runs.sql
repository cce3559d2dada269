-- Runs: the state machine's guard, the wake-ups, the RunView, and every
-- write of a run: submit (kheish_run_submit) and each status change
-- (kheish_run_set_status, which every transition goes through, so the
-- events of a transition are made in one place).

-- The run state machine of the contract (section 3): the trigger refuses
-- every status change that run_transitions does not list, whoever issues it.
CREATE OR REPLACE FUNCTION runs_guard_transition() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM run_transitions
                   WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'run % cannot go from % to %', OLD.run_id, OLD.status, NEW.status
            USING ERRCODE = 'KH409';
    END IF;
    -- Queue order: a queued run starts only when it is the oldest queued one of its session.
    IF OLD.status = 'queued' AND NEW.status = 'running' AND EXISTS (
        SELECT 1 FROM runs q WHERE q.session_id = OLD.session_id
                               AND q.status = 'queued' AND q.run_no < OLD.run_no) THEN
        RAISE EXCEPTION 'run % is not at the head of session % queue', OLD.run_id, OLD.session_id
            USING ERRCODE = 'KH409';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION runs_guard_transition() IS
    'Trigger: refuses every run status change run_transitions does not list (KH409), and a start that is not its session''s queue head.';
CREATE OR REPLACE TRIGGER runs_guard_transition BEFORE UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_guard_transition();

-- Wake-ups come from the database itself, so psql writers wake runners too:
-- a run that becomes queued, an active run that ends (its session's next
-- run may start), or a run resumed after a wait (running without a runner)
-- NOTIFYs kheish_runs; a run that is cancelled or
-- interrupted while a runner may be executing it NOTIFYs kheish_control
-- with its id, and that runner aborts its provider call.
CREATE OR REPLACE FUNCTION runs_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    was_active boolean := TG_OP = 'UPDATE' AND OLD.status IN
        ('running', 'waiting_for_approval', 'waiting_for_user_question');
BEGIN
    IF NEW.status = 'queued' OR (was_active AND NEW.status IN
            ('completed', 'failed', 'interrupted', 'cancelled'))
       OR (NEW.status = 'running' AND NEW.lease_owner IS NULL) THEN
        PERFORM pg_notify('kheish_runs', '');
    END IF;
    IF was_active AND NEW.status IN ('interrupted', 'cancelled') THEN
        PERFORM pg_notify('kheish_control', NEW.run_id);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION runs_notify() IS
    'Trigger: NOTIFYs kheish_runs when a run is queued, resumed or an active run ends, and kheish_control with the run id when an active run is cancelled or interrupted.';
CREATE OR REPLACE TRIGGER runs_notify AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_notify();

-- The RunView of each run, as json text: a read (GET /v1/runs/{id}, the
-- run list) sends it as it is, a writer takes it as jsonb. Beyond the
-- contract's fields: lease_owner (the runner executing it, its runner_id
-- in /v1/status) and lease_expires_at_ms, set while a runner executes it
-- (a run resumed after a wait is running without one until claimed),
-- and tool_calls, what its model called, in order (migration 018). A view,
-- not a function: PostgreSQL plans it into the statement that reads it,
-- where a PL/pgSQL function costs a call and a jsonb built then printed (the
-- read spent most of its database time there, docs/performance.md).
DROP FUNCTION IF EXISTS run_view(runs);
CREATE OR REPLACE VIEW run_views AS
SELECT r.run_id, r.session_id, r.status, r.submitted_at_ms, json_build_object(
    'run_id', r.run_id, 'session_id', r.session_id, 'agent_id', r.agent_id,
    'kind', r.kind, 'status', r.status,
    'submitted_at_ms', r.submitted_at_ms, 'updated_at_ms', r.updated_at_ms,
    'started_at_ms', r.started_at_ms, 'finished_at_ms', r.finished_at_ms,
    'queued_position', CASE WHEN r.status = 'queued' THEN (
        SELECT count(*) FROM runs q
        WHERE q.session_id = r.session_id AND q.status = 'queued' AND q.run_no <= r.run_no) END,
    'request', r.request,
    'input_attachments', coalesce(r.payload->'attachments', '[]'),
    'input_metadata', r.input_metadata,
    'pending_approval_ids', coalesce((
        SELECT json_agg(a.request_id ORDER BY c.turn, c.position)
          FROM approvals a JOIN tool_calls c USING (run_id, tool_call_id)
         WHERE a.run_id = r.run_id AND a.status = 'pending'), '[]'::json),
    'pending_approvals', coalesce((
        SELECT json_agg(json_build_object(
                   'id', a.request_id, 'tool_call_id', a.tool_call_id, 'tool_name', a.tool_name,
                   'input', a.input, 'scope', a.scope, 'reason', a.reason)
                   ORDER BY c.turn, c.position)
          FROM approvals a JOIN tool_calls c USING (run_id, tool_call_id)
         WHERE a.run_id = r.run_id AND a.status = 'pending'), '[]'::json),
    'pending_question_ids', '[]'::json, 'pending_questions', '[]'::json,
    'outputs', r.outputs, 'deliveries', '[]'::json, 'error', r.error,
    'lease_owner', r.lease_owner, 'lease_expires_at_ms', r.lease_expires_at_ms,
    'tool_calls', coalesce((
        SELECT json_agg(json_strip_nulls(json_build_object(
                   'tool_call_id', c.tool_call_id, 'turn', c.turn, 'name', c.name,
                   'input', c.input, 'input_error', c.input_error, 'decision', c.decision,
                   'reason', c.reason, 'result', c.result, 'is_error', c.is_error,
                   'created_at_ms', c.created_at_ms, 'finished_at_ms', c.finished_at_ms))
                   ORDER BY c.turn, c.position)
          FROM tool_calls c WHERE c.run_id = r.run_id), '[]'::json)) AS view
FROM runs r;
COMMENT ON VIEW run_views IS
    'The RunView of each run as json text, as GET /v1/runs/{id} and the run list send it.';
COMMENT ON COLUMN run_views.run_id IS 'The run.';
COMMENT ON COLUMN run_views.session_id IS 'Its session (the run list filters on it).';
COMMENT ON COLUMN run_views.status IS 'Its status (the run list filters on it).';
COMMENT ON COLUMN run_views.submitted_at_ms IS 'Its submission, ms since the epoch (the run list orders by it).';
COMMENT ON COLUMN run_views.view IS 'The RunView, json.';
GRANT SELECT ON run_views TO kheish_app;

-- The persisted RunEventEntry payload for entering status to.
CREATE OR REPLACE FUNCTION kheish_run_event(to_status text, view jsonb, error text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT CASE to_status
    WHEN 'running' THEN jsonb_build_object('type', 'started')
    WHEN 'queued' THEN jsonb_build_object('type', 'queued', 'position', view->'queued_position')
    WHEN 'failed' THEN jsonb_strip_nulls(jsonb_build_object('type', 'failed', 'error', error))
    WHEN 'waiting_for_approval' THEN jsonb_build_object(
        'type', 'waiting_for_approval', 'request_ids', view->'pending_approval_ids',
        'requests', view->'pending_approvals')
    ELSE jsonb_build_object('type', to_status) END
$$;
COMMENT ON FUNCTION kheish_run_event(text, jsonb, text) IS
    'The persisted RunEventEntry payload for entering a status.';

-- A submission (POST /v1/sessions/{id}/runs and /input) in one statement:
-- the session locked (exclusively when the run needs it idle), the run
-- inserted as queued, its events appended. Returns {result, view}, result
-- being ok, replayed (the same idempotency key and fingerprint: the
-- existing run), session_not_found, session_ended, session_busy,
-- or idempotency_conflict. A concurrent submission with the same key that
-- has not committed yet is a serialization failure: the caller tries again.
-- actor's action is recorded; the new run's accepted and queued events link
-- to it.
CREATE OR REPLACE FUNCTION kheish_run_submit(sid text, p jsonb, idem_key text,
                                             idem_fingerprint text, require_idle boolean,
                                             actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    ended bigint;
    agent text;
    id text;
    prior record;
    v jsonb;
    act bigint;
    now_ms bigint := kheish_now_ms();
BEGIN
    IF require_idle THEN
        SELECT s.ended_at_ms, s.agent_id INTO ended, agent FROM sessions s
        WHERE s.session_id = sid FOR UPDATE;
    ELSE
        SELECT s.ended_at_ms, s.agent_id INTO ended, agent FROM sessions s
        WHERE s.session_id = sid FOR SHARE;
    END IF;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'run_submit', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_not_found'));
    ELSIF ended IS NOT NULL THEN
        RETURN kheish_admin_answer(actor, 'run_submit', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_ended'));
    END IF;
    IF require_idle AND EXISTS (SELECT 1 FROM runs r WHERE r.session_id = sid AND r.status IN
            ('queued', 'running', 'waiting_for_approval', 'waiting_for_user_question')) THEN
        RETURN kheish_admin_answer(actor, 'run_submit', sid, NULL, NULL,
                                   jsonb_build_object('result', 'session_busy'));
    END IF;
    INSERT INTO runs (run_id, run_no, session_id, agent_id, kind, status, submitted_at_ms,
                      updated_at_ms, request, payload, input_metadata, idempotency_key,
                      idempotency_fingerprint)
        SELECT 'run-' || n, n, sid, agent, 'input', 'queued', now_ms, now_ms,
               jsonb_build_object(
                   'source_plugin', coalesce(p->>'source_plugin', 'api'),
                   'source_kind', coalesce(p->>'source_kind', 'api'), 'actor_id', p->'actor_id',
                   'text_preview', nullif(left(coalesce(p->>'content', ''), 200), ''),
                   'provider', p->'provider', 'model', p#>'{generation,model}'),
               p, p->'metadata', idem_key, idem_fingerprint
        FROM (SELECT nextval('runs_run_no_seq') AS n) v
        ON CONFLICT (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING run_id INTO id;
    IF id IS NULL THEN
        SELECT r.idempotency_fingerprint = idem_fingerprint AS same, v.view::jsonb AS view
        INTO prior
        FROM runs r JOIN run_views v USING (run_id)
        WHERE r.session_id = sid AND r.idempotency_key = idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'a submission with the same idempotency key is in progress'
                USING ERRCODE = 'serialization_failure';
        END IF;
        RETURN kheish_admin_answer(actor, 'run_submit', sid, prior.view->>'run_id', NULL,
            jsonb_build_object('result', CASE WHEN prior.same THEN 'replayed'
                                              ELSE 'idempotency_conflict' END,
                               'view', CASE WHEN prior.same THEN prior.view END));
    END IF;
    act := kheish_admin_action(actor, 'run_submit', sid, id, NULL, 'ok');
    SELECT rv.view::jsonb INTO v FROM run_views rv WHERE rv.run_id = id;
    PERFORM kheish_append_events(
        jsonb_build_array(kheish_stream_event('run_updated', sid, id, jsonb_build_object('run', v))),
        kheish_run_events_by(jsonb_build_array(
            jsonb_build_object('run_id', id, 'session_id', sid, 'agent_id', agent,
                               'event', jsonb_build_object('type', 'accepted')),
            jsonb_build_object('run_id', id, 'session_id', sid, 'agent_id', agent,
                               'event', kheish_run_event('queued', v, NULL))), act));
    RETURN jsonb_build_object('result', 'ok', 'view', v);
END
$$;
COMMENT ON FUNCTION kheish_run_submit(text, jsonb, text, text, boolean, jsonb) IS
    'POST /v1/sessions/{id}/runs and /input: queues a run, recording actor''s action.';

-- Moves a run to status to (the transition trigger refuses what the state
-- machine does not allow, SQLSTATE KH409). A run that stops waiting for
-- approval otherwise than by resuming has its pending approvals withdrawn.
-- error, when given, is recorded;
-- lease_owner and lease_expires_at_ms are kept only while running (given
-- ones replace them); outputs, when given, replace the run's. Returns
-- {view, stream, run} (the events to append: the run event, run_updated with
-- the new RunView read back after the UPDATE that makes it, and
-- session_state_changed when the session's active run changed), or NULL when
-- there is no such run. The caller appends the events.
CREATE OR REPLACE FUNCTION kheish_run_set_status(id text, to_status text, error text,
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
    IF old_status = 'waiting_for_approval' AND to_status <> 'running' THEN
        UPDATE approvals a SET status = 'withdrawn', resolved_at_ms = now_ms,
               resolution_reason = 'the run was ' || to_status || ' before it was answered'
         WHERE a.run_id = id AND a.status = 'pending';
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
    SELECT rv.view::jsonb INTO v FROM run_views rv WHERE rv.run_id = id;
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
COMMENT ON FUNCTION kheish_run_set_status(text, text, text, text, bigint, jsonb) IS
    'Moves a run to a status (the trigger checks the transition) and returns the events of the transition for the caller to append.';

-- The conversation of a session before run before_run_no: its last
-- history_runs completed runs, each one's input then its outputs, oldest
-- first, as [{role, text}]. It reads the partial index of completed runs
-- (one entry per run, where runs_session_no holds every version until
-- vacuum) with a generic plan: a custom one chosen at every call cost more
-- to plan than to run (0.43 against 0.79 ms per claim in a drain).
CREATE OR REPLACE FUNCTION kheish_conversation(sid text, before_run_no bigint, history_runs int)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_generic_plan
    AS $$
BEGIN
    RETURN (
        WITH h AS (SELECT r.run_no, r.payload->>'content' AS input, r.outputs FROM runs r
                   WHERE r.session_id = sid AND r.status = 'completed'
                   AND r.run_no < before_run_no ORDER BY r.run_no DESC LIMIT history_runs)
        SELECT coalesce(jsonb_agg(m ORDER BY n, k), '[]') FROM (
            SELECT h.run_no AS n, 0 AS k, jsonb_build_object('role', 'user', 'text', h.input) AS m
            FROM h WHERE h.input <> ''
            UNION ALL
            SELECT h.run_no, 1, jsonb_build_object('role', 'assistant', 'text', o->>'content')
            FROM h, jsonb_array_elements(h.outputs) o WHERE o->>'content' <> '') t);
END
$$;
COMMENT ON FUNCTION kheish_conversation(text, bigint, integer) IS
    'The conversation of a session before a run: its last completed runs'' inputs and outputs, oldest first.';

-- A status change asked for through the API (POST /v1/runs/{id}/cancel, or
-- a transition to to_status), in one statement: cancel (to_status NULL)
-- leaves an ended run as it is, and a run already in to_status is left too;
-- otherwise the run moves (the trigger refuses what the state machine does
-- not allow, KH409) and its events are appended. Returns {result: ok, view}
-- or {result: run_not_found}. actor's action (run_cancel, run_transition)
-- is recorded, and linked from the run event of the change it made.
CREATE OR REPLACE FUNCTION kheish_run_change(id text, to_status text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    cur text;
    sid text;
    ch jsonb;
    act bigint;
    what text := CASE WHEN to_status IS NULL THEN 'run_cancel' ELSE 'run_transition' END;
BEGIN
    SELECT r.status, r.session_id INTO cur, sid FROM runs r WHERE r.run_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, what, NULL, id, NULL,
                                   jsonb_build_object('result', 'run_not_found'));
    END IF;
    act := kheish_admin_action(actor, what, sid, id, NULL, 'ok');
    IF (to_status IS NULL AND cur IN ('completed', 'failed', 'interrupted', 'cancelled'))
       OR cur = to_status THEN
        RETURN jsonb_build_object('result', 'ok',
            'view', (SELECT rv.view::jsonb FROM run_views rv WHERE rv.run_id = id));
    END IF;
    ch := kheish_run_set_status(id, coalesce(to_status, 'cancelled'), NULL);
    PERFORM kheish_append_events(ch->'stream', kheish_run_events_by(ch->'run', act));
    RETURN jsonb_build_object('result', 'ok', 'view', ch->'view');
END
$$;
COMMENT ON FUNCTION kheish_run_change(text, text, jsonb) IS
    'POST /v1/runs/{id}/cancel (to_status NULL) and API transitions, recording actor''s action.';
