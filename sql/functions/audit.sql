-- The auditor's views (schema audit, migration 015; docs/auditing.md lists
-- each and the queries run on them). kheish_auditor may SELECT these and
-- nothing else.
--
-- Rules for a view here:
-- - no secret material: no token digest, no slot nonce or ciphertext;
-- - no function of schema public: a view runs its functions with the reader's
--   rights, and the auditor executes none of them (the database's clock is
--   written out: now(), as kheish_now_ms() reads it);
-- - times as timestamptz (at, ..._at), the source's milliseconds kept where a
--   log line is to be matched (..._ms);
-- - a COMMENT on the view and on each column (tests/unit/store_catalog.c).
-- A column cannot be dropped, renamed or retyped by CREATE OR REPLACE VIEW:
-- that takes a migration that drops the view first.

CREATE OR REPLACE VIEW audit.auth_failures AS
SELECT a.id, to_timestamp(a.timestamp_ms / 1000.0) AS at, a.timestamp_ms AS at_ms, a.event,
       a.reason, a.method, a.path, a.required_access,
       CASE WHEN a.remote_addr LIKE '[%' THEN substring(a.remote_addr FROM '^\[([^]]*)\]')
            ELSE regexp_replace(a.remote_addr, ':[0-9]+$', '') END AS client_ip,
       a.remote_addr, a.origin, a.recorded_by
FROM auth_audit a;
COMMENT ON VIEW audit.auth_failures IS
    'Every refused request: auth failures, CORS rejections and the first rate-limited failure of a bucket (table auth_audit, append-only).';
COMMENT ON COLUMN audit.auth_failures.id IS 'Append order.';
COMMENT ON COLUMN audit.auth_failures.at IS 'When it was refused.';
COMMENT ON COLUMN audit.auth_failures.at_ms IS 'The same, ms since the epoch, as in control-plane-auth/audit.jsonl.';
COMMENT ON COLUMN audit.auth_failures.event IS 'auth_failure, auth_rate_limited, cors_origin_rejected or cors_origin_rate_limited.';
COMMENT ON COLUMN audit.auth_failures.reason IS 'missing_token, malformed_token, invalid_token, insufficient_access or origin_not_allowed.';
COMMENT ON COLUMN audit.auth_failures.method IS 'HTTP method.';
COMMENT ON COLUMN audit.auth_failures.path IS 'Request path.';
COMMENT ON COLUMN audit.auth_failures.required_access IS 'read_only or admin: what the request needed.';
COMMENT ON COLUMN audit.auth_failures.client_ip IS 'The client address without its port (invalid when nginx''s value was no address).';
COMMENT ON COLUMN audit.auth_failures.remote_addr IS 'The client address and port as recorded.';
COMMENT ON COLUMN audit.auth_failures.origin IS 'The Origin header, if any (control characters stripped).';
COMMENT ON COLUMN audit.auth_failures.recorded_by IS 'The process that refused it: component@host.';

CREATE OR REPLACE VIEW audit.sessions AS
SELECT s.session_id, s.agent_id, s.thread_id, s.persona_id,
       to_timestamp(s.created_at_ms / 1000.0) AS created_at,
       to_timestamp(s.updated_at_ms / 1000.0) AS updated_at,
       to_timestamp(s.ended_at_ms / 1000.0) AS ended_at, s.end_reason,
       (SELECT count(*) FROM runs r WHERE r.session_id = s.session_id) AS runs,
       (SELECT count(*) FROM runs r WHERE r.session_id = s.session_id
        AND r.status = 'queued') AS queued_runs,
       (SELECT r.run_id FROM runs r WHERE r.session_id = s.session_id AND r.status IN
            ('running', 'waiting_for_approval', 'waiting_for_user_question')) AS active_run_id
FROM sessions s;
COMMENT ON VIEW audit.sessions IS 'Sessions, with their run counts (table sessions).';
COMMENT ON COLUMN audit.sessions.session_id IS 'The session id.';
COMMENT ON COLUMN audit.sessions.agent_id IS 'Its agent.';
COMMENT ON COLUMN audit.sessions.thread_id IS 'The client''s thread id, if any.';
COMMENT ON COLUMN audit.sessions.persona_id IS 'Its persona, if any.';
COMMENT ON COLUMN audit.sessions.created_at IS 'When it was created.';
COMMENT ON COLUMN audit.sessions.updated_at IS 'Its last change.';
COMMENT ON COLUMN audit.sessions.ended_at IS 'When it was ended; NULL while open.';
COMMENT ON COLUMN audit.sessions.end_reason IS 'The reason given when it was ended.';
COMMENT ON COLUMN audit.sessions.runs IS 'Its runs, all statuses.';
COMMENT ON COLUMN audit.sessions.queued_runs IS 'Its queued runs.';
COMMENT ON COLUMN audit.sessions.active_run_id IS 'Its running or waiting run, if any.';

