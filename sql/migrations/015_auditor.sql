-- 015: the auditor role reads documented views and writes nothing (issue
-- 14, point 4: psql auditing); every table and column says what it holds.
--
-- Before: kheish_auditor could SELECT the raw tables, execute every
-- function (PUBLIC could: `SELECT kheish_flush_wal()` wrote WAL) and create
-- temporary tables (PUBLIC could). Now:
--
-- - The auditor reads the views of schema audit only (sql/functions/audit.sql,
--   each listed in docs/auditing.md); it holds no privilege on schema public.
--   No view shows a lease's token digest or a slot's nonce or ciphertext.
-- - Its transactions are read-only by default. That is a default it may turn
--   off; what stops its writes is that it holds no privilege to write.
-- - Nobody but the owner creates temporary tables or objects in schema
--   public: TEMP on this database and CREATE on public are revoked from
--   PUBLIC (no process of ours uses a temporary table).
-- - PUBLIC executes no function of schema public; kheish_app executes them
--   all (they call each other with the caller's rights), those there now and,
--   through the owner's default privileges, those the functions files create
--   later. tests/unit/store_catalog.c holds both rules.
--
-- These need the owner to own the database and schema public (or to be a
-- superuser, as the embedded cluster's postgres is); otherwise PostgreSQL
-- only warns and revokes nothing, and tests/unit/store_catalog.c fails.

ALTER ROLE kheish_auditor SET default_transaction_read_only = on;
ALTER ROLE kheish_auditor SET search_path = audit;
-- An auditor's forgotten open transaction would hold back vacuum.
ALTER ROLE kheish_auditor SET idle_in_transaction_session_timeout = '10min';

DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO kheish_app;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO kheish_app;

-- Two things any role may do by default, which no table privilege stops:
-- create large objects (a write into pg_largeobject, once a role turns
-- read-only off) and take advisory locks (an auditor holding the runners'
-- maintenance lock or the runtime writers' lock would stall recovery and
-- runtime changes). Both are functions of pg_catalog, now kheish_app's only
-- (it takes advisory locks, no large objects). Only a superuser changes
-- their privileges: under another owner this revokes nothing, with a warning.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace
               AND (p.proname ~ '^pg_(try_)?advisory_'
                    OR p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea', 'lo_import')) LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        IF f::text LIKE 'pg_%' THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO kheish_app', f);
        END IF;
    END LOOP;
END
$$;

-- Table grants also revoke the column grants of 005 (auth_slots, auth_leases).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM kheish_auditor;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM kheish_auditor;
REVOKE ALL ON SCHEMA public FROM kheish_auditor;

CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS
    'What the auditor role (kheish_auditor) reads: one view per question of docs/auditing.md.';
GRANT USAGE ON SCHEMA audit TO kheish_auditor;

-- What each table and column holds.

COMMENT ON TABLE kheish_schema_migrations IS
    'The migrations applied (sql/migrations/), each with the SHA-256 of its text: kheish migrate refuses a changed one.';
COMMENT ON COLUMN kheish_schema_migrations.version IS 'The migration''s number (NNN of NNN_name.sql).';
COMMENT ON COLUMN kheish_schema_migrations.name IS 'Its file name.';
COMMENT ON COLUMN kheish_schema_migrations.checksum IS 'SHA-256 of its text, hex.';
COMMENT ON COLUMN kheish_schema_migrations.applied_at IS 'When it was applied.';

COMMENT ON TABLE kheish_schema_functions IS
    'The functions files applied (sql/functions/), each with the SHA-256 of the text last applied: a file is applied again when its text changes.';
COMMENT ON COLUMN kheish_schema_functions.name IS 'The file name.';
COMMENT ON COLUMN kheish_schema_functions.checksum IS 'SHA-256 of the text last applied, hex.';
COMMENT ON COLUMN kheish_schema_functions.applied_at IS 'When that text was applied.';

COMMENT ON TABLE sessions IS 'Sessions (contract §2): an agent''s conversation; its runs are in runs.';
COMMENT ON COLUMN sessions.session_id IS 'The session id, chosen by the client ([A-Za-z0-9._:@-], at most 128).';
COMMENT ON COLUMN sessions.agent_id IS 'The session''s agent: agent-<session_id>.';
COMMENT ON COLUMN sessions.thread_id IS 'The client''s thread id, if it gave one.';
COMMENT ON COLUMN sessions.persona_id IS 'The persona the client named, if any.';
COMMENT ON COLUMN sessions.capability_scope IS 'The capability scope the client gave, as given.';
COMMENT ON COLUMN sessions.credential_scope IS 'The credential scope the client gave, as given.';
COMMENT ON COLUMN sessions.created_at_ms IS 'Creation, ms since the epoch (database clock).';
COMMENT ON COLUMN sessions.updated_at_ms IS 'Last change of the row, ms since the epoch.';
COMMENT ON COLUMN sessions.ended_at_ms IS 'When the session was ended (POST .../end), NULL while open.';
COMMENT ON COLUMN sessions.end_reason IS 'The reason given when it was ended.';

COMMENT ON TABLE run_transitions IS
    'The run state machine (contract §3): the only status changes the trigger runs_guard_transition lets through.';
COMMENT ON COLUMN run_transitions.from_status IS 'Status before.';
COMMENT ON COLUMN run_transitions.to_status IS 'Status after.';

COMMENT ON TABLE runs IS 'Runs: one input of a session and its execution, in the session''s queue order (run_no).';
COMMENT ON COLUMN runs.run_id IS 'run-<run_no>.';
COMMENT ON COLUMN runs.run_no IS 'Submission order, from runs_run_no_seq; unique within a session.';
COMMENT ON COLUMN runs.session_id IS 'Its session.';
COMMENT ON COLUMN runs.agent_id IS 'Its session''s agent.';
COMMENT ON COLUMN runs.kind IS 'input (a user''s submission: interrupted by restart recovery) or daemon-owned work (requeued).';
COMMENT ON COLUMN runs.status IS 'queued, running, waiting_for_approval, waiting_for_user_question, completed, failed, interrupted or cancelled.';
COMMENT ON COLUMN runs.submitted_at_ms IS 'Submission, ms since the epoch (database clock).';
COMMENT ON COLUMN runs.updated_at_ms IS 'Last status change, ms since the epoch.';
COMMENT ON COLUMN runs.started_at_ms IS 'First claim by a runner, ms since the epoch.';
COMMENT ON COLUMN runs.finished_at_ms IS 'Entry into a terminal status, ms since the epoch.';
COMMENT ON COLUMN runs.request IS 'The RunView''s request: source, actor_id, text_preview (200 characters), provider (the route asked for), model.';
COMMENT ON COLUMN runs.payload IS 'The submission''s body as accepted (its content is the user''s input).';
COMMENT ON COLUMN runs.input_metadata IS 'The submission''s metadata object.';
COMMENT ON COLUMN runs.outputs IS 'DaemonOutputRecords: the provider''s answer.';
COMMENT ON COLUMN runs.error IS 'Why it failed or was interrupted.';
COMMENT ON COLUMN runs.idempotency_key IS 'The client''s Idempotency-Key, unique within the session.';
COMMENT ON COLUMN runs.idempotency_fingerprint IS 'Digest of the submission, to tell a replay from a conflict.';
COMMENT ON COLUMN runs.lease_owner IS 'The runner executing it (runners.runner_id), while running.';
COMMENT ON COLUMN runs.lease_expires_at_ms IS 'When that runner''s lease ends unless renewed, while running; recovery takes runs past it.';

COMMENT ON TABLE run_events IS 'Persisted run events (RunEventEntry): each run''s own history, appended by kheish_append_events.';
COMMENT ON COLUMN run_events.id IS 'Append order.';
COMMENT ON COLUMN run_events.run_id IS 'The run.';
COMMENT ON COLUMN run_events.session_id IS 'Its session.';
COMMENT ON COLUMN run_events.agent_id IS 'Its agent.';
COMMENT ON COLUMN run_events.timestamp_ms IS 'When it was appended, ms since the epoch.';
COMMENT ON COLUMN run_events.event IS 'The event: {type: accepted|queued|started|completed|failed|...}.';

COMMENT ON TABLE events IS 'Stream events (SSE): ids dense and in commit order (kheish_append_events); pruned by kheish_prune_events.';
COMMENT ON COLUMN events.id IS 'The event id (SSE id:), from event_ids.';
COMMENT ON COLUMN events.created_at_ms IS 'When it was appended, ms since the epoch.';
COMMENT ON COLUMN events.name IS 'The event type (SSE event:), one of NAMES_STREAM_EVENTS.';
COMMENT ON COLUMN events.session_id IS 'Its session, if it has one.';
COMMENT ON COLUMN events.run_id IS 'Its run, if it has one.';
COMMENT ON COLUMN events.data IS 'The event''s data (SSE data:), with its type.';

COMMENT ON TABLE runtime_revisions IS 'Runtime settings: every change appends a revision; the newest is current.';
COMMENT ON COLUMN runtime_revisions.revision IS 'The revision number, one more than the one before.';
COMMENT ON COLUMN runtime_revisions.updated_at_ms IS 'When it was made, ms since the epoch.';
COMMENT ON COLUMN runtime_revisions.source IS 'bootstrap (the first) or runtime_api.';
COMMENT ON COLUMN runtime_revisions.setting IS 'What changed: permission_mode, debug_level, rollback, or initial.';
COMMENT ON COLUMN runtime_revisions.rollback_of_revision IS 'For a rollback, the revision whose settings it restored.';
COMMENT ON COLUMN runtime_revisions.settings IS 'Every setting as of this revision.';

COMMENT ON TABLE storage_probe IS 'One row that GET /v1/status rewrites to prove the database accepts writes.';
COMMENT ON COLUMN storage_probe.id IS 'Always 1.';
COMMENT ON COLUMN storage_probe.checked_at_ms IS 'The last probe, ms since the epoch.';
COMMENT ON COLUMN storage_probe.checked_by IS 'The process that probed.';

COMMENT ON TABLE auth_audit IS
    'Append-only ledger of auth failures, CORS rejections and rate-limit transitions (docs/security.md, Audit); triggers refuse UPDATE, DELETE and TRUNCATE.';
COMMENT ON COLUMN auth_audit.id IS 'Append order.';
COMMENT ON COLUMN auth_audit.timestamp_ms IS 'When the request was refused, ms since the epoch (the recording process''s clock).';
COMMENT ON COLUMN auth_audit.event IS 'auth_failure, auth_rate_limited, cors_origin_rejected or cors_origin_rate_limited.';
COMMENT ON COLUMN auth_audit.method IS 'The request''s HTTP method.';
COMMENT ON COLUMN auth_audit.path IS 'The request''s path.';
COMMENT ON COLUMN auth_audit.reason IS 'missing_token, malformed_token, invalid_token, insufficient_access or origin_not_allowed.';
COMMENT ON COLUMN auth_audit.origin IS 'The Origin header, control characters stripped, at most 512 bytes.';
COMMENT ON COLUMN auth_audit.remote_addr IS 'The client as nginx saw it (a.b.c.d:port, [v6]:port), or invalid.';
COMMENT ON COLUMN auth_audit.required_access IS 'The access the request needed: read_only or admin.';
COMMENT ON COLUMN auth_audit.recorded_by IS 'The process that refused it: component@host.';

COMMENT ON TABLE relay_stats IS 'What each SSE relay reports about itself every few seconds; a stopped relay deletes its row.';
COMMENT ON COLUMN relay_stats.relay_id IS 'kheish-sse-relay@<host>:<pid>.';
COMMENT ON COLUMN relay_stats.started_at_ms IS 'When the relay started, ms since the epoch.';
COMMENT ON COLUMN relay_stats.updated_at_ms IS 'Its last report, ms since the epoch.';
COMMENT ON COLUMN relay_stats.subscribers IS 'Streams it serves.';
COMMENT ON COLUMN relay_stats.replaying IS 'Of them, streams still replaying from the table.';
COMMENT ON COLUMN relay_stats.newest_event_id IS 'The newest event id it has read.';
COMMENT ON COLUMN relay_stats.lagged_total IS 'Clients cut for falling behind (live_lag), since it started.';
COMMENT ON COLUMN relay_stats.gaps_total IS 'stream_gap frames sent, since it started.';

COMMENT ON TABLE event_ids IS 'One row: the newest event id handed out; its row lock is the events lock (ids in commit order).';
COMMENT ON COLUMN event_ids.one IS 'Always true: the table has one row.';
COMMENT ON COLUMN event_ids.last_id IS 'The newest event id handed out.';

COMMENT ON TABLE event_retention IS 'One row: how far kheish_prune_events went.';
COMMENT ON COLUMN event_retention.one IS 'Always true: the table has one row.';
COMMENT ON COLUMN event_retention.pruned_through IS 'Every event id up to this one is gone.';
COMMENT ON COLUMN event_retention.pruned_total IS 'Events pruned, ever.';
COMMENT ON COLUMN event_retention.session_scopes IS 'Rows of event_scope_pruned with scope session.';
COMMENT ON COLUMN event_retention.run_scopes IS 'Rows of event_scope_pruned with scope run.';

COMMENT ON TABLE event_scope_pruned IS 'What retention took from each session and run stream, so a filtered stream reports its own gap.';
COMMENT ON COLUMN event_scope_pruned.scope IS 'session or run.';
COMMENT ON COLUMN event_scope_pruned.scope_id IS 'The session or run id.';
COMMENT ON COLUMN event_scope_pruned.first_id IS 'The oldest pruned event of the scope.';
COMMENT ON COLUMN event_scope_pruned.last_id IS 'The newest pruned event of the scope.';
COMMENT ON COLUMN event_scope_pruned.pruned IS 'How many of its events were pruned.';

COMMENT ON TABLE auth_store_key IS 'One row: the key id (fingerprint) of the master key every slot is sealed with.';
COMMENT ON COLUMN auth_store_key.one IS 'Always true: the table has one row.';
COMMENT ON COLUMN auth_store_key.key_id IS 'Keyed BLAKE2b fingerprint of the master key, 32 hex digits; not the key.';
COMMENT ON COLUMN auth_store_key.created_at_ms IS 'When this key became the store''s, ms since the epoch.';

COMMENT ON TABLE auth_slots IS 'Secret slots (contract §5): provider credentials, sealed (XChaCha20-Poly1305 under the master key).';
COMMENT ON COLUMN auth_slots.slot_id IS 'The slot id (a route''s auth_ref).';
COMMENT ON COLUMN auth_slots.provider IS 'generic, mcp_oauth, open_ai, anthropic, google, open_router or x_ai.';
COMMENT ON COLUMN auth_slots.mode IS 'opaque_secret, api_key or oauth_account.';
COMMENT ON COLUMN auth_slots.version IS 'The version sealed into the ciphertext; never repeats for a slot id.';
COMMENT ON COLUMN auth_slots.key_id IS 'The fingerprint of the key it is sealed with.';
COMMENT ON COLUMN auth_slots.nonce IS 'The seal''s 24-byte nonce. Secret material: in no audit view.';
COMMENT ON COLUMN auth_slots.ciphertext IS 'The sealed value. Secret material: in no audit view.';
COMMENT ON COLUMN auth_slots.updated_at_ms IS 'The last write, ms since the epoch.';

COMMENT ON TABLE auth_slot_audit IS 'Append-only ledger of every slot write, delete and lease revocation, without values.';
COMMENT ON COLUMN auth_slot_audit.id IS 'Append order.';
COMMENT ON COLUMN auth_slot_audit.at_ms IS 'When, ms since the epoch.';
COMMENT ON COLUMN auth_slot_audit.slot_id IS 'The slot.';
COMMENT ON COLUMN auth_slot_audit.action IS 'set, delete or revoke_leases.';
COMMENT ON COLUMN auth_slot_audit.version IS 'The version written by set.';
COMMENT ON COLUMN auth_slot_audit.provider IS 'The slot''s provider (set, delete).';
COMMENT ON COLUMN auth_slot_audit.revoked_leases IS 'How many active leases of the slot the change revoked.';
COMMENT ON COLUMN auth_slot_audit.recorded_by IS 'The process that made the change: component@host.';

COMMENT ON TABLE auth_subjects IS 'Broker subjects (daemon, session:<id>, agent:<id>, connector:<name>) and their epochs.';
COMMENT ON COLUMN auth_subjects.subject_id IS 'The subject.';
COMMENT ON COLUMN auth_subjects.epoch IS 'Its current epoch: leases of an older one do not resolve.';
COMMENT ON COLUMN auth_subjects.revoked IS 'Revoked subjects are issued no lease.';
COMMENT ON COLUMN auth_subjects.updated_at_ms IS 'Its last change, ms since the epoch.';

COMMENT ON TABLE auth_leases IS 'Broker leases: history, never deleted, revoked at most once (trigger auth_leases_history).';
COMMENT ON COLUMN auth_leases.lease_id IS 'The lease id.';
COMMENT ON COLUMN auth_leases.grant_id IS 'grant-<subject>:<route>.';
COMMENT ON COLUMN auth_leases.subject_id IS 'Who it was issued to.';
COMMENT ON COLUMN auth_leases.subject_epoch IS 'The subject''s epoch at issue.';
COMMENT ON COLUMN auth_leases.audience IS '{type: route, route_id, slot_id}: what it may open.';
COMMENT ON COLUMN auth_leases.slot_id IS 'The audience''s slot, for revoke-slot.';
COMMENT ON COLUMN auth_leases.token_digest IS 'SHA-256 of the lease token (the token is never stored). Secret material: in no audit view.';
COMMENT ON COLUMN auth_leases.issued_at_ms IS 'Issue, ms since the epoch.';
COMMENT ON COLUMN auth_leases.expires_at_ms IS 'Expiry, ms since the epoch.';
COMMENT ON COLUMN auth_leases.revoked_at_ms IS 'Revocation, ms since the epoch; NULL if never revoked.';
COMMENT ON COLUMN auth_leases.revoked_reason IS 'set, delete, revoke_leases, subject_revoked or lease_revoked.';

COMMENT ON TABLE runners IS 'The runners alive: each upserts its row every second (kheish_runner_beat), deletes it when it stops.';
COMMENT ON COLUMN runners.runner_id IS 'kheish-runner@<host>:<pid>, its runs'' lease_owner.';
COMMENT ON COLUMN runners.host IS 'Its host name.';
COMMENT ON COLUMN runners.pid IS 'Its process id.';
COMMENT ON COLUMN runners.concurrency IS 'The runs it executes at once.';
COMMENT ON COLUMN runners.started_at_ms IS 'When it started, ms since the epoch.';
COMMENT ON COLUMN runners.last_heartbeat_at_ms IS 'Its last heartbeat, ms since the epoch (database clock).';
