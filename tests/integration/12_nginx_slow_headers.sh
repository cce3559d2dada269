# Issue 11.6: a client that opens connections and never finishes their
# request headers holds nginx connections, not the API. 2,100 of them
# (more than the old 2 x 1024 worker_connections) leave /healthz and
# /v1/status answering, and nginx closes them after client_header_timeout
# (10 s; it was 60 s).
HALF_SENT=2100
HEADER_TIMEOUT_S=10
port=${KHEISH_DAEMON_URL##*:}
trap '' PIPE # a connection nginx dropped fails its write, not this shell
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((HALF_SENT + 100)) ] || fail "need $((HALF_SENT + 100)) descriptors, ulimit -Hn is $(ulimit -Hn)"

fds=()
for _ in $(seq $HALF_SENT); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || break
    printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' >&"$fd"
    fds+=("$fd")
done
opened=$SECONDS
[ ${#fds[@]} = $HALF_SENT ] || fail "opened ${#fds[@]} of $HALF_SENT connections"

api GET /healthz "" --max-time 5
expect_status 200
api GET /v1/status "" --max-time 5
expect_status 200

# Past the header timeout (plus scheduling slack), nginx has closed every
# half-sent connection: none of ours to its port is still ESTABLISHED (01)
# in /proc/net/tcp (a socket nginx closed waits in CLOSE_WAIT, 08).
established() {
    grep -cE "^ *[0-9]+: 0100007F:[0-9A-F]{4} 0100007F:$(printf %04X "$port") 01 " /proc/net/tcp
}
[ "$(established)" -ge $HALF_SENT ] || fail "only $(established) connections established"
left=$((HEADER_TIMEOUT_S + 3 - (SECONDS - opened)))
[ $left -le 0 ] || sleep $left
open=$(established)
[ "$open" = 0 ] || fail "$open of $HALF_SENT half-sent connections still open $((SECONDS - opened)) s after they were opened"
for fd in "${fds[@]}"; do exec {fd}>&-; done
api GET /healthz "" --max-time 5
expect_status 200