CREATE OR REPLACE VIEW audit.runs AS
SELECT r.run_id, r.run_no, r.session_id, r.kind, r.status,
       r.request->>'provider' AS route, r.request->>'model' AS model,
       r.request->>'actor_id' AS actor_id, r.request->>'source_kind' AS source_kind,
       r.request->>'text_preview' AS text_preview,
       to_timestamp(r.submitted_at_ms / 1000.0) AS submitted_at,
       to_timestamp(r.started_at_ms / 1000.0) AS started_at,
       to_timestamp(r.finished_at_ms / 1000.0) AS finished_at, r.error, r.lease_owner,
       to_timestamp(r.lease_expires_at_ms / 1000.0) AS lease_expires_at
FROM runs r;
COMMENT ON VIEW audit.runs IS
    'Runs: who asked for what, through which route, and how it ended (table runs; the input beyond its preview and the outputs are left out).';
COMMENT ON COLUMN audit.runs.run_id IS 'The run id.';
COMMENT ON COLUMN audit.runs.run_no IS 'Submission order.';
COMMENT ON COLUMN audit.runs.session_id IS 'Its session.';
COMMENT ON COLUMN audit.runs.kind IS 'input (a user''s submission) or daemon-owned work.';
COMMENT ON COLUMN audit.runs.status IS 'Its status now.';
COMMENT ON COLUMN audit.runs.route IS 'The route the submission named (provider); NULL: the model''s route/ prefix or the default route.';
COMMENT ON COLUMN audit.runs.model IS 'The model the submission named, if any.';
COMMENT ON COLUMN audit.runs.actor_id IS 'The actor the submission named, if any.';
COMMENT ON COLUMN audit.runs.source_kind IS 'Where the submission came from (api unless the client said).';
COMMENT ON COLUMN audit.runs.text_preview IS 'The first 200 characters of the input.';
COMMENT ON COLUMN audit.runs.submitted_at IS 'Submission.';
COMMENT ON COLUMN audit.runs.started_at IS 'First claim by a runner.';
COMMENT ON COLUMN audit.runs.finished_at IS 'Entry into a terminal status.';
COMMENT ON COLUMN audit.runs.error IS 'Why it failed or was interrupted.';
COMMENT ON COLUMN audit.runs.lease_owner IS 'The runner executing it, while running.';
COMMENT ON COLUMN audit.runs.lease_expires_at IS 'When that runner''s lease ends unless renewed, while running.';

CREATE OR REPLACE VIEW audit.run_events AS
SELECT e.id, e.run_id, e.session_id, to_timestamp(e.timestamp_ms / 1000.0) AS at,
       e.timestamp_ms AS at_ms, e.event->>'type' AS type, e.event
FROM run_events e;
COMMENT ON VIEW audit.run_events IS 'Each run''s history (table run_events).';
COMMENT ON COLUMN audit.run_events.id IS 'Append order.';
COMMENT ON COLUMN audit.run_events.run_id IS 'The run.';
COMMENT ON COLUMN audit.run_events.session_id IS 'Its session.';
COMMENT ON COLUMN audit.run_events.at IS 'When it was appended.';
COMMENT ON COLUMN audit.run_events.at_ms IS 'The same, ms since the epoch.';
COMMENT ON COLUMN audit.run_events.type IS 'accepted, queued, started, completed, failed, interrupted or cancelled.';
COMMENT ON COLUMN audit.run_events.event IS 'The whole event (a failure''s error).';

CREATE OR REPLACE VIEW audit.stuck_runs AS
SELECT r.run_id, r.session_id, r.status, r.lease_owner,
       to_timestamp(r.lease_expires_at_ms / 1000.0) AS lease_expires_at,
       n.now_ms - coalesce(r.lease_expires_at_ms, r.updated_at_ms) AS overdue_ms,
       to_timestamp(r.updated_at_ms / 1000.0) AS updated_at
FROM runs r, (SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms) n
WHERE r.status IN ('running', 'waiting_for_approval', 'waiting_for_user_question')
  AND coalesce(r.lease_expires_at_ms, 0) < n.now_ms;
