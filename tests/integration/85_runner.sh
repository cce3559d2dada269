# kheish-runner end to end (issue 5): `kheish up --routes-file` starts two
# runners; runs submitted through nginx execute against the mock provider
# (tests/mock-provider/) in each driver's wire format, stream over SSE and
# end with the provider's text in outputs. Faults: 429 then success, 500
# forever, a malformed stream, a hung provider cancelled, a runner killed
# mid-run. The runners are stopped at the end: later tests expect runs to
# stay queued.
K=$BIN_DIR/kheish
PORT=${KHEISH_DAEMON_URL##*:}
q() { $PSQL -Atc "$1"; }
mock_provider_start
trap 'runners_stop; rm -rf "$RESP_DIR"' EXIT

ANTH_KEY="sk-ant-$(uid)" OAI_KEY_VALUE="sk-oai-$(uid)"
cat >"$RESP_DIR/routes.toml" <<EOF
version = 1
default_route = "anth"

[routes.anth]
driver = "anthropic"
default_model = "claude-mock"
auth_ref = "anth-key"
base_url = "$MOCK_URL/v1"

[routes.oai]
driver = "openai"
default_model = "gpt-mock"
api_key_env = "KHEISH_TEST_OAI_KEY"
base_url = "$MOCK_URL/v1"

[routes.xai]
driver = "xai"
default_model = "grok-mock"
api_key = "xai-inline-key"
base_url = "$MOCK_URL/v1"

[routes.dead]
driver = "openrouter"
default_model = "nobody"
api_key = "k"
base_url = "http://127.0.0.1:9/v1"
EOF

# doctor routes --routes-file lints a file without a daemon.
"$K" --output json doctor routes --routes-file "$RESP_DIR/routes.toml" >"$RESP_DIR/lint.json" ||
    fail "doctor routes on a good file: exit $?"
jq -e '.ok and .route_count == 4 and .default_route == "anth" and .source != "runtime"
    and any(.routes[]; .route_id == "anth" and .auth_kind == "auth_ref")' "$RESP_DIR/lint.json" >/dev/null ||
    fail "doctor routes --routes-file: $(cat "$RESP_DIR/lint.json")"
printf 'version = 1\n[routes.a]\ndriver = "openai"\ndefault_model = "m"\ncolour = "red"\n' >"$RESP_DIR/bad.toml"
"$K" --output json doctor routes --routes-file "$RESP_DIR/bad.toml" >"$RESP_DIR/lint.json"
[ $? = 1 ] || fail "doctor routes on a bad file: not exit 1"
jq -e '.ok == false and any(.diagnostics[]; .code == "route_file_invalid" and (.message | test(":5:")))' \
    "$RESP_DIR/lint.json" >/dev/null || fail "doctor routes bad file: $(cat "$RESP_DIR/lint.json")"

# A route whose auth_ref slot is missing keeps the runners from starting.
KHEISH_TEST_OAI_KEY=$OAI_KEY_VALUE "$K" up --state-root "$STATE_ROOT" --port "$PORT" \
    --routes-file "$RESP_DIR/routes.toml" >"$RESP_DIR/up0" 2>&1 &&
    fail "up started runners although slot anth-key is missing"
grep -q "auth_ref slot is missing" "$STATE_ROOT"/logs/runner-*.log ||
    fail "the runner did not say why: $(tail -3 "$RESP_DIR/up0")"
# Readiness: kheish-fcgi (restarted for the new routes file) shows the route
# in error and refuses runs for it, persisting nothing.
api GET /v1/status
expect_json '.provider_readiness | .route_count == 4 and .error_route_count == 1 and .active_route_ready == false
    and any(.routes[]; .route_id == "anth" and .state == "error" and .code == "route_auth_ref_missing" and .active)
    and any(.routes[]; .route_id == "xai" and .state == "ok" and .code == "inline_credentials_configured")'
expect_json 'any(.health.warnings[]; .code == "provider_readiness_error" and .severity == "error")
    and .health.route_error_count == 1 and .health.ok == false'
sr=$(uid)
api POST /v1/sessions "{\"session_id\":\"$sr\"}"
runs_before=$(q "SELECT count(*) FROM runs")
api POST "/v1/sessions/$sr/runs" '{"content":"to anth"}'
expect_problem 409 route_not_ready routes
api POST "/v1/sessions/$sr/runs" '{"content":"anywhere","provider":"nope"}'
expect_problem 400 unknown_route routes
"$K" sessions submit "$sr" "through the CLI" >/dev/null 2>&1
[ $? = 6 ] || fail "the CLI's exit code for route_not_ready is not 6"
"$K" --output json doctor routes --check-auth >"$RESP_DIR/doctor.json"
[ $? = 1 ] || fail "doctor routes --check-auth with a missing slot: not exit 1"
jq -e '.ok == false and .auth_checked and any(.diagnostics[]; .code == "auth_ref_missing"
    and .route_id == "anth" and .severity == "error")' "$RESP_DIR/doctor.json" >/dev/null ||
    fail "doctor routes --check-auth: $(cat "$RESP_DIR/doctor.json")"
