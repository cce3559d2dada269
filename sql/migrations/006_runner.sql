-- 006: what kheish-runner needs (ARCHITECTURE.md, "The walk of one run").
--
-- A claimed run carries lease_owner and lease_expires_at_ms (001); the
-- maintenance loop, run by whichever runner holds the maintenance advisory
-- lock, recovers runs whose lease expired. The wake-ups (runs_notify) are in
-- sql/functions/runs.sql.

-- The claim reads the oldest queued runs first.
CREATE INDEX runs_queued ON runs (run_no) WHERE status = 'queued';
-- Recovery reads the running runs by lease expiry.
CREATE INDEX runs_leases ON runs (lease_expires_at_ms) WHERE status = 'running';
-- The SessionView lists the newest 50 runs' outputs.
CREATE INDEX runs_session_outputs ON runs (session_id, run_no) WHERE outputs <> '[]';
