-- The runners' work: a turn (outcomes, then claims) and restart recovery.
-- Each is one statement and one transaction, with one events append.

-- A runner's turn. First its signed external-action records (records,
-- kheish_ledger_append's batch): a provider call's response record commits
-- with its run's outcome, and a request record is durable before its call
-- is sent, the caller flushing the WAL before it reads the answer. A report
-- whose run's record was not appended (another writer moved the run's
-- bucket) is held: not committed, for the runner to send again with the
-- record signed anew. Then the reports, [{run_id, traces, steps?, status?,
-- error, text}]: each run still owner's and running gets its trace events
-- not sent yet (traces, an array of trace objects), its steps (turns, tool
-- calls and results: kheish_run_steps, tools.sql) and, when status is given,
-- its output (text, when not null: one DaemonOutputRecord and an output
-- event) and its status (completed, failed or interrupted) with error; a
-- run that is no longer owner's (cancelled, interrupted, recovered) is left
-- as it is and listed as lost.
-- A report with the status waiting_for_approval opens the approvals of
-- the calls asked (kheish_approvals_open, expiring after its
-- approval_ttl_ms when > 0) as the run starts to wait.
-- Then up to max runs, less the ending reports held, are claimed: first
-- runs resumed after a wait (running without a runner, longest first; their
-- claim has resume, kheish_run_resume), then, oldest first, a
-- session's head (its oldest queued run, through runs_queued_session, one
-- descent per session) when the session has no active run, skipping runs
-- another runner is claiming; each becomes running with owner's lease.
-- Every step is an index lookup of a few rows, so no statistics can make it
-- a scan (sql/008). Returns {records: [the ledger's answers], ended:
-- [run_id], held: [run_id], lost: [run_id], claimed: [{run_id, session_id,
-- agent_id, kind, payload, history, resume?}]}, history being the
-- conversation so far.
CREATE OR REPLACE FUNCTION kheish_work(owner text, records jsonb, reports jsonb, lease_ms bigint,
                                       max int, history_runs int) RETURNS jsonb
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
    answers jsonb := kheish_ledger_append(records);
    unrecorded text[];
    held text[] := '{}';
    kept int := 0; -- reports held that would have ended their run (and freed its slot)
    lost text[] := '{}';
    ended text[] := '{}';
    claimed jsonb[] := '{}';
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
BEGIN
    -- Durable when the caller reads the answer: it flushes the WAL after
    -- (db_call, store/db.c), as after every event append.
    PERFORM set_config('synchronous_commit', 'off', true);
    unrecorded := ARRAY(SELECT x->>'bucket'
                          FROM jsonb_array_elements(records) WITH ORDINALITY AS r(x, i)
                          JOIN jsonb_array_elements(answers) WITH ORDINALITY AS a(y, j) ON i = j
                         WHERE NOT (y->>'appended')::boolean);
    FOR o IN SELECT e FROM jsonb_array_elements(reports) e LOOP
        rid := o->>'run_id';
        IF rid = ANY (unrecorded) THEN
            held := held || rid;
            kept := kept + (o->>'status' IS NOT NULL)::int;
            CONTINUE;
        END IF;
        SELECT r.session_id INTO sid FROM runs r
        WHERE r.run_id = rid AND r.status = 'running' AND r.lease_owner = owner FOR UPDATE;
        IF NOT FOUND THEN
            lost := lost || rid;
            CONTINUE;
        END IF;
        stream := stream || coalesce((SELECT jsonb_agg(kheish_stream_event(
                      'trace', sid, rid, jsonb_build_object('trace', t)) ORDER BY i)
                  FROM jsonb_array_elements(o->'traces') WITH ORDINALITY AS x(t, i)), '[]');
        IF o ? 'steps' THEN
            PERFORM kheish_run_steps(rid, sid, o->'steps');
        END IF;
        CONTINUE WHEN o->>'status' IS NULL;
        output := CASE WHEN o->>'text' IS NOT NULL THEN jsonb_build_object(
                      'session_id', sid, 'run_id', rid, 'plugin', 'api', 'address', NULL,
                      'content', o->>'text', 'parts', '[]'::jsonb, 'artifacts', '[]'::jsonb,
                      'source_kind', 'assistant_text') END;
        IF output IS NOT NULL THEN
            stream := stream || jsonb_build_array(kheish_stream_event(
                                    'output', sid, rid, jsonb_build_object('output', output)));
        END IF;
        IF o->>'status' = 'waiting_for_approval'
           AND kheish_approvals_open(rid, sid, (o->>'approval_ttl_ms')::bigint) = 0 THEN
            o := o || jsonb_build_object('status', 'failed', 'error',
                                         'the runner waited for approvals it did not ask for');
        END IF;
        ch := kheish_run_set_status(rid, o->>'status', o->>'error', NULL, NULL,
                                    CASE WHEN output IS NOT NULL THEN jsonb_build_array(output) END);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        ended := ended || rid;
    END LOOP;
    FOR q IN SELECT r.run_id, r.session_id, r.agent_id, r.kind, r.payload, r.run_no FROM runs r
              WHERE r.status = 'running' AND r.lease_owner IS NULL
              ORDER BY r.updated_at_ms LIMIT greatest(max - kept, 0) FOR UPDATE SKIP LOCKED LOOP
        UPDATE runs r SET lease_owner = owner, lease_expires_at_ms = kheish_now_ms() + lease_ms
         WHERE r.run_id = q.run_id;
        claimed := claimed || jsonb_build_object(
            'run_id', q.run_id, 'session_id', q.session_id, 'agent_id', q.agent_id,
            'kind', q.kind, 'payload', q.payload,
            'history', kheish_conversation(q.session_id, q.run_no, history_runs),
            'resume', kheish_run_resume(q.run_id));
    END LOOP;
    IF max - kept > cardinality(claimed) THEN
        FOR h IN WITH RECURSIVE heads AS (
                     (SELECT r.session_id, r.run_no FROM runs r WHERE r.status = 'queued'
                      ORDER BY r.session_id, r.run_no LIMIT 1)
                     UNION ALL
                     SELECT n.session_id, n.run_no FROM heads, LATERAL (
                         SELECT r.session_id, r.run_no FROM runs r
                         WHERE r.status = 'queued' AND r.session_id > heads.session_id
                         ORDER BY r.session_id, r.run_no LIMIT 1) n)
                 SELECT heads.session_id, heads.run_no FROM heads ORDER BY heads.run_no LOOP
            EXIT WHEN cardinality(claimed) = max - kept;
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
    RETURN jsonb_build_object('records', answers, 'ended', to_jsonb(ended), 'held', to_jsonb(held),
                              'lost', to_jsonb(lost), 'claimed', to_jsonb(claimed));
END
$$;
COMMENT ON FUNCTION kheish_work(text, jsonb, jsonb, bigint, integer, integer) IS
    'A runner''s turn in one statement: appends its ledger records, commits its runs'' reports, then claims runs into the free slots; returns {records, ended, held, lost, claimed}.';

-- A runner's trace events sent before its runs end (a batch every
-- RUNNER_TRACE_BATCH_MS): traces is [{session_id, run_id, traces: [trace
-- object]}], appended in that order. Returns the newest event id.
CREATE OR REPLACE FUNCTION kheish_work_traces(traces jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN kheish_append_events(coalesce((
        SELECT jsonb_agg(kheish_stream_event('trace', r->>'session_id', r->>'run_id',
                                             jsonb_build_object('trace', t)) ORDER BY i, j)
        FROM jsonb_array_elements(traces) WITH ORDINALITY AS x(r, i),
             jsonb_array_elements(r->'traces') WITH ORDINALITY AS y(t, j)), '[]'), '[]');
END
$$;
COMMENT ON FUNCTION kheish_work_traces(jsonb) IS
    'Appends a runner''s trace events sent before its runs end; returns the newest event id.';

-- Restart recovery, each run on its own. The runs of a runner whose lease
-- expired (not those resumed after a wait, which no runner holds yet) go back to the queue (daemon-owned work) or are interrupted (user
-- input), contract §3. A run that cannot be moved (its row breaks a reader,
-- a trigger refuses) is failed with the reason, and if even that fails it is
-- reported and left: one bad row never stops the others. Up to max rows of
-- runners long dead go too (kheish_runners_prune).
CREATE OR REPLACE FUNCTION kheish_recover_runs(max int) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    q record;
    input boolean;
    ch jsonb;
    why text;
    requeued int := 0;
    interrupted int := 0;
    failed jsonb := '[]';
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
BEGIN
    FOR q IN SELECT r.run_id, r.kind, coalesce(r.lease_owner, 'no runner') AS owner FROM runs r
             WHERE r.status = 'running' AND r.lease_owner IS NOT NULL
               AND r.lease_expires_at_ms < kheish_now_ms()
             ORDER BY r.run_no LIMIT max FOR UPDATE SKIP LOCKED LOOP
        input := q.kind = 'input';
        BEGIN
            ch := kheish_run_set_status(q.run_id,
                CASE WHEN input THEN 'interrupted' ELSE 'queued' END,
                CASE WHEN input THEN format('the runner executing it stopped (%s''s lease '
                    'expired); interrupted by restart recovery', q.owner) END);
            requeued := requeued + (NOT input)::int;
            interrupted := interrupted + input::int;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            BEGIN
                ch := kheish_run_set_status(q.run_id, 'failed',
                    format('restart recovery could not %s it: %s',
                           CASE WHEN input THEN 'interrupt' ELSE 'requeue' END, why));
            EXCEPTION WHEN OTHERS THEN
                ch := NULL;
                why := why || '; failing it did not work either: ' || SQLERRM;
            END;
            failed := failed || jsonb_build_object('run_id', q.run_id, 'reason', why,
                                                   'left_running', ch IS NULL);
        END;
        IF ch IS NOT NULL THEN
            stream := stream || (ch->'stream');
            run := run || (ch->'run');
        END IF;
    END LOOP;
    PERFORM kheish_append_batches(stream, run);
    RETURN jsonb_build_object('requeued', requeued, 'interrupted', interrupted, 'failed', failed,
                              'runners_pruned', kheish_runners_prune(max));
END
$$;
COMMENT ON FUNCTION kheish_recover_runs(integer) IS
    'Restart recovery: runs whose lease expired are requeued or interrupted, each on its own; prunes long-dead runners; returns counts and failures.';