[ "$(q "SELECT count(*) FROM runs")" = "$runs_before" ] || fail "a refused submission persisted a run"
"$K" secrets set anth-key --provider anthropic --value "$ANTH_KEY" >/dev/null || fail "secrets set"
KHEISH_RUNNER_LEASE_MS=3000 KHEISH_RUNNER_CONCURRENCY=2 KHEISH_TEST_OAI_KEY=$OAI_KEY_VALUE "$K" up --state-root "$STATE_ROOT" \
    --port "$PORT" --routes-file "$RESP_DIR/routes.toml" >"$RESP_DIR/up" 2>&1 ||
    fail "up with a routes file: $(grep '^kheish' "$RESP_DIR/up"; tail -n 5 "$STATE_ROOT/logs/supervisor.log")"
[ "$(ls "$STATE_ROOT"/run/runner-*.pid | wc -l)" = 2 ] || fail "expected two runners"
api GET /v1/status
expect_json '.provider_readiness | .error_route_count == 0 and .active_route_ready
    and any(.routes[]; .route_id == "anth" and .state == "ok" and .code == "route_auth_ready"
            and .auth_mode == "api_key")'
expect_json 'any(.health.warnings[]; .code == "provider_inline_credentials" and .severity == "info")
    and (.runners.maintenance_lock_holder | startswith("kheish-runner@"))'
# The RuntimeSettingsView names the stack's routes (contract: scripts read
# .routes[].capabilities), in GET /v1/runtime and in the status's runtime.
expect_json '.runtime.default_route.route_id == .provider_readiness.default_route
    and (.runtime.routes | length) == 4 and .runtime.route_id == .provider_readiness.default_route
    and all(.runtime.routes[]; .capabilities.matrix_version == 2 and (.capabilities.transcription | type) == "boolean")'
api GET /v1/runtime
expect_json '(.routes | map(.route_id) | sort) == ["anth", "dead", "oai", "xai"] and .default_route.provider == .provider
    and .model == .default_route.model'
# Runner liveness (issue 13, point 4): both runners are live and listed by
# the heartbeat of their maintenance tick, one holds the maintenance lock.
two_live() { api GET /v1/status && [ "$(jqr .runners.live_count)" = 2 ]; }
wait_until 5 two_live || fail "not two live runners: $(jq -c .runners "$BODY_FILE")"
pids=$(cat "$STATE_ROOT"/run/runner-*.pid | sort -n | paste -sd,)
expect_json "([.runners.live[].pid] | sort | map(tostring) | join(\",\")) == \"$pids\""
expect_json 'all(.runners.live[]; .runner_id == "kheish-runner@\(.host):\(.pid)" and .concurrency == 2
    and .runs_held == 0 and .started_at_ms <= .last_heartbeat_at_ms and .heartbeat_age_ms < 15000)'
expect_json '.runners.maintenance_lock_holder as $h | any(.runners.live[]; .runner_id == $h)'
expect_json 'all(.health.warnings[]; .code != "no_live_runner")'

