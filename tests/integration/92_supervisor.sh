# The supervisor of `kheish up` (issue 11, point 8): kill -9 of the FastCGI
# master, of a relay and of a runner. Each is back (a new pid that answers)
# within a couple of seconds without an operator; the supervisor's log says
# how it ended, and /v1/status counts the restart.
trap 'up_stack --routes-file ""; rm -rf "$RESP_DIR"' EXIT
key_env_routes "$RESP_DIR/routes.toml" KHEISH_TEST_SUPERVISOR_KEY
KHEISH_TEST_SUPERVISOR_KEY=k-$(uid) up_stack --routes-file "$RESP_DIR/routes.toml" --runners 1 ||
    fail "up with a runner: $(tail -3 "$RESP_DIR/up.log")"

# restarts NAME: its restart_count in /v1/status (empty when not listed).
restarts() {
    api GET /v1/status
    jqr ".supervisor.daemons[] | select(.name == \"$1\") | .restart_count"
}
# back NAME OLD_PID: its pid file names another live process of its binary.
back() {
    local p
    p=$(cat "$STATE_ROOT/run/$1.pid" 2>/dev/null) && [ "$p" != "$2" ] && kill -0 "$p" 2>/dev/null
}
# answers NAME: the daemon serves again: the API through nginx, a relay on
# its socket (headers of a stream), a runner connected to the database.
answers() {
    local pid
    pid=$(cat "$STATE_ROOT/run/$1.pid")
    case $1 in
    fcgi) api GET /v1/status && [ "$STATUS" = 200 ] ;;
    relay-*) [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' --unix-socket "$STATE_ROOT/run/$1.sock" \
        -H "Authorization: Bearer $ADMIN_TOKEN" http://relay/v1/events/stream)" = 200 ] ;;
    runner-*) [ "$($PSQL -Atc "SELECT count(*) FROM pg_stat_activity
                               WHERE application_name LIKE 'kheish-runner@%:$pid'")" -ge 1 ] ;;
    esac
}

# (Counts are the stack's since its supervisor started: earlier tests kill
# daemons too.)
api GET /v1/status
total=$(jqr .supervisor.restart_count)
for name in fcgi relay-1 runner-1; do
    before=$(restarts "$name")
    [ -n "$before" ] || fail "$name is not in /v1/status .supervisor.daemons"
    old=$(cat "$STATE_ROOT/run/$name.pid")
    t0=$(date +%s%N)
    kill -9 "$old"
    wait_until 3 back "$name" "$old" || fail "$name (pid $old) was not restarted within 3 s"
    wait_until 3 answers "$name" || fail "$name does not answer after its restart"
    echo "$name: back and answering in $((($(date +%s%N) - t0) / 1000000)) ms"
    counted() { [ "$(restarts "$name")" = $((before + 1)) ]; }
    wait_until 3 counted || fail "$name: /v1/status counts $(restarts "$name") restarts, $before before"
    grep daemon_died "$STATE_ROOT/logs/supervisor.log" |
        jq -e --argjson pid "$old" 'select(.daemon_pid == $pid and .ended == "signal 9")' >/dev/null ||
        fail "$name: no daemon_died line with signal 9 for pid $old in supervisor.log"
done
api GET /v1/status
expect_json ".supervisor.restart_count == $((total + 3)) and (.supervisor.daemons | length) == 4"

# `kheish up` twice with a live supervisor starts and stops nothing. (The
# routes file is given: the tests' environment has KHEISH_ROUTES_FILE=''.)
pids() { cat "$STATE_ROOT"/run/{fcgi,relay-1,relay-2,runner-1,supervisor}.pid | tr '\n' ' '; }
was=$(pids)
up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up again: $(tail -3 "$RESP_DIR/up.log")"
[ "$(pids)" = "$was" ] || fail "up again changed pids: $was -> $(pids)"

# A crash loop backs off instead of spinning, and says so: a runner whose
# routes file vanished exits at once, again and again.
seen=$(wc -l <"$STATE_ROOT/logs/supervisor.log") # earlier tests' deaths are not counted
mv "$RESP_DIR/routes.toml" "$RESP_DIR/gone.toml"
kill -9 "$(cat "$STATE_ROOT/run/runner-1.pid")"
sleep 3
died=$(tail -n +$((seen + 1)) "$STATE_ROOT/logs/supervisor.log" |
    jq -c 'select(.event == "daemon_died" and .name == "runner-1")' | wc -l)
[ "$died" -ge 1 ] && [ "$died" -le 8 ] || fail "runner-1 died $died times in 3 s: no backoff"
grep -q '"msg":"runner-1 died [0-9]* ms after its start: crash loop, restarting in [0-9]* ms"' \
    "$STATE_ROOT/logs/supervisor.log" || fail "no crash loop line in supervisor.log"
api GET /v1/status
expect_json '[.health.warnings[] | select(.code == "daemon_restarting" and .related_id == "runner-1")] | length == 1'
mv "$RESP_DIR/gone.toml" "$RESP_DIR/routes.toml"

# A supervisor killed leaves its daemons unsupervised: status says so, and
# up starts one again, which adopts them.
kill -9 "$(cat "$STATE_ROOT/run/supervisor.pid")"
unsupervised() { api GET /v1/status && [ "$(jqr .supervisor.running)" = false ]; }
wait_until 5 unsupervised || fail "status still sees the killed supervisor: $(jq -c .supervisor "$BODY_FILE")"
expect_json 'any(.health.warnings[]; .code == "supervisor_not_running" and .severity == "error")'
KHEISH_TEST_SUPERVISOR_KEY=k-$(uid) up_stack || fail "up after the supervisor was killed: $(tail -3 "$RESP_DIR/up.log")"
api GET /v1/status
expect_json '.supervisor.running == true and all(.health.warnings[]; .code != "supervisor_not_running")'
