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
    LANGUAGE sql STABLE
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
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_strip_nulls(jsonb_build_object('name', name, 'session_id', session_id,
                                            'run_id', run_id))
       || jsonb_build_object('data', data || jsonb_build_object('type', name))
$$;

-- session_state_changed for a session, as read now. (Functions that read
-- tables are plpgsql: their plans are cached per connection, where a SQL
-- function is planned again at every call.)
CREATE FUNCTION kheish_session_state_event(sid text) RETURNS jsonb
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

-- A submission (POST /v1/sessions/{id}/runs and /input) in one statement:
-- the session locked (exclusively when the run needs it idle), the run
-- inserted as queued, its events appended. Returns {result, view}, result
-- being ok, replayed (the same idempotency key and fingerprint: the
-- existing run), session_not_found, session_ended, session_busy,
-- or idempotency_conflict. A concurrent submission with the same key that
-- has not committed yet is a serialization failure: the caller tries again.
CREATE FUNCTION kheish_run_submit(sid text, p jsonb, idem_key text, idem_fingerprint text,
                                  require_idle boolean) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    ended bigint;
    agent text;
    id text;
    prior record;
    v jsonb;
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
        RETURN jsonb_build_object('result', 'session_not_found');
    ELSIF ended IS NOT NULL THEN
        RETURN jsonb_build_object('result', 'session_ended');
    END IF;
    IF require_idle AND EXISTS (SELECT 1 FROM runs r WHERE r.session_id = sid AND r.status IN
            ('queued', 'running', 'waiting_for_approval', 'waiting_for_user_question')) THEN
        RETURN jsonb_build_object('result', 'session_busy');
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
        SELECT r.idempotency_fingerprint = idem_fingerprint AS same, run_view(r) AS view INTO prior
        FROM runs r WHERE r.session_id = sid AND r.idempotency_key = idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'a submission with the same idempotency key is in progress'
                USING ERRCODE = 'serialization_failure';
        END IF;
        RETURN jsonb_build_object('result', CASE WHEN prior.same THEN 'replayed'
                                                 ELSE 'idempotency_conflict' END,
                                  'view', CASE WHEN prior.same THEN prior.view END);
    END IF;
    SELECT run_view(r) INTO v FROM runs r WHERE r.run_id = id;
    PERFORM kheish_append_events(
        jsonb_build_array(kheish_stream_event('run_updated', sid, id, jsonb_build_object('run', v))),
        jsonb_build_array(
            jsonb_build_object('run_id', id, 'session_id', sid, 'agent_id', agent,
                               'event', jsonb_build_object('type', 'accepted')),
            jsonb_build_object('run_id', id, 'session_id', sid, 'agent_id', agent,
                               'event', kheish_run_event('queued', v, NULL))));
    RETURN jsonb_build_object('result', 'ok', 'view', v);
END
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

-- The conversation of a session before run before_run_no: its last history_runs
-- completed runs, each one's input then its outputs, oldest first, as
-- [{role, text}].
CREATE FUNCTION kheish_conversation(sid text, before_run_no bigint, history_runs int)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
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
-- ... and the index it reads (the session view's outputs read it too).
DROP INDEX runs_session_outputs;
CREATE INDEX runs_session_no ON runs (session_id, run_no);

-- The events of several batches (an array of arrays) as one array, in order.
CREATE FUNCTION kheish_flatten(batches jsonb[]) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(e ORDER BY i, j), '[]')
            FROM unnest(batches) WITH ORDINALITY AS b(a, i),
                 jsonb_array_elements(b.a) WITH ORDINALITY AS x(e, j));
END
$$;

-- Appends events gathered in batches (arrays of event arrays, one per status
-- change, say), in order, as one append; nothing when there are none.
-- Gathering batches copies nothing, where concatenating jsonb arrays run
-- after run would copy everything so far each time.
CREATE FUNCTION kheish_append_batches(stream jsonb[], run jsonb[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF cardinality(run) > 0 THEN
        PERFORM kheish_append_events(kheish_flatten(stream), kheish_flatten(run));
    END IF;
END
$$;

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
    claimed jsonb[] := '{}';
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
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
    PERFORM kheish_append_batches(stream, run);
    RETURN to_jsonb(claimed);
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
    ended text[] := '{}';
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
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
            stream := stream || jsonb_build_array(kheish_stream_event(
                                    'output', sid, rid, jsonb_build_object('output', output)));
        END IF;
        ch := kheish_run_set_status(rid, o->>'status', o->>'error', NULL, NULL,
                                    CASE WHEN output IS NOT NULL THEN jsonb_build_array(output) END);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        ended := ended || rid;
    END LOOP;
    PERFORM kheish_append_batches(stream, run);
    RETURN to_jsonb(ended);
END
$$;

-- The events lock (sql/004) without the WAL flush under it. An append holds
-- the event_ids row until its transaction ends, and with synchronous commit
-- a transaction ends only after its commit record is flushed: every append
-- of the system then waits for the flush before it, one after the other,
-- and no two commits ever share a flush. So an append's transaction commits
-- asynchronously: the lock is let go once the commit record is written, and
-- the next append goes ahead. Nothing is acted on before it is durable: the
-- store, after such a commit, flushes the WAL (db.c) before it answers a
-- client or a runner acts on a claim; a relay flushes after reading events
-- and before sending them. Concurrent flushes share an fsync.
CREATE OR REPLACE FUNCTION kheish_append_events(stream jsonb, run jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    n int := jsonb_array_length(stream);
    newest bigint;
BEGIN
    INSERT INTO run_events (run_id, session_id, agent_id, timestamp_ms, event)
        SELECT e->>'run_id', e->>'session_id', e->>'agent_id', kheish_now_ms(), e->'event'
        FROM jsonb_array_elements(run) WITH ORDINALITY AS t(e, i) ORDER BY i;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE event_ids SET last_id = last_id + n RETURNING last_id INTO newest;
    INSERT INTO events (id, created_at_ms, name, session_id, run_id, data)
        SELECT newest - n + i, kheish_now_ms(), e->>'name', e->>'session_id', e->>'run_id',
               e->'data'
        FROM jsonb_array_elements(stream) WITH ORDINALITY AS t(e, i);
    PERFORM pg_notify('kheish_events', newest::text);
    RETURN newest;
END
$$;

-- What a writer or reader runs to make sure what it committed or read is
-- durable: a transactional WAL record, so that this statement's own
-- (synchronous) commit flushes the WAL up to it, with every commit before.
CREATE FUNCTION kheish_flush_wal() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'kheish', 'flush');
END
$$;