# submit SESSION CONTENT [PROVIDER]: prints the run id.
submit() {
    local body
    body=$(jq -nc --arg c "$2" --arg p "${3-}" '{content: $c} + (if $p == "" then {} else {provider: $p} end)')
    api POST "/v1/sessions/$1/runs" "$body"
    [ "$STATUS" = 202 ] || fail "submit: $STATUS $(body)"
    jqr .run_id
}
# wait_run RUN: `kheish runs wait`, its JSON into $RESP_DIR/RUN.json.
wait_run() {
    "$K" --output json runs wait "$1" --timeout-ms 20000 --poll-interval-ms 100 >"$RESP_DIR/$1.json"
}

# Canaries: a real run through the route, expecting its marker.
"$K" --output json doctor routes --check-auth --canary --route anth >"$RESP_DIR/canary.json" ||
    fail "doctor routes --canary on anth: exit $?: $(cat "$RESP_DIR/canary.json")"
jq -e '.ok and .canary_checked and (.canaries | length) == 1 and .canaries[0].status == "passed"
    and .canaries[0].route_id == "anth" and (.canaries[0].session_id | startswith("doctor-canary-"))' \
    "$RESP_DIR/canary.json" >/dev/null || fail "canary: $(cat "$RESP_DIR/canary.json")"
"$K" --output json doctor routes --canary --route dead --canary-timeout-ms 30000 >"$RESP_DIR/canary.json"
[ $? = 1 ] || fail "a canary against a dead base_url did not exit 1"
jq -e '.ok == false and .canaries[0].status == "failed" and any(.diagnostics[]; .code == "route_canary_failed")' \
    "$RESP_DIR/canary.json" >/dev/null || fail "dead canary: $(cat "$RESP_DIR/canary.json")"
# A routes file edited since the start is reported as drift.
echo "# edited" >>"$RESP_DIR/routes.toml"
"$K" --output json doctor routes >"$RESP_DIR/drift.json" || fail "doctor routes with drift: exit $?"
jq -e 'any(.diagnostics[]; .code == "route_file_drift" and .severity == "warning")' "$RESP_DIR/drift.json" >/dev/null ||
    fail "no route_file_drift: $(cat "$RESP_DIR/drift.json")"

# Each driver, end to end, with the run streamed over SSE.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
for route in anth oai xai; do
    cursor=$(q "SELECT coalesce(max(id), 0) FROM events")
    run=$(submit "$s" "say it [[mock:text=Hello from $route, in pieces.]]" "$route")
    wait_run "$run" || fail "$route: runs wait exited $?: $(cat "$RESP_DIR/$run.json")"
    jq -e --arg t "Hello from $route, in pieces." '.status == "completed" and .outputs[0].content == $t
        and .outputs[0].source_kind == "assistant_text" and .error == null' "$RESP_DIR/$run.json" >/dev/null ||
        fail "$route: $(jq -c '{status, outputs, error}' "$RESP_DIR/$run.json")"
    curl -sN --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" \
        "$KHEISH_DAEMON_URL/v1/runs/$run/stream?cursor=$cursor" >"$RESP_DIR/$run.sse"
    sed -n 's/^data: //p' "$RESP_DIR/$run.sse" | jq -s --arg t "Hello from $route, in pieces." '
        ([.[] | select(.type == "trace") | .trace.text] | join("")) == $t
        and any(.[]; .type == "output" and .output.content == $t)
        and ([.[] | select(.type == "run_updated") | .run.status] | .[-1] == "completed"
             and index("running") != null)' >/dev/null ||
        fail "$route: the stream: $(grep -c '^event:' "$RESP_DIR/$run.sse") frames: $(grep '^event:' "$RESP_DIR/$run.sse" | sort | uniq -c | tr '\n' ' ')"
