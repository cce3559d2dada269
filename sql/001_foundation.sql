-- 001: sessions, runs, events, runtime revisions, roles.
--
-- Applied by `kheish migrate` inside one transaction. Never edit this file once
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

CREATE FUNCTION kheish_now_ms() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;

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

-- The run state machine of the contract (section 3). The trigger below refuses
-- every status change that is not listed here, whoever issues it.
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

CREATE FUNCTION runs_guard_transition() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM run_transitions
                   WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'run % cannot go from % to %', OLD.run_id, OLD.status, NEW.status
            USING ERRCODE = 'KH409';
    END IF;
    -- Queue order: a queued run starts only when it is the oldest queued one of its session.
    IF OLD.status = 'queued' AND NEW.status = 'running' AND EXISTS (
        SELECT 1 FROM runs q WHERE q.session_id = OLD.session_id
                               AND q.status = 'queued' AND q.run_no < OLD.run_no) THEN
        RAISE EXCEPTION 'run % is not at the head of session % queue', OLD.run_id, OLD.session_id
            USING ERRCODE = 'KH409';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER runs_guard_transition BEFORE UPDATE OF status ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_guard_transition();

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

-- Stream events (SSE). Ids are handed out in commit order: see kheish_append_events.
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

-- The event-id rule (ARCHITECTURE.md, "Event ids"). Called once per
-- transaction, as its last statement. The advisory lock is held until COMMIT,
-- so every id drawn after it belongs to a transaction that commits after all
-- transactions holding smaller ids: a reader tailing `id > cursor` never skips
-- one. One NOTIFY carries only the newest id.
CREATE FUNCTION kheish_append_events(stream jsonb, run jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    newest bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7739075311862628353);
    INSERT INTO run_events (run_id, session_id, agent_id, timestamp_ms, event)
        SELECT e->>'run_id', e->>'session_id', e->>'agent_id', kheish_now_ms(), e->'event'
        FROM jsonb_array_elements(run) WITH ORDINALITY AS t(e, n) ORDER BY n;
    WITH ins AS (
        INSERT INTO events (id, created_at_ms, name, session_id, run_id, data)
            SELECT nextval('events_id_seq'), kheish_now_ms(), e->>'name', e->>'session_id',
                   e->>'run_id', e->'data'
            FROM jsonb_array_elements(stream) WITH ORDINALITY AS t(e, n) ORDER BY n
            RETURNING id)
    SELECT max(id) INTO newest FROM ins;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('kheish_events', newest::text);
    END IF;
    RETURN newest;
END
$$;

-- The views are PL/pgSQL rather than SQL functions: PL/pgSQL caches the plans
-- of its statements per connection, a non-inlined SQL function replans its body
-- on every call (measured: 5x slower GET /v1/runs/{id}).
CREATE FUNCTION run_view(r runs) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN jsonb_build_object(
    'run_id', r.run_id, 'session_id', r.session_id, 'agent_id', r.agent_id,
    'kind', r.kind, 'status', r.status,
    'submitted_at_ms', r.submitted_at_ms, 'updated_at_ms', r.updated_at_ms,
    'started_at_ms', r.started_at_ms, 'finished_at_ms', r.finished_at_ms,
    'queued_position', CASE WHEN r.status = 'queued' THEN (
        SELECT count(*) FROM runs q
        WHERE q.session_id = r.session_id AND q.status = 'queued' AND q.run_no <= r.run_no) END,
    'request', r.request,
    'input_attachments', coalesce(r.payload->'attachments', '[]'),
    'input_metadata', r.input_metadata,
    'pending_approval_ids', '[]'::jsonb, 'pending_approvals', '[]'::jsonb,
    'pending_question_ids', '[]'::jsonb, 'pending_questions', '[]'::jsonb,
    'outputs', r.outputs, 'deliveries', '[]'::jsonb, 'error', r.error);
END
$$;

-- The agent status of a session follows its active run.
CREATE FUNCTION session_status(sid text) RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN coalesce((SELECT CASE status WHEN 'waiting_for_user_question' THEN 'waiting_for_user_input'
                                    ELSE status END
                 FROM runs WHERE session_id = sid
                   AND status IN ('running', 'waiting_for_approval', 'waiting_for_user_question')),
                'idle');
END
$$;

CREATE FUNCTION session_summary(s sessions) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN jsonb_build_object(
    'session_id', s.session_id, 'agent_id', s.agent_id, 'status', session_status(s.session_id),
    'thread_id', s.thread_id, 'pending_approvals', 0, 'pending_questions', 0,
    'route_policy', NULL, 'goal', NULL,
    'capability_scope', s.capability_scope, 'effective_capability_scope', s.capability_scope,
    'credential_scope', s.credential_scope, 'effective_credential_scope', s.credential_scope,
    'persona', CASE WHEN s.persona_id IS NULL THEN NULL
                    ELSE jsonb_build_object('persona_id', s.persona_id) END,
    'operator', NULL, 'tool_overrides', NULL, 'input_contract', NULL, 'output_contract', NULL,
    'reply_targets', '[]'::jsonb,
    'created_at_ms', s.created_at_ms, 'updated_at_ms', s.updated_at_ms,
    'ended_at_ms', s.ended_at_ms, 'end_reason', s.end_reason);
END
$$;

CREATE FUNCTION session_view(s sessions) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN session_summary(s) || jsonb_build_object(
    'snapshot', jsonb_build_object(
        'status', session_status(s.session_id),
        'active_run_id', (SELECT run_id FROM runs WHERE session_id = s.session_id
                            AND status IN ('running', 'waiting_for_approval',
                                           'waiting_for_user_question')),
        'queued_run_ids', coalesce((SELECT jsonb_agg(run_id ORDER BY run_no) FROM runs
                                    WHERE session_id = s.session_id AND status = 'queued'),
                                   '[]'::jsonb),
        'run_count', (SELECT count(*) FROM runs WHERE session_id = s.session_id),
        'ended', s.ended_at_ms IS NOT NULL,
        'ended_at_ms', s.ended_at_ms, 'end_reason', s.end_reason),
    'outputs', '[]'::jsonb);
END
$$;

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
VALUES (1, kheish_now_ms(), 'bootstrap', 'initial', jsonb_build_object(
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
