#!/usr/bin/env bash
# The runner benchmark of issue 5, on one machine: a throwaway stack whose one
# route (driver xai, inline key) points at the mock provider
# (tests/mock-provider/), which replies "ok" at once in one delta.
#   (a) throughput: N runs POSTed through nginx into SESSIONS sessions (run i
#       into session i mod SESSIONS, so a run carries its session's earlier
#       turns) by curl's parallel mode (CONCURRENCY in flight), with 2 and 4
#       runners (which goes first alternates by round). runs/s = N /
#       (last finished_at_ms - first started_at_ms) over the batch; every run
#       must end completed. Also the CPU each component spent per run.
#   (a') drain: the same with the 4 runners stopped (SIGSTOP) until every run
#       is queued: the runners' rate with no submissions competing.
#   (b) queued -> running with LAT_RUNNERS (4) idle runners: LAT_RUNS runs,
#       one at a time, each to its own session, the next submitted once the
#       last has ended (checked GAP s after its submission). Latency =
#       started_at_ms - submitted_at_ms (the runs table, ms resolution); and,
#       with track_commit_timestamp, from the commit of the submit (queued
#       visible) to the commit of the claim (running visible).
#   (c) cancel -> provider call aborted, 4 runners: CANCEL_RUNS runs that hang
#       at the provider ([[mock:hang]]), each to its own session; once one is
#       running, POST /v1/runs/{id}/cancel after a random 0.2-1.2 s; latency =
#       the cancel request sent -> the runner's `run_stopped` log line, which
#       it writes right after closing the provider connection (it is free to
#       claim the next run from there).
# Each runs ROUNDS times; medians, per-round lines and the goals go to stdout
# as Markdown (paste into docs/performance.md).
#
#   bench/runner/run.sh   (env: N=3000 SESSIONS=N/4 CONCURRENCY=32 LAT_RUNS=300
#                               LAT_RUNNERS=4 CANCEL_RUNS=50 GAP=0.1 ROUNDS=3
#                               PROFILE=0 PG_SETTINGS=)
# PROFILE=1 adds `strace -c -f` of runner 1 and pg_stat_statements (loaded
# at the start) during round 1's 4-runner pass (strace slows that runner:
# take the throughput from a run without it).
# PG_SETTINGS='synchronous_commit=off ...' (experiments) applies reloadable
# server settings to the throwaway cluster with ALTER SYSTEM.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
N=${N:-3000}
SESSIONS=${SESSIONS:-$(((N + 3) / 4))} # 4 turns each: the history a run carries does not grow with N
CONCURRENCY=${CONCURRENCY:-32}
LAT_RUNS=${LAT_RUNS:-300}
CANCEL_RUNS=${CANCEL_RUNS:-50}
GAP=${GAP:-0.1}
LAT_RUNNERS=${LAT_RUNNERS:-4}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-0}
PG_SETTINGS=${PG_SETTINGS:-}
RUNNERS_MAX=4
TIMEOUT=${TIMEOUT:-600} # s a throughput batch may take to end
CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(uptime)

# shellcheck source=bench/runner/stack.sh
. bench/runner/stack.sh
# Commit timestamps (for (b): when a run became visible as queued, then as
# running) and, with PROFILE, pg_stat_statements: both need a restart.
restart=(-c "ALTER SYSTEM SET track_commit_timestamp = on")
[ "$PROFILE" = 1 ] && restart+=(-c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
psql -X -q -h "$T/state/pg" -p "$KHEISH_PG_PORT" -U postgres -d kheish "${restart[@]}"
"$BIN/kheish" down --state-root "$T/state" >/dev/null 2>&1
timeout 120 "$BIN/kheish" up --state-root "$T/state" --port "$PORT" \
    --routes-file "$T/routes.toml" >"$T/up.log" 2>&1 || { cat "$T/up.log" >&2; exit 1; }
if [ "$PROFILE" = 1 ]; then
    psql -X -q -h "$T/state/pg" -p "$KHEISH_PG_PORT" -U postgres -d kheish \
        -c "CREATE EXTENSION pg_stat_statements" \
        -c "ALTER SYSTEM SET pg_stat_statements.track = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
fi
for kv in $PG_SETTINGS; do $PSQL -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'"; done
[ -z "$PG_SETTINGS" ] || $PSQL -c "SELECT pg_reload_conf()" >/dev/null
API=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $(cat "$T/state/tokens/admin-token")"
TERMINAL="('completed', 'failed', 'interrupted', 'cancelled')"

# K runners from now on: `kheish up --runners K` starts or stops the
# difference; then wait until K are connected to the database.
runners() { # K
    "$BIN/kheish" up --state-root "$T/state" --runners "$1" >>"$T/up.log" 2>&1 ||
        { tail -5 "$T/up.log" >&2; exit 1; }
    for _ in $(seq 100); do
        [ "$(q "SELECT count(DISTINCT application_name) FROM pg_stat_activity
                WHERE application_name LIKE 'kheish-runner@%'")" = "$1" ] && return 0
        sleep 0.05
    done
    echo "run.sh: expected $1 runners connected to the database" >&2
    exit 1
}
runner_pids() {
    local f
    for f in "$T"/state/run/runner-*.pid; do [ -s "$f" ] && printf '%s ' "$(cat "$f")"; done
    return 0
}
percentiles() { # reads numbers: prints p50 p99 max
    sort -n | awk '{a[NR] = $1} END {
        i = int(NR * 0.99 + 0.999999); if (i < 1) i = 1;
        printf "%s %s %s\n", a[int((NR + 1) / 2)], a[i], a[NR] }'
}

