# `kheish doctor` (issue 13, point 1): every check passes on a healthy stack
# (routes, runners holding the maintenance lock, the SSE stream's first
# frame); it fails, naming the check, with no runner while runs are queued,
# with no routes, with debug level full, with a token file others can read,
# for a CORS origin the stack does not allow, and with the stack unreachable
# (exit 3).
trap 'up_stack --routes-file ""; rm -rf "$RESP_DIR"' EXIT
# check NAME: the severity doctor's last JSON report gave check NAME.
check() { jq -r --arg n "$1" '[.checks[] | select(.name == $n) | .severity] | join(",")' "$RESP_DIR/doctor.json"; }
doctor() {
    kheish --output json doctor "$@" >"$RESP_DIR/doctor.json"
    RC=$?
}

key_env_routes "$RESP_DIR/routes.toml" KHEISH_TEST_DOCTOR_KEY
KHEISH_TEST_DOCTOR_KEY=k-$(uid) up_stack --routes-file "$RESP_DIR/routes.toml" ||
    fail "up with runners: $(tail -3 "$RESP_DIR/up.log")"
held() { api GET /v1/status && [ "$(jqr '.runners.maintenance_lock_holder // empty')" != "" ]; }
wait_until 10 held || fail "no runner took the maintenance lock"

doctor --cors-origin "$KHEISH_DAEMON_URL"
# (events_status may warn: earlier tests made lagging streams on purpose.)
[ "$(check events_status)" = info ] || [ "$(check events_status)" = warning ] ||
    fail "healthy stack: events_status is '$(check events_status)'"
for name in daemon_status readyz events_sse control_plane_auth control_plane_cors \
    routes provider_readiness storage state_root_lock debug_level token_files; do
    [ "$(check $name)" = info ] || fail "healthy stack: check $name is '$(check $name)': $(cat "$RESP_DIR/doctor.json")"
done
# Only errors fail doctor: earlier tests' runs, failed now, are a warning.
errors=$(jq '[.checks[] | select(.severity == "error")] | length' "$RESP_DIR/doctor.json")
[ "$errors" = 0 ] && [ "$RC" = 0 ] || fail "healthy stack: exit $RC, $errors errors: $(jq -c .errors "$RESP_DIR/doctor.json")"
jq -e '.ok == true and .readyz_reachable and .events_stream_reachable and (.session_count | type) == "number"
       and (.status.ready == true)' "$RESP_DIR/doctor.json" >/dev/null || fail "healthy stack: report $(head -c 400 "$RESP_DIR/doctor.json")"
kheish doctor >"$RESP_DIR/pretty.txt" || fail "pretty doctor exits $?"
grep -q '^ok    events_sse ' "$RESP_DIR/pretty.txt" || fail "pretty output: $(cat "$RESP_DIR/pretty.txt")"

# A debug level of full, a token file others can read: each fails by name.
api GET /v1/status
level=$(jqr .runtime.debug_level)
kheish runtime set-debug-level full >/dev/null || fail "set-debug-level full"
doctor
[ "$RC" = 1 ] && [ "$(check debug_level)" = error ] || fail "debug full: exit $RC, debug_level $(check debug_level)"
jq -e '.status.health.ok == false and any(.status.health.warnings[]; .code == "debug_capture_full"
    and .severity == "warning")' "$RESP_DIR/doctor.json" >/dev/null ||
    fail "debug full: no debug_capture_full warning: $(jq -c .status.health "$RESP_DIR/doctor.json")"