done
# The credentials that reached the provider (the mock stores their SHA-256).
curl -s "$MOCK_URL/_mock/requests" >"$RESP_DIR/requests.json"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
jq -e --arg a "$(sha "$ANTH_KEY")" --arg o "Bearer $(sha "$OAI_KEY_VALUE")" --arg x "Bearer $(sha xai-inline-key)" '
    any(.[]; .path == "/v1/messages" and .headers["x-api-key"] == $a)
    and any(.[]; .path == "/v1/responses" and .headers.authorization == $o)
    and any(.[]; .path == "/v1/chat/completions" and .headers.authorization == $x)' \
    "$RESP_DIR/requests.json" >/dev/null || fail "the provider did not get the routes' credentials"
# The second turn carries the first: the conversation is the session's.
jq -e 'map(select(.path == "/v1/responses")) | .[-1].body.input | length >= 3' "$RESP_DIR/requests.json" >/dev/null ||
    fail "the session's history was not sent"
# `kheish runs wait` on a completed run: exit 0, pretty output names it.
"$K" runs wait "$run" >"$RESP_DIR/wait.txt" || fail "runs wait on a completed run"
grep -q completed "$RESP_DIR/wait.txt" || fail "runs wait: $(cat "$RESP_DIR/wait.txt")"

# POST /v1/sessions/{id}/input executes inline and answers the SessionView;
# a session with a live run is busy. `sessions input --wait` prints the
# terminal run.
si=$(uid)
api POST /v1/sessions "{\"session_id\":\"$si\"}"
api POST "/v1/sessions/$si/input" '{"content":"inline [[mock:text=done inline]]","provider":"xai"}'
expect_status 200
expect_json ".session_id == \"$si\" and .snapshot.status == \"idle\" and .outputs[-1].content == \"done inline\""
hung=$(submit "$si" "[[mock:hang]] keep busy" xai)
api POST "/v1/sessions/$si/input" '{"content":"me too"}'
expect_problem 409 session_busy sessions
"$K" runs cancel "$hung" >/dev/null
"$K" --output json sessions input "$si" "cli [[mock:text=via the CLI]]" --provider oai --model gpt-x \
    --max-output-tokens 64 --wait >"$RESP_DIR/input.json" || fail "sessions input --wait: exit $?"
jq -e '.status == "completed" and .outputs[0].content == "via the CLI" and .request.model == "gpt-x"' \
    "$RESP_DIR/input.json" >/dev/null || fail "sessions input --wait: $(cat "$RESP_DIR/input.json")"
curl -s "$MOCK_URL/_mock/requests" | jq -e 'map(select(.path == "/v1/responses")) | .[-1].body
    | .model == "gpt-x" and .max_output_tokens == 64' >/dev/null || fail "--model/--max-output-tokens did not reach the provider"

# Faults. 429 twice (Retry-After: 1), then the reply.
s2=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s2\"}"
run=$(submit "$s2" "[[mock:status=429,retry_after=1,times=2]] retry me" oai)
wait_run "$run"
jq -e '.status == "completed" and (.outputs[0].content | startswith("mock reply to:"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "429 then success: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
[ "$(jq '[.[] | select(.status == 429)] | length' <(curl -s "$MOCK_URL/_mock/requests"))" -ge 2 ] ||
    fail "the 429s were not seen"
# 500 forever: failed after the retries, with the reason.
run=$(submit "$s2" "[[mock:status=500]] fail me" xai)
wait_run "$run"
jq -e '.status == "failed" and (.error | test("HTTP 500"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "500: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
# A malformed stream fails cleanly; so does a route nobody answers.
run=$(submit "$s2" "[[mock:malformed]] garble" anth)
wait_run "$run"
jq -e '.status == "failed" and (.error | test("malformed stream"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "malformed: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
run=$(submit "$s2" "[[mock:cut]] cut me" oai)
wait_run "$run"
jq -e '.status == "failed" and (.error | test("ended before"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "cut: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
run=$(submit "$s2" "anyone?" dead)
wait_run "$run"
jq -e '.status == "failed" and (.error | test("no answer from the provider"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "a dead base_url: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"