# CPU ticks of this stack's processes by component, and of the whole
# machine (/proc/stat, busy = all but idle and iowait).
cpu_roots() {
    local pm
    pm=$(head -1 "$T/state/pg/data/postmaster.pid")
    echo "pm=$pm fcgi=$(cat "$T/state/run/fcgi.pid") ngx=$(cat "$T/state/nginx/nginx.pid")" \
        "mock=$MOCK runners='$(runner_pids)' relays='$(cat "$T"/state/run/relay-*.pid | tr '\n' ' ')'" \
        "rb='$(q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
                  WHERE application_name LIKE 'kheish-runner@%'")'" \
        "ab='$(q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
                  WHERE backend_type = 'client backend' AND application_name = ''")'"
}
cpu_snap() { # prints "component ticks" lines, "machine ticks" last
    local pm fcgi ngx mock runners relays rb ab
    eval "$(cpu_roots)"
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v fcgi="$fcgi" -v ngx="$ngx" \
        -v mock="$mock" -v runners="$runners" -v relays="$relays" -v rb="$rb" -v ab="$ab" '
        BEGIN {
            n = split(runners, a, " "); for (i = 1; i <= n; i++) role[a[i]] = "runner processes"
            n = split(relays, a, " "); for (i = 1; i <= n; i++) role[a[i]] = "sse relays"
            n = split(rb, a, " "); for (i = 1; i <= n; i++) role[a[i]] = "postgres: runner sessions"
            n = split(ab, a, " "); for (i = 1; i <= n; i++) role[a[i]] = "postgres: API and relay sessions"
            role[mock] = "mock provider"; role[fcgi] = "kheish-fcgi"; role[ngx] = "nginx"
            role[pm] = "postgres: other"
        }
        {
            pid = $1; r = $0; sub(/^.*\) /, "", r); split(r, f, " ")
            c = role[pid]
            if (c == "" && f[2] == pm) c = "postgres: other"
            if (c == "" && f[2] == fcgi) c = "kheish-fcgi"
            if (c == "" && f[2] == ngx) c = "nginx"
            if (c != "") t[c] += f[12] + f[13]
        }
        END { for (c in t) printf "%s\t%d\n", c, t[c] }'
    awk '$1 == "cpu" { printf "machine\t%d\n", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# (a) N runs through the API as fast as curl sends them, K runners. MODE
