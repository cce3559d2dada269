-- 005: the auth store (encrypted secret slots) and the credential broker
-- (contract §5), in the database instead of <state_root>/auth files.
--
-- Slots hold ciphertext only: common/sealed.c seals each value with
-- XChaCha20-Poly1305 under the master key, binding slot id and version as
-- associated data. Versions never repeat for a slot id (they continue from
-- the slot's audit rows, which outlive a delete), so an old ciphertext
-- cannot be put back under its old version. auth_store_key records the
-- fingerprint of the key every slot is sealed with: a process holding
-- another key is told so instead of writing slots nobody can open.
--
-- The broker: subjects (daemon, session:<id>, agent:<id>, connector:<name>)
-- are issued short-lived leases for an audience (a route and its slot); a
-- lease resolves only while it is unexpired, unrevoked and its subject's
-- epoch is current. Revoking a subject bumps its epoch; overwriting or
-- deleting a slot, or revoke-slot, revokes the slot's active leases. Leases
-- are history: never deleted, revoked at most once.

CREATE TABLE auth_store_key (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    key_id        text NOT NULL CHECK (key_id ~ '^[0-9a-f]{32}$'),
    created_at_ms bigint NOT NULL
);

CREATE TABLE auth_slots (
    slot_id       text PRIMARY KEY CHECK (slot_id ~ '^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127}$'),
    provider      text NOT NULL CHECK (provider IN ('generic', 'mcp_oauth', 'open_ai', 'anthropic',
                                                    'google', 'open_router', 'x_ai')),
    mode          text NOT NULL CHECK (mode IN ('opaque_secret', 'api_key', 'oauth_account')),
    version       bigint NOT NULL CHECK (version > 0),
    key_id        text NOT NULL,
    nonce         bytea NOT NULL CHECK (octet_length(nonce) = 24),
    ciphertext    bytea NOT NULL CHECK (octet_length(ciphertext) BETWEEN 16 AND 65552),
    updated_at_ms bigint NOT NULL
);

-- Every change of a slot: append-only, without values.
CREATE TABLE auth_slot_audit (
    id             bigserial PRIMARY KEY,
    at_ms          bigint NOT NULL,
    slot_id        text NOT NULL,
    action         text NOT NULL CHECK (action IN ('set', 'delete', 'revoke_leases')),
    version        bigint, -- the version written by 'set'
    provider       text,
    revoked_leases integer NOT NULL DEFAULT 0,
    recorded_by    text NOT NULL
);
CREATE INDEX auth_slot_audit_slot ON auth_slot_audit (slot_id, version);
CREATE TRIGGER auth_slot_audit_append_only BEFORE UPDATE OR DELETE ON auth_slot_audit
    FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE TRIGGER auth_slot_audit_no_truncate BEFORE TRUNCATE ON auth_slot_audit
    FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- What the API shows of a slot: never the value.
CREATE FUNCTION auth_slot_status(a auth_slots) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'slot_id', a.slot_id, 'provider', a.provider, 'mode', a.mode,
    'summary', CASE a.mode WHEN 'api_key' THEN a.provider || ' API key'
                           WHEN 'oauth_account' THEN a.provider || ' OAuth account'
                           ELSE 'opaque secret' END || ' (sealed, version ' || a.version || ')',
    'updated_at_ms', a.updated_at_ms,
    'details', jsonb_build_object('version', a.version, 'key_id', a.key_id))
$$;

CREATE TABLE auth_subjects (
    subject_id    text PRIMARY KEY
                  CHECK (subject_id ~ '^(daemon|(session|agent|connector):[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127})$'),
    epoch         bigint NOT NULL DEFAULT 1,
    revoked       boolean NOT NULL DEFAULT false,
    updated_at_ms bigint NOT NULL
);

