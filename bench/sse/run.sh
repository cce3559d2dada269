#!/usr/bin/env bash
# The SSE benchmark of issue 4, on one machine, through one nginx process:
#   (a) fan-out: STREAMS_LIST streams (10 and 1000) on the relays' global
#       stream vs on an Nchan channel, RATE events/s for DURATION s, the two
#       alternating ROUNDS times (which goes first alternates too). Relay
#       events commit through kheish_append_events (NOTIFY, then the relays'
#       tail read); Nchan events are POSTed to its publisher location.
#   (b) idle: IDLE_STREAMS relay streams held IDLE_SECONDS (>= 3 heartbeats):
#       the relays' RSS and CPU, the heartbeats each stream got.
# The load client is bin/bench-sse-load, the publisher bin/bench-sse-publish;
# each event carries its publish time, so latency is publish call -> frame
# parsed by the client. Medians, per-round ratios and the goals go to stdout
# as Markdown (paste into docs/performance.md).
#
#   bench/sse/run.sh   (env: DURATION=15 ROUNDS=3 RATE=100 STREAMS_LIST="10 1000"
#                            IDLE_STREAMS=10000 IDLE_SECONDS=35 PERF=0)
# PERF=1 adds perf profiles of round 1's largest relay and Nchan runs (perf
# perturbs those runs: take the numbers from a run without it).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN_DIR:-$PWD/bin}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-100}
STREAMS_LIST=${STREAMS_LIST:-10 1000}
IDLE_STREAMS=${IDLE_STREAMS:-10000}
IDLE_SECONDS=${IDLE_SECONDS:-35}
PERF=${PERF:-0} # 1: perf profiles of relay 1 and the nginx workers in round 1's largest runs
GRACE=10          # seconds a run may take past DURATION for its last frames
READY_TIMEOUT=120 # seconds to open every stream
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
[ "$DURATION" -ge 3 ] || { echo "run.sh: DURATION must be at least 3 (s)" >&2; exit 2; }

if [ ! -f "$NCHAN_SO" ]; then
    apt-get install -y -q libnginx-mod-nchan >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q libnginx-mod-nchan >/dev/null; }
fi
# Descriptors: the load client holds every stream, nginx two per stream
# (client and upstream, over two workers), each relay half of them. The
# relays raise their soft limit to this hard limit themselves.
# shellcheck source=bench/sse/nofile.sh
. bench/sse/nofile.sh
raise_nofile $((IDLE_STREAMS + 1000)) run.sh
[ "$NOFILE" -ge 65536 ] ||
    echo "run.sh: the hard descriptor limit is $NOFILE, not 65536, and cannot be raised here" >&2

