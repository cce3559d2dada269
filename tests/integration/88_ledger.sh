# The signed external-action ledger (issue 14, points 1 and 2; contract §9).
# Runs against the mock provider leave a request and a response record each,
# signed with the key the runner made in the state root; `runs
# external-actions` shows them as upstream's smoke reads them; `audit
# verify`, the SQL views and an independent verifier (Node's crypto,
# tests/ledger/verify.mjs) agree. Tampering as the database owner is named
# record by record; the application role cannot change a record; a ledger
# that cannot be written stops the provider call; records without their key
# keep the runners from starting.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
mock_provider_start
trap 'runners_stop; rm -rf "$RESP_DIR"' EXIT
KEY_FILE=$STATE_ROOT/audit-signing.key
PROVIDER_KEY="sk-ledger-$(uid)"
"$K" secrets set openai.prod --provider openai --value "$PROVIDER_KEY" >/dev/null || fail "secrets set"
mock_routes "$RESP_DIR/routes.toml"
up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up with runners: $(tail -5 "$RESP_DIR/up.log")"

# run_one TEXT: a run in a new session, waited for; prints its id.
run_one() {
    local s run
    s=$(uid)
    "$K" sessions create "$s" >/dev/null || fail "sessions create"
    run=$("$K" --output json sessions input "$s" "$1" | jq -r .run_id)
    "$K" --output json runs wait "$run" --timeout-ms 20000 --poll-interval-ms 100 \
        >"$RESP_DIR/$run.json" || fail "runs wait $run: $(cat "$RESP_DIR/$run.json")"
    echo "$run"
}
verify() { "$K" --output json audit verify --state-root "$STATE_ROOT" "$@" >"$RESP_DIR/verify.json"; }

# The key: made once by the runner, 0600, the contract's JSON document.
[ "$(stat -c %a "$KEY_FILE")" = 600 ] || fail "audit-signing.key is not 0600"
jq -e '.algorithm == "ed25519" and (.secret_key_hex | test("^[0-9a-f]{64}$")) and (keys | length == 2)' \
    "$KEY_FILE" >/dev/null || fail "audit-signing.key is not the contract's document"
grep -q "inside the state root" "$STATE_ROOT"/logs/runner-1.log ||
    fail "the runner did not warn that the key inside the state root is forgeable"

run=$(run_one "hello [[mock:text=ledger]]")
jq -e '.status == "completed"' "$RESP_DIR/$run.json" >/dev/null || fail "run: $(cat "$RESP_DIR/$run.json")"
# No key to verify the records against: refused, saying how to give one.
mv "$KEY_FILE" "$KEY_FILE.aside"
verify --all 2>"$RESP_DIR/nokey.err"
[ $? = 2 ] && grep -q -- "--key-id" "$RESP_DIR/nokey.err" ||
    fail "audit verify of records without a key: not exit 2 with how to give one"
mv "$KEY_FILE.aside" "$KEY_FILE"
"$K" --output json runs external-actions "$run" >"$RESP_DIR/ea.json" || fail "runs external-actions: exit $?"
# What upstream's live smoke asserts, word for word.
jq -e 'length >= 2 and any(.[]; .phase == "request") and any(.[]; .phase == "response")
    and all(.[]; .signature_alg == "ed25519" and (.key_id | length > 0) and (.signature | length > 0)
                 and (.record_hash | length > 0))' "$RESP_DIR/ea.json" >/dev/null ||
    fail "external actions: $(cat "$RESP_DIR/ea.json")"
jq -e --arg run "$run" 'length == 2 and .[0].phase == "request" and .[1].phase == "response"
    and .[1].outcome == "ok" and .[1].prev_hash == .[0].record_hash and (.[0] | has("prev_hash") | not)
    and all(.[]; .run_id == $run and .kind == "provider" and .target == "provider:openai:gpt-5.4"
                 and .action_id == .record_hash and (.request_digest | test("^sha256:[0-9a-f]{64}$"))
                 and (.grant_id | startswith("lease-")))
    and (.[1].response_digest | test("^sha256:[0-9a-f]{64}$"))' "$RESP_DIR/ea.json" >/dev/null ||
    fail "the records are not a request and its response: $(cat "$RESP_DIR/ea.json")"