COMMENT ON VIEW audit.stuck_runs IS
    'Active runs no runner holds: running with an expired lease (restart recovery should take it within a second while a runner is live), or waiting (no lease).';
COMMENT ON COLUMN audit.stuck_runs.run_id IS 'The run.';
COMMENT ON COLUMN audit.stuck_runs.session_id IS 'Its session (whose queue it blocks).';
COMMENT ON COLUMN audit.stuck_runs.status IS 'running, waiting_for_approval or waiting_for_user_question.';
COMMENT ON COLUMN audit.stuck_runs.lease_owner IS 'The runner that held it, while running.';
COMMENT ON COLUMN audit.stuck_runs.lease_expires_at IS 'When its lease ended.';
COMMENT ON COLUMN audit.stuck_runs.overdue_ms IS 'Since its lease ended (a waiting run: since its last change), by the database''s clock.';
COMMENT ON COLUMN audit.stuck_runs.updated_at IS 'Its last status change.';

CREATE OR REPLACE VIEW audit.queue_heads AS
SELECT q.session_id, q.queued_runs, h.run_id AS head_run_id,
       to_timestamp(h.submitted_at_ms / 1000.0) AS head_submitted_at,
       (extract(epoch FROM now()) * 1000)::bigint - h.submitted_at_ms AS head_age_ms,
       a.run_id AS active_run_id, a.status AS active_status
FROM (SELECT session_id, count(*) AS queued_runs, min(run_no) AS head_no FROM runs
      WHERE status = 'queued' GROUP BY session_id) q
JOIN runs h ON h.session_id = q.session_id AND h.run_no = q.head_no
LEFT JOIN runs a ON a.session_id = q.session_id
    AND a.status IN ('running', 'waiting_for_approval', 'waiting_for_user_question');
COMMENT ON VIEW audit.queue_heads IS
    'Each session with queued runs: its oldest queued run, how long it has waited (database clock), and the active run it waits behind.';
COMMENT ON COLUMN audit.queue_heads.session_id IS 'The session.';
COMMENT ON COLUMN audit.queue_heads.queued_runs IS 'Its queued runs.';
COMMENT ON COLUMN audit.queue_heads.head_run_id IS 'The oldest of them, the next to start.';
COMMENT ON COLUMN audit.queue_heads.head_submitted_at IS 'When it was submitted.';
COMMENT ON COLUMN audit.queue_heads.head_age_ms IS 'How long it has been queued, ms.';
COMMENT ON COLUMN audit.queue_heads.active_run_id IS 'The session''s running or waiting run, which the head waits behind; NULL: it waits for a runner.';
COMMENT ON COLUMN audit.queue_heads.active_status IS 'That run''s status.';

CREATE OR REPLACE VIEW audit.runtime_changes AS
SELECT c.revision, to_timestamp(c.updated_at_ms / 1000.0) AS at, c.updated_at_ms AS at_ms,
       c.source, c.setting, c.rollback_of_revision,
       (SELECT jsonb_object_agg(k.key, k.value) FROM jsonb_each(c.settings) k
        WHERE p.settings->k.key IS DISTINCT FROM k.value) AS changed,
       (SELECT jsonb_object_agg(k.key, p.settings->k.key) FROM jsonb_each(c.settings) k
        WHERE p.settings->k.key IS DISTINCT FROM k.value) AS previous,
       a.role AS actor_role, a.token_fingerprint AS actor_token_fingerprint,
       a.remote_addr AS actor_remote_addr, a.request_id AS actor_request_id
FROM runtime_revisions c
LEFT JOIN runtime_revisions p ON p.revision = c.revision - 1
LEFT JOIN admin_actions a ON a.id = c.admin_action_id;
COMMENT ON VIEW audit.runtime_changes IS
    'Every runtime settings change (permission mode, debug level, tool limits, permission rules, rollback): what changed, from what (table runtime_revisions).';
COMMENT ON COLUMN audit.runtime_changes.revision IS 'The revision it made.';
COMMENT ON COLUMN audit.runtime_changes.at IS 'When.';
COMMENT ON COLUMN audit.runtime_changes.at_ms IS 'The same, ms since the epoch.';
COMMENT ON COLUMN audit.runtime_changes.source IS 'bootstrap (the first revision) or runtime_api (an admin request).';
COMMENT ON COLUMN audit.runtime_changes.setting IS 'permission_mode, debug_level, tool_runtime_limits, permission_rules, rollback, or initial.';
COMMENT ON COLUMN audit.runtime_changes.rollback_of_revision IS 'For a rollback, the revision it went back to.';
COMMENT ON COLUMN audit.runtime_changes.changed IS 'The settings that differ from the revision before, with their new values.';
COMMENT ON COLUMN audit.runtime_changes.previous IS 'The same settings'' values before.';
COMMENT ON COLUMN audit.runtime_changes.actor_role IS
    'Who made it: the role of the token (audit.admin_actions; null for bootstrap).';
