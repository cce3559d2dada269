#!/usr/bin/env bash
# Runs every test: the unit and store programs (bin/test-*), then the
# black-box files of tests/integration/ against a real stack started with
# `kheish up` in a temporary state root (embedded PostgreSQL, nginx, the
# FastCGI pool), stopped again at the end; then the ops smokes of
# tests/smoke/, which start their own.
#
#   tests/run.sh [NAME-PATTERN]     e.g. tests/run.sh sessions, tests/run.sh smoke/
set -u
cd "$(dirname "$0")/.."
export BIN_DIR=${BIN_DIR:-$PWD/bin}
PATTERN=${1:-}
T=$(mktemp -d /tmp/kheish-test.XXXXXX)
chmod 755 "$T"
export STATE_ROOT=$T/state

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${KHEISH_TEST_PORT:-}
while [ -z "$PORT" ]; do
    # below the ephemeral range (32768-), where a busy machine's outgoing
    # connections could hold one of the ports
    p=$((20000 + RANDOM % 10000))
    # nginx, PostgreSQL's socket name
    port_free "$p" && port_free $((p + 1000)) && PORT=$p
done

stop() {
    "$BIN_DIR/kheish" down --state-root "$STATE_ROOT" >/dev/null 2>&1
    rm -rf "$T"
}
trap stop EXIT

echo "== starting the stack on 127.0.0.1:$PORT (state root $STATE_ROOT)"
if ! "$BIN_DIR/kheish" up --state-root "$STATE_ROOT" --port "$PORT" >"$T/up.log" 2>&1; then
    cat "$T/up.log"
    tail -n 50 "$STATE_ROOT"/logs/*.log 2>/dev/null
    exit 1
fi
export KHEISH_DAEMON_URL=http://127.0.0.1:$PORT
# shellcheck disable=SC1091
set -a
. "$STATE_ROOT/stack.env"
set +a
export -n KHEISH_DATABASE_URL # the app's URL: `kheish up` in a test must see the embedded default
# The CLI and tests/lib.sh's api() use the admin token unless a test says otherwise.
export KHEISH_DAEMON_TOKEN_FILE=$STATE_ROOT/tokens/admin-token
ADMIN_TOKEN=$(cat "$STATE_ROOT/tokens/admin-token") READONLY_TOKEN=$(cat "$STATE_ROOT/tokens/readonly-token")
export ADMIN_TOKEN READONLY_TOKEN
export PSQL="psql -X -q -v ON_ERROR_STOP=1 -h $STATE_ROOT/pg -p $KHEISH_PG_PORT -U postgres -d kheish"
export PSQL_ADMIN="psql -X -q -v ON_ERROR_STOP=1 -h $STATE_ROOT/pg -p $KHEISH_PG_PORT -U postgres -d postgres"
$PSQL_ADMIN -c 'CREATE DATABASE kheish_unit' >/dev/null
export KHEISH_TEST_DATABASE_URL="host=$STATE_ROOT/pg port=$KHEISH_PG_PORT dbname=kheish_unit user=postgres"

failed=()
passed=0
run() { # NAME CMD...
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$T/out" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name ($((SECONDS - start)) s)"
    else
        failed+=("$name")
        echo "FAIL $name"
        sed 's/^/     /' "$T/out"
    fi
}

for t in "$BIN_DIR"/test-*; do
    [ -x "$t" ] || continue
    case "${t##*/}" in *"$PATTERN"*) run "${t##*/}" "$t" ;; esac
done
for f in tests/integration/*.sh; do
    case "${f##*/}" in
    *"$PATTERN"*) run "${f##*/}" bash -c '. tests/lib.sh; . "$1"; exit $FAILED' _ "$f" ;;
    esac
done
# The ops smokes: scripts of their own, each with its own `kheish serve`
# stack (the one above only shares the machine).
for f in tests/smoke/*.sh; do
    case "smoke/${f##*/}" in
    smoke/lib.sh) ;;
    *"$PATTERN"*) run "smoke/${f##*/}" bash "$f" ;;
    esac
done

# A sanitizer report from a server process fails the run even if no test
# noticed; the daemons stop first, so what they leak at exit counts too.
"$BIN_DIR/kheish" down --state-root "$STATE_ROOT" >/dev/null 2>&1
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$STATE_ROOT"/logs/*.log 2>/dev/null; then
    grep -h -A20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$STATE_ROOT"/logs/*.log | head -60
    failed+=("sanitizer-report")
fi
echo "== $passed passed, ${#failed[@]} failed ${failed[*]}"
[ ${#failed[@]} -eq 0 ]
