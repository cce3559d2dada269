# Secrets (contract §5, sql/migrations/005_auth_store.sql): sealed slots through the API and the CLI,
# online and offline; no plaintext in the database, a dump, a log or an
# answer; a wrong master key is refused; leases end with their slot.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
SECRET="sk-test-$(uid)-PLAINTEXT"
ref=$(uid)

# Online: set, get, list; the answer is a status, never the value.
api POST /v1/runtime/secrets "{\"slot_id\":\"$ref\",\"provider\":\"anthropic\",\"mode\":\"api_key\",
    \"state\":{\"kind\":\"api_key\",\"api_key\":\"$SECRET\"}}"
expect_status 200
expect_json ".slot_id == \"$ref\" and .provider == \"anthropic\" and .mode == \"api_key\"
    and .details.version == 1 and (.summary | type) == \"string\""
grep -q "$SECRET" "$BODY_FILE" && fail "the answer holds the secret"
api GET /v1/runtime/secrets/$ref
expect_json ".slot_id == \"$ref\" and (has(\"state\") | not)"
api GET /v1/runtime/secrets
expect_json "any(.[]; .slot_id == \"$ref\")"
TOKEN=$READONLY_TOKEN api GET /v1/runtime/secrets
expect_problem 403 insufficient_access auth
api GET /v1/runtime/secrets/nope-$(uid)
expect_problem 404 secret_not_found secrets

# Bad records change nothing and never echo a value.
before=$(q "SELECT count(*) FROM auth_slots")
for bad in '{"slot_id":"x","provider":"nobody","mode":"api_key","state":{}}' \
    '{"slot_id":"x","provider":"generic","mode":"api_key","state":{"kind":"api_key","api_key":"sk-BAD-1"}}' \
    '{"slot_id":"x","provider":"anthropic","mode":"opaque_secret","state":{"value":"sk-BAD-2"}}' \
    '{"slot_id":"x","provider":"anthropic","mode":"oauth_account","state":{}}' \
    '{"slot_id":"x","provider":"mcp_oauth","mode":"api_key","state":{"kind":"api_key","api_key":"sk-BAD-7"}}' \
    '{"slot_id":"x","provider":null,"mode":"api_key","state":{"kind":"api_key","api_key":"sk-BAD-8"}}' \
    '{"slot_id":"x","provider":"anthropic","mode":"api_key","state":{"kind":"api_key"}}' \
    '{"slot_id":"x","provider":"anthropic","mode":"api_key","state":{"kind":"api_key","api_key":"sk-BAD-3","extra":"sk-BAD-4"}}' \
    '{"slot_id":"a/b","provider":"generic","mode":"opaque_secret","state":{"value":"sk-BAD-5"}}' \
    '{"provider":"generic","mode":"opaque_secret","state":{"value":"sk-BAD-6"}}' \
    '{"slot_id":"x","provider":"generic","mode":"opaque_secret","state":{"value":""}}'; do
    api POST /v1/runtime/secrets "$bad"
    [ "$STATUS" = 400 ] || fail "expected 400 for $bad, got $STATUS: $(body)"
    grep -q "sk-BAD" "$BODY_FILE" && fail "a refusal quotes the value: $(body)"
done
[ "$(q "SELECT count(*) FROM auth_slots")" = "$before" ] || fail "a refused record changed the slots"

# Offline and online interoperate (same database, same key: `kheish up`'s).
echo "$SECRET-2" | "$K" secrets set "$ref" --provider anthropic --stdin --offline \
    --state-root "$STATE_ROOT" >"$RESP_DIR/off" 2>&1 || fail "offline set: $(cat "$RESP_DIR/off")"
api GET /v1/runtime/secrets/$ref
expect_json '.details.version == 2'
"$K" --output json secrets list --offline --state-root "$STATE_ROOT" >"$RESP_DIR/list" ||
    fail "offline list"
jq -e --arg r "$ref" 'any(.[]; .slot_id == $r and .details.version == 2)' "$RESP_DIR/list" >/dev/null ||
    fail "offline list: $(cat "$RESP_DIR/list")"
SECRET_ENV=$SECRET-3 "$K" secrets set gen-$ref --provider generic --from-env SECRET_ENV >/dev/null ||
    fail "online set from env"