T=$(mktemp -d /tmp/kheish-bench-sse.XXXXXX)
chmod 755 "$T"
# nginx +1 (relays) and +2 (Nchan); PostgreSQL +1000 (a unix socket); the
# relays listen on unix sockets. All below the ephemeral range (32768-): the
# 10k streams leave thousands of ports there in use or in TIME_WAIT.
PORT=$((30000 + RANDOM % 700))
RPORT=$((PORT + 1)) NPORT=$((PORT + 2))
STARTED=() # background processes of this script
alive() { # PID...: 0 when one of them still runs
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}
# Sends SIG to the pids named by the first line of each existing FILE and
# waits up to 10 s for them to go.
stop_pid_files() { # SIG FILE...
    local sig=$1 f pids=()
    shift
    for f in "$@"; do [ -f "$f" ] && pids+=("$(head -n 1 "$f")"); done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
        alive "${pids[@]}" || return 0
        sleep 0.1
    done
}
# Everything this script started goes, even when `kheish down` cannot do
# its part (a binary rebuilt mid-run): then the stack's pid files are used,
# PostgreSQL last.
cleanup() {
    for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_pid_files TERM "$T/ngx/nginx.pid"
    if ! "$BIN/kheish" down --state-root "$T/state" >/dev/null 2>&1; then
        stop_pid_files TERM "$T"/state/run/*.pid "$T/state/nginx/nginx.pid"
        stop_pid_files INT "$T/state/pg/data/postmaster.pid"
    fi
    wait
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

timeout 120 "$BIN/kheish" up --state-root "$T/state" --port "$PORT" >/dev/null
. "$T/state/stack.env"
TOKEN_FILE=$T/state/tokens/admin-token
CLK_TCK=$(getconf CLK_TCK)

# The relays: run/relay-N.pid listens on run/relay-N.sock.
RELAY_PIDS=() UPSTREAM=
for f in "$T"/state/run/relay-*.pid; do
    [ -f "$f" ] || continue
    RELAY_PIDS+=("$(cat "$f")")
    UPSTREAM+="server unix:${f%.pid}.sock; "
done
[ ${#RELAY_PIDS[@]} -gt 0 ] || { echo "run.sh: no relay pid file in $T/state/run" >&2; exit 1; }

# The bench nginx: the relays' stream location copied from the embedded
# template, and Nchan; one channel per run, so no run sees another's
# messages. reuseport spreads the streams evenly over the two workers,
# which keeps each below the descriptor limit.
STREAM_LOCATION=$(sed -n '/location ~ \^\/v1\/(events/,/^        }/p' nginx/embedded.conf.in)
[ -n "$STREAM_LOCATION" ] || { echo "run.sh: no stream location in nginx/embedded.conf.in" >&2; exit 1; }
mkdir -p "$T/ngx/logs" "$T/ngx/tmp"
cat >"$T/ngx/nginx.conf" <<CONF
load_module $NCHAN_SO;
user nobody nogroup;
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections $((NOFILE - 64)); }
http {
    access_log off;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    nchan_max_reserved_memory 128M;
    upstream kheish_sse { $UPSTREAM}
    server {
        listen 127.0.0.1:$RPORT reuseport;
$STREAM_LOCATION
    }
    server {
        listen 127.0.0.1:$NPORT reuseport;
        # The publisher pipelines every event of a run on one connection.
        keepalive_requests 1000000;
        location = /pub {
            nchan_publisher;
            nchan_channel_id \$arg_ch;
            nchan_message_buffer_length $((RATE * DURATION + 100));
            nchan_message_timeout 10m;
        }
        location = /sub {
            nchan_subscriber;
            nchan_channel_id \$arg_ch;
            nchan_subscriber_first_message newest;
            nchan_eventsource_ping_interval 10;
            nchan_eventsource_ping_event heartbeat;
            nchan_eventsource_ping_data '{"type":"heartbeat"}';
        }
    }
}
CONF
nginx -p "$T/ngx" -c nginx.conf
sleep 0.5
NGINX_WORKERS=$(pgrep -d ' ' -P "$(cat "$T/ngx/nginx.pid")")
POSTMASTER=$(head -n 1 "$T/state/pg/data/postmaster.pid")

# CPU ticks (utime + stime) of the processes given, summed.
ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
# PostgreSQL's: the postmaster, its live children, and those it reaped (the
# publisher's backend may end between two samples).
pg_ticks() {
    echo $(($(ticks "$POSTMASTER" $(pgrep -P "$POSTMASTER")) +
        $(sed 's/.*) //' "/proc/$POSTMASTER/stat" | awk '{print $14 + $15}')))
}
# % of one core from tick counts taken ms milliseconds apart.
cpu_pct() { awk -v a="$1" -v b="$2" -v ms="$3" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / hz * 100000 / ms }'; }
now_ms() { date +%s%3N; }

# Starts a load client in the background; waits until its streams are open.
# Sets LOAD_PID and LOAD_OUT.
start_load() { # NAME URL ARGS...
    local name=$1 url=$2
    shift 2
    LOAD_OUT=$T/$name.json
    rm -f "$T/$name.ready"
    "$BIN/bench-sse-load" --ready-file "$T/$name.ready" "$@" "$url" >"$LOAD_OUT" 2>>"$T/load.log" &
    LOAD_PID=$!
    STARTED+=("$LOAD_PID")
    for _ in $(seq $((READY_TIMEOUT * 20))); do
        [ -s "$T/$name.ready" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "run.sh: $name: the streams did not open (see $T/load.log)" >&2
    cat "$T/load.log" >&2
    exit 1
}

# Machine-wide busy and total ticks (all cores), from /proc/stat.
machine_ticks() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat; }
# % of the machine (100 = every core) busy between two machine_ticks.
busy_pct() { awk -v m0="$1" -v m1="$2" 'BEGIN {split(m0, a, " "); split(m1, b, " ");
    printf "%.1f", (b[1] - a[1]) * 100 / (b[2] - a[2])}'; }
# The machine's load from others (other test suites share it): busy % over
# the second before a run, with nothing of this script running.
background() {
    local m0
    m0=$(machine_ticks)
    sleep 1
    busy_pct "$m0" "$(machine_ticks)"
}

# One fan-out run: KIND (relay|nchan) with S streams; appends a line of
# $FIELDS to $T/results. Latencies in ms; "undelivered" counts frames that
# had not arrived when the run ended (GRACE s after the publisher), "gaps"
# frames missing before a later one arrived; CPU in % of one core over the
# publish (the load client's over its whole run), "busy" the whole machine's
# (100 = every core) and "bg" its load from others in the second before.
FIELDS="streams server round dps delivered undelivered gaps p50 p99 max call_p50 call_p99 late per_read load_cpu relays_cpu nginx_cpu pg_cpu busy bg"
fanout() { # KIND S ROUND
    local kind=$1 s=$2 round=$3
    local args=(--streams "$s" --expect $((RATE * DURATION)) --hold $((DURATION + GRACE))
        --measure $((DURATION - 2))) bg
    bg=$(background)
    if [ "$kind" = relay ]; then
        start_load "$kind-$s-$round" "http://127.0.0.1:$RPORT/v1/events/stream" "${args[@]}" \
            --token-file "$TOKEN_FILE"
        local pub=(pg "$KHEISH_DATABASE_URL")
    else
        start_load "$kind-$s-$round" "http://127.0.0.1:$NPORT/sub?ch=r$round-s$s" "${args[@]}"
        local pub=(nchan "http://127.0.0.1:$NPORT/pub?ch=r$round-s$s")
    fi
    local t0 c0 c1 m0 m1 cpu="" i prof=
    if [ "$PERF" = 1 ] && [ "$round" = 1 ] && [ "$s" = "$BIG" ]; then
        profile "$kind" &
        prof=$!
        STARTED+=("$prof")
    fi
    t0=$(now_ms)
    c0="$(ticks "${RELAY_PIDS[@]}") $(ticks $NGINX_WORKERS) $(pg_ticks)" m0=$(machine_ticks)
    # In the background: a signal to this script is handled at once, not
    # when the publisher is done.
    "$BIN/bench-sse-publish" "${pub[@]}" "$RATE" "$DURATION" >"$T/pub.json" &
    STARTED+=($!)
    wait $!
    c1="$(ticks "${RELAY_PIDS[@]}") $(ticks $NGINX_WORKERS) $(pg_ticks)" m1=$(machine_ticks)
    local ms=$(($(now_ms) - t0))
    read -ra a <<<"$c0"
    read -ra b <<<"$c1"
    for i in 0 1 2; do cpu+=" $(cpu_pct "${a[$i]}" "${b[$i]}" "$ms")"; done
    cpu+=" $(busy_pct "$m0" "$m1") $bg"
    wait "$LOAD_PID" || true
    [ -z "$prof" ] || wait "$prof" || true
    echo "$(jq -r --argjson s "$s" --arg kind "$kind" --argjson round "$round" \
        --slurpfile pub "$T/pub.json" '$pub[0] as $p | [$s, $kind, $round, (.deliveries_per_s // 0),
          (.deliveries / ($s * $p.published)), (.lost + .failed * $p.published), .gaps,
          ((.latency_p50_us // 0) / 1000), ((.latency_p99_us // 0) / 1000),
          ((.latency_max_us // 0) / 1000), ($p.call_p50_us / 1000), ($p.call_p99_us / 1000), $p.late,
          (.deliveries / ([.reads, 1] | max) | . * 10 | round / 10),
          ((.cpu_user_s + .cpu_sys_s) * 100 / ([.held_s, 0.001] | max) | . * 10 | round / 10)]
         | @tsv' "$LOAD_OUT")$cpu" >>"$T/results"
    if [ "$(jq '.failed + .closed + .gaps + .repeats + .lost + $p[0].failed' --slurpfile p "$T/pub.json" \
        "$LOAD_OUT")" != 0 ]; then
        echo "run.sh: $kind $s round $round: $(cat "$LOAD_OUT") $(cat "$T/pub.json")" >&2
    fi
}

# perf samples of relay 1 (in a relay run) and the nginx workers, for 5 s
# from 2 s into the publish; a summary per program goes to $T/profile-KIND,
# in % of that program's samples.
profile() { # KIND
    local pids=$NGINX_WORKERS comms=nginx comm
    [ "$1" = relay ] && pids="${RELAY_PIDS[0]} $pids" comms="kheish-sse-rela nginx"
    sleep 2
    perf record -q -e cpu-clock -F 499 -g -p "${pids// /,}" -o "$T/perf-$1.data" -- sleep 5 \
        >/dev/null 2>&1 || return 0
    for comm in $comms; do
        echo "$comm: self (top 12), then inclusive of callees (top 20), % of its samples:"
        echo
        for mode in --no-children --children; do
            perf report -i "$T/perf-$1.data" --comms "$comm" --percentage relative $mode \
                --sort sym --stdio -g none 2>/dev/null | grep '%' |
                head -n "$([ $mode = --children ] && echo 20 || echo 12)" | sed 's/^/    /' || true
            echo
        done
    done >"$T/profile-$1"
}

BIG=$(echo "$STREAMS_LIST" | tr ' ' '\n' | sort -n | tail -n 1)
echo "$FIELDS" >"$T/results"
for round in $(seq "$ROUNDS"); do
    for s in $STREAMS_LIST; do
        if [ $((round % 2)) = 1 ]; then order="relay nchan"; else order="nchan relay"; fi
        for kind in $order; do fanout "$kind" "$s" "$round"; done
    done
done

# (b) idle streams: CPU over the idle window, RSS before and at its end.
IDLE_BG=$(background)
RSS0=()
for p in "${RELAY_PIDS[@]}"; do RSS0+=("$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")"); done
start_load idle "http://127.0.0.1:$RPORT/v1/events/stream" --streams "$IDLE_STREAMS" \
    --token-file "$TOKEN_FILE" --hold $((IDLE_SECONDS + 5))
c0=() c1=()
for p in "${RELAY_PIDS[@]}"; do c0+=("$(ticks "$p")"); done
t0=$(now_ms)
sleep "$IDLE_SECONDS" &
wait $!
for p in "${RELAY_PIDS[@]}"; do c1+=("$(ticks "$p")"); done
ms=$(($(now_ms) - t0))
RSS=() HWM=()
for p in "${RELAY_PIDS[@]}"; do
    RSS+=("$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")")
    HWM+=("$(awk '/^VmHWM/ {print $2}' "/proc/$p/status")")
done
NGINX_RSS=$(for p in $NGINX_WORKERS; do awk '/^VmRSS/ {print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s}')
wait "$LOAD_PID" || true

# ---- the report -----------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# The values of field NAME over the rounds of S streams on KIND.
values() { # S KIND NAME
    awk -v s="$1" -v k="$2" -v f="$3" 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; next}
        $1 == s && $2 == k {print $c[f]}' "$T/results"
}
col() { values "$@" | median; }
colmax() { values "$@" | sort -g | tail -n 1; }
colmin() { values "$@" | sort -g | head -n 1; }
colsum() { values "$@" | awk '{t += $1} END {print t + 0}'; }
# Per round: relay's value of NAME / Nchan's, for S streams.
ratios() { # S NAME
    paste <(values "$1" relay "$2") <(values "$1" nchan "$2") | awk '{printf "%.3f\n", $1 / $2}'
}

echo "### (a) fan-out, $RATE events/s for $DURATION s, median of $ROUNDS rounds"
echo
echo "| streams | server | deliveries/s | expected/s | delivered / expected (worst round) |" \
    "undelivered at the end, gaps (all rounds) | p50 ms | p99 ms | max ms | publish call p50, p99 ms |" \
    "frames per client read | CPU %: relays | nginx | PostgreSQL | load client |" \
    "machine busy % (100 = 2 cores) | busy % before the run (others) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for s in $STREAMS_LIST; do
    for k in relay nchan; do
        printf '| %s | %s | %.0f | %d | %.4f | %d, %d | %.2f | %.2f | %.1f | %.2f, %.2f | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$s" "$([ $k = relay ] && echo "${#RELAY_PIDS[@]} relays via nginx" || echo "Nchan in nginx")" \
            "$(col "$s" $k dps)" $((s * RATE)) "$(colmin "$s" $k delivered)" \
            "$(colsum "$s" $k undelivered)" "$(colsum "$s" $k gaps)" "$(col "$s" $k p50)" \
            "$(col "$s" $k p99)" "$(colmax "$s" $k max)" "$(col "$s" $k call_p50)" "$(col "$s" $k call_p99)" \
            "$(col "$s" $k per_read)" "$(col "$s" $k relays_cpu)" "$(col "$s" $k nginx_cpu)" "$(col "$s" $k pg_cpu)" \
            "$(col "$s" $k load_cpu)" "$(col "$s" $k busy)" "$(col "$s" $k bg)"
    done
done
echo
echo "| round | streams | deliveries/s: relays | Nchan | relays / Nchan | relays p50, p99 ms | Nchan p50, p99 ms |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
    for s in $STREAMS_LIST; do
        awk -v r="$round" -v s="$s" 'NR > 1 && $1 == s && $3 == r {d[$2] = $4; p[$2] = $8 ", " $9}
            END {printf "| %d | %d | %.0f | %.0f | %.3f | %s | %s |\n", r, s, d["relay"], d["nchan"],
                 d["relay"] / d["nchan"], p["relay"], p["nchan"]}' "$T/results"
    done
done
echo
awk -v r="$(ratios "$BIG" dps | median)" -v p="$(col "$BIG" relay p99)" -v s="$BIG" -v rate="$RATE" \
    -v u="$(colsum "$BIG" relay undelivered)" -v g="$(colsum "$BIG" relay gaps)" 'BEGIN {
    printf "Goals at %d streams x %d events/s: relay deliveries/s >= 1.0x Nchan: %.3f (%s); ", s, rate, r, (r >= 1.0 ? "met" : "missed")
    printf "relay p99 <= 5 ms: %.2f ms (%s); relay frames undelivered %d, gaps %d.\n", p, (p <= 5 ? "met" : "missed"), u, g }'
echo
echo "### (b) $IDLE_STREAMS idle relay streams, held $IDLE_SECONDS s (others kept the machine $IDLE_BG % busy before)"
echo
jq -r '"Streams: \(.connected) open, \(.failed) failed (opened in \(.connect_s) s); heartbeats per stream \(.heartbeats_per_stream_min) to \(.heartbeats_per_stream_max); errors \(.errors | with_entries(select(.value > 0)))"' \
    "$LOAD_OUT"
echo
echo "| relay | VmRSS MiB | VmHWM MiB | VmRSS before the streams | CPU % of a core over the idle window |"
echo "|---|---|---|---|---|"
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
for i in "${!RELAY_PIDS[@]}"; do
    echo "| $((i + 1)) | $(mib "${RSS[$i]}") | $(mib "${HWM[$i]}") | $(mib "${RSS0[$i]}") |" \
        "$(cpu_pct "${c0[$i]}" "${c1[$i]}" "$ms") |"
done
SUM_RSS=$(printf '%s\n' "${RSS[@]}" | awk '{s += $1} END {printf "%.1f", s / 1024}')
SUM_CPU=$(cpu_pct "$(printf '%s\n' "${c0[@]}" | awk '{s += $1} END {print s}')" \
    "$(printf '%s\n' "${c1[@]}" | awk '{s += $1} END {print s}')" "$ms")
echo "| all | $SUM_RSS | | | $SUM_CPU |"
echo
awk -v r="$SUM_RSS" -v c="$SUM_CPU" -v n="$NGINX_RSS" 'BEGIN {
    printf "Goal: relay RSS <= 64 MiB: %.1f MiB (%s); heartbeat CPU < 5%% of a core: %.1f%% (%s). nginx workers: %.1f MiB.\n",
        r, (r <= 64 ? "met" : "missed"), c, (c < 5 ? "met" : "missed"), n / 1024 }'
for k in relay nchan; do
    [ -s "$T/profile-$k" ] || continue
    echo
    echo "### perf, $k run with $BIG streams (round 1)"
    echo
    cat "$T/profile-$k"
done
echo
echo "($(nproc) cores, $(date -u +%F); descriptor hard limit $NOFILE; rounds $ROUNDS, $DURATION s each;" \
    "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- sse-relay store 2>/dev/null || echo ' with uncommitted relay/store changes');" \
    "kheish-sse-relay sha256 $(sha256sum "$BIN/kheish-sse-relay" | cut -c1-12))"