kheish runtime set-debug-level "$level" >/dev/null || fail "set-debug-level $level"
chmod 644 "$STATE_ROOT/tokens/readonly-token"
doctor
chmod 600 "$STATE_ROOT/tokens/readonly-token"
[ "$RC" = 1 ] && [ "$(check token_files)" = error ] || fail "token mode 644: exit $RC, token_files $(check token_files)"
# No admin token in force (its file emptied): a read-only doctor sees it.
cp "$STATE_ROOT/tokens/admin-token" "$RESP_DIR/admin-token"
: >"$STATE_ROOT/tokens/admin-token"
KHEISH_DAEMON_TOKEN_FILE=$STATE_ROOT/tokens/readonly-token doctor
cp "$RESP_DIR/admin-token" "$STATE_ROOT/tokens/admin-token"
[ "$RC" = 1 ] && [ "$(check control_plane_auth)" = error ] ||
    fail "empty admin token file: exit $RC, control_plane_auth $(check control_plane_auth)"
doctor
[ "$RC" = 0 ] || fail "after the repairs: exit $RC: $(jq -c .errors "$RESP_DIR/doctor.json")"

# A front end that buffers the event stream, then one that rewrites it:
# the event doctor makes arrives late, or malformed, and events_sse fails.
conf=$STATE_ROOT/nginx/nginx.conf
cp "$conf" "$RESP_DIR/nginx.conf"
nginx_with() { # SED-SCRIPT: edits the stream location, reloads nginx
    sed "/location ~ \^\/v1\/(events/,/}/ $1" "$RESP_DIR/nginx.conf" >"$conf"
    nginx -p "$STATE_ROOT/nginx/" -c nginx.conf -s reload 2>/dev/null || fail "nginx reload"
    sleep 1 # the old workers hand over
}
nginx_with 's/proxy_buffering off;/proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;/'
doctor
[ "$RC" = 1 ] && [ "$(check events_sse)" = error ] && jq -e 'any(.checks[]; .name == "events_sse"
    and .code == "events_sse" and (.message | contains("buffered")))' "$RESP_DIR/doctor.json" >/dev/null ||
    fail "buffered stream: exit $RC, events_sse $(jq -c '.checks[] | select(.name == "events_sse")' "$RESP_DIR/doctor.json")"
nginx_with 's/proxy_buffering off;/proxy_buffering off; sub_filter_types text\/event-stream; sub_filter_once off; sub_filter "event:" "evnt:";/'
doctor
[ "$RC" = 1 ] && [ "$(check events_sse)" = error ] && jq -e 'any(.checks[]; .name == "events_sse"
    and (.message | contains("malformed")))' "$RESP_DIR/doctor.json" >/dev/null ||
    fail "rewritten stream: exit $RC, events_sse $(jq -c '.checks[] | select(.name == "events_sse")' "$RESP_DIR/doctor.json")"
nginx_with 's/^//' # back as it was
doctor
[ "$(check events_sse)" = info ] || fail "events_sse after the repair: $(jq -c '.checks[] | select(.name == "events_sse")' "$RESP_DIR/doctor.json")"
# A read-only token makes no event: the first frame (a heartbeat) will do.
KHEISH_DAEMON_TOKEN_FILE=$STATE_ROOT/tokens/readonly-token doctor
[ "$(check events_sse)" = info ] || fail "read-only doctor: events_sse $(jq -c '.checks[] | select(.name == "events_sse")' "$RESP_DIR/doctor.json")"

# A storage write probe that fails (the workspace root is no directory).
mv "$STATE_ROOT/workspace" "$RESP_DIR/workspace"
touch "$STATE_ROOT/workspace"
doctor
rm "$STATE_ROOT/workspace"
mv "$RESP_DIR/workspace" "$STATE_ROOT/workspace"
[ "$RC" = 1 ] && [ "$(check storage)" = error ] || fail "workspace probe failing: exit $RC, storage $(check storage)"

# /readyz failing: the database is down (up starts it again).
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$STATE_ROOT/pg/data" -m fast -w stop >/dev/null ||
    fail "could not stop PostgreSQL"
