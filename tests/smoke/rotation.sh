#!/usr/bin/env bash
# The rotation matrix (issue 13, point 6): each secret this build has,
# rotated the way docs/security.md and docs/architecture.md say, against a
# serve stack:
#
#   admin token file      new file moved over it: the old token is refused
#   read-only token file  from the next request, the new one works, the
#                         other role is untouched; the same token in both
#                         files refuses every bearer token until they differ
#   provider key slot     `secrets set` over the same ref, online while
#                         serving and offline while stopped: the next run
#                         sends the new key (the mock records its digest),
#                         the leases of the old value are revoked
#   master key            no rotation in place: a process with another key
#                         is refused (offline set exit 6, serve gives up
#                         exit 1 naming the slot) and changes nothing; the
#                         stack comes back with the right key
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/smoke/lib.sh

KEY_V1=sk-rotation-v1-$(uid)$(uid)
smoke_up rotation "$KEY_V1" || exit 1

# provider_run NAME SESSION KEY: a run in SESSION completes, and the one
# request the mock got carried KEY.
provider_run() {
    mock_reset
    keep "$1" sessions input "$2" "[[mock:text=$1]]" --wait
    expect_kept '.status == "completed" and any(.outputs[]; .content == "'"$1"'")' '{status, error}'
    mock_requests "$1-provider"
    expect_kept 'length == 1 and .[0].headers.authorization == "'"$(key_seen "$3")"'"' \
        '[.[] | {seq, status, authorization: .headers.authorization}]'
}

# --- token files -------------------------------------------------------------

# admin: rotated by mv, while the read-only token keeps reading.
cp "$ADMIN" "$SECRETS/old-admin-token"
token_write "$ADMIN" admin-rotation-2
expect_exit 4 cli_as "$SECRETS/old-admin-token" status
expect_exit 4 cli_as "$SECRETS/old-admin-token" sessions create refused-old-admin
expect_exit 0 cli status
expect_exit 0 cli sessions create rot-admin
expect_exit 0 cli_as "$READONLY" status
expect_exit 4 cli_as "$READONLY" sessions create refused-read-only

# read-only: rotated by mv, while the admin token keeps writing.
cp "$READONLY" "$SECRETS/old-readonly-token"
token_write "$READONLY" readonly-rotation-2
expect_exit 4 cli_as "$SECRETS/old-readonly-token" status
expect_exit 0 cli_as "$READONLY" status
expect_exit 4 cli_as "$READONLY" sessions create refused-new-read-only
expect_exit 0 cli sessions create rot-readonly

# A slip: the admin token installed as the read-only one. Every bearer token
# is refused until the files differ again.
cp "$ADMIN" "$READONLY.next"
mv "$READONLY.next" "$READONLY"
expect_exit 4 cli status
expect_exit 4 cli_as "$READONLY" status
token_write "$READONLY" readonly-rotation-3
expect_exit 0 cli status
expect_exit 0 cli_as "$READONLY" status
keep status-tokens status
expect_kept '.control_plane | .auth_duplicate_token == false and .auth_token_file_error_count == 0 and
    .auth_effective_admin_token_available and .auth_effective_read_only_token_available' .control_plane

# --- the provider key slot ---------------------------------------------------

keep session sessions create rot-slot
provider_run run-v1 rot-slot "$KEY_V1"
keep subject-v1 runtime auth subject session:rot-slot
LEASE_V1=$(jq -r '.active_route_lease_ids[0]' "$KEPT")
[ "$LEASE_V1" != null ] || fail "the run on v1 left no active lease"

# Online, while serving: `secrets set` over the same ref.
KEY_V2=sk-rotation-v2-$(uid)$(uid)
smoke_secret "$KEY_V2"
KEPT=$EVIDENCE/secret-set-v2.json
SLOT_VALUE=$KEY_V2 cli secrets set openai.prod --provider openai --from-env SLOT_VALUE >"$KEPT" ||
    fail "secrets set (online): exit $?"
