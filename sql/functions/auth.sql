-- The auth ledgers' guards and the views of the auth store and the broker
-- (contract §5). Tables: migrations 002 and 005.

-- Append-only tables refuse UPDATE, DELETE and TRUNCATE to everyone, the
-- owner included.
CREATE OR REPLACE FUNCTION kheish_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION kheish_refuse_change() IS
    'Trigger: refuses UPDATE, DELETE and TRUNCATE of an append-only table, to every role.';
CREATE OR REPLACE TRIGGER auth_audit_append_only BEFORE UPDATE OR DELETE ON auth_audit
    FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER auth_audit_no_truncate BEFORE TRUNCATE ON auth_audit
    FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER auth_slot_audit_append_only BEFORE UPDATE OR DELETE ON auth_slot_audit
    FOR EACH ROW EXECUTE FUNCTION kheish_refuse_change();
CREATE OR REPLACE TRIGGER auth_slot_audit_no_truncate BEFORE TRUNCATE ON auth_slot_audit
    FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- Leases are history: no delete, and the only change is a first revocation.
CREATE OR REPLACE FUNCTION auth_leases_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.revoked_at_ms IS NOT NULL OR NEW.revoked_at_ms IS NULL
       OR (to_jsonb(NEW) - 'revoked_at_ms' - 'revoked_reason' - 'revoked_by')
          IS DISTINCT FROM (to_jsonb(OLD) - 'revoked_at_ms' - 'revoked_reason' - 'revoked_by') THEN
        RAISE EXCEPTION 'auth_leases is history: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION auth_leases_guard() IS
    'Trigger function: auth_leases rows are never deleted and change only by a first '
    'revocation (revoked_at_ms, revoked_reason, revoked_by).';
CREATE OR REPLACE TRIGGER auth_leases_history BEFORE UPDATE OR DELETE ON auth_leases
    FOR EACH ROW EXECUTE FUNCTION auth_leases_guard();
CREATE OR REPLACE TRIGGER auth_leases_no_truncate BEFORE TRUNCATE ON auth_leases
    FOR EACH STATEMENT EXECUTE FUNCTION kheish_refuse_change();

-- What the API shows of a slot: never the value.
CREATE OR REPLACE FUNCTION auth_slot_status(a auth_slots) RETURNS jsonb
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
COMMENT ON FUNCTION auth_slot_status(auth_slots) IS
    'What the API shows of a slot: never the value.';

-- The lease view of the API: never the token digest.
CREATE OR REPLACE FUNCTION auth_lease_status(l auth_leases, now_ms bigint) RETURNS jsonb
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
COMMENT ON FUNCTION auth_lease_status(auth_leases, bigint) IS
    'The API''s view of a lease: never the token digest.';

CREATE OR REPLACE FUNCTION auth_subject_status(s auth_subjects, now_ms bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'subject_id', s.subject_id, 'current_epoch', s.epoch, 'revoked', s.revoked,
    'active_connector_lease_ids', '[]'::jsonb, 'active_mcp_lease_ids', '[]'::jsonb,
    'active_route_lease_ids', coalesce((SELECT jsonb_agg(l.lease_id ORDER BY l.lease_id)
        FROM auth_leases l WHERE l.subject_id = s.subject_id AND l.revoked_at_ms IS NULL
        AND l.expires_at_ms > now_ms AND l.subject_epoch = s.epoch AND NOT s.revoked), '[]'))
$$;
COMMENT ON FUNCTION auth_subject_status(auth_subjects, bigint) IS
    'The API''s view of a broker subject and its active leases.';

-- The writes of the auth store and the broker, one statement each. Every
-- slot write queues on the auth_store_key row, which also checks that all
-- slots are sealed with the same master key.

-- The version the next write of slot gets (it is sealed into the
-- ciphertext): versions continue from the audit, which outlives a delete.
CREATE OR REPLACE FUNCTION kheish_slot_next_version(slot text) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(max(a.version), 0) + 1 FROM auth_slot_audit a WHERE a.slot_id = slot $$;
COMMENT ON FUNCTION kheish_slot_next_version(text) IS
    'The version the next write of a slot gets: versions continue from auth_slot_audit.';

-- Revokes slot's active leases and audits the change (action), both linked
-- to admin action act (NULL: none); returns how many leases it revoked.
CREATE OR REPLACE FUNCTION kheish_slot_audit(slot text, action text, version bigint,
                                             provider text, recorded_by text, act bigint)
    RETURNS int
    LANGUAGE plpgsql
    AS $$
DECLARE
    n int;
BEGIN
    WITH gone AS (
        UPDATE auth_leases l SET revoked_at_ms = kheish_now_ms(), revoked_reason = action,
                                 revoked_by = act
        WHERE l.slot_id = slot AND l.revoked_at_ms IS NULL AND l.expires_at_ms > kheish_now_ms()
        RETURNING 1)
    INSERT INTO auth_slot_audit (at_ms, slot_id, action, version, provider, revoked_leases,
                                 recorded_by, admin_action_id)
        SELECT kheish_now_ms(), slot, action, version, provider, count(*), recorded_by, act
        FROM gone
        RETURNING revoked_leases INTO n;
    RETURN n;