doctor
KHEISH_TEST_DOCTOR_KEY=k-$(uid) up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up after stopping PostgreSQL: $(tail -3 "$RESP_DIR/up.log")"
[ "$RC" != 0 ] && [ "$(check readyz)" = error ] || fail "database down: exit $RC, readyz $(check readyz)"

# The runbook's example: a dev server on localhost passes the loopback policy.
doctor --cors-origin http://localhost:5173
[ "$(check control_plane_cors)" = info ] || fail "localhost:5173: cors $(check control_plane_cors)"
# An origin the stack does not allow: the preflight check fails, by name.
doctor --cors-origin http://evil.example
[ "$RC" = 1 ] && [ "$(check control_plane_cors)" = error ] || fail "evil origin: exit $RC, cors $(check control_plane_cors)"

# No runner, no routes, and a run queued: two checks fail.
up_stack --routes-file "" || fail "up without runners"
api POST /v1/sessions '{}'
sid=$(jqr .session_id)
api POST "/v1/sessions/$sid/runs" '{"content":"nobody runs me"}'
expect_status 202
doctor
[ "$RC" = 1 ] || fail "queued run without a runner: exit $RC"
[ "$(check state_root_lock)" = error ] || fail "no runner: state_root_lock is $(check state_root_lock)"
[ "$(check routes)" = error ] || fail "no routes: routes is $(check routes)"
api POST "/v1/runs/$(jq -r '.status.runs.oldest_queued_run_id' "$RESP_DIR/doctor.json")/cancel"

# A refused token: stdout is the report alone, which says why; an origin
# with a control character is refused before anything is sent.
KHEISH_DAEMON_TOKEN_FILE=$STATE_ROOT.keys/auth-store-master.key doctor 2>/dev/null
[ "$RC" = 4 ] && jq -se 'length == 1 and (.[0].status_error | contains("token"))' "$RESP_DIR/doctor.json" >/dev/null ||
    fail "a refused token: exit $RC, stdout $(head -c 300 "$RESP_DIR/doctor.json")"
kheish doctor --cors-origin "$(printf 'http://localhost:1\r\nX-Injected: 1')" >/dev/null 2>&1
[ $? = 2 ] || fail "a --cors-origin with CR LF was not refused"

# Nothing listening: exit 3, and the three probes say so.
KHEISH_DAEMON_URL=http://127.0.0.1:9 doctor
[ "$RC" = 3 ] || fail "unreachable: exit $RC"
for name in daemon_status readyz events_sse; do
    [ "$(check $name)" = error ] || fail "unreachable: $name is $(check $name)"
done

# doctor routes --check-auth with --routes-file (upstream's backup smoke):
# the file is linted here and its auth_refs are checked against the running
# control plane's slots.
slot=doctor-$(uid)
kheish secrets set "$slot" --provider anthropic --value "sk-doctor-$(uid)" >/dev/null || fail "secrets set"
routes_file() { # FILE AUTH_REF DRIVER
    printf 'version = 1\ndefault_route = "main"\n\n[routes.main]\ndriver = "%s"\ndefault_model = "m"\nauth_ref = "%s"\n' \
        "$3" "$2" >"$1"
}
routes_doctor() {
    kheish --output json doctor routes "$@" >"$RESP_DIR/routes.json"
    RC=$?
}
routes_file "$RESP_DIR/ok.toml" "$slot" anthropic
routes_doctor --routes-file "$RESP_DIR/ok.toml" --check-auth
[ "$RC" = 0 ] && jq -e '.ok and .auth_checked and .source != "runtime"
    and [.diagnostics[].code] == ["auth_check_uses_running_daemon"] and .errors == []' "$RESP_DIR/routes.json" >/dev/null ||
    fail "--routes-file --check-auth, slot present: exit $RC: $(cat "$RESP_DIR/routes.json")"