# live: the runners run meanwhile; drain: they are stopped (SIGSTOP) until
# every run is queued, so the window and the CPU figures are theirs alone.
# Prints "runs/s e2e/s submits/s completed exec_p50 exec_p99", and appends
# "K[-drain] component ms-per-run" lines to $T/cpu.
throughput() { # ROUND K MODE
    local prefix=tp-$1-$2-$3 base i t0 t1 key=$2 pids strace_pid='' done1=0
    [ "$3" = drain ] && key=$2-drain
    runners "$2"
    sessions "$prefix" "$SESSIONS" >/dev/null
    (
        umask 077
        for i in $(seq 0 $((N - 1))); do
            [ "$i" -gt 0 ] && echo next
            printf 'url = "%s/v1/sessions/%s-%d/runs"\n' "$API" "$prefix" $((i % SESSIONS + 1))
            printf '%s\n' 'data = "{\"content\":\"bench [[mock:text=ok]]\"}"' \
                'header = "Content-Type: application/json"' "header = \"$AUTH\"" \
                'output = "/dev/null"' 'write-out = "%{http_code}\n"'
        done >"$T/submit.cfg"
    )
    base=$(q "SELECT coalesce(max(run_no), 0) FROM runs")
    pids=$(runner_pids)
    if [ "$PROFILE" = 1 ] && [ "$1" = 1 ] && [ "$key" = "$RUNNERS_MAX" ]; then
        q "SELECT pg_stat_statements_reset()" >/dev/null
        done1=$(grep -c run_finished "$T/state/logs/runner-1.log" || true)
        strace -c -f -o "$T/strace.txt" -p "$(cat "$T/state/run/runner-1.pid")" &
        strace_pid=$!
        sleep 0.5
    fi
    # shellcheck disable=SC2086 # pids: a list
    [ "$3" = drain ] && kill -STOP $pids
    [ "$3" = live ] && cpu_snap >"$T/cpu.0"
    local TIMEFORMAT='%3U %3S'
    t0=$EPOCHREALTIME
    { time curl -sS -Z --parallel-max "$CONCURRENCY" --parallel-immediate -K "$T/submit.cfg" \
        >"$T/codes" 2>"$T/curl.err"; } 2>"$T/curl.time" || true
    t1=$EPOCHREALTIME
    if [ "$3" = drain ]; then
        cpu_snap >"$T/cpu.0"
        # shellcheck disable=SC2086
        kill -CONT $pids
    fi
    if [ "$(grep -c '^202$' "$T/codes")" != "$N" ]; then
        echo "run.sh: round $1, $key runners: not every submission was accepted:" \
            "$(sort "$T/codes" | uniq -c | tr '\n' ' ') $(head -3 "$T/curl.err")" >&2
        exit 1
    fi
    # Every 0.1 s (the end is the runs' finished_at_ms, not when this sees
    # it), through the small partial index of live runs.
    wait_sql "NOT EXISTS (SELECT 1 FROM runs WHERE run_no > $base AND status IN ('queued', 'running',
        'waiting_for_approval', 'waiting_for_user_question'))" "$TIMEOUT" 0.1 ||
        { echo "run.sh: round $1, $key runners: not done in $TIMEOUT s" >&2; exit 1; }
    cpu_snap >"$T/cpu.1"
    if [ -n "$strace_pid" ]; then
        kill -INT "$strace_pid"
        wait "$strace_pid" || true
        echo "$(($(grep -c run_finished "$T/state/logs/runner-1.log") - done1))" >"$T/strace.runs"
        $PSQL -F $'\t' -c "SELECT round(calls::numeric / $N, 2), round((total_exec_time / $N)::numeric, 3),
                  round(mean_exec_time::numeric, 3), toplevel,
                  replace(left(regexp_replace(query, '\s+', ' ', 'g'), 110), '|', '\|')
           FROM pg_stat_statements WHERE query NOT LIKE 'DO %' AND query NOT LIKE '%pg_sleep%'
               AND query NOT LIKE 'NOT %' ORDER BY total_exec_time DESC LIMIT 25" >"$T/statements"
    fi
    # The client's CPU counts only in the live mode (in drain, it was done before).
    [ "$3" = drain ] && echo "0 0" >"$T/curl.time"
    awk -F'\t' -v k="$key" -v n="$N" -v hz="$CLK_TCK" -v client="$(awk '{print ($1 + $2) * 1000}' \
        "$T/curl.time")" '
        NR == FNR { before[$1] = $2; next }
        { d[$1] = $2 - before[$1]; if ($1 != "machine") ours += d[$1] }
        END {
            for (c in d) if (c != "machine") printf "%s\t%s\t%.2f\n", k, c, d[c] * 1000 / hz / n
            printf "%s\tall of the stack\t%.2f\n", k, ours * 1000 / hz / n
            printf "%s\tthe runtime (the stack but the mock)\t%.2f\n", k,
                (ours - d["mock provider"]) * 1000 / hz / n
            printf "%s\tsubmitting client (curl)\t%.2f\n", k, client / n
            printf "%s\trest of the machine (harness, other work)\t%.2f\n", k,
                (d["machine"] * 1000 / hz - ours * 1000 / hz - client) / n
            printf "%s\tthe whole machine\t%.2f\n", k, d["machine"] * 1000 / hz / n
        }' "$T/cpu.0" "$T/cpu.1" >>"$T/cpu"
    q "SELECT round($N * 1000.0 / greatest(max(finished_at_ms) - min(started_at_ms), 1)),
              round($N * 1000.0 / greatest(max(finished_at_ms) - min(submitted_at_ms), 1)),
              round($N / $(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')),
              count(*) FILTER (WHERE status = 'completed'),
              percentile_disc(0.5) WITHIN GROUP (ORDER BY finished_at_ms - started_at_ms),
              percentile_disc(0.99) WITHIN GROUP (ORDER BY finished_at_ms - started_at_ms)
       FROM runs WHERE run_no > $base" | tr '|' ' '
}

# (b) One run at a time, each to its own session, LAT_RUNNERS idle runners.
# Prints "p50 p99 max completed" of started_at_ms - submitted_at_ms, then
# submit_one SESSION CONTENT: POSTs one run and prints its id.
submit_one() {
    local code
    code=$(curl -sS -o "$T/submit.json" -w '%{http_code}' -X POST -H "$AUTH" \
        -H 'Content-Type: application/json' -d "$(jq -nc --arg c "$2" '{content: $c}')" \
        "$API/v1/sessions/$1/runs")
    [ "$code" = 202 ] || { echo "run.sh: submit: $code $(cat "$T/submit.json")" >&2; exit 1; }
    jq -r .run_id "$T/submit.json"
}

# "p50 p99 max" of queued -> running by commit time, "p50 p99" of the
# submit's own stamp -> commit.
latency() { # ROUND
    local prefix=lat-$1 i run
    runners "$LAT_RUNNERS"
    sessions "$prefix" "$LAT_RUNS" >/dev/null
    for i in $(seq 1 "$LAT_RUNS"); do
        run=$(submit_one "$prefix-$i" "latency [[mock:text=ok]]")
        # Nothing of ours runs while the runners claim; after GAP the run
        # has ended (else this waits), and they are idle again.
        sleep "$GAP"
        wait_sql "(SELECT status IN $TERMINAL FROM runs WHERE run_id = '$run')" 10 ||
            { echo "run.sh: $run did not end in 10 s" >&2; exit 1; }
    done
    # The runs' own fields (ms), then from the commit timestamps: queued
    # visible (the submit's commit) -> running visible (the claim's commit),
    # and the submit's stamp -> its commit.
    q "WITH x AS (SELECT r.status, r.started_at_ms - r.submitted_at_ms AS lat,
               extract(epoch FROM pg_xact_commit_timestamp(s.xmin) - pg_xact_commit_timestamp(e.xmin))
                   * 1000 AS vis,
               extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) * 1000 - r.submitted_at_ms AS sub
           FROM runs r JOIN run_events e ON e.run_id = r.run_id AND e.event->>'type' = 'queued'
           JOIN run_events s ON s.run_id = r.run_id AND s.event->>'type' = 'started'
           WHERE r.session_id LIKE '$prefix-%')
       SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY lat),
              percentile_disc(0.99) WITHIN GROUP (ORDER BY lat), max(lat),
              count(*) FILTER (WHERE status = 'completed'),
              round(percentile_disc(0.5) WITHIN GROUP (ORDER BY vis), 1),
              round(percentile_disc(0.99) WITHIN GROUP (ORDER BY vis), 1), round(max(vis), 1),
              round(percentile_disc(0.5) WITHIN GROUP (ORDER BY sub), 1),
              round(percentile_disc(0.99) WITHIN GROUP (ORDER BY sub), 1)
       FROM x" | tr '|' ' '
}

