-- 008: a claim whose plan does not depend on the table's statistics.
--
-- The claim of 007 picked the oldest queued runs with nothing live before
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
-- whatever the table holds besides. The claim itself is kheish_work
-- (sql/functions/work.sql).

-- Each session's queue in order: its first entry is the session's head. The
-- queue in global order (runs_queued) has no reader left.
CREATE INDEX runs_queued_session ON runs (session_id, run_no) WHERE status = 'queued';
DROP INDEX runs_queued;