routes_file "$RESP_DIR/missing.toml" "no-such-$slot" anthropic
routes_doctor --routes-file "$RESP_DIR/missing.toml" --check-auth
[ "$RC" = 1 ] && jq -e 'any(.diagnostics[]; .code == "auth_ref_missing" and .route_id == "main" and .severity == "error")' \
    "$RESP_DIR/routes.json" >/dev/null || fail "--check-auth, slot missing: exit $RC: $(cat "$RESP_DIR/routes.json")"
routes_file "$RESP_DIR/mismatch.toml" "$slot" openai
routes_doctor --routes-file "$RESP_DIR/mismatch.toml" --check-auth
[ "$RC" = 1 ] && jq -e 'any(.diagnostics[]; .code == "auth_ref_provider_mismatch")' "$RESP_DIR/routes.json" >/dev/null ||
    fail "--check-auth, an anthropic slot on an openai route: exit $RC: $(cat "$RESP_DIR/routes.json")"
# What needs the running control plane's routes is refused with a file.
routes_doctor --routes-file "$RESP_DIR/ok.toml" --check-references
[ "$RC" = 1 ] && jq -e '.reference_checked and any(.diagnostics[]; .code == "route_reference_check_requires_runtime")' \
    "$RESP_DIR/routes.json" >/dev/null || fail "--routes-file --check-references: exit $RC: $(cat "$RESP_DIR/routes.json")"
routes_doctor --routes-file "$RESP_DIR/ok.toml" --canary
[ "$RC" = 1 ] && jq -e 'any(.diagnostics[]; .code == "route_canary_requires_runtime")' "$RESP_DIR/routes.json" >/dev/null ||
    fail "--routes-file --canary: exit $RC: $(cat "$RESP_DIR/routes.json")"

# --check-references: a queued run pinned to a route the control plane then
# loses. The default route's slot is missing, so no runner starts to take
# the run (up fails, kheish-fcgi serves the routes).
printf 'version = 1\ndefault_route = "main"\n\n[routes.main]\ndriver = "anthropic"\ndefault_model = "m"\nauth_ref = "no-such-%s"\n' \
    "$slot" >"$RESP_DIR/refs.toml"
cp "$RESP_DIR/refs.toml" "$RESP_DIR/refs-old.toml"
printf '\n[routes.old]\ndriver = "openai"\ndefault_model = "m"\napi_key = "sk-inline-%s"\n' "$slot" >>"$RESP_DIR/refs-old.toml"
up_stack --routes-file "$RESP_DIR/refs-old.toml"
routes_doctor --check-references
[ "$RC" = 0 ] && jq -e '.reference_checked and .ok' "$RESP_DIR/routes.json" >/dev/null ||
    fail "--check-references before: exit $RC: $(cat "$RESP_DIR/routes.json")"
api POST /v1/sessions '{}'
sid=$(jqr .session_id)
api POST "/v1/sessions/$sid/runs" '{"content":"pinned","provider":"old"}'
expect_status 202
pinned=$(jqr .run_id)
up_stack --routes-file "$RESP_DIR/refs.toml"
doctor
[ "$RC" = 1 ] && [ "$(check provider_readiness)" = error ] ||
    fail "a route whose slot is missing: exit $RC, provider_readiness $(check provider_readiness)"
routes_doctor --check-references
[ "$RC" = 1 ] && jq -e --arg run "$pinned" 'any(.diagnostics[]; .code == "stale_run_route" and .route_id == "old"
    and .severity == "error" and (.message | contains($run)))' "$RESP_DIR/routes.json" >/dev/null ||
    fail "--check-references, a queued run on a removed route: exit $RC: $(cat "$RESP_DIR/routes.json")"
routes_doctor --check-references --route main
[ "$RC" = 0 ] || fail "--check-references --route main reported route old: $(cat "$RESP_DIR/routes.json")"
api POST "/v1/runs/$pinned/cancel"
routes_doctor --check-references
[ "$RC" = 0 ] || fail "--check-references after the cancel: exit $RC: $(cat "$RESP_DIR/routes.json")"