# (c) Runs that hang at the provider, cancelled once running. Prints
# "p50 p99 max cancelled", the API's part (request -> cancelled committed)
# going to $T/cancel-api.
cancel() { # ROUND
    local prefix=can-$1 i run t0 stop line
    runners "$RUNNERS_MAX"
    sessions "$prefix" "$CANCEL_RUNS" >/dev/null
    : >"$T/cancel.ms"
    for i in $(seq 1 "$CANCEL_RUNS"); do
        run=$(submit_one "$prefix-$i" "cancel me [[mock:hang]]")
        wait_sql "(SELECT status <> 'queued' FROM runs WHERE run_id = '$run')" 10
        # A random moment of the run's wait for the provider.
        sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.3f", 0.2 + r / 32768}')"
        t0=$EPOCHREALTIME
        code=$(curl -sS -o "$T/cancel.json" -w '%{http_code}' -X POST -H "$AUTH" "$API/v1/runs/$run/cancel")
        [ "$code" = 200 ] || { echo "run.sh: cancel $run: $code $(cat "$T/cancel.json")" >&2; exit 1; }
        line=
        for _ in $(seq 500); do
            line=$(grep -h "\"run $run stopped:" "$T"/state/logs/runner-*.log || true)
            [ -n "$line" ] && break
            sleep 0.02
        done
        [ -n "$line" ] || { echo "run.sh: no runner let go of $run in 10 s" >&2; exit 1; }
        stop=$(jq -r .ts_ms <<<"$line")
        awk -v s="$stop" -v t="$t0" 'BEGIN {printf "%d\n", s - t * 1000}' >>"$T/cancel.ms"
        q "SELECT finished_at_ms FROM runs WHERE run_id = '$run'" |
            awk -v t="$t0" '{printf "%d\n", $1 - t * 1000}' >>"$T/cancel-api"
    done
    echo "$(percentiles <"$T/cancel.ms") $(q "SELECT count(*) FROM runs
        WHERE session_id LIKE '$prefix-%' AND status = 'cancelled'")"
}

