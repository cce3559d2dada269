-- 012: the runners that are alive (issue 13, point 4).
--
-- Each kheish-runner keeps a row here: it upserts it with its maintenance
-- tick, once a second, in the statement that already asked for the
-- maintenance lock (kheish_runner_beat, sql/functions/runners.sql), so a
-- heartbeat costs no round trip and stays off the turn's hot path. A runner
-- that stops cleanly deletes its row; the row of one that died stops being
-- listed once its heartbeat is older than kheish_runner_live_ms(), and the
-- maintenance pass deletes it later. /v1/status lists the live ones, with
-- the runs each holds (counted at read time from runs.lease_owner), and
-- raises no_live_runner when runs are queued and none is alive.
--
-- No index on the heartbeat: the table holds a row per runner, and an
-- update that touches no indexed column stays a HOT update.

CREATE TABLE runners (
    runner_id            text PRIMARY KEY, -- kheish-runner@<host>:<pid>, its runs' lease_owner
    host                 text NOT NULL,
    pid                  integer NOT NULL,
    concurrency          integer NOT NULL, -- the runs it executes at once
    started_at_ms        bigint NOT NULL,
    last_heartbeat_at_ms bigint NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON runners TO kheish_app;
GRANT SELECT ON runners TO kheish_auditor;
