-- Runners: their heartbeats (table runners, sql/migrations/012) and which of
-- them are live.

-- How long after its last heartbeat a runner still counts as live. A
-- runner beats every second (RUNNER_MAINTENANCE_MS); one silent this long
-- is dead or stuck (its loop blocked, its database unreachable), about as
-- long as the default lease it would renew (RUNNER_DEFAULT_LEASE_MS).
CREATE OR REPLACE FUNCTION kheish_runner_live_ms() RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 15000::bigint $$;
COMMENT ON FUNCTION kheish_runner_live_ms() IS
    'How long after its last heartbeat a runner still counts as live, ms.';

-- How long the row of a runner that is not live is kept before the
-- maintenance pass deletes it (kheish_runners_prune).
CREATE OR REPLACE FUNCTION kheish_runner_forget_ms() RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 3600000::bigint $$;
COMMENT ON FUNCTION kheish_runner_forget_ms() IS
    'How long the row of a runner that is not live is kept, ms.';

-- A runner's heartbeat: its row inserted or refreshed, the time from the
-- database's clock. started is what the first beat returned (NULL on that
-- first beat: the runner starts now, and a row left by an earlier process
-- with the same id, its pid reused, is taken over). Returns started_at_ms.
CREATE OR REPLACE FUNCTION kheish_runner_beat(id text, host text, pid int, concurrency int,
                                              started bigint) RETURNS bigint
    LANGUAGE sql
    AS $$
INSERT INTO runners AS r (runner_id, host, pid, concurrency, started_at_ms, last_heartbeat_at_ms)
VALUES (id, host, pid, concurrency, coalesce(started, kheish_now_ms()), kheish_now_ms())
ON CONFLICT (runner_id) DO UPDATE SET
    host = EXCLUDED.host, pid = EXCLUDED.pid, concurrency = EXCLUDED.concurrency,
    started_at_ms = EXCLUDED.started_at_ms, last_heartbeat_at_ms = EXCLUDED.last_heartbeat_at_ms
RETURNING r.started_at_ms
$$;
COMMENT ON FUNCTION kheish_runner_beat(text, text, integer, integer, bigint) IS
    'A runner''s heartbeat: its row inserted or refreshed by the database''s clock; returns started_at_ms.';

-- Deletes up to max rows of runners not live for kheish_runner_forget_ms(),
-- oldest first. Returns how many.
CREATE OR REPLACE FUNCTION kheish_runners_prune(max int) RETURNS int
    LANGUAGE sql
    AS $$
WITH d AS (DELETE FROM runners WHERE runner_id IN (
               SELECT runner_id FROM runners
               WHERE last_heartbeat_at_ms < kheish_now_ms() - kheish_runner_forget_ms()
               ORDER BY last_heartbeat_at_ms LIMIT max)
           RETURNING 1)
SELECT count(*)::int FROM d
$$;
COMMENT ON FUNCTION kheish_runners_prune(integer) IS
    'Deletes up to max rows of runners not live for kheish_runner_forget_ms(); returns how many.';

-- The runners block of /v1/status: the live runners (their last heartbeat
-- within kheish_runner_live_ms()), up to max of them, oldest first, each
-- with the running runs it holds the lease of. The held runs are counted
-- from the running runs only (the partial index runs_leases), whatever the
-- table's history.
CREATE OR REPLACE FUNCTION kheish_runners_status(max int) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
WITH l AS (SELECT * FROM runners
           WHERE last_heartbeat_at_ms >= kheish_now_ms() - kheish_runner_live_ms()),
     h AS (SELECT lease_owner, count(*) AS n FROM runs
           WHERE status = 'running' AND lease_owner IS NOT NULL GROUP BY lease_owner)
SELECT jsonb_build_object(
    'live_count', (SELECT count(*) FROM l),
    'live_window_ms', kheish_runner_live_ms(),
    'live', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'runner_id', x.runner_id, 'host', x.host, 'pid', x.pid,
                'concurrency', x.concurrency, 'started_at_ms', x.started_at_ms,
                'last_heartbeat_at_ms', x.last_heartbeat_at_ms,
                'heartbeat_age_ms', kheish_now_ms() - x.last_heartbeat_at_ms,
                'runs_held', coalesce(h.n, 0)) ORDER BY x.started_at_ms, x.runner_id)
            FROM (SELECT * FROM l ORDER BY started_at_ms, runner_id LIMIT max) x
            LEFT JOIN h ON h.lease_owner = x.runner_id), '[]'::jsonb),
    'runs_held_total', (SELECT coalesce(sum(n), 0) FROM h WHERE lease_owner IN (SELECT runner_id FROM l)),
    'slots_total', (SELECT coalesce(sum(concurrency), 0) FROM l))
$$;
COMMENT ON FUNCTION kheish_runners_status(integer) IS
    'The runners block of /v1/status: the live runners and the runs each holds.';
