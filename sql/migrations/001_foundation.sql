-- 001: sessions, runs, events, runtime revisions, roles.
--
-- The migrations hold tables, indexes, constraints and data moves; the
-- functions, triggers and views they serve are in sql/functions/. `kheish
-- migrate` applies both in one transaction. Never edit a migration once
-- applied anywhere: `kheish migrate` refuses a changed checksum. Add a new
-- numbered file instead.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kheish_app') THEN
        CREATE ROLE kheish_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kheish_auditor') THEN
        CREATE ROLE kheish_auditor LOGIN;
    END IF;
END
$$;

CREATE TABLE sessions (
    session_id       text PRIMARY KEY
                     CHECK (session_id ~ '^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127}$'),
    agent_id         text NOT NULL,
    thread_id        text,
    persona_id       text,
    capability_scope jsonb,
    credential_scope jsonb,
    created_at_ms    bigint NOT NULL,
    updated_at_ms    bigint NOT NULL,
    ended_at_ms      bigint,
    end_reason       text
);
CREATE INDEX sessions_created ON sessions (created_at_ms, session_id);

-- The run state machine of the contract (section 3). A trigger
-- (runs_guard_transition) refuses every status change that is not listed
-- here, whoever issues it.
CREATE TABLE run_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO run_transitions VALUES
    ('queued', 'running'), ('queued', 'failed'), ('queued', 'cancelled'),
    ('running', 'queued'),
    ('running', 'waiting_for_approval'), ('running', 'waiting_for_user_question'),
    ('running', 'completed'), ('running', 'failed'), ('running', 'interrupted'),
    ('running', 'cancelled'),
    ('waiting_for_approval', 'running'), ('waiting_for_approval', 'failed'),
    ('waiting_for_approval', 'interrupted'), ('waiting_for_approval', 'cancelled'),
    ('waiting_for_user_question', 'running'), ('waiting_for_user_question', 'completed'),
    ('waiting_for_user_question', 'failed'), ('waiting_for_user_question', 'interrupted'),
    ('waiting_for_user_question', 'cancelled');

CREATE SEQUENCE runs_run_no_seq;

CREATE TABLE runs (
    run_id                  text PRIMARY KEY,
    run_no                  bigint NOT NULL UNIQUE,
    session_id              text NOT NULL REFERENCES sessions,
    agent_id                text NOT NULL,
    kind                    text NOT NULL DEFAULT 'input',
    status                  text NOT NULL DEFAULT 'queued' CHECK (status IN (
                                'queued', 'running', 'waiting_for_approval',
                                'waiting_for_user_question', 'completed', 'failed',
                                'interrupted', 'cancelled')),
    submitted_at_ms         bigint NOT NULL,
    updated_at_ms           bigint NOT NULL,
    started_at_ms           bigint,
    finished_at_ms          bigint,
    request                 jsonb NOT NULL,
    payload                 jsonb NOT NULL,
    input_metadata          jsonb,
    outputs                 jsonb NOT NULL DEFAULT '[]',
    error                   text,
    idempotency_key         text,
    idempotency_fingerprint text,
    lease_owner             text,
    lease_expires_at_ms     bigint
);
CREATE UNIQUE INDEX runs_idempotency ON runs (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- One active run per session, enforced by the database itself.
CREATE UNIQUE INDEX runs_one_active_per_session ON runs (session_id)
    WHERE status IN ('running', 'waiting_for_approval', 'waiting_for_user_question');
CREATE INDEX runs_live ON runs (session_id, run_no)
    WHERE status IN ('queued', 'running', 'waiting_for_approval', 'waiting_for_user_question');
CREATE INDEX runs_submitted ON runs (submitted_at_ms, run_id);
CREATE INDEX runs_session_submitted ON runs (session_id, submitted_at_ms, run_id);

-- Persisted run events (RunEventEntry), the run's own history.
CREATE TABLE run_events (
    id           bigserial PRIMARY KEY,
    run_id       text NOT NULL REFERENCES runs,
    session_id   text NOT NULL,
    agent_id     text NOT NULL,
    timestamp_ms bigint NOT NULL,
    event        jsonb NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
CREATE INDEX run_events_session ON run_events (session_id, id);

-- Stream events (SSE). Ids are handed out in commit order: see kheish_append_events
-- (sql/functions/events.sql).
CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
    id            bigint PRIMARY KEY,
    created_at_ms bigint NOT NULL,
    name          text NOT NULL,
    session_id    text,
    run_id        text,
    data          jsonb NOT NULL
);
CREATE INDEX events_session ON events (session_id, id) WHERE session_id IS NOT NULL;
CREATE INDEX events_run ON events (run_id, id) WHERE run_id IS NOT NULL;

-- Runtime settings: every change appends a revision; the newest one is current.
CREATE TABLE runtime_revisions (
    revision             bigint PRIMARY KEY,
    updated_at_ms        bigint NOT NULL,
    source               text NOT NULL,
    setting              text NOT NULL,
    rollback_of_revision bigint REFERENCES runtime_revisions,
    settings             jsonb NOT NULL
);
INSERT INTO runtime_revisions (revision, updated_at_ms, source, setting, settings)
VALUES (1, (extract(epoch FROM now()) * 1000)::bigint, 'bootstrap', 'initial', jsonb_build_object(
    'route_id', NULL, 'provider', NULL, 'model', NULL,
    'permission_mode', 'default', 'debug_level', 'off',
    'system_prompt', jsonb_build_object('override_prompt', NULL, 'custom_prompt', NULL,
                                        'append_prompt', NULL, 'language', NULL,
                                        'output_style', NULL),
    'hooks', '{}'::jsonb, 'learning_policy', NULL,
    'run_memory_policy', jsonb_build_object('enabled', false, 'retention_ms', 2592000000,
                                            'max_tracked_per_session', 200,
                                            'max_prompt_entries', 8, 'redact_pii', true,
                                            'search_visibility', 'session'),
    'tool_runtime_limits', jsonb_build_object('max_input_bytes', 1048576,
                                              'max_output_bytes', 1048576,
                                              'max_result_envelope_bytes', 2097152,
                                              'max_timeout_ms', 600000, 'max_parallel_tools', 4,
                                              'max_calls_per_turn', 64,
                                              'max_cumulative_output_bytes', 16777216,
                                              'max_cumulative_result_envelope_bytes', 33554432,
                                              'max_sandbox', 'workspace_write')));

-- One row the status endpoint rewrites to prove the database accepts writes.
CREATE TABLE storage_probe (
    id            int PRIMARY KEY CHECK (id = 1),
    checked_at_ms bigint NOT NULL,
    checked_by    text NOT NULL
);
INSERT INTO storage_probe VALUES (1, 0, 'migration');

GRANT USAGE ON SCHEMA public TO kheish_app, kheish_auditor;
GRANT SELECT, INSERT, UPDATE ON sessions, runs TO kheish_app;
GRANT SELECT, INSERT ON run_events, events, runtime_revisions TO kheish_app;
GRANT SELECT ON run_transitions TO kheish_app;
GRANT SELECT, UPDATE ON storage_probe TO kheish_app;
GRANT USAGE ON SEQUENCE runs_run_no_seq, events_id_seq, run_events_id_seq TO kheish_app;
GRANT SELECT ON sessions, runs, run_events, events, runtime_revisions, run_transitions
    TO kheish_auditor;