"$K" --output json secrets get gen-$ref --offline --state-root "$STATE_ROOT" | jq -e '.mode == "opaque_secret"' >/dev/null ||
    fail "offline get of an online set"

# A wrong master key is refused, not mixed in.
other=$("$K" secrets generate)
[ "$(printf %s "$other" | base64 -d | wc -c)" = 32 ] || fail "secrets generate: $other"
KHEISH_AUTH_STORE_MASTER_KEY=$other "$K" secrets set "$ref" --provider anthropic --value "$SECRET-4" \
    --offline --state-root "$STATE_ROOT" >"$RESP_DIR/wrong" 2>&1
rc=$?
[ $rc = 6 ] && grep -q "different master key" "$RESP_DIR/wrong" ||
    fail "a wrong key: exit $rc, $(cat "$RESP_DIR/wrong")"
api GET /v1/runtime/secrets/$ref
expect_json '.details.version == 2'
KHEISH_AUTH_STORE_MASTER_KEY=short "$K" secrets set "$ref" --provider anthropic --value x --offline \
    --state-root "$STATE_ROOT" 2>"$RESP_DIR/short" && fail "a short key was accepted"
grep -q "exactly 32 raw bytes or base64-encoded 32 bytes" "$RESP_DIR/short" || fail "short key: $(cat "$RESP_DIR/short")"
# kheish-fcgi refuses to start on a bad key setting (exit 2, the contract's text).
fcgi_refuses() { # EXPECTED-TEXT ENV...
    local want=$1
    shift
    env "$@" "$BIN_DIR/kheish-fcgi" --socket "$RESP_DIR/x.sock" 2>"$RESP_DIR/fcgi.err"
    local rc=$?
    [ $rc = 2 ] && grep -q "$want" "$RESP_DIR/fcgi.err" || fail "kheish-fcgi with $*: exit $rc, $(cat "$RESP_DIR/fcgi.err")"
}
fcgi_refuses "mutually exclusive" KHEISH_AUTH_STORE_MASTER_KEY="$other" KHEISH_AUTH_STORE_MASTER_KEY_FILE=/etc/hostname
fcgi_refuses "exactly 32 raw bytes" KHEISH_AUTH_STORE_MASTER_KEY=tooshort
fcgi_refuses "exactly 32 raw bytes" KHEISH_AUTH_STORE_MASTER_KEY_FILE=/etc/hostname

# Versions never repeat, even across a delete (the audit remembers).
api DELETE /v1/runtime/secrets/$ref
expect_json '.accepted == true'
api DELETE /v1/runtime/secrets/$ref
expect_problem 404 secret_not_found secrets
"$K" secrets set "$ref" --provider anthropic --value "$SECRET-5" >/dev/null || fail "set after delete"
api GET /v1/runtime/secrets/$ref
expect_json '.details.version == 3'
[ "$(q "SELECT string_agg(action || coalesce(':' || version, ''), ',' ORDER BY id) FROM auth_slot_audit
        WHERE slot_id = '$ref'")" = "set:1,set:2,delete,set:3" ] ||
    fail "slot audit: $(q "SELECT action, version FROM auth_slot_audit WHERE slot_id = '$ref'")"
psql -X -q -h "$STATE_ROOT/pg" -p "$KHEISH_PG_PORT" -U kheish_app -d kheish \
    -c "DELETE FROM auth_slot_audit WHERE slot_id = '$ref'" 2>/dev/null && fail "the slot audit is not append-only"

# Leases end with their slot: revoke-slot counts them; the lease no longer
# resolves (shown as inactive).
q "INSERT INTO auth_subjects (subject_id, updated_at_ms) VALUES ('session:$ref', 0)"
for n in 1 2; do
    q "INSERT INTO auth_leases (lease_id, grant_id, subject_id, subject_epoch, audience, slot_id, token_digest,
        issued_at_ms, expires_at_ms) VALUES ('lease-$ref-$n', 'g', 'session:$ref', 1,
        '{\"type\":\"route\",\"route_id\":\"r\",\"slot_id\":\"$ref\"}', '$ref', sha256('$ref$n'),
        0, (extract(epoch FROM now()) * 1000 + 600000)::bigint)" >/dev/null
