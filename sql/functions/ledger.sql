-- The signed external-action ledger (contract §9): its guards, the append,
-- the API's shape of a record, and the check an auditor runs in psql.
-- Tables: migration 013. The records are hashed and signed by the process
-- that makes the action (common/ledger.c); nothing here holds a key.

CREATE OR REPLACE TRIGGER external_actions_append_only BEFORE UPDATE OR DELETE
    ON external_actions FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER external_actions_no_truncate BEFORE TRUNCATE
    ON external_actions FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- A checkpoint only moves forward and is never deleted: a bucket's chain
-- cannot be cut shorter without it being seen.
CREATE OR REPLACE FUNCTION external_action_checkpoints_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.bucket <> OLD.bucket OR NEW.record_count <= OLD.record_count THEN
        RAISE EXCEPTION 'external_action_checkpoints only move forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER external_action_checkpoints_forward BEFORE UPDATE OR DELETE
    ON external_action_checkpoints FOR EACH ROW EXECUTE FUNCTION external_action_checkpoints_guard();
CREATE OR REPLACE TRIGGER external_action_checkpoints_no_truncate BEFORE TRUNCATE
    ON external_action_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- Appends signed records:
--   batch = [{bucket, seq, record: {the API's fields}, checkpoint_signature}]
-- A bucket's records in a batch follow one another (seq, then seq + 1 with
-- the first's record_hash as prev_hash...: a batch that breaks its own
-- chain is refused), and the first goes after the bucket's last record: its
-- seq is the bucket's count plus one and its prev_hash the last
-- record_hash (seq 1 and no prev_hash for a new bucket). The checkpoint
-- moves to the bucket's last record of the batch, with that record's
-- checkpoint_signature, in the same statement. The records of a bucket
-- that does not follow (another writer got there first) are not appended:
-- their answers say where the bucket stands, for their writer to sign them
-- again. Returns the answers in the batch's order: [{"appended": true} |
-- {"appended": false, "record_count": n, "last_record_hash": h}]. The
-- caller makes the transaction durable before it makes the actions
-- (kheish_work's caller flushes the WAL).
CREATE OR REPLACE FUNCTION kheish_ledger_append(batch jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms  bigint := kheish_now_ms();
    answers jsonb;
BEGIN
    IF jsonb_array_length(batch) = 0 THEN
        RETURN '[]'; -- touches no table: a runner's turn without records needs no right on them
    END IF;
    IF EXISTS (SELECT 1 FROM (
                   SELECT (x->>'seq')::bigint - lag((x->>'seq')::bigint) OVER w AS step,
                          x->'record'->>'prev_hash' AS prev_hash,
                          lag(x->'record'->>'record_hash') OVER w AS before
                     FROM jsonb_array_elements(batch) x
                   WINDOW w AS (PARTITION BY x->>'bucket' ORDER BY (x->>'seq')::bigint)) c
                WHERE c.step IS NOT NULL
                  AND (c.step <> 1 OR c.prev_hash IS DISTINCT FROM c.before)) THEN
        RAISE EXCEPTION 'kheish_ledger_append: the records of a bucket in a batch do not follow one another'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH item AS (
        SELECT i, x->>'bucket' AS bucket, (x->>'seq')::bigint AS seq, x->'record' AS r,
               x->>'checkpoint_signature' AS sig
          FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(x, i)),
    run AS (
        SELECT bucket, min(seq) AS first_seq, max(seq) AS last_seq,
               (array_agg(r->>'prev_hash' ORDER BY seq))[1] AS first_prev,
               (array_agg(r ORDER BY seq DESC))[1] AS last_r,
               (array_agg(sig ORDER BY seq DESC))[1] AS last_sig
          FROM item GROUP BY bucket),
    started AS (
        INSERT INTO external_action_checkpoints
        SELECT bucket, last_seq, last_r->>'record_hash', last_r->>'signature_alg',
               last_r->>'key_id', last_sig, now_ms
          FROM run WHERE first_seq = 1 AND first_prev IS NULL
            ON CONFLICT (bucket) DO NOTHING
        RETURNING bucket),
    moved AS (
        UPDATE external_action_checkpoints c
           SET record_count = run.last_seq, last_record_hash = run.last_r->>'record_hash',
               signature_alg = run.last_r->>'signature_alg', key_id = run.last_r->>'key_id',
               signature = run.last_sig, updated_at_ms = now_ms
          FROM run
         WHERE c.bucket = run.bucket AND c.record_count = run.first_seq - 1
           AND c.last_record_hash = run.first_prev
        RETURNING c.bucket),
    appended AS (
        INSERT INTO external_actions
        SELECT e.*
          FROM item, jsonb_populate_record(NULL::external_actions, r || jsonb_build_object(
                         'bucket', bucket, 'seq', seq, 'recorded_at_ms', now_ms)) e
         WHERE item.bucket IN (SELECT bucket FROM started UNION ALL SELECT bucket FROM moved)
        RETURNING bucket, seq)
    SELECT jsonb_agg(CASE WHEN a.bucket IS NOT NULL THEN '{"appended": true}'::jsonb
                          ELSE jsonb_build_object('appended', false,
                                                  'record_count', coalesce(c.record_count, 0),
                                                  'last_record_hash', c.last_record_hash) END
                     ORDER BY item.i)
      INTO answers
      FROM item LEFT JOIN appended a ON a.bucket = item.bucket AND a.seq = item.seq
      LEFT JOIN external_action_checkpoints c ON a.bucket IS NULL AND c.bucket = item.bucket;
    RETURN coalesce(answers, '[]');
END
$$;

-- The ledger as the auditor (and the API, and `kheish audit verify`) reads
-- it: each record with the API's JSON of it, and the check of contract §9
-- that needs no key: its hash recomputed over the bytes record_hash is the
-- SHA-256 of (the unsigned record as compact JSON, grant_id left out when
-- null, every other null written as null; to_json escapes a string as
-- upstream's serializer does), action_id, and its place in the chain (seq
-- follows the one before it, prev_hash is that one's record_hash).
-- Signatures are checked by `kheish audit verify`. The first broken record
-- of every bucket:
--   SELECT * FROM audit.external_actions WHERE NOT ok ORDER BY bucket, seq;
CREATE OR REPLACE VIEW audit.external_actions AS
SELECT bucket, seq, action_id, to_timestamp(timestamp_ms / 1000.0) AS at, timestamp_ms,
       session_id, run_id, phase, kind, target, outcome, grant_id, record_hash, key_id,
       kheish_record AS record, hash_ok, action_id_ok, chain_ok,
       hash_ok AND action_id_ok AND chain_ok AS ok
  FROM (SELECT e.*,
               json_strip_nulls(json_build_object(
                   'action_id', e.action_id, 'timestamp_ms', e.timestamp_ms,
                   'session_id', e.session_id, 'agent_id', e.agent_id, 'run_id', e.run_id,
                   'tool_call_id', e.tool_call_id, 'principal_id', e.principal_id,
                   'parent_principal_id', e.parent_principal_id, 'grant_id', e.grant_id,
                   'phase', e.phase, 'kind', e.kind, 'target', e.target,
                   'request_digest', e.request_digest, 'response_digest', e.response_digest,
                   'outcome', e.outcome, 'prev_hash', e.prev_hash,
                   'record_hash', e.record_hash, 'signature_alg', e.signature_alg,
                   'key_id', e.key_id, 'signature', e.signature)) AS kheish_record,
               encode(sha256(convert_to(
                   '{"timestamp_ms":' || e.timestamp_ms
                   || ',"session_id":' || coalesce(to_json(e.session_id)::text, 'null')
                   || ',"agent_id":' || coalesce(to_json(e.agent_id)::text, 'null')
                   || ',"run_id":' || coalesce(to_json(e.run_id)::text, 'null')
                   || ',"tool_call_id":' || coalesce(to_json(e.tool_call_id)::text, 'null')
                   || ',"principal_id":' || coalesce(to_json(e.principal_id)::text, 'null')
                   || ',"parent_principal_id":'
                   || coalesce(to_json(e.parent_principal_id)::text, 'null')
                   || coalesce(',"grant_id":' || to_json(e.grant_id)::text, '')
                   || ',"phase":' || coalesce(to_json(e.phase)::text, 'null')
                   || ',"kind":' || coalesce(to_json(e.kind)::text, 'null')
                   || ',"target":' || coalesce(to_json(e.target)::text, 'null')
                   || ',"request_digest":' || coalesce(to_json(e.request_digest)::text, 'null')
                   || ',"response_digest":'
                   || coalesce(to_json(e.response_digest)::text, 'null')
                   || ',"outcome":' || coalesce(to_json(e.outcome)::text, 'null')
                   || ',"prev_hash":' || coalesce(to_json(e.prev_hash)::text, 'null') || '}',
                   'UTF8')), 'hex') = e.record_hash AS hash_ok,
               e.action_id = e.record_hash AS action_id_ok,
               e.seq = coalesce(lag(e.seq) OVER w, 0) + 1
                   AND e.prev_hash IS NOT DISTINCT FROM lag(e.record_hash) OVER w AS chain_ok
          FROM public.external_actions e
        WINDOW w AS (PARTITION BY e.bucket ORDER BY e.seq)) x;
COMMENT ON VIEW audit.external_actions IS
    'The signed external-action ledger (contract §9), one row per record, with its check: '
    'hash, action_id and chain recomputed here; signatures by `kheish audit verify`.';
COMMENT ON COLUMN audit.external_actions.bucket IS
    'The chain the record belongs to: its run''s id (else session-<id>, else unscoped).';
COMMENT ON COLUMN audit.external_actions.seq IS 'Its place in the bucket: 1, 2, ...';
COMMENT ON COLUMN audit.external_actions.action_id IS 'The record''s id: its record_hash.';
COMMENT ON COLUMN audit.external_actions.at IS 'When the action was recorded (timestamp_ms).';
COMMENT ON COLUMN audit.external_actions.timestamp_ms IS
    'The same, ms since the epoch, as signed (the database''s clock, as the runner saw it).';
COMMENT ON COLUMN audit.external_actions.session_id IS 'The session the action was made for.';
COMMENT ON COLUMN audit.external_actions.run_id IS 'The run that made it.';
COMMENT ON COLUMN audit.external_actions.phase IS
    'request (before the action was made) or response (after).';
COMMENT ON COLUMN audit.external_actions.kind IS 'What kind of action: provider (a model call).';
COMMENT ON COLUMN audit.external_actions.target IS
    'What it was made against: provider:<route>:<model>.';
COMMENT ON COLUMN audit.external_actions.outcome IS
    'Of a response: ok, http_<status>, no_response, aborted or not_sent.';
COMMENT ON COLUMN audit.external_actions.grant_id IS
    'The broker lease that granted the credential (auth_ref routes), else null.';
COMMENT ON COLUMN audit.external_actions.record_hash IS
    'Hex SHA-256 of the unsigned record (contract §9).';
COMMENT ON COLUMN audit.external_actions.key_id IS
    'Hex of the Ed25519 public key that signed it.';
COMMENT ON COLUMN audit.external_actions.record IS
    'The whole signed record as GET /v1/runs/{id}/external-actions shows it.';
COMMENT ON COLUMN audit.external_actions.hash_ok IS
    'record_hash is the SHA-256 of the record''s fields (false: a field was edited).';
COMMENT ON COLUMN audit.external_actions.action_id_ok IS 'action_id equals record_hash.';
COMMENT ON COLUMN audit.external_actions.chain_ok IS
    'It follows the record before it in its bucket (false: one was removed, added or moved).';
COMMENT ON COLUMN audit.external_actions.ok IS 'hash_ok, action_id_ok and chain_ok.';

-- Each bucket against its signed checkpoint: as many records as the
-- checkpoint counts (fewer: records were taken off), its last one the
-- checkpoint's. The checkpoint's signature is checked by `kheish audit verify`.
CREATE OR REPLACE VIEW audit.external_action_buckets AS
SELECT c.bucket, r.records, c.record_count AS checkpoint_count, c.last_record_hash,
       c.signature_alg, c.key_id, c.signature,
       r.records = c.record_count AND r.last_hash IS NOT DISTINCT FROM c.last_record_hash AS ok
  FROM public.external_action_checkpoints c
 CROSS JOIN LATERAL (
       SELECT count(*) AS records,
              (SELECT l.record_hash FROM public.external_actions l WHERE l.bucket = c.bucket
                ORDER BY l.seq DESC LIMIT 1) AS last_hash
         FROM public.external_actions e WHERE e.bucket = c.bucket) r
UNION ALL
SELECT e.bucket, count(*), NULL, NULL, NULL, NULL, NULL, false
  FROM public.external_actions e
 WHERE NOT EXISTS (SELECT 1 FROM public.external_action_checkpoints c WHERE c.bucket = e.bucket)
 GROUP BY e.bucket;
COMMENT ON VIEW audit.external_action_buckets IS
    'Each bucket of the external-action ledger against its signed checkpoint (truncation).';
COMMENT ON COLUMN audit.external_action_buckets.bucket IS 'The bucket (a run''s id, ...).';
COMMENT ON COLUMN audit.external_action_buckets.records IS 'Records it holds.';
COMMENT ON COLUMN audit.external_action_buckets.checkpoint_count IS
    'Records its checkpoint counts (null: it has none).';
COMMENT ON COLUMN audit.external_action_buckets.last_record_hash IS
    'The checkpoint''s last record_hash.';
COMMENT ON COLUMN audit.external_action_buckets.signature_alg IS 'The checkpoint''s: ed25519.';
COMMENT ON COLUMN audit.external_action_buckets.key_id IS 'The key that signed the checkpoint.';
COMMENT ON COLUMN audit.external_action_buckets.signature IS
    'Hex Ed25519 signature of {bucket, record_count, last_record_hash, signature_alg, key_id}.';
COMMENT ON COLUMN audit.external_action_buckets.ok IS
    'The bucket holds exactly the records its checkpoint counts, ending with its last one.';

-- The processes read the ledger through the same views.
GRANT USAGE ON SCHEMA audit TO kheish_app;
GRANT SELECT ON audit.external_actions, audit.external_action_buckets TO kheish_app, kheish_auditor;

COMMENT ON TABLE external_actions IS
    'The signed external-action ledger (contract §9, migration 013): append-only records, '
    'chained per bucket; read it through audit.external_actions.';
COMMENT ON COLUMN external_actions.bucket IS 'Its chain: a run''s id, else session-<id>, else unscoped.';
COMMENT ON COLUMN external_actions.seq IS 'Its place in the bucket, from 1.';
COMMENT ON COLUMN external_actions.action_id IS 'Contract §9: equals record_hash.';
COMMENT ON COLUMN external_actions.timestamp_ms IS 'Contract §9: when, ms (the database''s clock).';
COMMENT ON COLUMN external_actions.session_id IS 'Contract §9.';
COMMENT ON COLUMN external_actions.agent_id IS 'Contract §9.';
COMMENT ON COLUMN external_actions.run_id IS 'Contract §9.';
COMMENT ON COLUMN external_actions.tool_call_id IS 'Contract §9 (tool calls, later).';
COMMENT ON COLUMN external_actions.principal_id IS 'Contract §9: session:<id>, the broker subject.';
COMMENT ON COLUMN external_actions.parent_principal_id IS 'Contract §9.';
COMMENT ON COLUMN external_actions.grant_id IS 'Contract §9: the broker lease of the credential.';
COMMENT ON COLUMN external_actions.phase IS 'Contract §9: request or response.';
COMMENT ON COLUMN external_actions.kind IS 'Contract §9: provider.';
COMMENT ON COLUMN external_actions.target IS 'Contract §9: provider:<route>:<model>.';
COMMENT ON COLUMN external_actions.request_digest IS 'Contract §9: sha256:<hex> of the body sent.';
COMMENT ON COLUMN external_actions.response_digest IS 'Contract §9: sha256:<hex> of the answer.';
COMMENT ON COLUMN external_actions.outcome IS 'Contract §9: ok, http_<status>, no_response, aborted, not_sent.';
COMMENT ON COLUMN external_actions.prev_hash IS 'Contract §9: the bucket''s record before (null for the first).';
COMMENT ON COLUMN external_actions.record_hash IS 'Contract §9: hex SHA-256 of the unsigned record.';
COMMENT ON COLUMN external_actions.signature_alg IS 'Contract §9: ed25519.';
COMMENT ON COLUMN external_actions.key_id IS 'Contract §9: hex of the public key.';
COMMENT ON COLUMN external_actions.signature IS 'Contract §9: hex Ed25519 signature.';
COMMENT ON COLUMN external_actions.recorded_at_ms IS 'When the database appended it.';
COMMENT ON TABLE external_action_checkpoints IS
    'One signed checkpoint per ledger bucket: how many records it holds and the last one.';
COMMENT ON COLUMN external_action_checkpoints.bucket IS 'The bucket.';
COMMENT ON COLUMN external_action_checkpoints.record_count IS 'Records in the bucket.';
COMMENT ON COLUMN external_action_checkpoints.last_record_hash IS 'The last one''s record_hash.';
COMMENT ON COLUMN external_action_checkpoints.signature_alg IS 'ed25519.';
COMMENT ON COLUMN external_action_checkpoints.key_id IS 'Hex of the public key that signed it.';
COMMENT ON COLUMN external_action_checkpoints.signature IS
    'Hex Ed25519 signature of {bucket, record_count, last_record_hash, signature_alg, key_id}.';
COMMENT ON COLUMN external_action_checkpoints.updated_at_ms IS 'When it last moved.';
COMMENT ON FUNCTION external_action_checkpoints_guard() IS
    'Trigger: a checkpoint only moves forward and is never deleted.';
COMMENT ON FUNCTION kheish_ledger_append(jsonb) IS
    'Appends signed records after their buckets'' last ones and moves the checkpoints; the '
    'records of a bucket that does not follow are answered with where it stands.';
