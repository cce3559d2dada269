-- The signed external-action ledger (contract §9): its guards, the append,
-- the API's shape of a record, and the check an auditor runs in psql.
-- Tables: migration 013. The records are hashed and signed by the process
-- that makes the action (common/ledger.c); nothing here holds a key.

CREATE OR REPLACE TRIGGER external_actions_append_only BEFORE UPDATE OR DELETE
    ON external_actions FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER external_actions_no_truncate BEFORE TRUNCATE
    ON external_actions FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- A checkpoint only moves forward, one record at a time, and is never
-- deleted: a bucket's chain cannot be cut shorter without it being seen.
CREATE OR REPLACE FUNCTION external_action_checkpoints_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.bucket <> OLD.bucket
       OR NEW.record_count <> OLD.record_count + 1 THEN
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

-- Appends signed records, in the order given:
--   batch = [{bucket, seq, record: {the API's fields}, checkpoint_signature}]
-- Each record goes after its bucket's last one: seq must be the bucket's
-- count plus one and prev_hash its last record_hash (seq 1 and no
-- prev_hash for a new bucket), and the checkpoint moves to it in the same
-- statement. A record that does not follow (another writer got there
-- first) is not appended: its answer says where the bucket stands, for its
-- writer to sign it again. {"result": "ok", "records": [{"result": "ok"} |
-- {"result": "conflict", "record_count": n, "last_record_hash": h}]}
CREATE OR REPLACE FUNCTION kheish_ledger_append(batch jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    item    jsonb;
    r       jsonb;
    b       text;
    n       bigint;
    now_ms  bigint := kheish_now_ms();
    answers jsonb := '[]';
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        r := item->'record';
        b := item->>'bucket';
        n := (item->>'seq')::bigint;
        IF n = 1 AND r->>'prev_hash' IS NULL THEN
            INSERT INTO external_action_checkpoints
                VALUES (b, 1, r->>'record_hash', r->>'signature_alg', r->>'key_id',
                        item->>'checkpoint_signature', now_ms)
                ON CONFLICT (bucket) DO NOTHING;
        ELSE
            UPDATE external_action_checkpoints
               SET record_count = n, last_record_hash = r->>'record_hash',
                   signature_alg = r->>'signature_alg', key_id = r->>'key_id',
                   signature = item->>'checkpoint_signature', updated_at_ms = now_ms
             WHERE bucket = b AND record_count = n - 1 AND last_record_hash = r->>'prev_hash';
        END IF;
        IF NOT FOUND THEN
            answers := answers || coalesce(
                (SELECT jsonb_build_object('result', 'conflict', 'record_count', c.record_count,
                                           'last_record_hash', c.last_record_hash)
                   FROM external_action_checkpoints c WHERE c.bucket = b),
                '{"result": "conflict", "record_count": 0}');
            CONTINUE;
        END IF;
        INSERT INTO external_actions
            SELECT * FROM jsonb_populate_record(NULL::external_actions,
                r || jsonb_build_object('bucket', b, 'seq', n, 'recorded_at_ms', now_ms));
        answers := answers || '{"result": "ok"}';
    END LOOP;
    RETURN jsonb_build_object('result', 'ok', 'records', answers);
END
$$;

-- A record as the API shows it (upstream's ExternalActionAuditRecord):
-- its fields in upstream's order, the absent ones left out.
CREATE OR REPLACE FUNCTION kheish_external_action_json(e external_actions) RETURNS json
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT json_strip_nulls(json_build_object(
    'action_id', e.action_id, 'timestamp_ms', e.timestamp_ms, 'session_id', e.session_id,
    'agent_id', e.agent_id, 'run_id', e.run_id, 'tool_call_id', e.tool_call_id,
    'principal_id', e.principal_id, 'parent_principal_id', e.parent_principal_id,
    'grant_id', e.grant_id, 'phase', e.phase, 'kind', e.kind, 'target', e.target,
    'request_digest', e.request_digest, 'response_digest', e.response_digest,
    'outcome', e.outcome, 'prev_hash', e.prev_hash, 'record_hash', e.record_hash,
    'signature_alg', e.signature_alg, 'key_id', e.key_id, 'signature', e.signature))
$$;

-- The bytes record_hash is the SHA-256 of (contract §9): the unsigned
-- record as compact JSON, grant_id left out when null, every other null
-- written as null. to_json escapes a string as upstream's serializer does.
CREATE OR REPLACE FUNCTION kheish_external_action_unsigned(e external_actions) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
SELECT '{"timestamp_ms":' || e.timestamp_ms
    || ',"session_id":' || coalesce(to_json(e.session_id)::text, 'null')
    || ',"agent_id":' || coalesce(to_json(e.agent_id)::text, 'null')
    || ',"run_id":' || coalesce(to_json(e.run_id)::text, 'null')
    || ',"tool_call_id":' || coalesce(to_json(e.tool_call_id)::text, 'null')
    || ',"principal_id":' || coalesce(to_json(e.principal_id)::text, 'null')
    || ',"parent_principal_id":' || coalesce(to_json(e.parent_principal_id)::text, 'null')
    || coalesce(',"grant_id":' || to_json(e.grant_id)::text, '')
    || ',"phase":' || coalesce(to_json(e.phase)::text, 'null')
    || ',"kind":' || coalesce(to_json(e.kind)::text, 'null')
    || ',"target":' || coalesce(to_json(e.target)::text, 'null')
    || ',"request_digest":' || coalesce(to_json(e.request_digest)::text, 'null')
    || ',"response_digest":' || coalesce(to_json(e.response_digest)::text, 'null')
    || ',"outcome":' || coalesce(to_json(e.outcome)::text, 'null')
    || ',"prev_hash":' || coalesce(to_json(e.prev_hash)::text, 'null')
    || '}'
$$;

-- The auditor's check in SQL alone, one row per record: its hash
-- recomputed, action_id, and its place in the chain (seq follows the one
-- before it, prev_hash is that one's record_hash). Signatures are checked
-- by `kheish audit verify`. The first broken record of every bucket:
--   SELECT * FROM external_action_chain WHERE NOT ok ORDER BY bucket, seq;
CREATE OR REPLACE VIEW external_action_chain AS
SELECT bucket, seq, action_id, run_id, session_id, timestamp_ms, phase, kind, target, outcome,
       hash_ok, action_id_ok, chain_ok, hash_ok AND action_id_ok AND chain_ok AS ok
  FROM (SELECT e.*,
               encode(digest(convert_to(kheish_external_action_unsigned(e), 'UTF8'), 'sha256'),
                      'hex') = e.record_hash AS hash_ok,
               e.action_id = e.record_hash AS action_id_ok,
               e.seq = coalesce(lag(e.seq) OVER w, 0) + 1
                   AND e.prev_hash IS NOT DISTINCT FROM lag(e.record_hash) OVER w AS chain_ok
          FROM external_actions e
        WINDOW w AS (PARTITION BY e.bucket ORDER BY e.seq)) x;

-- Each bucket against its checkpoint: as many records as the checkpoint
-- counts (fewer: records were taken off), its last one the checkpoint's.
-- The checkpoint's signature is checked by `kheish audit verify`.
CREATE OR REPLACE VIEW external_action_buckets AS
SELECT coalesce(c.bucket, r.bucket) AS bucket, r.records, c.record_count AS checkpoint_count,
       r.records IS NOT DISTINCT FROM c.record_count
           AND r.last_hash IS NOT DISTINCT FROM c.last_record_hash AS ok
  FROM external_action_checkpoints c
  FULL JOIN (SELECT bucket, count(*) AS records,
                    (array_agg(record_hash ORDER BY seq DESC))[1] AS last_hash
               FROM external_actions GROUP BY bucket) r ON r.bucket = c.bucket;

GRANT SELECT ON external_action_chain, external_action_buckets TO kheish_auditor;
