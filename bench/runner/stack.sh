# shellcheck shell=bash
# Sourced by the runner benchmarks (run.sh, backlog.sh) from the repository's
# root: starts the mock provider (tests/mock-provider/, which replies "ok" at
# once in one delta) and a throwaway stack in $T whose one route (driver xai,
# inline key) points at it, with `kheish up`'s default runners; stops both
# and removes $T on exit (runners a pass stopped with SIGSTOP included).
# Defines BIN, T, PORT, MOCK, PSQL, q (one statement, unaligned), sessions,
# wait_sql and median.
BIN=${BIN_DIR:-$PWD/bin}
T=$(mktemp -d /tmp/kheish-bench-runner.XXXXXX)
chmod 755 "$T"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
while [ -z "$PORT" ]; do # as tests/run.sh: nginx, PostgreSQL's socket name
    p=$((20000 + RANDOM % 10000))
    port_free "$p" && port_free $((p + 1000)) && PORT=$p
done
MOCK=
cleanup() {
    local f
    for f in "$T"/state/run/runner-*.pid; do # stopped by a drain pass?
        if [ -f "$f" ]; then kill -CONT "$(cat "$f")" 2>/dev/null || true; fi
    done
    "$BIN/kheish" down --state-root "$T/state" >/dev/null 2>&1 || true
    if [ -n "$MOCK" ]; then kill "$MOCK" 2>/dev/null || true; fi
    wait || true
    rm -rf "$T"
}
trap cleanup EXIT

node tests/mock-provider/server.mjs --port 0 --ready-file "$T/mock.port" 2>"$T/mock.log" &
MOCK=$!
for _ in $(seq 100); do [ -s "$T/mock.port" ] && break; sleep 0.1; done
[ -s "$T/mock.port" ] || { echo "$0: the mock provider did not start" >&2; exit 1; }
cat >"$T/routes.toml" <<EOF2
version = 1
default_route = "mock"

[routes.mock]
driver = "xai"
default_model = "grok-mock"
api_key = "bench-inline-key"
base_url = "http://127.0.0.1:$(cat "$T/mock.port")/v1"
EOF2
if ! timeout 120 "$BIN/kheish" up --state-root "$T/state" --port "$PORT" \
    --routes-file "$T/routes.toml" >"$T/up.log" 2>&1; then
    cat "$T/up.log" >&2
    exit 1
fi
# shellcheck disable=SC1091
. "$T/state/stack.env"
PSQL="psql -X -q -At -v ON_ERROR_STOP=1 -h $T/state/pg -p $KHEISH_PG_PORT -U postgres -d kheish"
q() { $PSQL -c "$1"; }
sessions() { # PREFIX COUNT: PREFIX-1 .. PREFIX-COUNT
    q "INSERT INTO sessions (session_id, agent_id, created_at_ms, updated_at_ms)
       SELECT '$1-' || i, 'agent-bench', 0, 0 FROM generate_series(1, $2) i"
}
# Waits (in one psql) until COND holds, polling every INTERVAL s, at most
# SECONDS. Each poll is a transaction of its own: a waiter that held one
# snapshot throughout would keep every row version the drain leaves behind
# from being pruned, and slow the very drain it watches.
wait_sql() { # COND SECONDS [INTERVAL]
    $PSQL -c "SET statement_timeout = '${2}s'" -c "DO \$\$ BEGIN
        WHILE NOT ($1) LOOP COMMIT; PERFORM pg_sleep(${3:-0.005}); END LOOP; END \$\$"
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
