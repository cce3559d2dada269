# `kheish serve` (issue 13, point 3): upstream's smokes start the stack with
# exactly these flags, as root, in a state root under a `mktemp -d` (0700)
# directory, with the tokens and the master key in files outside it. The
# tokens are those files, read in place (rotation by mv); the CLI drives the
# stack; up and a second serve are refused while it runs; SIGTERM and
# `kheish down` stop everything; a daemon that cannot be kept running makes
# serve exit 1; upstream flags that mean nothing here are refused or warned
# about; no token, no key and no token file reaches the evidence directory.
T=$(mktemp -d /tmp/kheish-serve.XXXXXX)
SECRETS=$(mktemp -d /tmp/kheish-serve-secrets.XXXXXX)
STATE=$T/state
SERVE=
cleanup() {
    [ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null && wait "$SERVE"
    kheish down --state-root "$STATE" >/dev/null 2>&1
    kill "$MOCK" 2>/dev/null
    rm -rf "$T" "$SECRETS" "$RESP_DIR"
}
trap cleanup EXIT
free_port
URL=http://127.0.0.1:$PORT
ADMIN=$SECRETS/admin-token READONLY=$SECRETS/readonly-token KEY=$SECRETS/auth-store-master-key
mkdir -p "$STATE" "$T/workspace"
kheish secrets generate >"$KEY"
printf 'admin-%s\n' "$(uid)" >"$ADMIN"
printf 'readonly-%s\n' "$(uid)" >"$READONLY"
chmod 600 "$KEY" "$ADMIN" "$READONLY"
mock_provider_start
PROVIDER_KEY=sk-serve-$(uid)$(uid)
mock_routes "$T/routes.toml"
export KHEISH_AUTH_STORE_MASTER_KEY_FILE=$KEY
audit_key_write "$SECRETS/audit-signing.key" # else serve makes one beside $STATE, in $T
export KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE=$SECRETS/audit-signing.key
PROVIDER_KEY=$PROVIDER_KEY kheish --output json secrets set openai.prod --offline \
    --state-root "$STATE" --provider openai --from-env PROVIDER_KEY >"$T/secret-set.json" ||
    fail "secrets set --offline in a state root under a 0700 mktemp -d: exit $?"

# serve_start LOG [FLAGS...]: upstream's flag set, plus FLAGS; SERVE is its pid
# (the binary's: a function in the background would be a subshell).
serve_start() {
    local log=$1
    shift
    "$BIN_DIR/kheish" serve --bind "127.0.0.1:$PORT" --state-root "$STATE" --workspace-root "$T/workspace" \
        --routes-file "$T/routes.toml" --mcp-discovery disabled --http-auth-mode bearer \
        --http-admin-token-file "$ADMIN" --http-readonly-token-file "$READONLY" "$@" >"$log" 2>&1 &
    SERVE=$!
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; }
cli() { kheish --base-url "$URL" --token-file "$ADMIN" --output json "$@"; }

serve_start "$T/serve.log"
wait_until 60 ready || fail "serve did not become ready: $(tail -20 "$T/serve.log")"
cli status >"$RESP_DIR/status.json" || fail "status: exit $?"
jq -e '.health.ok == true and .control_plane.auth_enabled == true and
       .control_plane.bind_is_loopback == true and .provider_readiness.active_route_ready == true
       and .storage.ok == true' "$RESP_DIR/status.json" >/dev/null ||
    fail "status through serve: $(head -c 600 "$RESP_DIR/status.json")"
jq -e '[.storage.probes[] | select(.name == "workspace_root") | .path] == ["'"$T/workspace"'"]' \
    "$RESP_DIR/status.json" >/dev/null || fail "--workspace-root: $(jq -c .storage "$RESP_DIR/status.json")"
cli doctor >"$RESP_DIR/doctor.json" || fail "doctor through serve: exit $?: $(jq -c .errors "$RESP_DIR/doctor.json")"
cli doctor routes --check-auth >"$RESP_DIR/routes.json" || fail "doctor routes --check-auth: exit $?"
jq -e '.ok == true and .diagnostics == []' "$RESP_DIR/routes.json" >/dev/null ||
    fail "doctor routes --check-auth: $(cat "$RESP_DIR/routes.json")"

# A run against the mock provider, end to end.
cli sessions create serve-demo >/dev/null || fail "sessions create"
cli sessions input serve-demo "hello" --wait >"$RESP_DIR/input.json" || fail "input --wait: exit $?"
jq -e '.status == "completed"' "$RESP_DIR/input.json" >/dev/null || fail "run: $(cat "$RESP_DIR/input.json")"

# The tokens are the files: the read-only one reads, not writes; a token
# moved over the admin file replaces the old one from the next request.
kheish --base-url "$URL" --token-file "$READONLY" status >/dev/null || fail "read-only token: exit $?"
kheish --base-url "$URL" --token-file "$READONLY" sessions create nope >/dev/null 2>&1
[ $? = 4 ] || fail "read-only token created a session"
cp "$ADMIN" "$T/old-admin"
printf 'admin-rotated-%s\n' "$(uid)" >"$ADMIN.next"
chmod 600 "$ADMIN.next"
mv "$ADMIN.next" "$ADMIN"
cli status >/dev/null || fail "the rotated admin token was refused: exit $?"
kheish --base-url "$URL" --token-file "$T/old-admin" status >/dev/null 2>&1
[ $? = 4 ] || fail "the old admin token still works after mv"
rm "$T/old-admin"

# One stack per state root: up and a second serve are refused.
kheish up --state-root "$STATE" >"$RESP_DIR/up.out" 2>&1 && fail "up over a serve stack succeeded"
grep -q 'already locked by another kheish (pid=' "$RESP_DIR/up.out" || fail "up over serve: $(cat "$RESP_DIR/up.out")"
kheish serve --bind "127.0.0.1:$((PORT + 1))" --state-root "$STATE" >"$RESP_DIR/serve2.out" 2>&1 &&
    fail "a second serve on the same state root started"
grep -q 'already locked' "$RESP_DIR/serve2.out" || fail "second serve: $(cat "$RESP_DIR/serve2.out")"

# PostgreSQL and nginx start from a clean environment: no key, no token file.
pm=$(head -1 "$STATE/pg/data/postmaster.pid")
ng=$(cat "$STATE/nginx/nginx.pid")
for pid in "$pm" "$ng"; do
    leaked=$(tr '\0' '\n' <"/proc/$pid/environ" | grep -c '^KHEISH_')
    [ "$leaked" = 0 ] || fail "process $pid ($(cat /proc/$pid/comm)) inherited $leaked KHEISH_ variables"
done

# nginx's master killed: serve stops the workers it left on the port and
# starts nginx again.
kill -9 "$ng"
gone_and_back() { [ "$(cat "$STATE/nginx/nginx.pid" 2>/dev/null)" != "$ng" ] && ready; }
wait_until 20 gone_and_back || fail "nginx did not come back after kill -9: $(tail -5 "$T/serve.log")"
kill -0 "$SERVE" || fail "serve gave up after nginx was killed: $(tail -5 "$T/serve.log")"
cli status >/dev/null || fail "status after nginx came back: exit $?"

# SIGTERM stops everything, and serve exits 0.
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
SERVE=
[ $rc = 0 ] || fail "serve exited $rc on SIGTERM: $(tail -5 "$T/serve.log")"
left=$(pgrep -f -- "$STATE" | tr '\n' ' ')
[ -z "$left" ] || fail "processes of the state root left after SIGTERM: $(ps -o pid,args -p ${left// /,})"
ready && fail "nginx still answers after SIGTERM"

# `kheish down` stops a serve stack too (serve is its supervisor).
serve_start "$T/serve2.log"
wait_until 60 ready || fail "serve did not start again: $(tail -20 "$T/serve2.log")"
kheish down --state-root "$STATE" >/dev/null || fail "down of a serve stack: exit $?"
wait_until 30 eval '! kill -0 $SERVE 2>/dev/null' || fail "serve still runs after down"
wait "$SERVE"
SERVE=

# A daemon that cannot be kept running: the route's secret is gone, the
# runners refuse to start, serve gives up with exit 1 and stops the rest.
kheish secrets delete openai.prod --offline --state-root "$STATE" >/dev/null ||
    fail "secrets delete --offline"
serve_start "$T/serve3.log"
wait_until 60 eval '! kill -0 $SERVE 2>/dev/null' || fail "serve kept running with dying runners"
wait "$SERVE"
rc=$?
SERVE=
[ $rc = 1 ] || fail "serve exited $rc when a runner could not be kept running: $(tail -5 "$T/serve3.log")"
grep -q '"event":"gave_up"' "$T/serve3.log" || fail "no gave_up line: $(tail -5 "$T/serve3.log")"
[ -z "$(pgrep -f -- "$STATE")" ] || fail "processes left after giving up"

# Two serves at once on a fresh state root: one serves, the other is
# refused by the state root's lock before it writes anything.
for i in 1 2; do
    "$BIN_DIR/kheish" serve --bind "127.0.0.1:$((PORT + i - 1))" --state-root "$T/race" \
        --http-admin-token-file "$ADMIN" >"$T/race-$i.log" 2>&1 &
    eval "RACE$i=\$!"
done
one_left() { ! kill -0 "$RACE1" 2>/dev/null || ! kill -0 "$RACE2" 2>/dev/null; }
wait_until 30 one_left || fail "neither racing serve was refused"
if kill -0 "$RACE1" 2>/dev/null; then winner=$RACE1 loser=2 wport=$PORT; else winner=$RACE2 loser=1 wport=$((PORT + 1)); fi
wait_until 60 eval '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$wport/readyz)" = 200 ]' ||
    fail "the racing serve that won did not become ready: $(tail -5 "$T/race-$((3 - loser)).log")"
grep -q 'already locked by another kheish' "$T/race-$loser.log" || fail "the losing serve: $(cat "$T/race-$loser.log")"
kill -HUP "$winner" # a closed terminal: serve stops everything too
wait "$winner"
rc=$?
[ $rc = 0 ] || fail "serve exited $rc on SIGHUP"
[ -z "$(pgrep -f -- "$T/race")" ] || fail "processes left after SIGHUP: $(pgrep -af -- "$T/race")"

# Flags: refused with a reason, warned about, or checked before anything starts.
expect_serve_refusal() { # EXIT PATTERN FLAGS...
    local want=$1 pattern=$2
    shift 2
    kheish serve --state-root "$STATE" --bind "127.0.0.1:$PORT" "$@" >"$RESP_DIR/flag.out" 2>&1
    local got=$?
    [ $got = "$want" ] && grep -q -- "$pattern" "$RESP_DIR/flag.out" ||
        fail "serve $*: exit $got, wanted $want and /$pattern/: $(cat "$RESP_DIR/flag.out")"
}
expect_serve_refusal 2 'routes file' --provider openai
expect_serve_refusal 2 'not a flag of kheish serve' --made-up-flag 1
expect_serve_refusal 2 'auto|disabled' --mcp-discovery sometimes
expect_serve_refusal 2 'not a route of' --routes-file "$T/routes.toml" --default-route nope
# A token file that holds no token is said before anything starts.
expect_serve_refusal 2 'not a route of' --http-admin-token-file "$T/no-such-token" \
    --routes-file "$T/routes.toml" --default-route nope
grep -q "warning: --http-admin-token-file $T/no-such-token: No such file" "$RESP_DIR/flag.out" ||
    fail "no warning for a missing token file: $(cat "$RESP_DIR/flag.out")"
expect_serve_refusal 2 'not a flag of kheish serve' --model-budget-max-total-cost-usd 5
expect_serve_refusal 2 'made-up-flag is not supported' --disable-scheduler --made-up-flag 1
grep -q 'warning: --disable-scheduler has no effect' "$RESP_DIR/flag.out" || fail "--disable-scheduler: $(cat "$RESP_DIR/flag.out")"
expect_serve_refusal 2 'needs an admin token' --http-auth-mode bearer
expect_serve_refusal 2 'not loopback' --bind "0.0.0.0:$PORT"
expect_serve_refusal 2 'identical' --http-admin-token same-token --http-readonly-token same-token
# Upstream's other spellings: `start`, and a first argument that is a flag.
kheish start --help | grep -q '^usage: kheish serve' || fail "start is not serve"
kheish --made-up-flag 1 >"$RESP_DIR/flag.out" 2>&1
[ $? = 2 ] && grep -q 'not a flag of kheish serve' "$RESP_DIR/flag.out" ||
    fail "a bare flag is not serve's: $(cat "$RESP_DIR/flag.out")"
[ -z "$(pgrep -f -- "$STATE")" ] || fail "a refused serve left processes"

# No token flags on loopback: upstream's open mode, with a warning; a
# harmless flag warns.
"$BIN_DIR/kheish" serve --bind "127.0.0.1:$PORT" --state-root "$STATE" --log-level debug >"$T/open.log" 2>&1 &
SERVE=$!
wait_until 60 ready || fail "open-mode serve: $(tail -20 "$T/open.log")"
grep -q 'warning: --log-level debug has no effect' "$T/open.log" || fail "no warning for --log-level debug"
grep -q 'open to every local user' "$T/open.log" || fail "no warning for the open mode"
kheish --base-url "$URL" --output json status >"$RESP_DIR/open.json" || fail "open mode: status without a token: exit $?"
jq -e '.control_plane.auth_enabled == false' "$RESP_DIR/open.json" >/dev/null || fail "open mode: auth is on"
kill -TERM "$SERVE"
wait "$SERVE"
SERVE=

# A master key file inside the state root of a stack whose database is
# elsewhere (a database of the test cluster here): doctor fails, naming it.
$PSQL_ADMIN -c 'CREATE DATABASE kheish_serve_ext' >/dev/null || fail "create database"
cp "$KEY" "$STATE/key-inside"
KHEISH_DATABASE_URL="host=$STATE_ROOT/pg port=$KHEISH_PG_PORT dbname=kheish_serve_ext user=postgres" \
    KHEISH_AUTH_STORE_MASTER_KEY_FILE=$STATE/key-inside \
    "$BIN_DIR/kheish" serve --bind "127.0.0.1:$PORT" --state-root "$STATE" \
    --http-admin-token-file "$ADMIN" >"$T/ext.log" 2>&1 &
SERVE=$!
wait_until 60 ready || fail "serve on an external database: $(tail -20 "$T/ext.log")"
cli doctor >"$RESP_DIR/ext.json"
rc=$?
kill -TERM "$SERVE"
wait "$SERVE"
SERVE=
rm "$STATE/key-inside"
[ $rc = 1 ] && jq -e '.status.storage.database == "external" and .status.storage.master_key.inside_state_root
    and any(.checks[]; .name == "master_key_inside_state_root" and .severity == "error")' \
    "$RESP_DIR/ext.json" >/dev/null || fail "key inside, database outside: exit $rc: $(jq -c '.status.storage, .errors' "$RESP_DIR/ext.json")"
jq -e '.storage.database == "embedded" and .storage.master_key == {source: "file", path: "'"$KEY"'", inside_state_root: false}' \
    "$RESP_DIR/status.json" >/dev/null || fail "the first serve's storage block: $(jq -c .storage "$RESP_DIR/status.json")"

# The daemons logged to serve's stderr: a sanitizer report there fails too.
! grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log ||
    fail "a sanitizer report in serve's output: $(grep -h -A20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | head -40)"

# The evidence directory holds no token file, no key and no secret value.
found=$(find "$T" -type f \( -name admin-token -o -name readonly-token -o -name auth-store-master-key -o -name '*.key' \) | head -3)
[ -z "$found" ] || fail "token or key files in the evidence directory: $found"
for secret in "$PROVIDER_KEY" "$(cat "$ADMIN")" "$(cat "$READONLY")" "$(cat "$KEY")"; do
    hit=$(grep -R -l --binary-files=without-match -F -- "$secret" "$T" 2>/dev/null | head -3)
    [ -z "$hit" ] || fail "a secret value (${secret:0:6}...) is in $hit"
done
