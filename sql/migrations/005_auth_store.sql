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