COMMENT ON COLUMN audit.runtime_changes.actor_token_fingerprint IS
    'The first 16 hex digits of the SHA-256 of the admin token that made it (not the token).';
COMMENT ON COLUMN audit.runtime_changes.actor_remote_addr IS 'Where that request came from.';
COMMENT ON COLUMN audit.runtime_changes.actor_request_id IS
    'Its request id, as in logs/fcgi.log and nginx''s access log.';

CREATE OR REPLACE VIEW audit.admin_actions AS
SELECT a.id, to_timestamp(a.at_ms / 1000.0) AS at, a.at_ms, a.role, a.token_fingerprint,
       a.remote_addr, a.request_id, a.user_agent, a.method, a.path, a.action, a.session_id,
       a.run_id, a.target_id, a.result
FROM admin_actions a;
COMMENT ON VIEW audit.admin_actions IS
    'Every authenticated write: who (token fingerprint, address, user agent, request id) did '
    'what, when, and what it answered (table admin_actions).';
COMMENT ON COLUMN audit.admin_actions.id IS 'Append order; the rows it changed link to it.';
COMMENT ON COLUMN audit.admin_actions.at IS 'When (the database''s clock).';
COMMENT ON COLUMN audit.admin_actions.at_ms IS 'The same, ms since the epoch.';
COMMENT ON COLUMN audit.admin_actions.role IS 'admin, read_only or anonymous (auth off).';
COMMENT ON COLUMN audit.admin_actions.token_fingerprint IS
    'The first 16 hex digits of the SHA-256 of the bearer token (`sha256sum` of the token '
    'file''s token), never the token.';
COMMENT ON COLUMN audit.admin_actions.remote_addr IS 'The client as nginx saw it.';
COMMENT ON COLUMN audit.admin_actions.request_id IS
    'nginx''s $request_id: the same in logs/fcgi.log and nginx''s access log.';
COMMENT ON COLUMN audit.admin_actions.user_agent IS 'The User-Agent header, cleaned and cut.';
COMMENT ON COLUMN audit.admin_actions.method IS 'The HTTP method.';
COMMENT ON COLUMN audit.admin_actions.path IS 'The request path.';
COMMENT ON COLUMN audit.admin_actions.action IS
    'What it did: session_create, run_submit, run_cancel, runtime_change, slot_put, ...';
COMMENT ON COLUMN audit.admin_actions.session_id IS 'The session it acted on, if any.';
COMMENT ON COLUMN audit.admin_actions.run_id IS 'The run it acted on, if any.';
COMMENT ON COLUMN audit.admin_actions.target_id IS 'The slot, subject or lease it acted on.';
COMMENT ON COLUMN audit.admin_actions.result IS
    'What the write answered: ok, created, reused, or the error (run_not_found, ...).';

CREATE OR REPLACE VIEW audit.slots AS
SELECT a.slot_id, a.provider, a.mode, a.version, a.key_id,
       a.key_id = k.key_id AS sealed_with_store_key,
       to_timestamp(a.updated_at_ms / 1000.0) AS updated_at
FROM auth_slots a LEFT JOIN auth_store_key k ON true;
COMMENT ON VIEW audit.slots IS
    'The secret slots that exist, never their values (table auth_slots without nonce and ciphertext).';
COMMENT ON COLUMN audit.slots.slot_id IS 'The slot id (a route''s auth_ref).';
COMMENT ON COLUMN audit.slots.provider IS 'Its provider.';
COMMENT ON COLUMN audit.slots.mode IS 'opaque_secret, api_key or oauth_account.';
COMMENT ON COLUMN audit.slots.version IS 'The version written last.';
COMMENT ON COLUMN audit.slots.key_id IS 'Fingerprint of the master key it is sealed with (not the key).';
COMMENT ON COLUMN audit.slots.sealed_with_store_key IS 'Whether that is the store''s key (auth_store_key).';
COMMENT ON COLUMN audit.slots.updated_at IS 'Its last write.';