# A hung provider: runs cancel ends it, and the runner lets go of it.
run=$(submit "$s2" "[[mock:hang]] hang" xai)
running() { [ "$(q "SELECT status FROM runs WHERE run_id = '$run'")" = running ]; }
wait_until 10 running || fail "the hung run never started"
sleep 0.5
# A NOTIFY naming it, which any role may send (the auditor's too), is not a
# cancel: the runner asks the run's row, and the run goes on.
$PSQL -c "SET ROLE kheish_auditor; NOTIFY kheish_control, '$run'" >/dev/null || fail "NOTIFY as the auditor"
sleep 0.5
running || fail "a forged NOTIFY stopped the run"
grep -q "run $run stopped" "$STATE_ROOT"/logs/runner-*.log && fail "a forged NOTIFY stopped the provider call"
"$K" runs cancel "$run" >/dev/null || fail "runs cancel"
wait_run "$run"
jq -e '.status == "cancelled"' "$RESP_DIR/$run.json" >/dev/null || fail "hung: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
released() { grep -q "run $run stopped" "$STATE_ROOT"/logs/runner-*.log; }
wait_until 3 released || fail "no runner let go of the cancelled run"
# An interrupt reaches the runner the same way.
run=$(submit "$s2" "[[mock:hang]] hang again" oai)
wait_until 10 running || fail "the second hung run never started"
"$K" sessions interrupt "$s2" >/dev/null || fail "sessions interrupt"
wait_run "$run"
jq -e '.status == "interrupted"' "$RESP_DIR/$run.json" >/dev/null || fail "interrupt: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
wait_until 3 released || fail "no runner let go of the interrupted run"
# The session goes on: its next run executes.
run=$(submit "$s2" "after the cancel [[mock:text=still here]]" oai)
wait_run "$run"
jq -e '.outputs[0].content == "still here"' "$RESP_DIR/$run.json" >/dev/null || fail "after the cancel"

# Each runner executes up to KHEISH_RUNNER_CONCURRENCY (2 here) runs at
# once: of five hung runs in five sessions, four run, two per runner, and the
# fifth waits; one cancel of each lets go of all.
hung=()
for i in 1 2 3 4 5; do
    sc=$(uid)
    api POST /v1/sessions "{\"session_id\":\"$sc\"}"
    hung+=("$(submit "$sc" "[[mock:hang]] slot $i" xai)")
done
ids="'$(IFS=,; echo "${hung[*]}" | sed "s/,/','/g")'"
four_running() { [ "$(q "SELECT count(*) FROM runs WHERE run_id IN ($ids) AND status = 'running'")" = 4 ]; }
wait_until 10 four_running || fail "not four hung runs running: $(q "SELECT string_agg(status, ',') FROM runs WHERE run_id IN ($ids)")"
sleep 0.5
[ "$(q "SELECT string_agg(n::text, ',') FROM (SELECT count(*) AS n FROM runs WHERE run_id IN ($ids)
        AND status = 'running' GROUP BY lease_owner) o")" = "2,2" ] ||
    fail "runs per runner: $(q "SELECT string_agg(lease_owner, ' ') FROM runs WHERE run_id IN ($ids)")"
[ "$(q "SELECT count(*) FROM runs WHERE run_id IN ($ids) AND status = 'queued'")" = 1 ] ||
    fail "the fifth hung run did not wait for a free slot"
# /v1/status counts the runs each runner holds; runs get names a running
# run's lease; runs wait says on stderr who runs it, and where the fifth
# stands while the runners are full.
api GET /v1/status
expect_json '([.runners.live[].runs_held] | sort) == [2, 2] and .runners.runs_held_total == 4
    and .runners.slots_total == 4'
r0=$(q "SELECT run_id FROM runs WHERE run_id IN ($ids) AND status = 'running' ORDER BY run_no LIMIT 1")
owner0=$(q "SELECT lease_owner FROM runs WHERE run_id = '$r0'")
now=$(q "SELECT kheish_now_ms()")
api GET "/v1/runs/$r0"
expect_json ".lease_owner == \"$owner0\" and (.lease_owner | startswith(\"kheish-runner@\"))
    and .lease_expires_at_ms > $now and .lease_expires_at_ms <= $now + 3000"
