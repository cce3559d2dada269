-- 011: the runner's turn, outcomes and claims in one statement.
--
-- A runner ended its runs with one statement (kheish_finish_runs) and took
-- their sessions' next runs with another (kheish_claim_runs), once the
-- NOTIFY of the first had reached it: two commits, two event appends, and
-- between them a wait in which the session's queue stood still. Now one
-- function does both: kheish_work ends the runs its outcomes name, then
-- claims into the free slots (a session whose run just ended may start its
-- next at once, in the same transaction), and appends the events of both as
-- one batch. Draining 10,000 runs over 8 sessions, a run and the wait for
-- the next one were 16 and 7 ms (docs/performance.md).

DROP FUNCTION kheish_claim_runs(text, bigint, int, int);
DROP FUNCTION kheish_finish_runs(text, jsonb);

-- As in sql/007, the view read back by the UPDATE that makes it.
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
    WHERE r.run_id = id
    RETURNING run_view(r) INTO v;
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

-- run_no is unique by its sequence; what its readers need is each session's
-- runs in order. Its global unique index gave the planner a way to read a
-- conversation backwards over every session's runs and their dead versions
-- (which it took whenever the statistics made it look cheap), and cost an
-- index entry per row version. Each session's runs are now unique in
-- order, and a conversation has one index to read, whatever the statistics.
ALTER TABLE runs DROP CONSTRAINT runs_run_no_key;
DROP INDEX runs_session_no;
CREATE UNIQUE INDEX runs_session_no ON runs (session_id, run_no);

-- The conversation (sql/007), the run view (sql/001) and the flattening of
-- event batches (sql/007) planned once per connection: with a custom plan
-- chosen at every call, planning a conversation cost more than running it
-- (0.43 against 0.79 ms per claim in a drain), and the view was planned at
-- every transition.
ALTER FUNCTION kheish_conversation(text, bigint, int) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION run_view(runs) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION kheish_flatten(jsonb[]) SET plan_cache_mode = force_generic_plan;

-- A runner's turn. First the outcomes, [{run_id, status, error, text,
-- traces}]: each run still owner's and running gets its trace events not
-- sent yet (traces, an array of trace objects), its output (text, when not
-- null: one DaemonOutputRecord and an output event) and its status
-- (completed, failed or interrupted) with error; a run ended by someone else
-- in the meantime (cancelled, interrupted, recovered) is left as it is.
-- Then up to max runs are claimed, oldest first: a session's head (its
-- oldest queued run, through runs_queued_session, one descent per session)
-- when the session has no active run, skipping runs another runner is
-- claiming; each becomes running with owner's lease. Every step is an index
-- lookup of a few rows, so no statistics can make it a scan (sql/008).
-- Returns {ended: [run_id], claimed: [{run_id, session_id, agent_id, kind,
-- payload, history}]}, history being the conversation so far.
CREATE FUNCTION kheish_work(owner text, outcomes jsonb, lease_ms bigint, max int,
                            history_runs int) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    o jsonb;
    sid text;
    rid text;
    output jsonb;
    h record;
    q record;
    ch jsonb;
    ended text[] := '{}';
    claimed jsonb[] := '{}';
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
    IF max > 0 THEN
        FOR h IN WITH RECURSIVE heads AS (
                     (SELECT r.session_id, r.run_no FROM runs r WHERE r.status = 'queued'
                      ORDER BY r.session_id, r.run_no LIMIT 1)
                     UNION ALL
                     SELECT n.session_id, n.run_no FROM heads, LATERAL (
                         SELECT r.session_id, r.run_no FROM runs r
                         WHERE r.status = 'queued' AND r.session_id > heads.session_id
                         ORDER BY r.session_id, r.run_no LIMIT 1) n)
                 SELECT heads.session_id, heads.run_no FROM heads ORDER BY heads.run_no LOOP
            EXIT WHEN cardinality(claimed) = max;
            PERFORM FROM runs a WHERE a.session_id = h.session_id
                AND a.status IN ('running', 'waiting_for_approval', 'waiting_for_user_question');
            CONTINUE WHEN FOUND;
            SELECT c.run_id, c.agent_id, c.kind, c.payload INTO q FROM runs c
            WHERE c.session_id = h.session_id AND c.run_no = h.run_no AND c.status = 'queued'
            FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;
            ch := kheish_run_set_status(q.run_id, 'running', NULL, owner,
                                        kheish_now_ms() + lease_ms);
            stream := stream || (ch->'stream');
            run := run || (ch->'run');
            claimed := claimed || jsonb_build_object(
                'run_id', q.run_id, 'session_id', h.session_id, 'agent_id', q.agent_id,
                'kind', q.kind, 'payload', q.payload,
                'history', kheish_conversation(h.session_id, h.run_no, history_runs));
        END LOOP;
    END IF;
    PERFORM kheish_append_batches(stream, run);
    RETURN jsonb_build_object('ended', to_jsonb(ended), 'claimed', to_jsonb(claimed));
END
$$;