declare -A R
INCOMPLETE=
check() { # KEY EXPECTED WHAT: field 4 of KEY's last line must be EXPECTED
    local got
    got=$(grep -v '^$' <<<"${R[$1]}" | tail -1 | awk '{print $4}')
    if [ "$got" != "$2" ]; then
        echo "run.sh: round $round, $1: $got of $2 runs $3" >&2
        INCOMPLETE=1
    fi
}
for round in $(seq 1 "$ROUNDS"); do
    order="2 $RUNNERS_MAX"
    [ $((round % 2)) = 0 ] && order="$RUNNERS_MAX 2"
    for k in $order; do
        R[tp$k]+="$(throughput "$round" "$k" live)"$'\n'
        echo "round $round, $k runners: $(tail -2 <<<"${R[tp$k]}") ($SECONDS s)" >&2
        check "tp$k" "$N" completed
    done
    R[drain]+="$(throughput "$round" "$RUNNERS_MAX" drain)"$'\n'
    echo "round $round, draining: $(tail -2 <<<"${R[drain]}") ($SECONDS s)" >&2
    check drain "$N" completed
    R[lat]+="$(latency "$round")"$'\n'
    echo "round $round, queued→running: $(tail -2 <<<"${R[lat]}") ($SECONDS s)" >&2
    check lat "$LAT_RUNS" completed
    R[can]+="$(cancel "$round")"$'\n'
    echo "round $round, cancel: $(tail -2 <<<"${R[can]}") ($SECONDS s)" >&2
    check can "$CANCEL_RUNS" cancelled
done
LOAD_AFTER=$(uptime)

col() { grep -v '^$' <<<"${R[$1]}" | awk -v c="$2" '{print $c}' | median; }
met() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {
    print ((op == ">=" && v >= g) || (op == "<=" && v <= g)) ? "yes" : "no" }'; }
rows() { # KEY...: the keys' per-round lines side by side
    local k files=()
    for k in "$@"; do
        grep -v '^$' <<<"${R[$k]}" >"$T/rows.$k"
        files+=("$T/rows.$k")
    done
    paste -d' ' "${files[@]}"
}
M=$RUNNERS_MAX
tp=$(col "tp$M" 1) lat99=$(col lat 2) can99=$(col can 2)
echo "| measure (median of $ROUNDS rounds) | goal | measured | met? |"
echo "|---|---|---|---|"
echo "| throughput, $M runners, runs/s | ≥ 300 | $tp | $(met "$tp" 300 '>=') |"
echo "| throughput, 2 runners, runs/s | | $(col tp2 1) | |"
echo "| $M runners draining a full queue (no submissions meanwhile), runs/s | | $(col drain 1) | |"
rt=$(awk -F'\t' -v k="$M" '$1 == k && $2 ~ /^the runtime/ {print $3}' "$T/cpu" | median)
echo "| CPU per run of the runtime (all but the mock), $M runners → ceiling on $(nproc) cores, ms → runs/s |" \
    "| $rt → $(awk -v c="$(nproc)" -v m="$rt" 'BEGIN {printf "%d", c * 1000 / m}') | |"