"$K" runs get "$r0" | grep -qxF "lease owner      $owner0" || fail "runs get: $("$K" runs get "$r0")"
"$K" runs wait "$r0" --timeout-ms 1500 --poll-interval-ms 100 >/dev/null 2>"$RESP_DIR/wait.err"
grep -qE "^kheish: run $r0 is running, claimed by $owner0, for [0-9]+ s\$" "$RESP_DIR/wait.err" &&
    [ "$(grep -c 'is running' "$RESP_DIR/wait.err")" = 1 ] || fail "runs wait of a running run: $(cat "$RESP_DIR/wait.err")"
queued5=$(q "SELECT run_id FROM runs WHERE run_id IN ($ids) AND status = 'queued'")
api GET "/v1/runs/$queued5"
expect_json '.lease_owner == null and .lease_expires_at_ms == null'
"$K" runs wait "$queued5" --timeout-ms 1500 --poll-interval-ms 100 >/dev/null 2>"$RESP_DIR/wait.err"
grep -qE "^kheish: run $queued5 is queued \(position 1 in its session, for [0-9]+ s\); 2 live runners\$" "$RESP_DIR/wait.err" ||
    fail "runs wait of a queued run: $(cat "$RESP_DIR/wait.err")"
# The waiting one first: a cancelled running one frees its slot.
for h in $(q "SELECT run_id FROM runs WHERE run_id IN ($ids) ORDER BY status = 'running', run_no"); do
    "$K" runs cancel "$h" >/dev/null || fail "runs cancel $h"
done
all_let_go() { [ "$(cat "$STATE_ROOT"/logs/runner-*.log | grep -c -E "run ($(IFS='|'; echo "${hung[*]}")) stopped")" = 4 ]; }
wait_until 3 all_let_go || fail "the runners did not let go of the four cancelled runs"
[ "$(q "SELECT count(*) FROM runs WHERE run_id IN ($ids) AND status = 'cancelled'")" = 5 ] ||
    fail "not every hung run ended cancelled"

# kill -9 of the runner executing a run: the other recovers it within the
# lease (3 s here): an input run is interrupted, with the reason.
run=$(submit "$s2" "[[mock:hang]] kill my runner" anth)
wait_until 10 running || fail "the run to kill never started"
owner=$(q "SELECT lease_owner FROM runs WHERE run_id = '$run'")
kill -9 "${owner##*:}" || fail "no runner pid in lease_owner '$owner'"
t0=$SECONDS
wait_run "$run"
jq -e '.status == "interrupted" and (.error | test("lease expired"))' "$RESP_DIR/$run.json" >/dev/null ||
    fail "kill -9: $(jq -c '{status, error}' "$RESP_DIR/$run.json")"
echo "kill -9: recovered in $((SECONDS - t0)) s"
[ "$(q "SELECT count(*) FROM runs WHERE status = 'running' AND (lease_expires_at_ms IS NULL OR
        lease_expires_at_ms < (extract(epoch FROM now()) * 1000)::bigint)")" = 0 ] ||
    fail "a run is running without a live lease"
# Daemon-owned work whose runner died is requeued, not interrupted, and then
# runs to its end.
q "INSERT INTO runs (run_id, run_no, session_id, agent_id, kind, status, submitted_at_ms, updated_at_ms,
        started_at_ms, request, payload, lease_owner, lease_expires_at_ms)
    SELECT 'run-sched-' || n, n, '$s2', 'agent', 'scheduled_input', 'running', 0, 0, 0,
        '{}', '{\"content\":\"[[mock:text=scheduled]]\",\"provider\":\"xai\"}', 'kheish-runner@gone:1', 1
    FROM (SELECT nextval('runs_run_no_seq') AS n) v" >/dev/null || fail "could not plant an orphaned run"
sched=$(q "SELECT run_id FROM runs WHERE run_id LIKE 'run-sched-%'")
wait_run "$sched"
jq -e '.status == "completed" and .outputs[0].content == "scheduled"' "$RESP_DIR/$sched.json" >/dev/null ||
    fail "orphaned daemon-owned run: $(jq -c '{status, error}' "$RESP_DIR/$sched.json")"