CREATE OR REPLACE VIEW audit.slot_changes AS
SELECT a.id, to_timestamp(a.at_ms / 1000.0) AS at, a.at_ms, a.slot_id, a.action, a.version,
       a.provider, a.revoked_leases, a.recorded_by
FROM auth_slot_audit a;
COMMENT ON VIEW audit.slot_changes IS
    'Every slot write, delete and lease revocation (table auth_slot_audit, append-only, without values).';
COMMENT ON COLUMN audit.slot_changes.id IS 'Append order.';
COMMENT ON COLUMN audit.slot_changes.at IS 'When.';
COMMENT ON COLUMN audit.slot_changes.at_ms IS 'The same, ms since the epoch.';
COMMENT ON COLUMN audit.slot_changes.slot_id IS 'The slot.';
COMMENT ON COLUMN audit.slot_changes.action IS 'set, delete or revoke_leases.';
COMMENT ON COLUMN audit.slot_changes.version IS 'The version written by set.';
COMMENT ON COLUMN audit.slot_changes.provider IS 'The slot''s provider (set, delete).';
COMMENT ON COLUMN audit.slot_changes.revoked_leases IS 'How many active leases the change revoked.';
COMMENT ON COLUMN audit.slot_changes.recorded_by IS 'The process that made it: kheish-fcgi@<host> (the API) or kheish-cli (secrets --offline).';

CREATE OR REPLACE VIEW audit.subjects AS
SELECT s.subject_id, s.epoch, s.revoked, to_timestamp(s.updated_at_ms / 1000.0) AS updated_at
FROM auth_subjects s;
COMMENT ON VIEW audit.subjects IS 'Broker subjects and their epochs (table auth_subjects).';
COMMENT ON COLUMN audit.subjects.subject_id IS 'daemon, session:<id>, agent:<id> or connector:<name>.';
COMMENT ON COLUMN audit.subjects.epoch IS 'Its epoch: revoking a subject starts a new one.';
COMMENT ON COLUMN audit.subjects.revoked IS 'Revoked subjects are issued no lease.';
COMMENT ON COLUMN audit.subjects.updated_at IS 'Its last change.';

CREATE OR REPLACE VIEW audit.leases AS
SELECT l.lease_id, l.subject_id, l.subject_epoch, l.audience->>'route_id' AS route_id, l.slot_id,
       to_timestamp(l.issued_at_ms / 1000.0) AS issued_at,
       to_timestamp(l.expires_at_ms / 1000.0) AS expires_at,
       to_timestamp(l.revoked_at_ms / 1000.0) AS revoked_at, l.revoked_reason,
       CASE WHEN l.revoked_at_ms IS NOT NULL THEN 'revoked'
            WHEN l.expires_at_ms <= (extract(epoch FROM now()) * 1000)::bigint THEN 'expired'
            WHEN s.revoked OR s.epoch <> l.subject_epoch THEN 'subject_revoked'
            ELSE 'active' END AS state
FROM auth_leases l LEFT JOIN auth_subjects s ON s.subject_id = l.subject_id;
COMMENT ON VIEW audit.leases IS
    'Broker leases: who was let open which slot through which route, and until when (table auth_leases without the token digest).';
COMMENT ON COLUMN audit.leases.lease_id IS 'The lease id.';
COMMENT ON COLUMN audit.leases.subject_id IS 'Who it was issued to (a runner asks for session:<id> of the run it executes).';
COMMENT ON COLUMN audit.leases.subject_epoch IS 'The subject''s epoch at issue.';
COMMENT ON COLUMN audit.leases.route_id IS 'The route it was issued for.';
COMMENT ON COLUMN audit.leases.slot_id IS 'The slot it opens.';
COMMENT ON COLUMN audit.leases.issued_at IS 'Issue.';
COMMENT ON COLUMN audit.leases.expires_at IS 'Expiry.';
COMMENT ON COLUMN audit.leases.revoked_at IS 'Revocation; NULL if never revoked.';
COMMENT ON COLUMN audit.leases.revoked_reason IS 'set or delete (the slot was rewritten or deleted), revoke_leases, subject_revoked or lease_revoked.';
COMMENT ON COLUMN audit.leases.state IS 'active, revoked, expired, or subject_revoked (its subject was revoked or is in a newer epoch).';

CREATE OR REPLACE VIEW audit.run_leases AS
SELECT r.run_id, r.session_id, r.status, l.lease_id, l.audience->>'route_id' AS route_id,
       l.slot_id, to_timestamp(l.issued_at_ms / 1000.0) AS issued_at