expect_kept '.slot_id == "openai.prod" and .details.version == 2'
KEY_ID=$(jq -r .details.key_id "$KEPT")
keep lease-v1-after runtime auth lease "$LEASE_V1"
expect_kept '.revoked == true and .active == false and (.lease | has("token_digest") | not)'
keep subject-after-v2 runtime auth subject session:rot-slot
expect_kept '.active_route_lease_ids == [] and .revoked == false'
provider_run run-v2 rot-slot "$KEY_V2"
keep status-v2 status
expect_kept '.provider_readiness.routes[0] | .state == "ok" and (.auth_summary | test("version 2"))' \
    .provider_readiness.routes
smoke_serve_stop

# Offline, while stopped.
KEY_V3=sk-rotation-v3-$(uid)$(uid)
slot_set_offline "$KEY_V3" >"$EVIDENCE/secret-set-v3.json" || fail "secrets set --offline (v3): exit $?"
KEPT=$EVIDENCE/secret-set-v3.json
expect_kept '.details.version == 3 and .details.key_id == "'"$KEY_ID"'"'

# --- the master key ----------------------------------------------------------

KEY2=$SECRETS/other-master-key
kheish secrets generate >"$KEY2"
key_secret "$KEY2"
KHEISH_AUTH_STORE_MASTER_KEY_FILE=$KEY2
# An offline write with another key is refused, and says why.
SLOT_VALUE=sk-never-stored-$(uid) kheish secrets set openai.prod --offline --state-root "$STATE" \
    --provider openai --from-env SLOT_VALUE >"$EVIDENCE/other-key-set.out" 2>&1
rc=$?
[ $rc = 6 ] && grep -q 'sealed with a different master key' "$EVIDENCE/other-key-set.out" ||
    fail "secrets set --offline with another master key: exit $rc: $(cat "$EVIDENCE/other-key-set.out")"
# serve with another key: the runners refuse to start, naming the slot, and
# serve gives up (exit 1), leaving nothing running.
smoke_serve_spawn serve-other-key.log
wait_until 60 eval '! kill -0 $SERVE 2>/dev/null' || fail "serve kept running with another master key"
wait "$SERVE"
rc=$?
SERVE=
[ $rc = 1 ] || fail "serve with another master key exited $rc"
grep -q 'auth_ref openai.prod): its slot is sealed with a different master key' "$EVIDENCE/serve-other-key.log" &&
    grep -q '"event":"gave_up"' "$EVIDENCE/serve-other-key.log" ||
    fail "serve with another master key: $(tail -5 "$EVIDENCE/serve-other-key.log")"
[ -z "$(pgrep -f -- "$STATE")" ] || fail "processes left after serve gave up: $(pgrep -af -- "$STATE")"
KHEISH_AUTH_STORE_MASTER_KEY_FILE=$KEY
kheish --output json secrets list --offline --state-root "$STATE" >"$EVIDENCE/slots-after.json" 2>>"$EVIDENCE/offline.log"
KEPT=$EVIDENCE/slots-after.json
expect_kept '[.[] | {slot_id, v: .details.version, k: .details.key_id}] ==
    [{slot_id: "openai.prod", v: 3, k: "'"$KEY_ID"'"}]'

# The right key: the stack is back, and runs send the offline v3 key.
smoke_serve_start serve-2.log || exit 1
provider_run run-v3 rot-slot "$KEY_V3"
keep status-final status
expect_kept '.health.ok == true and .provider_readiness.active_route_ready == true' '{health, provider_readiness}'
smoke_serve_stop

# A new master key: there is no re-encryption, so the slots are deleted
# under the old key and set again under the new one (an empty store takes
# the writer's key); the stack then runs on the new key alone.
kheish secrets delete openai.prod --offline --state-root "$STATE" >/dev/null 2>>"$EVIDENCE/offline.log" ||
    fail "secrets delete --offline under the old key"
KHEISH_AUTH_STORE_MASTER_KEY_FILE=$KEY2
KEY_V5=sk-rotation-v5-$(uid)$(uid)
slot_set_offline "$KEY_V5" >"$EVIDENCE/secret-set-v5.json" ||
    fail "secrets set --offline under a new key after the store was emptied: exit $?"
smoke_serve_start serve-3.log || exit 1
provider_run run-v5 rot-slot "$KEY_V5"
smoke_serve_stop

smoke_end