[ "$(q "SELECT string_agg(event->>'type', ',' ORDER BY id) FROM run_events WHERE run_id = '$sched'")" = \
    "queued,started,completed" ] || fail "requeue events: $(q "SELECT event FROM run_events WHERE run_id = '$sched'")"

# The maintenance lock has a holder, a live runner.
api GET /v1/status
holder=$(jqr .runners.maintenance_lock_holder)
case "$holder" in "kheish-runner@"*) ;; *) fail "maintenance lock holder: '$holder'" ;; esac

# The broker: the anth runs held leases on anth-key; revoke-slot ends them.
lease=$(q "SELECT lease_id FROM auth_leases WHERE slot_id = 'anth-key' AND revoked_at_ms IS NULL
           AND expires_at_ms > (extract(epoch FROM now()) * 1000)::bigint ORDER BY issued_at_ms DESC LIMIT 1")
[ -n "$lease" ] || fail "no active lease on anth-key"
api GET "/v1/runtime/auth/leases/$lease"
expect_json '.active == true and .lease.audience.type == "route" and .lease.audience.route_id == "anth"'
"$K" runtime auth lease "$lease" | jq -e '.active == true' >/dev/null || fail "runtime auth lease"
"$K" runtime auth revoke-slot anth-key >"$BODY_FILE" || fail "runtime auth revoke-slot"
expect_json '.slot_id == "anth-key" and .revoked_leases >= 1 and (keys | sort) == ["revoked_leases", "slot_id"]'
api GET "/v1/runtime/auth/leases/$lease"
expect_json '.active == false and .revoked == true'
"$K" runtime auth subject "session:$s" | jq -e '.revoked == false' >/dev/null || fail "runtime auth subject"
"$K" runtime auth revoke-subject nobody >/dev/null 2>&1
[ $? = 2 ] || fail "runtime auth revoke-subject of a bad id: not exit 2"
# `kheish up --runners N` starts or stops runners to make N, and remembers N.
nrunners() { ls "$STATE_ROOT"/run/runner-*.pid 2>/dev/null | wc -l; }
# (The routes file is given: the tests' environment has KHEISH_ROUTES_FILE='' from stack.env.)
"$K" up --state-root "$STATE_ROOT" --port "$PORT" --routes-file "$RESP_DIR/routes.toml" --runners 3 \
    >"$RESP_DIR/up3" 2>&1 ||
    fail "up --runners 3: $(tail -3 "$RESP_DIR/up3")"
[ "$(nrunners)" = 3 ] && grep -qx "KHEISH_RUNNERS=3" "$STATE_ROOT/stack.env" ||
    fail "up --runners 3: $(nrunners) runners, $(grep RUNNERS "$STATE_ROOT/stack.env")"
before=$(cat "$STATE_ROOT"/run/runner-*.pid)
"$K" up --state-root "$STATE_ROOT" --port "$PORT" --routes-file "$RESP_DIR/routes.toml" --runners 1 \
    >/dev/null 2>&1 || fail "up --runners 1"
[ "$(nrunners)" = 1 ] || fail "up --runners 1 left $(nrunners) runners"
# A runner stopped cleanly takes its row with it: it is not listed a moment longer.
for p in $before; do
    grep -qx "$p" "$STATE_ROOT"/run/runner-*.pid && continue
    [ "$(q "SELECT count(*) FROM runners WHERE pid = $p")" = 0 ] || fail "stopped runner $p left its row"
done
"$K" up --state-root "$STATE_ROOT" --port "$PORT" --runners 0 >/dev/null 2>&1
[ $? = 2 ] || fail "up --runners 0 was not refused with exit 2"

# No secret in a log, the database's tables or an answer.
grep -rl -e "$ANTH_KEY" -e "$OAI_KEY_VALUE" "$STATE_ROOT/logs" "$RESP_DIR"/*.json "$RESP_DIR"/*.sse 2>/dev/null &&
    fail "a secret was written out"
true
