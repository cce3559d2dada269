# Backup, verify and restore (issue 14, part 5), on two stacks of this
# file's own (ports of their own; the shared stack is left alone):
#   A  made with an older layout (the master key in tokens/), which `up`
#      moves beside the state root; a secret slot, runs through the mock
#      provider (which accepts only that slot's value), a revoked subject;
#   B  restored from A's backup into a new state root, started with A's
#      master key: the same sessions and runs, and the slot opens (a run
#      through the mock succeeds). Without the key it opens nothing.
# Also: the backup holds no token, key or secret value; a flipped byte, a
# truncated file and a non-empty target are refused.
T=$(mktemp -d /tmp/kheish-backup.XXXXXX)
chmod 755 "$T" # postgres must reach the clusters below it
A=$T/a B=$T/b C=$T/c
unset KHEISH_ROUTES_FILE KHEISH_AUTH_STORE_MASTER_KEY KHEISH_AUTH_STORE_MASTER_KEY_FILE
cleanup() {
    kheish down --state-root "$A" >/dev/null 2>&1
    kheish down --state-root "$B" >/dev/null 2>&1
    kill "$MOCK" 2>/dev/null
    rm -rf "$T" "$RESP_DIR"
}
trap cleanup EXIT
free_port
PA=$PORT
PB=$PA
while [ "$PB" = "$PA" ]; do free_port && PB=$PORT; done
ka() { KHEISH_DAEMON_URL=http://127.0.0.1:$PA KHEISH_DAEMON_TOKEN_FILE=$A/tokens/admin-token kheish "$@"; }
kb() { KHEISH_DAEMON_URL=http://127.0.0.1:$PB KHEISH_DAEMON_TOKEN_FILE=$B/tokens/admin-token kheish "$@"; }

# 1. An older stack's key in tokens/: `up` moves it to <root>.keys/ and says
# so; status: not inside the root.
mkdir -p "$A/tokens"
(umask 077 && kheish secrets generate >"$A/tokens/auth-store-master-key")
old_key=$(cat "$A/tokens/auth-store-master-key")
kheish up --state-root "$A" --port "$PA" --routes-file '' >"$T/up-a.log" 2>&1 || fail "up A: $(tail -5 "$T/up-a.log")"
[ "$(grep -c 'moved the master key' "$T/up-a.log")" = 1 ] || fail "up did not say it moved the key"
[ ! -e "$A/tokens/auth-store-master-key" ] && [ "$(cat "$A.keys/auth-store-master.key")" = "$old_key" ] ||
    fail "the master key was not moved to $A.keys"
[ "$(stat -c %a "$A.keys")" = 700 ] && [ "$(stat -c %a "$A.keys/auth-store-master.key")" = 600 ] ||
    fail "modes of the keys: $(stat -c '%n %a' "$A.keys" "$A.keys"/*)"
grep -qx "KHEISH_STACK_MASTER_KEY_FILE='$A.keys/auth-store-master.key'" "$A/stack.env" ||
    fail "stack.env does not record the master key: $(cat "$A/stack.env")"
ka --output json status >"$T/status-a.json"
jq -e '.storage.master_key == {source: "file", path: "'"$A.keys/auth-store-master.key"'", inside_state_root: false}
    and ([.health.warnings[].code] | index("master_key_inside_state_root") == null)' "$T/status-a.json" >/dev/null ||
    fail "A's storage block: $(jq -c '.storage.master_key, [.health.warnings[].code]' "$T/status-a.json")"

# 2. A slot, runners against the mock (which takes only the slot's value),
# runs, a revoked subject, a refused token in the JSONL audit.
SLOT_VALUE=sk-backup-$(uid)-PLAINTEXT
SLOT_VALUE=$SLOT_VALUE ka secrets set openai.prod --provider openai --from-env SLOT_VALUE >/dev/null ||
    fail "secrets set on A"
mock_provider_start --api-key "$SLOT_VALUE"
mock_routes "$A/routes.toml"
kheish up --state-root "$A" --port "$PA" --routes-file "$A/routes.toml" >"$T/up-a2.log" 2>&1 ||
    fail "up A with runners: $(tail -5 "$T/up-a2.log")"
ka sessions create s-one >/dev/null && ka sessions create s-two >/dev/null || fail "sessions create"
for s in s-one s-two s-one; do
    ka --output json sessions input "$s" "hello $s" --max-output-tokens 32 --wait >"$T/run.json" || fail "run on A: exit $?"
    jq -e '.status == "completed"' "$T/run.json" >/dev/null || fail "run on A: $(head -c 300 "$T/run.json")"
done
ka runtime auth revoke-subject session:s-two >/dev/null || fail "revoke-subject"
curl -s -o /dev/null -H 'Authorization: Bearer not-a-token' "http://127.0.0.1:$PA/v1/status"
for what in "sessions list" "runs list"; do
    ka --output json $what | jq -S . >"$T/a-${what// /-}.json" || fail "$what on A"
done
# owner_q ROOT SQL: a query as the owner of that stack's embedded cluster.
owner_q() { (. "$1/stack.env" && psql -X -At -h "$1/pg" -p "$KHEISH_PG_PORT" -U postgres -d kheish -c "$2"); }
HISTORY="SELECT (SELECT count(*) FROM admin_actions) || '/' || (SELECT count(*) FROM auth_subjects
    WHERE revoked AND revoked_by IS NOT NULL) || '/' || (SELECT count(*) FROM auth_slot_audit)"
owner_q "$A" "$HISTORY" >"$T/a-history" || fail "history on A"
RUNS=$(jq -r '.[].run_id // empty, .items[]?.run_id // empty' "$T/a-runs-list.json" | sort -u)
[ "$(echo "$RUNS" | wc -w)" = 3 ] || fail "three runs on A: $RUNS"
for run in $RUNS; do
    ka --output json runs external-actions "$run" >"$T/a-ea-$run.json" || fail "external-actions on A"
done

# 3. backup: refused for a stack that is not running (3) and over an
# existing file (6); written 0600, verified.
kheish backup --state-root "$C" --out "$T/none.tar" 2>/dev/null
[ $? = 3 ] || fail "backup of no stack: not exit 3"
kheish backup --state-root "$A" --out "$T/backup.tar" >"$T/backup.out" 2>"$T/backup.err" ||
    fail "backup: exit $?: $(cat "$T/backup.err")"
grep -q 'dumping the database' "$T/backup.err" || fail "no progress line on stderr"
[ "$(stat -c %a "$T/backup.tar")" = 600 ] || fail "the backup is not 0600"
ls "$T" | grep -q '\.tmp-' && fail "a temporary file is left: $(ls "$T")"
kheish backup --state-root "$A" --out "$T/backup.tar" 2>/dev/null
[ $? = 6 ] || fail "backup over an existing file: not exit 6"
kheish backup verify "$T/backup.tar" >"$T/verify.out" || fail "verify: exit $?"
tar -tf "$T/backup.tar" >"$T/members" || fail "tar cannot list the backup"
for m in database/kheish.dump database/roles.sql state/routes.toml state/control-plane-auth/audit.jsonl manifest.json; do
    grep -qx "$m" "$T/members" || fail "member $m missing: $(cat "$T/members")"
done
grep -E '^state/(tokens|pg|logs|run|nginx)/|^keys/' "$T/members" && fail "the backup holds what it must not"
tar -xOf "$T/backup.tar" manifest.json | jq -e '.includes == {database: true, tokens: false, keys: false}
    and .schema.database_version > 0 and (.members | length) == 4' >/dev/null ||
    fail "manifest: $(tar -xOf "$T/backup.tar" manifest.json | head -c 600)"

# 4. Nothing secret in it: no token, no key, no slot value.
for secret in "$(cat "$A/tokens/admin-token")" "$(cat "$A/tokens/readonly-token")" "$SLOT_VALUE" \
    "$old_key" "$(jq -r .secret_key_hex "$A/audit-signing.key")"; do
    grep -aqF -- "$secret" "$T/backup.tar" && fail "a secret (${secret:0:6}...) is in the backup"
done
kheish backup --state-root "$A" --out "$T/with-keys.tar" --include-keys --include-tokens >/dev/null 2>"$T/keys.err" ||
    fail "backup --include-keys: exit $?"
grep -q WARNING "$T/keys.err" || fail "--include-keys without a warning"
grep -aqF -- "$old_key" "$T/with-keys.tar" || fail "--include-keys: the master key is not in it"

# 5. Damage: one flipped byte of the dump names it; a truncated file and a
# non-empty target are refused and create nothing.
cp "$T/backup.tar" "$T/flipped.tar"
at=$(grep -abo PGDMP "$T/flipped.tar" | head -1 | cut -d: -f1)
printf 'X' | dd of="$T/flipped.tar" bs=1 seek=$((at + 700)) conv=notrunc status=none
kheish backup verify "$T/flipped.tar" 2>"$T/flipped.err"
[ $? = 1 ] && grep -q 'member database/kheish.dump is damaged' "$T/flipped.err" ||
    fail "a flipped byte: $(cat "$T/flipped.err")"
head -c $(($(stat -c %s "$T/backup.tar") / 2)) "$T/backup.tar" >"$T/truncated.tar"
kheish restore "$T/truncated.tar" --state-root "$C" 2>"$T/trunc.err"
[ $? = 1 ] && grep -q truncated "$T/trunc.err" && [ ! -e "$C" ] && [ ! -e "$C.keys" ] ||
    fail "a truncated backup: $(cat "$T/trunc.err"); $(ls -d "$C"* 2>&1)"
mkdir "$C" && echo keep >"$C/file"
kheish restore "$T/backup.tar" --state-root "$C" 2>/dev/null
[ $? = 6 ] && [ "$(ls -A "$C")" = file ] && [ ! -e "$C.keys" ] || fail "restore into a non-empty directory"

# 6. Restore into B (stopped afterwards): its routes file is the restored copy.
kheish restore "$T/backup.tar" --state-root "$B" --port "$PB" --audit-key-file "$A/audit-signing.key" \
    >"$T/restore.out" 2>"$T/restore.err" ||
    fail "restore: exit $?: $(tail -5 "$T/restore.err")"
grep -q KHEISH_AUTH_STORE_MASTER_KEY_FILE "$T/restore.out" || fail "restore does not say how to give the key"
grep -qx "KHEISH_ROUTES_FILE='$B/routes.toml'" "$B/stack.env" || fail "B's routes file: $(cat "$B/stack.env")"
kheish backup --state-root "$B" --out "$T/b.tar" 2>/dev/null
[ $? = 3 ] || fail "backup of a stopped stack: not exit 3"

# 7. Without A's master key nothing opens: up makes a new key, and the
# runners refuse the slot sealed with another.
kheish up --state-root "$B" --port "$PB" >"$T/up-b0.log" 2>&1 && fail "B started without the master key"
grep -q 'sealed with a different master key' "$B"/logs/runner-*.log ||
    fail "the runners did not refuse the slot: $(tail -3 "$B"/logs/runner-1.log)"
kheish down --state-root "$B" >/dev/null
rm "$B.keys/auth-store-master.key"

# 8. With it: healthy, the same sessions and runs, and the slot opens.
KHEISH_AUTH_STORE_MASTER_KEY_FILE=$A.keys/auth-store-master.key kheish up --state-root "$B" --port "$PB" \
    >"$T/up-b.log" 2>&1 || fail "up B with A's key: $(tail -5 "$T/up-b.log")"
kb --output json status >"$T/status-b.json" || fail "status on B: exit $?"
# Who did what came across: the admin actions, the revocation, the slot's history.
[ "$(owner_q "$B" "$HISTORY")" = "$(cat "$T/a-history")" ] && grep -q '^[1-9][0-9]*/1/' "$T/a-history" ||
    fail "the history differs on B: $(owner_q "$B" "$HISTORY") vs $(cat "$T/a-history")"
jq -e '.health.ok == true and .provider_readiness.active_route_ready == true' "$T/status-b.json" >/dev/null ||
    fail "B is not healthy: $(jq -c '.health' "$T/status-b.json")"
for what in "sessions list" "runs list"; do
    kb --output json $what | jq -S . >"$T/b-${what// /-}.json" || fail "$what on B"
    cmp -s "$T/a-${what// /-}.json" "$T/b-${what// /-}.json" ||
        fail "$what differs: $(diff "$T/a-${what// /-}.json" "$T/b-${what// /-}.json" | head -10)"
done
kb --output json sessions input s-one "after the restore" --max-output-tokens 32 --wait >"$T/run-b.json" ||
    fail "run on B: exit $?"
jq -e '.status == "completed"' "$T/run-b.json" >/dev/null || fail "the slot did not open on B: $(head -c 300 "$T/run-b.json")"
# The signed ledger came across unchanged and still verifies, the new run's
# records included (signed with the same key, copied by --audit-key-file).
for run in $RUNS; do
    kb --output json runs external-actions "$run" >"$T/b-ea-$run.json" || fail "external-actions on B"
    cmp -s "$T/a-ea-$run.json" "$T/b-ea-$run.json" || fail "run $run: external-actions differ after the restore"
    jq -e 'length == 2' "$T/b-ea-$run.json" >/dev/null || fail "run $run: $(cat "$T/b-ea-$run.json")"
done
cmp -s "$A/audit-signing.key" "$B/audit-signing.key" || fail "the audit signing key was not copied"
kheish --output json audit verify --all --state-root "$B" >"$T/verify-b.json" ||
    fail "audit verify --all on B: $(cat "$T/verify-b.json")"
jq -e '.ok and .records == 8 and .buckets == 4' "$T/verify-b.json" >/dev/null ||
    fail "audit verify on B: $(cat "$T/verify-b.json")"
kheish down --state-root "$B" >/dev/null || fail "down B"
