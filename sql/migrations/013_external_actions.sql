-- 013: the signed external-action ledger (contract §9; issue 14, point 1).
--
-- Upstream keeps one append-only JSONL file per bucket and a signed
-- checkpoint file beside it; here a bucket is the rows of external_actions
-- with the same bucket (a run's id, else 'session-<id>', else 'unscoped'),
-- numbered 1, 2, ... by seq, and its checkpoint is one row of
-- external_action_checkpoints. The records are made and signed by the
-- process that makes the external action (the runner, for a provider call):
-- the signing key never reaches the database. kheish_ledger_append
-- (sql/functions/ledger.sql) appends them, each after the bucket's last
-- record, and moves the checkpoint in the same statement.
--
-- Append-only: the application role may INSERT and SELECT records, and a
-- checkpoint only moves forward; triggers refuse UPDATE, DELETE and
-- TRUNCATE of records to everyone, the owner included. The owner's
-- maintenance path (docs/auditing.md) is to disable the trigger inside a
-- transaction; whatever it changes, `kheish audit verify` and the views
-- audit.external_actions and audit.external_action_buckets then report.

CREATE TABLE external_actions (
    bucket              text NOT NULL,
    seq                 bigint NOT NULL CHECK (seq > 0),
    action_id           text NOT NULL,
    timestamp_ms        bigint NOT NULL CHECK (timestamp_ms >= 0),
    session_id          text,
    agent_id            text,
    run_id              text,
    tool_call_id        text,
    principal_id        text,
    parent_principal_id text,
    grant_id            text,
    phase               text NOT NULL,
    kind                text NOT NULL,
    target              text NOT NULL,
    request_digest      text,
    response_digest     text,
    outcome             text,
    prev_hash           text,
    record_hash         text NOT NULL,
    signature_alg       text NOT NULL,
    key_id              text NOT NULL,
    signature           text NOT NULL,
    recorded_at_ms      bigint NOT NULL,
    PRIMARY KEY (bucket, seq),
    CHECK ((seq = 1) = (prev_hash IS NULL))
);

CREATE TABLE external_action_checkpoints (
    bucket           text PRIMARY KEY,
    record_count     bigint NOT NULL CHECK (record_count > 0),
    last_record_hash text NOT NULL,
    signature_alg    text NOT NULL,
    key_id           text NOT NULL,
    signature        text NOT NULL,
    updated_at_ms    bigint NOT NULL
);

GRANT SELECT, INSERT ON external_actions TO kheish_app;
GRANT SELECT, INSERT, UPDATE ON external_action_checkpoints TO kheish_app;
