# Issue 11.6: nginx limits concurrent requests per client address, API and
# streams each on their own (nginx/embedded.conf.in: 128 API requests, 256
# streams), and answers 429 rate_limited past the limit. One address at its
# stream limit still reaches the API, one at its API limit still streams,
# and another address gets both.
API_PER_ADDR=128
STREAMS_PER_ADDR=256
port=${KHEISH_DAEMON_URL##*:}
trap '' PIPE # a connection nginx dropped fails its write, not this shell
ulimit -n "$(ulimit -Hn)"

# conn: opens a connection from 127.0.0.1 and sends REQUEST; sets fd.
conn() {
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '%s' "$1" >&"$fd"
}
# status_from ADDR PATH: the HTTP status of a GET from source address ADDR
# (a stream answers its head, then is cut after a second).
status_from() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 1 --interface "$1" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL$2"
}

# Streams: STREAMS_PER_ADDR held from 127.0.0.1, each with its 200 head.
printf -v stream_req 'GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n' "$ADMIN_TOKEN"
streams=() ok=0
for _ in $(seq $STREAMS_PER_ADDR); do
    conn "$stream_req" && streams+=("$fd")
done
for fd in "${streams[@]}"; do
    read -r -t 5 -u "$fd" line && [[ $line == "HTTP/1.1 200"* ]] && ok=$((ok + 1))
done
[ "$ok" = $STREAMS_PER_ADDR ] || fail "$ok of $STREAMS_PER_ADDR streams opened"
api GET /v1/events/stream "" --max-time 5
expect_problem 429 rate_limited
api GET /v1/status
expect_status 200
[ "$(status_from 127.0.0.2 /v1/events/stream)" = 200 ] || fail "another address cannot stream"
for fd in "${streams[@]}"; do exec {fd}>&-; done

# API: requests whose body never comes hold their slot (until
# client_body_timeout); the next request from that address is refused.
slow=()
for _ in $(seq $API_PER_ADDR); do
    conn $'POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n' &&
        slow+=("$fd")
done
sleep 0.5
api GET /v1/status "" --max-time 5
expect_problem 429 rate_limited
[ "$(status_from 127.0.0.1 /v1/events/stream)" = 200 ] || fail "an address at its API limit cannot stream"
[ "$(status_from 127.0.0.2 /v1/status)" = 200 ] || fail "another address cannot reach the API"
for fd in "${slow[@]}"; do exec {fd}>&-; done
wait_until 5 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $KHEISH_DAEMON_URL/healthz)\" = 200 ]" ||
    fail "the API limit did not free up once the slow requests were gone"