FROM runs r
JOIN auth_leases l ON l.subject_id = 'session:' || r.session_id
    AND l.issued_at_ms >= r.started_at_ms
    AND (r.finished_at_ms IS NULL OR l.issued_at_ms < r.finished_at_ms);
COMMENT ON VIEW audit.run_leases IS
    'The credential each run used: the leases its runner was issued for the run''s session while the run was executing (matched by time: a session executes one run at a time).';
COMMENT ON COLUMN audit.run_leases.run_id IS 'The run.';
COMMENT ON COLUMN audit.run_leases.session_id IS 'Its session.';
COMMENT ON COLUMN audit.run_leases.status IS 'The run''s status now.';
COMMENT ON COLUMN audit.run_leases.lease_id IS 'The lease.';
COMMENT ON COLUMN audit.run_leases.route_id IS 'The route the run was executed through.';
COMMENT ON COLUMN audit.run_leases.slot_id IS 'The slot whose key it used.';
COMMENT ON COLUMN audit.run_leases.issued_at IS 'When the lease was issued.';

CREATE OR REPLACE VIEW audit.runners AS
SELECT x.runner_id, x.host, x.pid, x.concurrency, to_timestamp(x.started_at_ms / 1000.0) AS started_at,
       to_timestamp(x.last_heartbeat_at_ms / 1000.0) AS last_heartbeat_at,
       (extract(epoch FROM now()) * 1000)::bigint - x.last_heartbeat_at_ms AS heartbeat_age_ms,
       (SELECT count(*) FROM runs r WHERE r.status = 'running'
        AND r.lease_owner = x.runner_id) AS runs_held
FROM runners x;
COMMENT ON VIEW audit.runners IS
    'The runners that reported (table runners): live while heartbeat_age_ms is under 15000 (kheish_runner_live_ms).';
COMMENT ON COLUMN audit.runners.runner_id IS 'kheish-runner@<host>:<pid>, its runs'' lease_owner.';
COMMENT ON COLUMN audit.runners.host IS 'Its host.';
COMMENT ON COLUMN audit.runners.pid IS 'Its process id.';
COMMENT ON COLUMN audit.runners.concurrency IS 'The runs it executes at once.';
COMMENT ON COLUMN audit.runners.started_at IS 'When it started.';
COMMENT ON COLUMN audit.runners.last_heartbeat_at IS 'Its last heartbeat.';
COMMENT ON COLUMN audit.runners.heartbeat_age_ms IS 'Since that heartbeat, by the database''s clock.';
COMMENT ON COLUMN audit.runners.runs_held IS 'Running runs whose lease it holds.';

CREATE OR REPLACE VIEW audit.relays AS
SELECT x.relay_id, to_timestamp(x.started_at_ms / 1000.0) AS started_at,
       to_timestamp(x.updated_at_ms / 1000.0) AS reported_at,
       (extract(epoch FROM now()) * 1000)::bigint - x.updated_at_ms AS report_age_ms,
       x.subscribers, x.replaying, x.newest_event_id, x.lagged_total, x.gaps_total
FROM relay_stats x;
COMMENT ON VIEW audit.relays IS
    'The SSE relays that reported (table relay_stats): live while report_age_ms is under 30000.';
COMMENT ON COLUMN audit.relays.relay_id IS 'kheish-sse-relay@<host>:<pid>.';
COMMENT ON COLUMN audit.relays.started_at IS 'When it started.';
COMMENT ON COLUMN audit.relays.reported_at IS 'Its last report.';
COMMENT ON COLUMN audit.relays.report_age_ms IS 'Since that report, by the database''s clock.';
COMMENT ON COLUMN audit.relays.subscribers IS 'Streams it serves.';
COMMENT ON COLUMN audit.relays.replaying IS 'Of them, streams still replaying.';
COMMENT ON COLUMN audit.relays.newest_event_id IS 'The newest event id it has read.';
COMMENT ON COLUMN audit.relays.lagged_total IS 'Clients cut for falling behind, since it started.';
COMMENT ON COLUMN audit.relays.gaps_total IS 'stream_gap frames sent, since it started.';

GRANT SELECT ON audit.auth_failures, audit.sessions, audit.runs, audit.run_events,
    audit.stuck_runs, audit.queue_heads, audit.runtime_changes, audit.slots, audit.slot_changes,
    audit.subjects, audit.leases, audit.run_leases, audit.runners, audit.relays,
    audit.admin_actions
    TO kheish_auditor;
