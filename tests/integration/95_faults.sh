# Faults under load (issue 11, acceptance): while four CLI loops submit runs
# (each with the CLI's own Idempotency-Key and its retries), kill -9 a
# FastCGI worker, the master, a relay and a runner, then restart PostgreSQL
# immediately, one after the other. Each fault is repaired without an
# operator; at the end no submission is lost or made twice, and every run
# ends (none stranded past its lease). The time each repair took goes to
# $KHEISH_FAULTS_REPORT when it is set (bench/faults/run.sh).
export KHEISH_DAEMON_URL
q() { $PSQL -Atc "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
trap 'runners_stop; rm -rf "$RESP_DIR"' EXIT
mock_provider_start
cat >"$RESP_DIR/routes.toml" <<TOML
version = 1
default_route = "mock"

[routes.mock]
driver = "anthropic"
default_model = "claude-mock"
api_key = "k"
base_url = "$MOCK_URL/v1"
TOML
KHEISH_RUNNER_LEASE_MS=3000 up_stack --routes-file "$RESP_DIR/routes.toml" --runners 2 ||
    fail "up with runners: $(tail -3 "$RESP_DIR/up.log")"

tag=$(uid)
for l in 1 2 3 4; do
    kheish sessions create "$tag-$l" >/dev/null || fail "sessions create"
done
load() { # LOOP: submits until the stop file exists; one line per submission
    local i=0 rc
    while [ ! -e "$RESP_DIR/stop" ]; do
        i=$((i + 1))
        kheish --output json sessions submit "$tag-$1" "$tag-$1-$i" >/dev/null 2>>"$RESP_DIR/load-$1.err"
        rc=$?
        echo "$tag-$1-$i $rc" >>"$RESP_DIR/load-$1"
        sleep 0.05
    done
}
loads=()
for l in 1 2 3 4; do
    load $l &
    loads+=($!)
done
sleep 2

report=""
repaired() { # NAME T0 CMD...: waits up to 20 s for CMD, and records the time
    local name=$1 t0=$2
    shift 2
    if wait_until 20 "$@"; then
        report+="$name $(($(now_ms) - t0))"$'\n'
    else
        fail "$name: not repaired within 20 s"
    fi
    sleep 2 # load between faults
}
pid_of() { cat "$STATE_ROOT/run/$1.pid" 2>/dev/null; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$KHEISH_DAEMON_URL/readyz")" = 200 ]; }
new_pid() { local p; p=$(pid_of "$1") && [ "$p" != "$2" ] && kill -0 "$p" 2>/dev/null; }

master=$(pid_of fcgi)
workers=$(pgrep -c -P "$master")
t0=$(now_ms)
kill -9 "$(pgrep -P "$master" | head -1)"
repaired worker "$t0" eval '[ "$(pgrep -c -P "$master")" = "$workers" ] && ready'

t0=$(now_ms)
kill -9 "$master"
repaired master "$t0" eval 'new_pid fcgi "$master" && ready'

relay=$(pid_of relay-1)
t0=$(now_ms)
kill -9 "$relay"
relay_answers() {
    [ "$(curl -s -m 0.3 -o /dev/null -w '%{http_code}' --unix-socket "$STATE_ROOT/run/relay-1.sock" \
        -H "Authorization: Bearer $ADMIN_TOKEN" http://relay/v1/events/stream)" = 200 ]
}
repaired relay "$t0" eval 'new_pid relay-1 "$relay" && relay_answers'

runner=$(pid_of runner-1)
t0=$(now_ms)
kill -9 "$runner"
# Back: a new runner, and the dead one's runs ended by the lease recovery.
strays() { q "SELECT count(*) FROM runs WHERE lease_owner LIKE '%:$runner' AND status = 'running'"; }
repaired runner "$t0" eval 'new_pid runner-1 "$runner" && [ "$(strays)" = 0 ]'

t0=$(now_ms)
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$STATE_ROOT/pg/data" -m immediate -w restart \
    >/dev/null || fail "could not restart PostgreSQL"
repaired postgres "$t0" ready

touch "$RESP_DIR/stop"
wait "${loads[@]}"
# Every submission answered (through its retries), each exactly once.
submitted=$(cat "$RESP_DIR"/load-[1-4] | wc -l)
refused=$(awk '$2 != 0' "$RESP_DIR"/load-[1-4] | wc -l)
[ "$refused" = 0 ] || fail "$refused of $submitted submissions failed: $(cat "$RESP_DIR"/load-*.err | sort | uniq -c | head -5)"
[ "$submitted" -ge 40 ] || fail "only $submitted submissions: the load did not run"
awk '$2 == 0 {print $1}' "$RESP_DIR"/load-[1-4] | sort >"$RESP_DIR/sent"
q "SELECT payload->>'content' FROM runs WHERE session_id LIKE '$tag-%'" | sort >"$RESP_DIR/stored"
lost=$(comm -23 "$RESP_DIR/sent" "$RESP_DIR/stored" | wc -l)
extra=$(comm -13 "$RESP_DIR/sent" "$RESP_DIR/stored" | wc -l)
dups=$(uniq -d "$RESP_DIR/stored" | wc -l)
[ "$lost$extra$dups" = 000 ] || fail "lost $lost, unexpected $extra, duplicated $dups of $submitted"
# Every run ends: none stays queued or running once the load is over.
settled() { [ "$(q "SELECT count(*) FROM runs WHERE session_id LIKE '$tag-%' AND status IN ('queued', 'running')")" = 0 ]; }
wait_until 30 settled || fail "runs left unfinished: $(q "SELECT status, count(*) FROM runs WHERE session_id LIKE '$tag-%' GROUP BY 1")"
echo "faults: $submitted submissions, $(q "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM runs WHERE session_id LIKE '$tag-%' GROUP BY 1) s")"
[ -z "${KHEISH_FAULTS_REPORT:-}" ] || printf '%s' "$report" >"$KHEISH_FAULTS_REPORT"
