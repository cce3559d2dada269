-- 002: the control-plane auth audit ledger (contract §4).
--
-- One row per auth failure, CORS rejection and rate-limit transition, as
-- kheish-fcgi and kheish-sse-relay also write it to
-- <state_root>/control-plane-auth/audit.jsonl. Append-only: the application
-- role may only INSERT and SELECT, and triggers refuse UPDATE, DELETE and
-- TRUNCATE to everyone, the owner included.

CREATE TABLE auth_audit (
    id              bigserial PRIMARY KEY,
    timestamp_ms    bigint NOT NULL,
    event           text NOT NULL CHECK (event IN ('auth_failure', 'auth_rate_limited',
                                                   'cors_origin_rejected',
                                                   'cors_origin_rate_limited')),
    method          text NOT NULL,
    path            text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('missing_token', 'malformed_token',
                                                    'invalid_token', 'insufficient_access',
                                                    'origin_not_allowed')),
    origin          text,
    remote_addr     text,
    required_access text CHECK (required_access IN ('read_only', 'admin')),
    recorded_by     text NOT NULL -- component@host that saw the request
);
CREATE INDEX auth_audit_time ON auth_audit (timestamp_ms);

GRANT SELECT, INSERT ON auth_audit TO kheish_app;
GRANT USAGE ON SEQUENCE auth_audit_id_seq TO kheish_app;
GRANT SELECT ON auth_audit TO kheish_auditor;