CREATE TABLE auth_leases (
    lease_id       text PRIMARY KEY,
    grant_id       text NOT NULL,
    subject_id     text NOT NULL REFERENCES auth_subjects,
    subject_epoch  bigint NOT NULL,
    audience       jsonb NOT NULL, -- {type: route, route_id, slot_id}
    slot_id        text,           -- the audience's slot, for revoke-slot
    token_digest   bytea NOT NULL CHECK (octet_length(token_digest) = 32), -- SHA-256; the token is never stored
    issued_at_ms   bigint NOT NULL,
    expires_at_ms  bigint NOT NULL,
    revoked_at_ms  bigint,
    revoked_reason text
);
CREATE INDEX auth_leases_slot ON auth_leases (slot_id) WHERE revoked_at_ms IS NULL;
CREATE INDEX auth_leases_subject ON auth_leases (subject_id) WHERE revoked_at_ms IS NULL;
CREATE UNIQUE INDEX auth_leases_token ON auth_leases (token_digest);

-- Leases are history: no delete, and the only change is a first revocation.
CREATE FUNCTION auth_leases_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.revoked_at_ms IS NOT NULL OR NEW.revoked_at_ms IS NULL
       OR (to_jsonb(NEW) - 'revoked_at_ms' - 'revoked_reason')
          IS DISTINCT FROM (to_jsonb(OLD) - 'revoked_at_ms' - 'revoked_reason') THEN
        RAISE EXCEPTION 'auth_leases is history: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER auth_leases_history BEFORE UPDATE OR DELETE ON auth_leases
    FOR EACH ROW EXECUTE FUNCTION auth_leases_guard();
CREATE TRIGGER auth_leases_no_truncate BEFORE TRUNCATE ON auth_leases
    FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- The lease view of the API: never the token digest.
CREATE FUNCTION auth_lease_status(l auth_leases, now_ms bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'lease', jsonb_build_object('id', l.lease_id, 'grant_id', l.grant_id,
        'subject_id', l.subject_id, 'subject_epoch', l.subject_epoch, 'audience', l.audience,
        'issued_at_ms', l.issued_at_ms, 'expires_at_ms', l.expires_at_ms),
    'revoked', l.revoked_at_ms IS NOT NULL,
    'active', l.revoked_at_ms IS NULL AND l.expires_at_ms > now_ms
        AND EXISTS (SELECT 1 FROM auth_subjects s WHERE s.subject_id = l.subject_id
                    AND NOT s.revoked AND s.epoch = l.subject_epoch))
$$;

CREATE FUNCTION auth_subject_status(s auth_subjects, now_ms bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'subject_id', s.subject_id, 'current_epoch', s.epoch, 'revoked', s.revoked,
    'active_connector_lease_ids', '[]'::jsonb, 'active_mcp_lease_ids', '[]'::jsonb,
    'active_route_lease_ids', coalesce((SELECT jsonb_agg(l.lease_id ORDER BY l.lease_id)
        FROM auth_leases l WHERE l.subject_id = s.subject_id AND l.revoked_at_ms IS NULL
        AND l.expires_at_ms > now_ms AND l.subject_epoch = s.epoch AND NOT s.revoked), '[]'))
$$;

GRANT SELECT, INSERT, UPDATE ON auth_store_key TO kheish_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_slots TO kheish_app;
GRANT SELECT, INSERT ON auth_slot_audit TO kheish_app;
GRANT USAGE ON SEQUENCE auth_slot_audit_id_seq TO kheish_app;
GRANT SELECT, INSERT, UPDATE ON auth_subjects, auth_leases TO kheish_app;
-- Auditors see which slots exist and their history, not even the ciphertext.
GRANT SELECT (slot_id, provider, mode, version, key_id, updated_at_ms) ON auth_slots
    TO kheish_auditor;
GRANT SELECT ON auth_slot_audit, auth_subjects TO kheish_auditor;
GRANT SELECT (lease_id, grant_id, subject_id, subject_epoch, audience, slot_id, issued_at_ms,
              expires_at_ms, revoked_at_ms, revoked_reason) ON auth_leases TO kheish_auditor;
