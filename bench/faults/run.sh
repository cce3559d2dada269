#!/usr/bin/env bash
# Recovery time per fault (issue 11): runs tests/integration/95_faults.sh
# ROUNDS times, each on a fresh test stack (tests/run.sh), and reports, per
# fault, how long the stack took to be whole again after it, median and
# worst round. The test itself asserts that nothing was lost or made twice.
#
#   bench/faults/run.sh   (env: ROUNDS=5)
set -u
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
T=$(mktemp -d /tmp/kheish-bench-faults.XXXXXX)
trap 'rm -rf "$T"' EXIT
for r in $(seq "$ROUNDS"); do
    if ! KHEISH_FAULTS_REPORT=$T/report BIN_DIR=${BIN_DIR:-$PWD/bin} \
        KHEISH_NGINX_TEMPLATE_DIR=$PWD/nginx tests/run.sh 95_faults >"$T/round-$r.log" 2>&1; then
        cat "$T/round-$r.log"
        exit 1
    fi
    echo "round $r: $(tr '\n' ' ' <"$T/report" | tail -c 200)" >&2
    sed "s/^/$r /" "$T/report" >>"$T/all"
    rm "$T/report"
done
echo "| fault | repaired in, ms: median | worst | rounds |"
echo "|---|---|---|---|"
for fault in worker master relay runner postgres; do
    awk -v f="$fault" '$2 == f {print $3}' "$T/all" | sort -n | awk -v f="$fault" '
        {v[NR] = $1} END {printf "| %s | %d | %d | %d |\n", f, v[int((NR + 1) / 2)], v[NR], NR}'
done
echo
echo "($ROUNDS rounds of tests/integration/95_faults.sh; commit $(git rev-parse --short HEAD); load average $(cut -d' ' -f1-3 /proc/loadavg))"
