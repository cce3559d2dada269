#!/usr/bin/env bash
# The backlog benchmark of issue 11 (point 5): the runners drain N queued runs
# over SESSIONS sessions, on a runs table that also holds FINISHED finished
# runs (the history of the same sessions), and, side by side in the same
# round, on an empty runs table. Autovacuum is off for the runs table and it
# is analyzed while the queue is empty, as a table is when a backlog forms
# faster than autoanalyze notices: the claim must not depend on what the
# statistics say. The stack (bench/runner/stack.sh) runs `kheish up`'s default
# runners against the mock provider, which answers at once.
#
# A case: TRUNCATE runs; the finished runs (none on the empty table) inserted
# by SQL; ANALYZE runs; the N runs submitted in one transaction through the
# store's own submission (kheish_run_submit, so they carry their events), the
# session of run i being i mod SESSIONS; then the runners drain them.
# runs/s = N / (last finished_at_ms - first started_at_ms). The two cases
# alternate which goes first by round; each round prints its two rates and
# their ratio, and the end gives median and worst (lowest) of each.
#
#   bench/runner/backlog.sh   (env: N=10000 SESSIONS=8 FINISHED=100000 ROUNDS=5
#                                   TIMEOUT=300)
# A case not drained within TIMEOUT s reports the rate of the runs that
# ended, and the script exits 1.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
N=${N:-10000}
SESSIONS=${SESSIONS:-8}
FINISHED=${FINISHED:-100000}
ROUNDS=${ROUNDS:-5}
TIMEOUT=${TIMEOUT:-300}
LOAD_BEFORE=$(uptime)

# shellcheck source=bench/runner/stack.sh
. bench/runner/stack.sh
q "ALTER TABLE runs SET (autovacuum_enabled = off)"
RUNNERS=$KHEISH_RUNNERS # stack.env: `kheish up`'s default

# One case: prints "runs/s completed run_p50 wait_p50".
drain() { # ROUND CASE FINISHED
    local prefix=bl-$1-$2 base
    q "SET client_min_messages = warning; TRUNCATE runs CASCADE"
    sessions "$prefix" "$SESSIONS" >/dev/null
    q "INSERT INTO runs (run_id, run_no, session_id, agent_id, status, submitted_at_ms,
                         updated_at_ms, started_at_ms, finished_at_ms, request, payload, outputs)
       SELECT 'run-' || n, n, '$prefix-' || (n % $SESSIONS + 1), 'agent-bench', 'completed',
              0, 0, 0, 0, '{}', '{\"content\":\"earlier turn\"}', '[{\"content\":\"ok\"}]'
       FROM (SELECT nextval('runs_run_no_seq') AS n FROM generate_series(1, $3)) x"
    q "ANALYZE runs"
    base=$(q "SELECT coalesce(max(run_no), 0) FROM runs")
    q "SELECT count(kheish_run_submit('$prefix-' || (i % $SESSIONS + 1),
                                      '{\"content\":\"backlog [[mock:text=ok]]\"}', NULL, NULL,
                                      false, NULL))
       FROM generate_series(1, $N) i" >/dev/null
    wait_sql "NOT EXISTS (SELECT 1 FROM runs WHERE status IN ('queued', 'running',
        'waiting_for_approval', 'waiting_for_user_question'))" "$TIMEOUT" 0.1 ||
        { echo "backlog.sh: round $1, $2: not drained in $TIMEOUT s" >&2; INCOMPLETE=1; }
    # and where a run's time goes: started -> finished (the provider call
    # and the commit), and its session's previous run finished -> started
    # (the wait for a claim), medians in ms
    q "WITH b AS (SELECT started_at_ms AS s, finished_at_ms AS f,
                         lag(finished_at_ms) OVER (PARTITION BY session_id ORDER BY run_no) AS p
                  FROM runs WHERE run_no > $base AND status = 'completed')
       SELECT round(count(*) * 1000.0 / greatest(max(f) - min(s), 1)), count(*),
              percentile_disc(0.5) WITHIN GROUP (ORDER BY f - s),
              percentile_disc(0.5) WITHIN GROUP (ORDER BY s - p)
       FROM b" | tr '|' ' '
}

INCOMPLETE=
declare -A R
for round in $(seq 1 "$ROUNDS"); do
    order="empty full"
    [ $((round % 2)) = 0 ] && order="full empty"
    for c in $order; do
        finished=0
        [ "$c" = full ] && finished=$FINISHED
        R[$c]+="$(drain "$round" "$c" "$finished")"$'\n'
        line=$(grep -v '^$' <<<"${R[$c]}" | tail -1)
        echo "round $round, $c: $line ($SECONDS s)" >&2
        [ "$(cut -d' ' -f2 <<<"$line")" = "$N" ] || { echo "backlog.sh: round $round, $c: not every run completed" >&2; INCOMPLETE=1; }
    done
done
LOAD_AFTER=$(uptime)

col() { grep -v '^$' <<<"${R[$1]}" | awk '{print $1}'; }
paste -d' ' <(grep -v '^$' <<<"${R[empty]}") <(grep -v '^$' <<<"${R[full]}") >"$T/rates"
echo "| round | empty table: runs/s (run / wait p50, ms) | $FINISHED finished runs: runs/s (run / wait p50, ms) | ratio |"
echo "|---|---|---|---|"
awk '{printf "| %d | %s (%s / %s) | %s (%s / %s) | %.2f |\n", NR, $1, $3, $4, $5, $7, $8, $5 / $1}' "$T/rates"
echo "| median | $(col empty | median) | $(col full | median) | |"
echo "| worst | $(col empty | sort -n | head -1) | $(col full | sort -n | head -1) | |"
echo
echo "($N queued runs over $SESSIONS sessions, $RUNNERS runners, autovacuum off for runs, analyzed" \
    "with the queue empty; commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status \
        --porcelain -- runner store sql 2>/dev/null | grep -q . && echo ', with uncommitted changes');" \
    "$(nproc) cores, $(date -u +%F); load average before:${LOAD_BEFORE##*load average:}," \
    "after:${LOAD_AFTER##*load average:})"
[ -z "$INCOMPLETE" ]
