-- 014: who did what (issue 14, part 3).
--
-- Every write the API accepts from an authenticated caller records its
-- actor here, in the statement that makes the change: the role the bearer
-- token grants, a fingerprint of the token (the first 16 hex digits of its
-- SHA-256, never the token), the client address nginx saw, nginx's
-- $request_id, the User-Agent (control characters removed, at most 256
-- bytes), the method and path, what was done (a closed list), the ids it
-- was done to, and the answer the writing function gave. The rows a write
-- changes link to their action: runtime revisions, the persisted run events
-- of submissions and of cancels and interrupts, session ends, slot audit
-- rows, revoked subjects and leases. Writes that do not come from the API
-- (the runners, the maintenance pass, `kheish secrets --offline`) pass no
-- actor and record nothing here.
--
-- Append-only: the application role may only INSERT and SELECT, and
-- triggers (admin_actions_guard, sql/functions/actors.sql) refuse UPDATE,
-- DELETE and TRUNCATE to everyone, the owner included. The maintenance path
-- (docs/security.md) is the owner's: ALTER TABLE ... DISABLE TRIGGER inside
-- a transaction that enables it again.
--
-- The writers whose parameters gain the actor are dropped here; their
-- files of sql/functions/ create them again with it.

CREATE TABLE admin_actions (
    id                bigserial PRIMARY KEY,
    at_ms             bigint NOT NULL,
    role              text NOT NULL CHECK (role IN ('admin', 'read_only', 'anonymous')),
    token_fingerprint text CHECK (token_fingerprint ~ '^[0-9a-f]{16}$'),
    remote_addr       text CHECK (length(remote_addr) <= 64),
    request_id        text CHECK (length(request_id) <= 64),
    user_agent        text CHECK (length(user_agent) <= 256),
    method            text NOT NULL CHECK (method ~ '^[A-Z]{1,16}$'),
    path              text NOT NULL CHECK (length(path) <= 2048),
    action            text NOT NULL CHECK (action IN (
                          'session_create', 'session_interrupt', 'session_end', 'run_submit',
                          'run_cancel', 'run_transition', 'runtime_change', 'slot_put',
                          'slot_delete', 'slot_revoke_leases', 'subject_revoke',
                          'lease_revoke')),
    session_id        text,
    run_id            text,
    target_id         text,
    result            text NOT NULL
);
CREATE INDEX admin_actions_time ON admin_actions (at_ms);
CREATE INDEX admin_actions_session ON admin_actions (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX admin_actions_run ON admin_actions (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX admin_actions_request ON admin_actions (request_id);

ALTER TABLE runtime_revisions ADD COLUMN admin_action_id bigint REFERENCES admin_actions;
ALTER TABLE run_events ADD COLUMN admin_action_id bigint REFERENCES admin_actions;
ALTER TABLE sessions ADD COLUMN ended_by bigint REFERENCES admin_actions;
ALTER TABLE auth_slot_audit ADD COLUMN admin_action_id bigint REFERENCES admin_actions;
ALTER TABLE auth_subjects ADD COLUMN revoked_by bigint REFERENCES admin_actions;
ALTER TABLE auth_leases ADD COLUMN revoked_by bigint REFERENCES admin_actions;

GRANT SELECT, INSERT ON admin_actions TO kheish_app;
GRANT USAGE ON SEQUENCE admin_actions_id_seq TO kheish_app;
GRANT SELECT ON admin_actions TO kheish_auditor;
GRANT SELECT (revoked_by) ON auth_leases TO kheish_auditor;

COMMENT ON TABLE admin_actions IS
    'Who did what: one row per write the API accepted from a caller (append-only; '
    'docs/security.md). Rows it changed link to it.';
COMMENT ON COLUMN admin_actions.id IS 'The action; what runtime_revisions, run_events, '
    'sessions.ended_by, auth_slot_audit, auth_subjects.revoked_by and auth_leases.revoked_by '
    'link to.';
COMMENT ON COLUMN admin_actions.at_ms IS 'When, by the database''s clock (kheish_now_ms).';
COMMENT ON COLUMN admin_actions.role IS
    'The role the bearer token granted: admin, read_only, or anonymous when auth is disabled.';
COMMENT ON COLUMN admin_actions.token_fingerprint IS
    'The first 16 hex digits of the SHA-256 of the bearer token (never the token); NULL '
    'without auth.';
COMMENT ON COLUMN admin_actions.remote_addr IS
    'The client address nginx saw (REMOTE_ADDR), without its port; "invalid" when it was no '
    'IP address.';
COMMENT ON COLUMN admin_actions.request_id IS
    'nginx''s $request_id (the X-Request-Id the client got), or the one kheish-fcgi made.';
COMMENT ON COLUMN admin_actions.user_agent IS
    'The User-Agent header, control characters removed, at most 256 bytes; NULL when absent.';
COMMENT ON COLUMN admin_actions.method IS 'The HTTP method of the request.';
COMMENT ON COLUMN admin_actions.path IS 'The request path, percent-decoded, without its query.';
COMMENT ON COLUMN admin_actions.action IS 'What the request asked for (a closed list).';
COMMENT ON COLUMN admin_actions.session_id IS 'The session it concerned, if any.';
COMMENT ON COLUMN admin_actions.run_id IS 'The run it concerned, if any.';
COMMENT ON COLUMN admin_actions.target_id IS
    'The other object it concerned: a secret slot, a broker subject or lease, or the runtime '
    'revision it made.';
COMMENT ON COLUMN admin_actions.result IS
    'What the writing function answered: ok, created, reused, replayed, or a store error name '
    '(session_not_found...). A request refused before its function ran records nothing here.';
COMMENT ON COLUMN runtime_revisions.admin_action_id IS
    'The admin action that made this revision; NULL for the bootstrap and revisions before '
    'migration 014.';
COMMENT ON COLUMN run_events.admin_action_id IS
    'The admin action that caused this run event (submission, cancel, interrupt, session end); '
    'NULL for the runners'' events.';
COMMENT ON COLUMN sessions.ended_by IS 'The admin action that ended the session.';
COMMENT ON COLUMN auth_slot_audit.admin_action_id IS
    'The admin action of this slot change; NULL for `kheish secrets --offline`.';
COMMENT ON COLUMN auth_subjects.revoked_by IS 'The admin action that last revoked the subject.';
COMMENT ON COLUMN auth_leases.revoked_by IS
    'The admin action that revoked the lease (its own, its slot''s or its subject''s).';

DROP FUNCTION IF EXISTS kheish_session_create(text, text, text, jsonb, jsonb);
DROP FUNCTION IF EXISTS kheish_session_interrupt(text);
DROP FUNCTION IF EXISTS kheish_session_end(text, text);
DROP FUNCTION IF EXISTS kheish_run_submit(text, jsonb, text, text, boolean);
DROP FUNCTION IF EXISTS kheish_run_change(text, text);
DROP FUNCTION IF EXISTS kheish_runtime_change(text, text, bigint, bigint, text, text, jsonb);
DROP FUNCTION IF EXISTS kheish_slot_audit(text, text, bigint, text, text);
DROP FUNCTION IF EXISTS kheish_slot_put(text, text, text, bigint, text, bytea, bytea, text);
DROP FUNCTION IF EXISTS kheish_slot_delete(text, text);
DROP FUNCTION IF EXISTS kheish_slot_revoke_leases(text, text);
DROP FUNCTION IF EXISTS kheish_subject_revoke(text);
DROP FUNCTION IF EXISTS kheish_lease_revoke(text);
