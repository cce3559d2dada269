-- 011: the runner's turn, outcomes and claims in one statement.
--
-- A runner ended its runs with one statement (kheish_finish_runs) and took
-- their sessions' next runs with another (kheish_claim_runs), once the
-- NOTIFY of the first had reached it: two commits, two event appends, and
-- between them a wait in which the session's queue stood still. Now one
-- function does both: kheish_work ends the runs its outcomes name, then
-- claims into the free slots (a session whose run just ended may start its
-- next at once, in the same transaction), and appends the events of both as
-- one batch (sql/functions/work.sql). Draining 10,000 runs over 8 sessions,
-- a run and the wait for the next one were 16 and 7 ms (docs/performance.md).

DROP FUNCTION IF EXISTS kheish_claim_runs(text, bigint, int, int);
DROP FUNCTION IF EXISTS kheish_finish_runs(text, jsonb);

-- run_no is unique by its sequence; what its readers need is each session's
-- runs in order. Its global unique index gave the planner a way to read a
-- conversation backwards over every session's runs and their dead versions
-- (which it took whenever the statistics made it look cheap), and cost an
-- index entry per row version. Each session's runs are now unique in
-- order, and a conversation has one index to read, whatever the statistics.
ALTER TABLE runs DROP CONSTRAINT runs_run_no_key;
DROP INDEX runs_session_no;
CREATE UNIQUE INDEX runs_session_no ON runs (session_id, run_no);
