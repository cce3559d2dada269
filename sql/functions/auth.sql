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
       OR (to_jsonb(NEW) - 'revoked_at_ms' - 'revoked_reason')
          IS DISTINCT FROM (to_jsonb(OLD) - 'revoked_at_ms' - 'revoked_reason') THEN
        RAISE EXCEPTION 'auth_leases is history: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
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
