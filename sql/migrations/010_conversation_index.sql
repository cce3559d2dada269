-- A session's conversation (kheish_conversation) reads its newest
-- completed runs backwards by (session_id, run_no). Through runs_session_no
-- that scan also steps over every earlier version of each run (queued,
-- running: three per run until vacuum), which costs a drain with autovacuum
-- behind. A completed run has one version in this partial index.
CREATE INDEX runs_session_completed ON runs (session_id, run_no) WHERE status = 'completed';
