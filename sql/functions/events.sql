-- Events: the clock, the event-id rule, batches, durability and retention.
--
-- Every function here is CREATE OR REPLACE: `kheish migrate` runs this file
-- again, in its transaction, whenever its text changes (a function's return
-- type or parameters cannot change that way: drop it in a migration first).

-- The clock of every decision (leases, expiry, recovery, ordering): the
-- database's, so that every host reads the same one.
CREATE OR REPLACE FUNCTION kheish_now_ms() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;
COMMENT ON FUNCTION kheish_now_ms() IS
    'The clock of every decision (leases, expiry, recovery, ordering): the database''s now(), ms since the epoch.';

-- The event-id rule (ARCHITECTURE.md, "Event ids"): appends the stream
-- events (SSE) and the run events (RunEventEntry) of one transaction, as its
-- last statement. Ids come from the event_ids counter row, updated inside
-- the appending transaction: an abort rolls the counter back, so committed
-- ids are dense, and appenders queue on the row until COMMIT, so ids are
-- handed out in commit order and a reader tailing `id > cursor` never skips
-- one. One NOTIFY carries only the newest id. A run event may carry the
-- admin action that caused it (admin_action_id, kheish_run_events_by).
--
-- The transaction commits asynchronously: with synchronous commit it would
-- hold the counter row until its commit record is flushed, every append of
-- the system would wait for the flush before it, and no two commits would
-- share a flush. So the row is let go once the commit record is written.
-- Nothing is acted on before it is durable: the store, after such a commit,
-- flushes the WAL (kheish_flush_wal, store/db.c) before it answers a client
-- or a runner acts on a claim; a relay flushes after reading events and
-- before sending them. Concurrent flushes share an fsync.
CREATE OR REPLACE FUNCTION kheish_append_events(stream jsonb, run jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    n int := jsonb_array_length(stream);
    newest bigint;
BEGIN
    INSERT INTO run_events (run_id, session_id, agent_id, timestamp_ms, event, admin_action_id)
        SELECT e->>'run_id', e->>'session_id', e->>'agent_id', kheish_now_ms(), e->'event',
               (e->>'admin_action_id')::bigint
        FROM jsonb_array_elements(run) WITH ORDINALITY AS t(e, i) ORDER BY i;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE event_ids SET last_id = last_id + n RETURNING last_id INTO newest;
    INSERT INTO events (id, created_at_ms, name, session_id, run_id, data)
        SELECT newest - n + i, kheish_now_ms(), e->>'name', e->>'session_id', e->>'run_id',
               e->'data'
        FROM jsonb_array_elements(stream) WITH ORDINALITY AS t(e, i);
    PERFORM pg_notify('kheish_events', newest::text);
    RETURN newest;
END
$$;
COMMENT ON FUNCTION kheish_append_events(jsonb, jsonb) IS
    'Appends a transaction''s stream events (ids in commit order, one NOTIFY) and run events '
    '(with the admin action that caused each, if any); every writer calls it once, last.';

-- A stream event as kheish_append_events takes it; data gets its "type".
-- Every stream event is made by this function.
CREATE OR REPLACE FUNCTION kheish_stream_event(name text, session_id text, run_id text,
                                               data jsonb)
    RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_strip_nulls(jsonb_build_object('name', name, 'session_id', session_id,
                                            'run_id', run_id))
       || jsonb_build_object('data', data || jsonb_build_object('type', name))
$$;
COMMENT ON FUNCTION kheish_stream_event(text, text, text, jsonb) IS
    'A stream event as kheish_append_events takes it; every stream event is made by this function.';

-- The events of several batches (an array of arrays) as one array, in order;
-- planned once per connection.
CREATE OR REPLACE FUNCTION kheish_flatten(batches jsonb[]) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET plan_cache_mode = force_generic_plan
    AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(e ORDER BY i, j), '[]')
            FROM unnest(batches) WITH ORDINALITY AS b(a, i),
                 jsonb_array_elements(b.a) WITH ORDINALITY AS x(e, j));
END
$$;
COMMENT ON FUNCTION kheish_flatten(jsonb[]) IS
    'The events of several batches (an array of arrays) as one array, in order.';

-- Appends events gathered in batches (arrays of event arrays, one per status
-- change, say), in order, as one append; nothing when there are none.
-- Gathering batches copies nothing, where concatenating jsonb arrays run
-- after run would copy everything so far each time.
CREATE OR REPLACE FUNCTION kheish_append_batches(stream jsonb[], run jsonb[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF cardinality(stream) > 0 OR cardinality(run) > 0 THEN
        PERFORM kheish_append_events(kheish_flatten(stream), kheish_flatten(run));
    END IF;
END
$$;
COMMENT ON FUNCTION kheish_append_batches(jsonb[], jsonb[]) IS
    'Appends events gathered in batches, in order, as one append; nothing when there are none.';

-- What a writer or reader runs to make sure what it committed or read is
-- durable: a transactional WAL record, so that this statement's own
-- (synchronous) commit flushes the WAL up to it, with every commit before.
CREATE OR REPLACE FUNCTION kheish_flush_wal() RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'kheish', 'flush');
END
$$;
COMMENT ON FUNCTION kheish_flush_wal() IS
    'Writes a transactional WAL record, so that this statement''s synchronous commit makes every earlier commit durable. A write: the auditor may not call it.';

-- Retention. Deletes the events created before before_ms (always a prefix
-- of the id order: ids follow commit order) and records how far it went
-- (event_retention) and, per session and per run, what it took
-- (event_scope_pruned), so a filtered stream reports only the losses of its
-- own scope. Returns how many. Runs as the owner, so the application role
-- may prune without the right to delete events at will.
CREATE OR REPLACE FUNCTION kheish_prune_events(before_ms bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
DECLARE
    through bigint;
    n bigint;
BEGIN
    SELECT max(id) INTO through FROM events WHERE created_at_ms < before_ms;
    IF through IS NULL THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM events WHERE id <= through RETURNING id, session_id, run_id),
    scoped AS (
        SELECT 'session' AS scope, session_id AS scope_id, id FROM gone
            WHERE session_id IS NOT NULL
        UNION ALL
        SELECT 'run', run_id, id FROM gone WHERE run_id IS NOT NULL),
    counted AS (
        INSERT INTO event_scope_pruned AS p (scope, scope_id, first_id, last_id, pruned)
            SELECT scope, scope_id, min(id), max(id), count(*) FROM scoped
            GROUP BY scope, scope_id
        ON CONFLICT (scope, scope_id) DO UPDATE
            SET last_id = EXCLUDED.last_id, pruned = p.pruned + EXCLUDED.pruned
        RETURNING p.scope, p.xmax = 0 AS fresh) -- inserted, not updated
    UPDATE event_retention SET
        pruned_through = greatest(pruned_through, through),
        pruned_total = pruned_total + (SELECT count(*) FROM gone),
        session_scopes = session_scopes +
            (SELECT count(*) FROM counted WHERE scope = 'session' AND fresh),
        run_scopes = run_scopes + (SELECT count(*) FROM counted WHERE scope = 'run' AND fresh)
    RETURNING (SELECT count(*) FROM gone) INTO n;
    RETURN n;
END
$$;
COMMENT ON FUNCTION kheish_prune_events(bigint) IS
    'Retention: deletes the events created before before_ms (a prefix of the id order) and records what it took; returns how many. SECURITY DEFINER: the app may prune without DELETE on events.';
