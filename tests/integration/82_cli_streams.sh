# `kheish events|sessions|runs stream` (contract §2 and §7): replay from a
# cursor, filters, json lines, live following, a reconnect across a relay
# restart, exit codes. A stand-in SSE server (perl) gives what the relay does
# not: odd line endings and frames split across writes, retry:, a 502 and a 404
# after the stream started, a duplicate after a reconnect, a frame over 1 MiB.
export KHEISH_DAEMON_URL
K=$BIN_DIR/kheish
O=$RESP_DIR
q() { $PSQL -Atc "$1"; }
newest() { q "SELECT coalesce(max(id), 0) FROM events"; }
# want AFTER SQL-CONDITION: the ids of those events, as the CLI should print them.
want() { q "SELECT id FROM events WHERE id > $1 AND ($2) ORDER BY id" | tr '\n' ' '; }
ids() { awk '{print $1}' "$1" | tr '\n' ' '; }           # pretty output
json_ids() { jq -r 'select(.id) | .id' "$1" | tr '\n' ' '; } # json output, heartbeats skipped
has_ids() { [ "$(json_ids "$1" | wc -w)" -ge "$2" ]; }
has_lines() { [ "$(ids "$1" | wc -w)" -ge "$2" ]; }
words() { echo $1 | wc -w; }
expect_rc() { # CODE OUT CMD...: CMD exits CODE; its stdout in OUT, stderr in OUT.err
    local want=$1 out=$2
    shift 2
    "$@" >"$out" 2>"$out.err"
    local got=$?
    [ "$got" = "$want" ] || fail "'$*' exited $got, expected $want: $(head -c 300 "$out.err")"
}

base=$(newest)
stream_fixture
api POST /v1/runs/$run/cancel
expect_status 200
all=$(want "$base" true)
n=$(words "$all")
[ "$n" -ge 5 ] || fail "expected at least 5 events, got: $all"

# Replay: exactly the ids after the cursor, in order; --max-events stops there.
expect_rc 0 "$O/all" "$K" events stream --cursor "$base" --max-events "$n" --timeout-ms 10000
[ "$(ids "$O/all")" = "$all" ] || fail "replay printed $(ids "$O/all"), expected $all"
expect_rc 0 "$O/two" "$K" events stream --cursor "$base" --max-events 2 --timeout-ms 10000
[ "$(ids "$O/two")" = "$(echo "$all" | cut -d' ' -f1-2) " ] || fail "--max-events 2: $(ids "$O/two")"
# Pretty: `<id> <event> <compact data>`, the data being the event's.
[ "$(awk '{print $1, $2}' "$O/all")" = "$(q "SELECT id || ' ' || name FROM events WHERE id > $base ORDER BY id")" ] ||
    fail "pretty lines: $(head -c 300 "$O/all")"
[ "$(cut -d' ' -f3- "$O/all" | jq -S -s -c .)" = "$(q "SELECT json_agg(data ORDER BY id) FROM events WHERE id > $base" | jq -S -c .)" ] ||
    fail "pretty data is not the events' data"

# The largest --timeout-ms is taken (UBSan: no overflow of the deadline); one
# more is a usage error.
expect_rc 0 "$O/longest" "$K" events stream --cursor "$base" --max-events 1 --timeout-ms 4611686018427387
expect_rc 2 "$O/too-long" "$K" events stream --cursor "$base" --max-events 1 --timeout-ms 4611686018427388

# Json: one object per line, {id (string), event, data}, equal to the stored
# event (a heartbeat, without an id, may come in between).
expect_rc 0 "$O/json" "$K" --output json events stream --cursor "$base" --max-events "$n" --timeout-ms 10000
jq -s -e 'all(.[]; type == "object")' "$O/json" >/dev/null || fail "json: a line is not an object"
jq -c 'select(.event != "heartbeat")' "$O/json" >"$O/events.json"
[ "$(wc -l <"$O/events.json")" = "$n" ] || fail "json: $(wc -l <"$O/events.json") lines for $n events"
[ "$(jq -c keys "$O/events.json" | sort -u)" = '["data","event","id"]' ] || fail "json keys: $(jq -c keys "$O/json" | sort -u)"
[ "$(jq -S -c . "$O/events.json")" = "$(q "SELECT json_build_object('id', id::text, 'event', name, 'data', data) FROM events WHERE id > $base ORDER BY id" | jq -S -c .)" ] ||
    fail "json lines differ from the stored events: $(head -c 300 "$O/json")"

