# The auditor role (issue 14, point 4; docs/auditing.md). This file makes a
# known history (a slot, a route on it and two runs through the mock
# provider, the slot's leases revoked, a cancelled run, an ended session, a
# run left running with an expired lease and one queued behind it, two auth
# failures, two runtime changes), then, as kheish_auditor through `kheish
# audit psql`: every query of docs/auditing.md runs and returns what that
# history says (a documented query this file does not check fails it); and
# nothing is written: every table, view and sequence, every function (called
# with NULLs of its argument types), temporary tables, DDL, large objects and
# advisory locks are refused, also with read-only turned off. It starts
# runners and stops them, and cancels its runs at the end: later tests
# expect no runner and no run of its own.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
# aq PSQL-ARGS...: psql as the auditor, through the CLI.
aq() { "$K" audit psql --state-root "$STATE_ROOT" -- -X -q -A -t "$@"; }

# Runs earlier files left queued would run under this file's runners and
# leave leases and records in its window: cancelled first.
for r in $(q "SELECT run_id FROM runs WHERE status = 'queued'"); do
    "$K" runs cancel "$r" >/dev/null || fail "cancel the earlier run $r"
done
since=$(q "SELECT now()")
u=$(uid)
slot=aud-$u sa=$u-a sb=$u-b sc=$u-c
cleanup() {
    runners_stop
    for r in ${b2-} ${b1-}; do "$K" runs cancel "$r" >/dev/null 2>&1; done
    rm -rf "$RESP_DIR"
}
mock_provider_start
trap cleanup EXIT

# --- the history ---
cat >"$RESP_DIR/routes.toml" <<EOF
version = 1
default_route = "aud"

[routes.aud]
driver = "openai"
default_model = "gpt-audit"
auth_ref = "$slot"
base_url = "$MOCK_URL/v1"
EOF
"$K" secrets set "$slot" --provider openai --value "sk-aud-$u" >/dev/null || fail "secrets set"
up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up with runners: $(tail -5 "$RESP_DIR/up.log")"
api POST /v1/sessions "{\"session_id\":\"$sa\"}"
runs_a=()
for i in 1 2; do
    api POST "/v1/sessions/$sa/runs" "{\"content\":\"audit me $i\"}"
    runs_a+=("$(jqr .run_id)")
    "$K" --output json runs wait "${runs_a[-1]}" --timeout-ms 20000 --poll-interval-ms 100 >"$RESP_DIR/wait.json" ||
        fail "run ${runs_a[-1]} did not end: $(cat "$RESP_DIR/wait.json")"
    jq -e '.status == "completed"' "$RESP_DIR/wait.json" >/dev/null || fail "not completed: $(cat "$RESP_DIR/wait.json")"
done
"$K" runtime auth revoke-slot "$slot" >/dev/null || fail "revoke-slot"
runners_stop
"$K" sessions end "$sa" --reason audit-test >/dev/null || fail "sessions end"
api POST /v1/sessions "{\"session_id\":\"$sc\"}"
api POST "/v1/sessions/$sc/runs" '{"content":"cancel me"}'
c1=$(jqr .run_id)
"$K" runs cancel "$c1" >/dev/null || fail "runs cancel"
# A run whose runner died: running, its lease a minute past (the owner
# writes it; no runner is left to recover it), and one queued behind it.
api POST /v1/sessions "{\"session_id\":\"$sb\"}"
api POST "/v1/sessions/$sb/runs" '{"content":"stuck"}'
b1=$(jqr .run_id)
q "UPDATE runs SET status = 'running', lease_owner = 'kheish-runner@gone:1',
       lease_expires_at_ms = kheish_now_ms() - 60000 WHERE run_id = '$b1'" >/dev/null
api POST "/v1/sessions/$sb/runs" '{"content":"behind it"}'
b2=$(jqr .run_id)
TOKEN="wrong-$u" api GET "/v1/sessions/$sb"
expect_problem 401 invalid_token auth
TOKEN= api GET "/v1/sessions/$sb"
expect_problem 401 missing_token auth
cur=$(q "SELECT settings->>'debug_level' FROM runtime_revisions ORDER BY revision DESC LIMIT 1")
lvl=redacted
[ "$cur" = redacted ] && lvl=on
"$K" runtime set-debug-level "$lvl" >/dev/null || fail "set-debug-level $lvl"
"$K" runtime set-debug-level "$cur" >/dev/null || fail "set-debug-level $cur"

# --- every documented query, as the auditor ---
# Each ```sql block of docs/auditing.md that starts with `-- query: NAME`
# becomes $RESP_DIR/q/NAME.sql.
mkdir "$RESP_DIR/q"
awk -v dir="$RESP_DIR/q" '
    /^```sql$/ { inblock = 1; first = 1; name = ""; next }
    /^```$/ && inblock { inblock = 0; next }
    inblock && first { first = 0; if ($0 ~ /^-- query: /) { name = $3; print "" > (dir "/" name ".sql") } }
    inblock && name != "" { print >> (dir "/" name ".sql") }' docs/auditing.md
