# What the processes of `kheish up` leak to other local users and to each
# other (issue 11, point 9): log files are 0640 or stricter, also those an
# older stack left 0644; the variable a route's api_key_env names reaches
# the runners, and not kheish-fcgi, the relays or nginx.
trap 'up_stack --routes-file ""; rm -rf "$RESP_DIR"' EXIT
chmod 0644 "$STATE_ROOT/logs/fcgi.log" "$STATE_ROOT/nginx/logs/error.log"
key=sk-env-$(uid)
key_env_routes "$RESP_DIR/routes.toml" KHEISH_TEST_ENV_KEY
KHEISH_TEST_ENV_KEY=$key up_stack --routes-file "$RESP_DIR/routes.toml" --runners 1 ||
    fail "up with a runner: $(tail -3 "$RESP_DIR/up.log")"

for f in "$STATE_ROOT"/logs/* "$STATE_ROOT"/nginx/logs/*; do
    mode=$(stat -c %a "$f")
    [ $((0$mode & 0137)) = 0 ] || fail "$f is $mode"
done
[ -f "$STATE_ROOT/logs/runner-1.log" ] && [ -f "$STATE_ROOT/logs/supervisor.log" ] || fail "missing logs"

# has_key PID: its environment holds the route's variable.
has_key() { tr '\0' '\n' <"/proc/$1/environ" | grep -q "^KHEISH_TEST_ENV_KEY="; }
fcgi=$(cat "$STATE_ROOT/run/fcgi.pid") runner=$(cat "$STATE_ROOT/run/runner-1.pid")
has_key "$runner" || fail "the runner does not get the route's key"
for pid in "$fcgi" $(pgrep -P "$fcgi") $(cat "$STATE_ROOT"/run/relay-*.pid) \
    "$(cat "$STATE_ROOT/nginx/nginx.pid")" $(pgrep -P "$(cat "$STATE_ROOT/nginx/nginx.pid")"); do
    [ -r "/proc/$pid/environ" ] || { fail "no process $pid"; continue; }
    has_key "$pid" && fail "$(cat "/proc/$pid/comm") (pid $pid) has the route's key in its environment"
done
# Also after a restart by the supervisor.
kill -9 "$fcgi"
wait_until 3 eval '[ "$(cat "$STATE_ROOT/run/fcgi.pid")" != "$fcgi" ]' || fail "kheish-fcgi was not restarted"
has_key "$(cat "$STATE_ROOT/run/fcgi.pid")" && fail "the restarted kheish-fcgi has the route's key"
grep -rl -e "$key" "$STATE_ROOT/logs" "$STATE_ROOT/run" "$STATE_ROOT/stack.env" && fail "the key was written to disk"
true