END
$$;
COMMENT ON FUNCTION kheish_slot_audit(text, text, bigint, text, text, bigint) IS
    'Revokes a slot''s active leases and appends its auth_slot_audit row, linked to an admin '
    'action.';

-- POST /v1/runtime/secrets: slot written (created, or overwritten: the
-- rotation path, whose leases end now) with a value sealed under key_id for
-- version, which must still be the next version (a concurrent write took it
-- otherwise: {result: retry}, and the caller seals again). Returns {result:
-- ok, status}, or {result: key_mismatch} when the store holds slots sealed
-- with another key. An empty store takes the writer's key: the way to a new
-- master key is to delete every slot and set them again under it. actor's
-- action is recorded (not for a retry, which the caller makes again) and
-- linked from the slot's audit row and the leases it revoked.
CREATE OR REPLACE FUNCTION kheish_slot_put(slot text, provider text, mode text, version bigint,
                                           key_id text, nonce bytea, ciphertext bytea,
                                           recorded_by text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    same_key boolean;
    st jsonb;
BEGIN
    INSERT INTO auth_store_key AS k (key_id, created_at_ms) VALUES (key_id, kheish_now_ms())
        ON CONFLICT (one) DO UPDATE SET
            key_id = CASE WHEN EXISTS (SELECT 1 FROM auth_slots) THEN k.key_id
                          ELSE EXCLUDED.key_id END,
            created_at_ms = CASE WHEN k.key_id = EXCLUDED.key_id
                                      OR EXISTS (SELECT 1 FROM auth_slots) THEN k.created_at_ms
                                 ELSE EXCLUDED.created_at_ms END
        RETURNING k.key_id = kheish_slot_put.key_id INTO same_key;
    IF NOT same_key THEN
        RETURN kheish_admin_answer(actor, 'slot_put', NULL, NULL, slot,
                                   jsonb_build_object('result', 'key_mismatch'));
    ELSIF version <> kheish_slot_next_version(slot) THEN
        RETURN jsonb_build_object('result', 'retry');
    END IF;
    INSERT INTO auth_slots AS a (slot_id, provider, mode, version, key_id, nonce, ciphertext,
                                 updated_at_ms)
        VALUES (slot, provider, mode, version, key_id, nonce, ciphertext, kheish_now_ms())
        ON CONFLICT (slot_id) DO UPDATE SET
            provider = EXCLUDED.provider, mode = EXCLUDED.mode, version = EXCLUDED.version,
            key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
            updated_at_ms = EXCLUDED.updated_at_ms
        RETURNING auth_slot_status(a) INTO st;
    PERFORM kheish_slot_audit(slot, 'set', version, provider, recorded_by,
                              kheish_admin_action(actor, 'slot_put', NULL, NULL, slot, 'ok'));
    RETURN jsonb_build_object('result', 'ok', 'status', st);
END
$$;
COMMENT ON FUNCTION kheish_slot_put(text, text, text, bigint, text, bytea, bytea, text, jsonb) IS
    'POST /v1/runtime/secrets: writes a sealed slot, recording actor''s action.';

-- DELETE /v1/runtime/secrets/{id}: {result: ok} or {result:
-- secret_not_found}; actor's action is recorded and linked from the audit.
CREATE OR REPLACE FUNCTION kheish_slot_delete(slot text, recorded_by text, actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    p text;
BEGIN
    DELETE FROM auth_slots a WHERE a.slot_id = slot RETURNING a.provider INTO p;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'slot_delete', NULL, NULL, slot,
                                   jsonb_build_object('result', 'secret_not_found'));
    END IF;
    PERFORM kheish_slot_audit(slot, 'delete', NULL, p, recorded_by,
                              kheish_admin_action(actor, 'slot_delete', NULL, NULL, slot, 'ok'));
    RETURN jsonb_build_object('result', 'ok');
END
$$;
COMMENT ON FUNCTION kheish_slot_delete(text, text, jsonb) IS
    'DELETE /v1/runtime/secrets/{id}: deletes a slot, recording actor''s action.';

-- POST /v1/runtime/auth/slots/{id}/revoke: {result: ok, revoked} or
-- {result: secret_not_found}; actor's action is recorded and linked.
CREATE OR REPLACE FUNCTION kheish_slot_revoke_leases(slot text, recorded_by text, actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM FROM auth_slots a WHERE a.slot_id = slot FOR SHARE;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'slot_revoke_leases', NULL, NULL, slot,
                                   jsonb_build_object('result', 'secret_not_found'));
    END IF;
    RETURN jsonb_build_object('result', 'ok',
        'revoked', kheish_slot_audit(slot, 'revoke_leases', NULL, NULL, recorded_by,
            kheish_admin_action(actor, 'slot_revoke_leases', NULL, NULL, slot, 'ok')));
END
$$;
COMMENT ON FUNCTION kheish_slot_revoke_leases(text, text, jsonb) IS
    'POST /v1/runtime/auth/slots/{id}/revoke: revokes a slot''s leases, recording actor''s '
    'action.';

-- POST /v1/runtime/auth/subjects/{id}/revoke: the subject (created if
-- unknown) is revoked under a new epoch, its leases with it. Returns
-- {result: ok, status}. actor's action is recorded; the subject and the
-- leases it revoked link to it.
CREATE OR REPLACE FUNCTION kheish_subject_revoke(subject text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    act bigint := kheish_admin_action(actor, 'subject_revoke', NULL, NULL, subject, 'ok');
BEGIN
    INSERT INTO auth_subjects AS a (subject_id, epoch, revoked, updated_at_ms, revoked_by)
        VALUES (subject, 2, true, kheish_now_ms(), act)
        ON CONFLICT (subject_id) DO UPDATE SET
            epoch = a.epoch + 1, revoked = true, updated_at_ms = EXCLUDED.updated_at_ms,
            revoked_by = EXCLUDED.revoked_by;
    UPDATE auth_leases l SET revoked_at_ms = kheish_now_ms(), revoked_reason = 'subject_revoked',
                             revoked_by = act
    WHERE l.subject_id = subject AND l.revoked_at_ms IS NULL;
    RETURN jsonb_build_object('result', 'ok', 'status',
        (SELECT auth_subject_status(a, kheish_now_ms()) FROM auth_subjects a
         WHERE a.subject_id = subject));
END
$$;
COMMENT ON FUNCTION kheish_subject_revoke(text, jsonb) IS
    'POST /v1/runtime/auth/subjects/{id}/revoke: bumps the subject''s epoch and revokes its '
    'leases, recording actor''s action (revoked_by).';

-- POST /v1/runtime/auth/leases/{id}/revoke: {result: ok, status} or
-- {result: lease_not_found}; revoking a revoked lease changes nothing.
-- actor's action is recorded; a lease it revokes links to it.
CREATE OR REPLACE FUNCTION kheish_lease_revoke(lease text, actor jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    st jsonb;
    act bigint;
BEGIN
    PERFORM FROM auth_leases l WHERE l.lease_id = lease FOR UPDATE;
    IF NOT FOUND THEN
        RETURN kheish_admin_answer(actor, 'lease_revoke', NULL, NULL, lease,
                                   jsonb_build_object('result', 'lease_not_found'));
    END IF;
    act := kheish_admin_action(actor, 'lease_revoke', NULL, NULL, lease, 'ok');
    UPDATE auth_leases l SET revoked_at_ms = kheish_now_ms(), revoked_reason = 'lease_revoked',
                             revoked_by = act
    WHERE l.lease_id = lease AND l.revoked_at_ms IS NULL;
    SELECT auth_lease_status(l, kheish_now_ms()) INTO st FROM auth_leases l
    WHERE l.lease_id = lease;
    RETURN jsonb_build_object('result', 'ok', 'status', st);
END
$$;
COMMENT ON FUNCTION kheish_lease_revoke(text, jsonb) IS
    'POST /v1/runtime/auth/leases/{id}/revoke: revokes a lease, recording actor''s action '
    '(revoked_by).';

-- A lease for subject (created if unknown) to use slot through route, valid
-- ttl_ms from now; only digest, the SHA-256 of its token, is kept.
-- Returns {result: ok, expires_at_ms}, or {result: subject_not_found} for
-- a revoked subject, which is issued nothing.
CREATE OR REPLACE FUNCTION kheish_lease_issue(lease text, subject text, route text, slot text,
                                              digest bytea, ttl_ms bigint) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    subj record;
    now_ms bigint := kheish_now_ms();
BEGIN
    INSERT INTO auth_subjects AS a (subject_id, updated_at_ms) VALUES (subject, now_ms)
        ON CONFLICT (subject_id) DO UPDATE SET updated_at_ms = a.updated_at_ms
        RETURNING a.epoch, a.revoked INTO subj;
    IF subj.revoked THEN
        RETURN jsonb_build_object('result', 'subject_not_found');
    END IF;
    INSERT INTO auth_leases (lease_id, grant_id, subject_id, subject_epoch, audience, slot_id,
                             token_digest, issued_at_ms, expires_at_ms)
        VALUES (lease, 'grant-' || subject || ':' || route, subject, subj.epoch,
                jsonb_build_object('type', 'route', 'route_id', route, 'slot_id', slot), slot,
                digest, now_ms, now_ms + ttl_ms);
    RETURN jsonb_build_object('result', 'ok', 'expires_at_ms', now_ms + ttl_ms);
END
$$;
COMMENT ON FUNCTION kheish_lease_issue(text, text, text, text, bytea, bigint) IS
    'Issues a lease for a subject to use a slot through a route (only the token''s SHA-256 is kept); returns {result, expires_at_ms}.';
