-- 006: what kheish-runner needs (ARCHITECTURE.md, "The walk of one run").
--
-- Wake-ups come from the database itself, so psql writers wake runners too:
-- a run that becomes queued, or an active run that ends (its session's next
-- run may start), NOTIFYs kheish_runs; a run that is cancelled or
-- interrupted while a runner may be executing it NOTIFYs kheish_control
-- with its id, and that runner aborts its provider call.
--
-- A claimed run carries lease_owner and lease_expires_at_ms (sql/001); the
-- maintenance loop, run by whichever runner holds the maintenance advisory
-- lock, recovers runs whose lease expired.

CREATE FUNCTION runs_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    was_active boolean := TG_OP = 'UPDATE' AND OLD.status IN
        ('running', 'waiting_for_approval', 'waiting_for_user_question');
BEGIN
    IF NEW.status = 'queued' OR (was_active AND NEW.status IN
            ('completed', 'failed', 'interrupted', 'cancelled')) THEN
        PERFORM pg_notify('kheish_runs', '');
    END IF;
    IF was_active AND NEW.status IN ('interrupted', 'cancelled') THEN
        PERFORM pg_notify('kheish_control', NEW.run_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_notify AFTER INSERT OR UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_notify();

-- The claim reads the oldest queued runs first.
CREATE INDEX runs_queued ON runs (run_no) WHERE status = 'queued';
-- Recovery reads the running runs by lease expiry.
CREATE INDEX runs_leases ON runs (lease_expires_at_ms) WHERE status = 'running';

-- A session's outputs now exist: the SessionView lists the newest 50 runs'
-- outputs, oldest first.
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
CREATE INDEX runs_session_outputs ON runs (session_id, run_no) WHERE outputs <> '[]';
