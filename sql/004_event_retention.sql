-- 004: event retention, and what a stream needs to report it.
--
-- Dense ids. Event ids now come from a counter row updated inside the
-- appending transaction instead of a sequence: a transaction that aborts
-- after drawing ids rolls the counter back, so committed ids have no holes.
-- A stream can then say exactly how many events a prune took from under its
-- cursor (stream_gap reason replay_window, "skipped"). The counter row is
-- also the events lock: appenders queue on it until COMMIT, so ids are still
-- handed out in commit order (ARCHITECTURE.md, "Event ids").
--
-- Retention. kheish_prune_events(before_ms) deletes the oldest events, always
-- a prefix of the id order, and records how far it went (event_retention)
-- and, per session and per run, what it took (event_scope_pruned), so a
-- filtered stream reports only the losses of its own scope.

CREATE TABLE event_ids (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint NOT NULL -- the newest id handed out
);
-- Ids only grow: start past every id the sequence may have handed out.
INSERT INTO event_ids (last_id)
    SELECT greatest((SELECT last_value FROM events_id_seq WHERE is_called),
                    (SELECT max(id) FROM events), 0);

CREATE OR REPLACE FUNCTION kheish_append_events(stream jsonb, run jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    n int := jsonb_array_length(stream);
    newest bigint;
BEGIN
    INSERT INTO run_events (run_id, session_id, agent_id, timestamp_ms, event)
        SELECT e->>'run_id', e->>'session_id', e->>'agent_id', kheish_now_ms(), e->'event'
        FROM jsonb_array_elements(run) WITH ORDINALITY AS t(e, i) ORDER BY i;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE event_ids SET last_id = last_id + n RETURNING last_id INTO newest;
    INSERT INTO events (id, created_at_ms, name, session_id, run_id, data)
        SELECT newest - n + i, kheish_now_ms(), e->>'name', e->>'session_id', e->>'run_id',
               e->'data'
        FROM jsonb_array_elements(stream) WITH ORDINALITY AS t(e, i);
    PERFORM pg_notify('kheish_events', newest::text);
    RETURN newest;
END
$$;

DROP SEQUENCE events_id_seq;

CREATE TABLE event_retention (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    pruned_through bigint NOT NULL DEFAULT 0, -- every event id up to this one is gone
    pruned_total   bigint NOT NULL DEFAULT 0, -- events pruned, ever
    session_scopes bigint NOT NULL DEFAULT 0, -- rows of event_scope_pruned, per scope
    run_scopes     bigint NOT NULL DEFAULT 0
);
INSERT INTO event_retention DEFAULT VALUES;

CREATE TABLE event_scope_pruned (
    scope    text NOT NULL CHECK (scope IN ('session', 'run')),
    scope_id text NOT NULL,
    first_id bigint NOT NULL, -- the oldest and newest pruned event of the scope
    last_id  bigint NOT NULL,
    pruned   bigint NOT NULL, -- how many
    PRIMARY KEY (scope, scope_id)
);

-- Deletes the events created before before_ms (a prefix of the id order:
-- ids follow commit order). Returns how many. Runs as the owner, so the
-- application role may prune without the right to delete events at will.
CREATE FUNCTION kheish_prune_events(before_ms bigint) RETURNS bigint
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

GRANT SELECT, UPDATE ON event_ids TO kheish_app;
GRANT SELECT ON event_retention, event_scope_pruned TO kheish_app, kheish_auditor;
REVOKE ALL ON FUNCTION kheish_prune_events(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kheish_prune_events(bigint) TO kheish_app;