echo "| queued→running p99 (started_at_ms − submitted_at_ms), $LAT_RUNNERS idle runners, ms | ≤ 20 | $lat99 | $(met "$lat99" 20 '<=') |"
echo "| queued→running p50 / max, ms | | $(col lat 1) / $(col lat 3) | |"
echo "| queued→running by commit times (submit committed → claim committed), p50 / p99 / max, ms | | $(col lat 5) / $(col lat 6) / $(col lat 7) | |"
echo "| cancel→provider call aborted p99, ms | ≤ 1000 | $can99 | $(met "$can99" 1000 '<=') |"
echo "| cancel→provider call aborted p50 / max, ms | | $(col can 1) / $(col can 3) | |"
echo
echo "Throughput per round (runs/s = N / (last finished_at_ms - first started_at_ms); e2e: from"
echo "the first submitted_at_ms; submits/s: N / the client's wall time; run: started → finished):"
echo
for k in 2 "$M" "$M-drain"; do # the machine's and the runtime's CPU ms per run, by round
    R[cpu$k]=$(awk -F'\t' -v k="$k" '$1 == k && $2 == "the whole machine" {m[++i] = $3}
        $1 == k && $2 ~ /^the runtime/ {r[++j] = $3} END {for (x = 1; x <= i; x++) print m[x], r[x]}' "$T/cpu")
done
echo "| round | runs/s: 2 / $M / $M draining | e2e runs/s | submits/s | run p50 / p99 ms | completed | CPU ms per run, machine (runtime) |"
echo "|---|---|---|---|---|---|---|"
rows tp2 "tp$M" drain cpu2 "cpu$M" "cpu$M-drain" |
    awk '{printf "| %d | %s / %s / %s | %s / %s / %s | %s / %s / %s | %s / %s, %s / %s, %s / %s | %s / %s / %s | %s (%s) / %s (%s) / %s (%s) |\n",
        NR, $1, $7, $13, $2, $8, $14, $3, $9, $15, $5, $6, $11, $12, $17, $18, $4, $10, $16,
        $19, $20, $21, $22, $23, $24}'
echo
echo "| round | queued→running p50 / p99 / max ms (completed) | by commit times p50 / p99 / max | submit stamp → its commit p50 / p99 | cancel→aborted p50 / p99 / max ms (cancelled) |"
echo "|---|---|---|---|---|"
rows lat can | awk '{printf "| %d | %s / %s / %s (%s) | %s / %s / %s | %s / %s | %s / %s / %s (%s) |\n",
    NR, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13}'
echo
echo "CPU per run, ms (median of $ROUNDS rounds; $(nproc) cores give $(nproc)000 CPU ms per second, so"
echo "runs/s ≤ $(nproc)000 / the whole machine's ms per run):"
echo
echo "| component | 2 runners | $M runners | $M draining |"
echo "|---|---|---|---|"
cut -f2 "$T/cpu" | awk '!seen[$0]++' | while IFS= read -r c; do
    line="| $c |"
    for k in 2 "$M" "$M-drain"; do
        line+=" $(awk -F'\t' -v k="$k" -v c="$c" '$1 == k && $2 == c {print $3}' "$T/cpu" | median) |"
    done
    echo "$line"
done
echo
echo "The API's part of a cancel (request sent → run cancelled in the database), ms:" \
    "p50 / p99 / max $(percentiles <"$T/cancel-api" | sed 's| | / |g')"
if [ "$PROFILE" = 1 ] && [ -f "$T/strace.txt" ]; then
    echo
    echo "PROFILE, round 1's $M-runner pass: \`strace -c -f\` of runner 1 ($(cat "$T/strace.runs") runs):"
    echo
    echo '```'
    cat "$T/strace.txt"
    echo '```'
    echo
    echo "pg_stat_statements (track = all; toplevel f: inside a function), per run of the batch:"
    echo
    echo "| calls | ms | mean ms | top | statement |"
    echo "|---|---|---|---|---|"
    sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$T/statements"
fi
echo
echo "(N $N in $SESSIONS sessions, $CONCURRENCY in flight; $LAT_RUNS latency runs ($LAT_RUNNERS runners), $CANCEL_RUNS cancels;" \
    "${PG_SETTINGS:+PostgreSQL with $PG_SETTINGS; }commit $(git rev-parse --short HEAD 2>/dev/null ||
        echo '?')$(git status --porcelain -- runner store sql fcgi common 2>/dev/null | grep -q . &&
        echo ', with uncommitted changes in runner/ store/ sql/ fcgi/ common/');" \
    "$(nproc) cores, $(date -u +%F); load average before:${LOAD_BEFORE##*load average:}," \
    "after:${LOAD_AFTER##*load average:})"
if [ -n "$INCOMPLETE" ]; then
    echo "run.sh: not every run ended as it should (see above)" >&2
    exit 1
fi