# The same through the API, and the pretty table.
api GET "/v1/runs/$run/external-actions"
expect_status 200
[ "$(jq -c . "$BODY_FILE")" = "$(jq -c . "$RESP_DIR/ea.json")" ] || fail "the API and the CLI differ"
api GET "/v1/runs/$run/external-actions?after=1&limit=1"
expect_json 'length == 1 and .[0].phase == "response"'
api GET "/v1/runs/$run/external-actions?after=-1"
expect_problem 400 invalid_after pagination
api GET "/v1/runs/nope-$(uid)/external-actions"
expect_problem 404 run_not_found runs
"$K" runs external-actions "$run" | grep -q "provider:openai:gpt-5.4" || fail "pretty external-actions"

# Three verifiers agree: audit verify, the independent Node one, SQL.
verify --run "$run" || fail "audit verify --run: exit $?: $(cat "$RESP_DIR/verify.json")"
jq -e '.ok and .records == 2 and .buckets == 1' "$RESP_DIR/verify.json" >/dev/null ||
    fail "audit verify: $(cat "$RESP_DIR/verify.json")"
node tests/ledger/verify.mjs --key-file "$KEY_FILE" <"$RESP_DIR/ea.json" >"$RESP_DIR/node.out" ||
    fail "the independent verifier: $(cat "$RESP_DIR/node.out")"
[ "$(q "SELECT count(*) FROM audit.external_actions WHERE bucket = '$run' AND ok")" = 2 ] ||
    fail "the SQL check does not pass both records"
[ "$(q "SELECT ok FROM audit.external_action_buckets WHERE bucket = '$run'")" = t ] ||
    fail "the SQL checkpoint check does not pass"
# A key nobody trusts: every record is broken.
verify --run "$run" --key-id "$(printf '%064d' 0)"
[ $? = 0 ] || fail "a trusted key plus an extra --key-id must still verify"
KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY=$(printf 'a%.0s' $(seq 64)) verify --run "$run"
[ $? = 1 ] || fail "audit verify with another key: not exit 1"
jq -e '.broken.position == 1 and (.broken.reason | test("not trusted"))' "$RESP_DIR/verify.json" >/dev/null ||
    fail "another key: $(cat "$RESP_DIR/verify.json")"

# The application role may not change a record; nor may the owner without
# the maintenance path.
for sql in "UPDATE external_actions SET outcome = 'x' WHERE bucket = '$run'" \
    "DELETE FROM external_actions WHERE bucket = '$run'" "TRUNCATE external_actions" \
    "DELETE FROM external_action_checkpoints WHERE bucket = '$run'" \
    "UPDATE external_action_checkpoints SET record_count = 1 WHERE bucket = '$run'"; do
    $PSQL -c "SET ROLE kheish_app; $sql" >/dev/null 2>&1 && fail "kheish_app could: $sql"
    $PSQL -c "$sql" >/dev/null 2>&1 && fail "the owner could, without the maintenance path: $sql"
done
[ "$(q "SELECT count(*) FROM external_actions WHERE bucket = '$run'")" = 2 ] || fail "records changed"

# Tampering by the owner (triggers disabled, as the maintenance path does)
# is named: an edited field, a removed record, a bucket emptied.
tamper() {
    $PSQL -c "BEGIN; ALTER TABLE external_actions DISABLE TRIGGER USER; $1;
              ALTER TABLE external_actions ENABLE TRIGGER USER; COMMIT;" >/dev/null ||
        fail "tamper: $1"
}
edited=$(run_one "edit me") removed=$(run_one "remove from me") emptied=$(run_one "empty me")
verify --all || fail "audit verify --all before tampering: $(cat "$RESP_DIR/verify.json")"
tamper "UPDATE external_actions SET target = 'provider:elsewhere' WHERE bucket = '$edited' AND seq = 2"
verify --run "$edited"
[ $? = 1 ] || fail "an edited field: audit verify did not exit 1"
want=$(q "SELECT action_id FROM external_actions WHERE bucket = '$edited' AND seq = 2")
jq -e --arg a "$want" '.ok == false and .broken.position == 2 and .broken.action_id == $a
    and (.broken.reason | test("record_hash"))' "$RESP_DIR/verify.json" >/dev/null ||
    fail "an edited field: $(cat "$RESP_DIR/verify.json")"
[ "$(q "SELECT seq FROM audit.external_actions WHERE bucket = '$edited' AND NOT hash_ok")" = 2 ] ||
    fail "the SQL check does not name the edited record"
"$K" audit verify --state-root "$STATE_ROOT" --run "$edited" | grep -q "^BROKEN: bucket $edited, record 2" ||
    fail "pretty audit verify does not name the record"
