#!/usr/bin/env bash
# The tool-turn benchmark of issue 15: what a model turn of tool calls costs
# the stack, beside text-only runs of the same stack, against the mock
# provider (tests/mock-provider/, which answers at once).
#   (a) latency: one run at a time in one session, alternating a text-only
#       run and a run of CALLS tool turns (each turn one `list_files` of the
#       session's empty workspace, the cheapest tool, then `done`); a run's
#       time is finished_at_ms - started_at_ms. Per tool turn: (tool run -
#       text run) / CALLS, the medians of the round, which holds two provider
#       calls' difference in nothing but the turn's own work: the tool's
#       ledger records, the turn's report, the results sent back.
#   (b) throughput: N runs of CALLS tool turns, CONCURRENCY in flight, each
#       in its own session, then N text-only runs the same way; runs/s and
#       tool turns/s over each batch.
# Each round: LAT_RUNS pairs for (a), then (b). ROUNDS rounds; the medians
# and the worst round go to stdout as Markdown (docs/performance.md).
#
#   bench/runner/tools.sh   (env: ROUNDS=5 CALLS=10 LAT_RUNS=20 N=200 CONCURRENCY=32)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-10}
LAT_RUNS=${LAT_RUNS:-20}
N=${N:-200}
CONCURRENCY=${CONCURRENCY:-32}
# shellcheck source=bench/runner/stack.sh
. bench/runner/stack.sh
API=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $(cat "$T/state/tokens/admin-token")"

TOOLS='[[mock:call=list_files:{}]]'
for i in $(seq 2 "$CALLS"); do TOOLS="$TOOLS [[mock@$i:call=list_files:{}]]"; done
TOOLS="$TOOLS [[mock@$((CALLS + 1)):text=done]]"
body() { jq -cn --arg c "$1" '{content: $c}'; }
TOOL_BODY=$(body "$TOOLS")
TEXT_BODY=$(body "hello [[mock:text=done]]")

# run_one SESSION BODY: submits, waits for the end; prints finished - started (ms).
run_one() {
    local id
    id=$(curl -sS -X POST -H "$AUTH" -H 'Content-Type: application/json' -d "$2" \
        "$API/v1/sessions/$1/runs" | jq -r .run_id)
    wait_sql "(SELECT status NOT IN ('queued', 'running') FROM runs WHERE run_id = '$id')" 30 ||
        { echo "tools.sh: run $id did not end in 30 s: $(q "SELECT status, lease_owner FROM runs
          WHERE run_id = '$id'")" >&2; tail -5 "$T"/state/logs/runner-*.log >&2; exit 1; }
    q "SELECT CASE WHEN status = 'completed' THEN finished_at_ms - started_at_ms
                   ELSE -1 END FROM runs WHERE run_id = '$id'"
}

# batch PREFIX BODY: N runs, one per session, CONCURRENCY in flight; prints runs/s.
batch() {
    sessions "$1" "$N" >/dev/null
    local data
    data=$(jq -Rn --arg b "$2" '$b')
    for i in $(seq "$N"); do
        [ "$i" -gt 1 ] && echo next
        printf 'url = "%s/v1/sessions/%s-%s/runs"\n' "$API" "$1" "$i"
        printf '%s\n' "data = $data" 'header = "Content-Type: application/json"' \
            "header = \"$AUTH\"" 'output = "/dev/null"'
    done >"$T/batch.cfg"
    curl -sS --no-progress-meter -Z --parallel-max "$CONCURRENCY" -K "$T/batch.cfg"
    wait_sql "(SELECT count(*) FROM runs WHERE session_id LIKE '$1-%' AND status IN
               ('completed', 'failed', 'interrupted', 'cancelled')) = $N" 600 0.05
    [ "$(q "SELECT count(*) FROM runs WHERE session_id LIKE '$1-%' AND status = 'completed'")" = "$N" ] ||
        { echo "tools.sh: runs of $1 did not all complete" >&2; exit 1; }
    q "SELECT round($N * 1000.0 / greatest(max(finished_at_ms) - min(started_at_ms), 1))
       FROM runs WHERE session_id LIKE '$1-%'"
}

printf '| round | text run p50 ms | %d-turn tool run p50 ms | per tool turn ms | text runs/s | tool runs/s | tool turns/s |\n' "$CALLS"
printf '|---|---|---|---|---|---|---|\n'
: >"$T/rounds"
for r in $(seq "$ROUNDS"); do
    sessions "lat$r" 1 >/dev/null
    : >"$T/text"
    : >"$T/tool"
    for _ in $(seq "$LAT_RUNS"); do
        run_one "lat$r-1" "$TEXT_BODY" >>"$T/text"
        run_one "lat$r-1" "$TOOL_BODY" >>"$T/tool"
    done
    grep -q -- -1 "$T/text" "$T/tool" && { echo "tools.sh: a latency run did not complete" >&2; exit 1; }
    text=$(median <"$T/text")
    tool=$(median <"$T/tool")
    turn=$(awk -v a="$tool" -v b="$text" -v c="$CALLS" 'BEGIN {printf "%.2f", (a - b) / c}')
    tool_rps=$(batch "tool$r" "$TOOL_BODY")
    text_rps=$(batch "text$r" "$TEXT_BODY")
    turns=$((tool_rps * CALLS))
    echo "$r $text $tool $turn $text_rps $tool_rps $turns" >>"$T/rounds"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$text" "$tool" "$turn" "$text_rps" "$tool_rps" "$turns"
done
col() { awk -v c="$1" '{print $c}' "$T/rounds"; }
worst_turn=$(col 4 | sort -n | tail -1)
med_turn=$(col 4 | median)
echo
echo "| measure (median of $ROUNDS rounds) | goal | measured | worst round | met? |"
echo "|---|---|---|---|---|"
met=$(awk -v m="$med_turn" -v w="$worst_turn" 'BEGIN {print (m <= 5 && w <= 5) ? "yes" : "no"}')
echo "| stack time per tool turn (beyond the tool), ms | ≤ 5 | $med_turn | $worst_turn | $met |"
echo "| text runs/s / tool runs/s ($CALLS turns) | | $(col 5 | median) / $(col 6 | median) | | |"
echo
echo "(CALLS $CALLS, LAT_RUNS $LAT_RUNS pairs, N $N runs per batch, $CONCURRENCY in flight; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) cores, $(date -u +%F))"
