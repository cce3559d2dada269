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
-- filtered stream reports only the losses of its own scope. Both functions
-- are in sql/functions/events.sql.

CREATE TABLE event_ids (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint NOT NULL -- the newest id handed out
);
-- Ids only grow: start past every id the sequence may have handed out.
INSERT INTO event_ids (last_id)
    SELECT greatest((SELECT last_value FROM events_id_seq WHERE is_called),
                    (SELECT max(id) FROM events), 0);

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

GRANT SELECT, UPDATE ON event_ids TO kheish_app;
GRANT SELECT ON event_retention, event_scope_pruned TO kheish_app, kheish_auditor;