# Filters (each follows for 0.8 s, all at once): nothing but the matching events.
follow() { { "$K" "$@" --cursor "$base" --timeout-ms 800 >"$O/$1.$2" 2>&1; echo $? >"$O/$1.$2.rc"; } & }
follow sessions stream "$s1"
follow runs stream "$run"
follow events stream --session-id "$s2"
follow events watch --run-id "$run" --session-id "$s1"
follow events follow --run-id "$run" --session-id "$s2"
wait
for f in sessions.stream runs.stream events.stream events.watch events.follow; do
    [ "$(cat "$O/$f.rc")" = 0 ] || fail "$f exited $(cat "$O/$f.rc"): $(head -c 300 "$O/$f")"
done
[ "$(ids "$O/sessions.stream")" = "$(want "$base" "session_id = '$s1'")" ] || fail "sessions stream: $(ids "$O/sessions.stream")"
[ "$(ids "$O/runs.stream")" = "$(want "$base" "run_id = '$run'")" ] || fail "runs stream: $(ids "$O/runs.stream")"
[ "$(ids "$O/events.stream")" = "$(want "$base" "session_id = '$s2'")" ] || fail "--session-id: $(ids "$O/events.stream")"
[ "$(ids "$O/events.watch")" = "$(want "$base" "session_id = '$s1' AND run_id = '$run'")" ] ||
    fail "watch --run-id --session-id: $(ids "$O/events.watch")"
[ -z "$(ids "$O/events.follow")" ] || fail "a run of s1 in session s2 matched: $(head -c 300 "$O/events.follow")"

# Live: a follower from the tail (json) and one without a cursor (pretty) get
# the events made while they follow; SIGINT / SIGTERM end them with exit 0.
tail0=$(newest) s3=$(uid)
"$K" --output json events stream --cursor "$tail0" --timeout-ms 20000 >"$O/live" 2>"$O/live.err" &
live=$!
"$K" sessions stream "$s3" --timeout-ms 20000 >"$O/live3" 2>"$O/live3.err" &
live3=$!
sleep 1 # the follower without a cursor only sees what comes after it connected
api POST /v1/sessions "{\"session_id\":\"$s3\"}"
api POST /v1/sessions/$s3/runs '{"content":"live"}'
api POST "/v1/runs/$(jqr .run_id)/cancel"
exp=$(want "$tail0" true) exp3=$(want "$tail0" "session_id = '$s3'")
wait_until 5 has_ids "$O/live" "$(words "$exp")" || fail "live json follower got $(json_ids "$O/live"), expected $exp"
wait_until 5 has_lines "$O/live3" "$(words "$exp3")" ||
    fail "live session follower got $(ids "$O/live3"), expected $exp3"
kill -INT $live
wait $live
rc=$?
[ $rc = 0 ] || fail "SIGINT: exit $rc"
kill -TERM $live3
wait $live3
rc=$?
[ $rc = 0 ] || fail "SIGTERM: exit $rc"
[ "$(json_ids "$O/live")" = "$exp" ] || fail "live json follower printed $(json_ids "$O/live"), expected $exp"
[ "$(ids "$O/live3")" = "$exp3" ] || fail "live session follower printed $(ids "$O/live3"), expected $exp3"
[ -z "$(jq -c 'select(.event == "heartbeat" and has("id"))' "$O/live")" ] || fail "a json heartbeat has an id"

