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