ran=0
# The admin token's fingerprint, as admin_actions records it and as an
# operator computes it: the first 16 hex digits of its SHA-256.
fingerprint=$(tr -d ' \t\r\n' <"$STATE_ROOT/tokens/admin-token" | sha256sum | cut -c1-16)
# lines FILE: its line count.
lines() { grep -c '' "$1"; }
for f in "$RESP_DIR"/q/*.sql; do
    name=$(basename "$f" .sql)
    out=$RESP_DIR/$name.out
    aq -v ON_ERROR_STOP=1 -v "since=$since" -v "slot=$slot" -v "run=${runs_a[0]}" \
        -v "fingerprint=$fingerprint" -f "$f" >"$out" 2>"$RESP_DIR/$name.err" ||
        { fail "query $name: $(cat "$RESP_DIR/$name.err")"; continue; }
    ran=$((ran + 1))
    # has REGEX: some line of the output matches.
    has() { grep -Eq "$1" "$out" || fail "query $name: no line matches $1 in: $(cat "$out")"; }
    count() { [ "$(lines "$out")" = "$1" ] || fail "query $name: expected $1 rows, got: $(cat "$out")"; }
    case $name in
    admin_actions_by_token)
        # this file's writes since $since: the cancel and the two runtime changes among them
        [ "$(grep -c '|runtime_change|127\.0\.0\.1|' "$out")" = 2 ] ||
            fail "query $name: not two runtime changes: $(cat "$out")"
        has "\|run_cancel\|127\.0\.0\.1\|"
        has "\|session_end\|127\.0\.0\.1\|" ;;
    run_external_actions)
        # the run's provider call: a request record, then its response, both intact
        count 2
        has "\|${runs_a[0]}\|1\|request\|provider\|provider:aud:[^|]*\|\|t\|t$"
        has "\|${runs_a[0]}\|2\|response\|provider\|provider:aud:[^|]*\|ok\|t\|t$" ;;
    runtime_changes_since)
        count 2
        has "^[0-9]+\|[^|]+\|runtime_api\|debug_level\|\{\"debug_level\": \"$lvl\"\}\|\{\"debug_level\": \"$cur\"\}$"
        has "^[0-9]+\|[^|]+\|runtime_api\|debug_level\|\{\"debug_level\": \"$cur\"\}\|\{\"debug_level\": \"$lvl\"\}$" ;;
    slot_changes_since)
        count 2
        has "\|$slot\|set\|1\|0\|kheish-fcgi@"
        has "\|$slot\|revoke_leases\|\|2\|kheish-fcgi@" ;;
    lease_revocations_since)
        count 2
        has "\|revoke_leases\|session:$sa\|aud\|$slot\|" ;;
    runs_stopped_since)
        count 1
        has "\|$c1\|$sc\|cancelled\|$" ;;
    sessions_ended_since)
        count 1
        has "\|$sa\|audit-test\|2$" ;;
    auth_failures_since)
        count 2
        has "^127\.0\.0\.1\|invalid_token\|read_only\|1\|"
        has "^127\.0\.0\.1\|missing_token\|read_only\|1\|" ;;
    slot_history)
        count 2
        has "\|set\|1\|open_ai\|0\|kheish-fcgi@"
        has "\|revoke_leases\|\|\|2\|kheish-fcgi@" ;;
    slot_leases)
        count 2
        [ "$(grep -c "|session:$sa|aud|.*|revoke_leases|revoked$" "$out")" = 2 ] ||
            fail "query $name: not two revoked leases of session:$sa: $(cat "$out")" ;;
    slot_runs)
        count 2
        has "\|${runs_a[0]}\|$sa\|completed\|aud\|"
        has "\|${runs_a[1]}\|$sa\|completed\|aud\|" ;;
    slot_active_leases) [ "$(cat "$out")" = 0 ] || fail "query $name: $(cat "$out")" ;;
    slots_to_rotate) has "^$slot\|open_ai\|api_key\|1\|[0-9a-f]{32}\|t\|" ;;
    active_leases) grep -q "|$slot|" "$out" && fail "query $name: a lease of $slot is active: $(cat "$out")" ;;
    sessions_created_since)
        count 3
        [ "$(cut -d'|' -f2 "$out" | sort | tr '\n' ' ')" = "$sa $sb $sc " ] || fail "query $name: $(cat "$out")" ;;
    rate_limited_since) count 0 ;;
    stuck_runs)
        has "^$b1\|$sb\|running\|kheish-runner@gone:1\|"
        ms=$(grep "^$b1|" "$out" | cut -d'|' -f6)
        [ "${ms:-0}" -ge 59000 ] || fail "query $name: overdue_ms of $b1 is $ms" ;;
    queue_heads) has "^$sb\|1\|$b2\|[0-9]+\|$b1\|running$" ;;
    runners) grep -q '|t|' "$out" && fail "query $name: a runner is live after they stopped: $(cat "$out")" ;;
    relays) has '\|t\|' ;;
    run_history)
        [ "$(cut -d'|' -f2 "$out" | tr '\n' ' ')" = "accepted queued started completed " ] ||
            fail "query $name: $(cat "$out")" ;;
    *) fail "docs/auditing.md has query $name, which this test does not check" ;;
    esac
done
[ "$ran" -ge 21 ] || fail "ran only $ran documented queries"
"$K" audit psql --state-root "$STATE_ROOT" -- -X -At -c 'SHOW default_transaction_read_only' >"$RESP_DIR/ro" 2>&1
[ "$(cat "$RESP_DIR/ro")" = on ] || fail "the auditor is not read-only by default: $(cat "$RESP_DIR/ro")"

# --- nothing is written ---
# Every statement below runs on its own (autocommit, no stop on error), after
# read-only was turned off: each must be refused for want of a privilege.
q "SET search_path = pg_catalog;
   SELECT format('SELECT 1 FROM %I.%I LIMIT 1;', n.nspname, c.relname) FROM pg_class c
   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p', 'm')
   UNION ALL
   SELECT s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
       LATERAL (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1) a,
       LATERAL (VALUES (format('INSERT INTO %I.%I DEFAULT VALUES;', n.nspname, c.relname)),
                       (format('UPDATE %I.%I SET %I = %I;', n.nspname, c.relname, a.attname, a.attname)),
                       (format('DELETE FROM %I.%I;', n.nspname, c.relname)),
                       (CASE WHEN c.relkind IN ('r', 'p') THEN format('TRUNCATE %I.%I;', n.nspname, c.relname) END)) v(s)
   WHERE n.nspname IN ('public', 'audit') AND c.relkind IN ('r', 'v', 'p', 'm') AND s IS NOT NULL
   UNION ALL
   SELECT format('SELECT nextval(%L); SELECT setval(%L, 1);', c.oid::regclass, c.oid::regclass)
   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
   UNION ALL
   SELECT format('SELECT %I.%I(%s);', n.nspname, p.proname,
                 (SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i)
                  FROM unnest(p.proargtypes) WITH ORDINALITY u(t, i)))
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', 'audit')" \
    >"$RESP_DIR/writes.sql"
cat >>"$RESP_DIR/writes.sql" <<'EOF'
SELECT public.kheish_flush_wal();
CREATE TEMP TABLE aud_t (a int);
CREATE TABLE public.aud_t (a int);
CREATE TABLE audit.aud_t (a int);
CREATE VIEW audit.aud_v AS SELECT 1;
CREATE FUNCTION audit.aud_f() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE SCHEMA aud_s;
SELECT lo_create(0);
SELECT pg_advisory_lock(7739075311862628354);
SELECT pg_try_advisory_lock(1);
EOF
tables=$(q "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")
functions=$(q "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
[ "$tables" -ge 20 ] && [ "$functions" -ge 40 ] || fail "only $tables tables and $functions functions?"
statements=$(grep -o ';' "$RESP_DIR/writes.sql" | wc -l)
aq -v VERBOSITY=terse -c 'SET default_transaction_read_only = off' -f "$RESP_DIR/writes.sql" \
    >"$RESP_DIR/writes.out" 2>"$RESP_DIR/writes.err"
# A view that is not updatable is refused by the rewriter before the
# privilege check (the auditor holds only SELECT on it either way).
refused=$(grep -cE '^psql:.*ERROR:  (permission denied|cannot (insert into|update|delete from) view|cannot update column .* of view)' \
    "$RESP_DIR/writes.err")
echo "  $statements writes refused to the auditor"
[ "$refused" = "$statements" ] || fail "$statements statements, $refused refused for want of a privilege;
    answered: $(head -c 600 "$RESP_DIR/writes.out")
    other errors: $(grep -vE 'permission denied|view' "$RESP_DIR/writes.err" | head -5)"
# Unqualified, the write function is not even found (the auditor's
# search_path is audit); with read-only on, DDL stops at that first.
aq -c 'SELECT kheish_flush_wal()' >/dev/null 2>&1 && fail "the auditor ran kheish_flush_wal()"
aq -c 'CREATE TEMP TABLE aud_t (a int)' 2>&1 | grep -q 'read-only transaction' ||
    fail "CREATE TEMP TABLE with read-only on was not refused as a read-only transaction"
# Nothing changed: the owner sees no object of the auditor's.
[ "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'aud\_%'")" = 0 ] || fail "the auditor created a relation"
[ "$(q "SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner = 'kheish_auditor'::regrole")" = 0 ] ||
    fail "the auditor created a large object"