# Reconnect: the relay serving a follower dies (kill -9); the follower
# reconnects through nginx to the other relay, and the supervisor restarts
# the dead one; events made meanwhile and after are all printed, each once, in
# order.
tail1=$(newest) s4=$(uid)
"$K" --output json events stream --cursor "$tail1" --timeout-ms 25000 >"$O/re" 2>"$O/re.err" &
follower=$!
api POST /v1/sessions "{\"session_id\":\"$s4\"}"
wait_until 5 has_ids "$O/re" 1 || fail "the follower did not get the first event"
serving=$(relay_serving) || fail "no relay serves the follower"
relay=$(cat "$STATE_ROOT/run/relay-$serving.pid")
kill -9 "$relay"
api POST /v1/sessions/$s4/runs '{"content":"during the restart"}'
run4=$(jqr .run_id)
api POST /v1/runs/$run4/cancel
exp=$(want "$tail1" true)
wait_until 10 has_ids "$O/re" "$(words "$exp")" || fail "after the restart the follower got $(json_ids "$O/re"), expected $exp"
api POST /v1/sessions/$s4/runs '{"content":"after the restart"}'
exp=$(want "$tail1" true)
wait_until 5 has_ids "$O/re" "$(words "$exp")" || fail "the reconnected follower got $(json_ids "$O/re"), expected $exp"
kill -INT $follower
wait $follower
rc=$?
[ $rc = 0 ] || fail "reconnect follower: exit $rc: $(cat "$O/re.err")"
[ "$(json_ids "$O/re")" = "$exp" ] || fail "across the restart: printed $(json_ids "$O/re"), expected $exp"
grep -q reconnecting "$O/re.err" || fail "the follower never reconnected: $(cat "$O/re.err")"
restarted() { [ "$(cat "$STATE_ROOT/run/relay-$serving.pid" 2>/dev/null)" != "$relay" ]; }
wait_until 5 restarted || fail "the supervisor did not restart the relay"

# Exit codes: 4 bad token, 2 bad cursor (ours) or bad filter (the relay's 400),
# 5 not found, 3 unreachable on the first connect.
expect_rc 4 "$O/x" "$K" --token "wrong-$(uid)" events stream --timeout-ms 5000
grep -q invalid_token "$O/x.err" || fail "401 not explained: $(cat "$O/x.err")"
expect_rc 2 "$O/x" "$K" events stream --cursor abc
expect_rc 2 "$O/x" "$K" runs stream "$run" --cursor -1
expect_rc 2 "$O/x" "$K" events stream --session-id 'bad id' --timeout-ms 5000
expect_rc 2 "$O/x" "$K" sessions stream
expect_rc 5 "$O/x" "$K" --base-url "$KHEISH_DAEMON_URL/nope" events stream --timeout-ms 5000
expect_rc 3 "$O/x" "$K" --base-url http://127.0.0.1:1 events stream --timeout-ms 5000

