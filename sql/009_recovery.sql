-- Restart recovery as one statement, each run on its own. The runs of a
-- runner whose lease expired go back to the queue (daemon-owned work) or are
-- interrupted (user input), contract §3. A run that cannot be moved (its row
-- breaks a reader, a trigger refuses) is failed with the reason, and if even
-- that fails it is reported and left: one bad row never stops the others.

CREATE FUNCTION kheish_recover_runs(max int) RETURNS jsonb
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
             WHERE r.status = 'running' AND coalesce(r.lease_expires_at_ms, 0) < kheish_now_ms()
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
    RETURN jsonb_build_object('requeued', requeued, 'interrupted', interrupted, 'failed', failed);
END
$$;
