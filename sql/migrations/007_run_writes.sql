-- 007: the run state machine's writes became database functions
-- (sql/functions/runs.sql); the conversation they build reads each
-- session's runs in order, as the session view's outputs do.

DROP INDEX runs_session_outputs;
CREATE INDEX runs_session_no ON runs (session_id, run_no);