# The stand-in server: answers DIR/resp.1, resp.2... one per connection (each
# cut at <PAUSE> into writes 50 ms apart), keeps each request head in req.N.
fake() {
    rm -rf "$1" && mkdir -p "$1"
    perl -MIO::Socket::INET -e '
        $SIG{PIPE} = "IGNORE";
        alarm 20;
        my $dir = shift;
        my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 8,
                                        ReuseAddr => 1) or die "listen: $!";
        open(my $p, ">", "$dir/port.tmp") or die; print $p $srv->sockport; close $p;
        rename "$dir/port.tmp", "$dir/port";
        for (my $n = 1; -e "$dir/resp.$n"; $n++) {
            my $c = $srv->accept or last;
            my $head = "";
            while ($head !~ /\r\n\r\n/) { sysread($c, $head, 4096, length $head) or last }
            open(my $r, ">", "$dir/req.$n"); print $r $head; close $r;
            my $resp = do { local $/; open(my $f, "<", "$dir/resp.$n"); <$f> };
            for my $piece (split /<PAUSE>/, $resp) { print $c $piece; select(undef, undef, undef, 0.05) }
            close $c;
        }' "$1" &
}
sse_head() { printf 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n'; }
problem_answer() { # STATUS TITLE
    local doc="{\"type\":\"urn:kheish:problem:x\",\"title\":\"$2\",\"status\":$1,\"detail\":\"stand-in\",\"code\":\"x\"}"
    printf 'HTTP/1.1 %s %s\r\nContent-Type: application/problem+json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "${#doc}" "$doc"
}

# 1: \r\n, \r and \n line ends, a comment, a data: field over two lines, a
# frame split mid-field; the server drops, answers 502, then resends id 2
# (not printed again) before a frame over 1 MiB (exit 1).
F1=$O/fake1
fake "$F1"
{ sse_head; printf 'retry: 100\r\n\r\n: a comment\r\nid: 1\r\nevent: first\r\ndata: {"n":\r\ndata: 1}\r\n\r\n'
  printf 'id: 2\nevent: sec<PAUSE>ond\ndata: {"n"<PAUSE>:2}\n\n'; } >"$F1/resp.1"
problem_answer 502 'Bad Gateway' >"$F1/resp.2"
{ sse_head; printf 'id: 2\nevent: second\ndata: {"n":2}\n\nid: 3\revent: third\rdata: {"n":3}\r\r'
  printf 'event: heartbeat\ndata: {"type":"heartbeat"}\n\nid: 4\nevent: big\ndata: {"x":"'
  head -c 1100000 /dev/zero | tr '\0' x
  printf '"}\n\nid: 5\nevent: after\ndata: {}\n\n'; } >"$F1/resp.3"
wait_until 5 test -s "$F1/port" || fail "the stand-in server did not start"
expect_rc 1 "$O/f1" "$K" --base-url "http://127.0.0.1:$(cat "$F1/port")" events stream --cursor 0 --timeout-ms 10000
printf '1 first {"n":1}\n2 second {"n":2}\n3 third {"n":3}\n' | cmp -s - "$O/f1" || fail "stand-in 1 printed: $(head -c 300 "$O/f1")"
grep -q 'larger than 1048576 bytes' "$O/f1.err" || fail "no word of the oversized frame: $(cat "$O/f1.err")"
grep -q 'reconnecting in 100 ms' "$O/f1.err" && grep -q 'HTTP 502; reconnecting in 200 ms' "$O/f1.err" ||
    fail "retry: 100, then doubled: $(cat "$O/f1.err")"
head -1 "$F1/req.1" | grep -q '^GET /v1/events/stream?cursor=0 HTTP/1.1' || fail "request: $(head -1 "$F1/req.1")"
grep -qi '^accept: text/event-stream' "$F1/req.1" && grep -qF "Authorization: Bearer $ADMIN_TOKEN" "$F1/req.1" ||
    fail "request headers: $(cat "$F1/req.1")"
! grep -qi '^last-event-id' "$F1/req.1" || fail "a Last-Event-ID on the first connection"
grep -q 'Last-Event-ID: 2' "$F1/req.2" && grep -q 'Last-Event-ID: 2' "$F1/req.3" ||
    fail "reconnects should resume after id 2: $(grep -hi last-event "$F1"/req.*)"

# 2: json lines (data that is not JSON becomes a string, no event: is
# "message"), then a 404 on the reconnect: fatal, exit 5.
F2=$O/fake2
fake "$F2"
{ sse_head; printf 'retry: 100\n\nid: 7\nevent: x\ndata: {"a":[1,"\xc3\xa9"]}\n\nid: 8\ndata: plain text\n\n'; } >"$F2/resp.1"
problem_answer 404 'Not Found' >"$F2/resp.2"
wait_until 5 test -s "$F2/port" || fail "the stand-in server did not start"
expect_rc 5 "$O/f2" "$K" --output json --base-url "http://127.0.0.1:$(cat "$F2/port")" runs stream r1 --timeout-ms 10000
[ "$(head -2 "$O/f2")" = "$(printf '{"id":"7","event":"x","data":{"a":[1,"\xc3\xa9"]}}\n{"id":"8","event":"message","data":"plain text"}')" ] ||
    fail "stand-in 2 printed: $(head -c 300 "$O/f2")"
tail -n +3 "$O/f2" | jq -se '.[0].status == 404' >/dev/null || fail "json mode: the problem document after the events"
head -1 "$F2/req.1" | grep -q '^GET /v1/runs/r1/stream HTTP/1.1' || fail "request: $(head -1 "$F2/req.1")"
true