done
api GET /v1/runtime/auth/leases/lease-$ref-1
expect_json '.active == true and .revoked == false and .lease.subject_id == "session:'"$ref"'" and (.lease | has("token_digest") | not)'
api GET /v1/runtime/auth/subjects/session:$ref
expect_json '.current_epoch == 1 and (.active_route_lease_ids | length) == 2'
api POST /v1/runtime/auth/slots/$ref/revoke
expect_status 200
expect_json ". == {\"slot_id\": \"$ref\", \"revoked_leases\": 2}"
api GET /v1/runtime/auth/leases/lease-$ref-1
expect_json '.active == false and .revoked == true'
api POST /v1/runtime/auth/slots/$ref/revoke
expect_json '.revoked_leases == 0'
api POST /v1/runtime/auth/slots/nope-$(uid)/revoke
expect_problem 404 secret_not_found secrets
q "UPDATE auth_leases SET revoked_at_ms = NULL WHERE lease_id = 'lease-$ref-1'" 2>/dev/null &&
    fail "a revoked lease was un-revoked"
# Overwriting a slot is the rotation path: its live leases end with it.
q "INSERT INTO auth_leases (lease_id, grant_id, subject_id, subject_epoch, audience, slot_id, token_digest,
    issued_at_ms, expires_at_ms) VALUES ('lease-$ref-3', 'g', 'session:$ref', 1,
    '{\"type\":\"route\",\"route_id\":\"r\",\"slot_id\":\"$ref\"}', '$ref', sha256('$ref-3'),
    0, (extract(epoch FROM now()) * 1000 + 600000)::bigint)" >/dev/null
"$K" secrets set "$ref" --provider anthropic --value "$SECRET-7" >/dev/null || fail "rotation"
api GET /v1/runtime/auth/leases/lease-$ref-3
expect_json '.active == false and .revoked == true'
[ "$(q "SELECT revoked_reason FROM auth_leases WHERE lease_id = 'lease-$ref-3'")" = set ] ||
    fail "the rotation did not revoke the lease as 'set'"
api POST /v1/runtime/auth/subjects/session:$ref/revoke
expect_json '.revoked == true and .current_epoch == 2 and .active_route_lease_ids == []'
api GET /v1/runtime/auth/subjects/session:nobody-$(uid)
expect_problem 404 subject_not_found runtime
api POST /v1/runtime/auth/subjects/nobody/revoke
expect_problem 400 bad_request
api GET /v1/runtime/auth/leases/lease-nope
expect_problem 404 lease_not_found runtime

# The runbook's order: a secret stored offline before the first `kheish up`
# of a state root (which gets its database, then has it stopped again).
fresh=$(dirname "$STATE_ROOT")/fresh-$$ # postgres must reach it: not under RESP_DIR (0700)
echo "$SECRET-6" | "$K" secrets set early-$ref --provider openai --stdin --offline --state-root "$fresh" \
    >"$RESP_DIR/fresh.out" 2>&1 || fail "offline set before up: $(cat "$RESP_DIR/fresh.out")"
"$K" --output json secrets list --offline --state-root "$fresh" | jq -e --arg r "early-$ref" \
    'length == 1 and .[0].slot_id == $r and .[0].provider == "open_ai"' >/dev/null ||
    fail "offline list of the fresh root"
[ -f "$fresh.keys/auth-store-master.key" ] && [ ! -e "$fresh/tokens/auth-store-master-key" ] ||
    fail "the fresh root's master key is not beside it"
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$fresh/pg/data" status >/dev/null 2>&1 &&
    fail "the fresh root's PostgreSQL was left running"
rm -rf "$fresh" "$fresh.keys"

# No plaintext anywhere: the tables, a full dump, the logs.
for s in "$SECRET" "$SECRET-2" "$SECRET-3" "$SECRET-5" "$SECRET-7"; do
    [ "$(q "SELECT count(*) FROM auth_slots WHERE position(convert_to('$s', 'UTF8') IN ciphertext) > 0")" = 0 ] ||
        fail "plaintext in auth_slots"
done
pg_dump -h "$STATE_ROOT/pg" -p "$KHEISH_PG_PORT" -U postgres kheish >"$RESP_DIR/dump.sql" || fail "pg_dump"
grep -c -- "-PLAINTEXT" "$RESP_DIR/dump.sql" | grep -qx 0 || fail "the dump holds a secret"
grep -rl -- "-PLAINTEXT" "$STATE_ROOT/logs" "$STATE_ROOT/pg/server.log" 2>/dev/null &&
    fail "a log holds a secret"
true