tamper "DELETE FROM external_actions WHERE bucket = '$removed' AND seq = 1"
verify --run "$removed"
[ $? = 1 ] || fail "a removed record: audit verify did not exit 1"
jq -e '.broken.position == 1 and (.broken.reason | test("chain is broken"))' "$RESP_DIR/verify.json" \
    >/dev/null || fail "a removed record: $(cat "$RESP_DIR/verify.json")"
[ "$(q "SELECT seq FROM audit.external_actions WHERE bucket = '$removed' AND NOT chain_ok")" = 2 ] ||
    fail "the SQL check does not name the record after the removed one"
tamper "DELETE FROM external_actions WHERE bucket = '$emptied'"
verify --run "$emptied"
[ $? = 1 ] || fail "an emptied bucket: audit verify did not exit 1"
jq -e '.broken.bucket != null and (.broken.reason | test("truncated"))' "$RESP_DIR/verify.json" \
    >/dev/null || fail "an emptied bucket: $(cat "$RESP_DIR/verify.json")"
[ "$(q "SELECT ok FROM audit.external_action_buckets WHERE bucket = '$emptied'")" = f ] ||
    fail "the SQL checkpoint check does not see the emptied bucket"
verify --all
[ $? = 1 ] || fail "audit verify --all with tampered buckets: not exit 1"
# The maintenance path takes the tampered buckets out again.
$PSQL -c "BEGIN; ALTER TABLE external_actions DISABLE TRIGGER USER;
    ALTER TABLE external_action_checkpoints DISABLE TRIGGER USER;
    DELETE FROM external_actions WHERE bucket IN ('$edited', '$removed', '$emptied');
    DELETE FROM external_action_checkpoints WHERE bucket IN ('$edited', '$removed', '$emptied');
    ALTER TABLE external_actions ENABLE TRIGGER USER;
    ALTER TABLE external_action_checkpoints ENABLE TRIGGER USER; COMMIT" >/dev/null || fail "cleanup"
verify --all || fail "audit verify --all after the cleanup: $(cat "$RESP_DIR/verify.json")"

# Fail closed: with the table unwritable the call is not made, and the run
# says why.
curl -s -X POST "$MOCK_URL/_mock/reset" >/dev/null
$PSQL -c "REVOKE INSERT ON external_actions FROM kheish_app" >/dev/null
closed=$(run_one "must not reach the provider")
$PSQL -c "GRANT INSERT ON external_actions TO kheish_app" >/dev/null
jq -e '.status == "failed" and (.error | test("external-action audit could not record the provider request"))
    and (.error | test("permission denied for table external_actions$"))' \
    "$RESP_DIR/$closed.json" >/dev/null || fail "fail closed: $(cat "$RESP_DIR/$closed.json")"
[ "$(curl -s "$MOCK_URL/_mock/requests" | jq length)" = 0 ] ||
    fail "the provider was called although its request could not be recorded"
[ "$(q "SELECT count(*) FROM external_actions WHERE bucket = '$closed'")" = 0 ] ||
    fail "a record of the refused call exists"
ok=$(run_one "and again [[mock:text=back]]")
jq -e '.status == "completed"' "$RESP_DIR/$ok.json" >/dev/null || fail "after the grant: $(cat "$RESP_DIR/$ok.json")"

# No body and no key in the ledger: only digests.
$PSQL -c "COPY (SELECT * FROM external_actions) TO STDOUT" >"$RESP_DIR/ledger.txt"
grep -q -e "$PROVIDER_KEY" -e "ledger" -e "hello" "$RESP_DIR/ledger.txt" &&
    fail "a key or a body reached the ledger"

# Records but no key: the runners refuse to start, and say why.
mv "$KEY_FILE" "$RESP_DIR/kept.key"
up_stack --routes-file ''
up_stack --routes-file "$RESP_DIR/routes.toml" && fail "runners started without the ledger's key"
grep -q "external-action audit records exist but no signing key" "$STATE_ROOT"/logs/runner-1.log ||
    fail "the runner did not say why: $(tail -3 "$STATE_ROOT"/logs/runner-1.log)"
[ -e "$KEY_FILE" ] && fail "a new key was made although records exist"
mv "$RESP_DIR/kept.key" "$KEY_FILE"
up_stack --routes-file ''
# ... and with the key given in the environment (hex), they start.
KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY=$(jq -r .secret_key_hex "$KEY_FILE") \
    up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up with the key in the environment"
