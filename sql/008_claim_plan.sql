-- 008: a claim whose plan does not depend on the table's statistics.
--
-- The claim of sql/007 picked the oldest queued runs with nothing live before
-- them in their session: an anti join whose plan followed the statistics.
-- Analyzed while the queue was empty, the planner expected one queued run and
-- chose a nested loop that, for every queued run, walked every earlier run of
-- its session, finished ones included: seconds per claim once a backlog and
-- a history met (issue 11, point 5), where the same claim takes a millisecond
-- on fresh statistics.
--
-- Now the claim visits each session that has queued work once, by index: its
-- head (the oldest queued run) through runs_queued_session, one descent per
-- session (a skip scan); a session with an active run is passed over (the
-- unique index of active runs says so in one probe); the heads left are
-- locked oldest first, each through the same index. Every step is a lookup of a few
-- rows by an index that matches it exactly, so no statistics can turn it into
-- a scan: a claim costs a few index probes per session with queued work,
-- whatever the table holds besides.

-- Each session's queue in order: its first entry is the session's head. The
-- queue in global order (runs_queued) has no reader left.
CREATE INDEX runs_queued_session ON runs (session_id, run_no) WHERE status = 'queued';
DROP INDEX runs_queued;

-- Claims up to max runnable runs for owner, oldest first: a queued run at
-- the head of its session with no active run in it, skipping runs another
-- runner is claiming. Each becomes running with the lease; their events are
-- appended. Returns [{run_id, session_id, agent_id, kind, payload, history}],
-- history being the conversation so far.
CREATE OR REPLACE FUNCTION kheish_claim_runs(owner text, lease_ms bigint, max int,
                                             history_runs int)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    h record;
    q record;
    ch jsonb;
    claimed jsonb[] := '{}';
    stream jsonb[] := '{}'; -- batches of events (kheish_append_batches)
    run jsonb[] := '{}';
BEGIN
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
        PERFORM FROM runs o WHERE o.session_id = h.session_id
            AND o.status IN ('running', 'waiting_for_approval', 'waiting_for_user_question');
        CONTINUE WHEN FOUND;
        SELECT c.run_id, c.agent_id, c.kind, c.payload INTO q FROM runs c
        WHERE c.session_id = h.session_id AND c.run_no = h.run_no AND c.status = 'queued'
        FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        ch := kheish_run_set_status(q.run_id, 'running', NULL, owner, kheish_now_ms() + lease_ms);
        stream := stream || (ch->'stream');
        run := run || (ch->'run');
        claimed := claimed || jsonb_build_object(
            'run_id', q.run_id, 'session_id', h.session_id, 'agent_id', q.agent_id,
            'kind', q.kind, 'payload', q.payload,
            'history', kheish_conversation(h.session_id, h.run_no, history_runs));
    END LOOP;
    PERFORM kheish_append_batches(stream, run);
    RETURN to_jsonb(claimed);
END
$$;
