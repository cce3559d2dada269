#!/usr/bin/env bash
# Self-test of the mock provider: starts server.mjs on a free port and drives
# every endpoint, streamed and not, and every directive with curl, checking
# the answers with jq. Prints each failure, then "N passed, N failed"; exits
# non-zero on any failure. The server is stopped on exit.
#
#   bash tests/mock-provider/selftest.sh
#
# shellcheck disable=SC2016 # the jq programs use jq's own $variables
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in node curl jq sha256sum; do
    command -v "$tool" >/dev/null || { echo "selftest: $tool is needed" >&2; exit 1; }
done

T=$(mktemp -d /tmp/mock-provider-selftest.XXXXXX)
KEY="sk-mock-selftest-$$-$RANDOM"
KEY_SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

node "$HERE/server.mjs" --port 0 --ready-file "$T/port" --api-key "$KEY" 2>"$T/server.log" &
PID=$!
for _ in $(seq 100); do
    [ -s "$T/port" ] && break
    sleep 0.1
done
[ -s "$T/port" ] || { echo "selftest: the server did not start" >&2; cat "$T/server.log" >&2; exit 1; }
PORT=$(cat "$T/port")
BASE=http://127.0.0.1:$PORT

passed=0 failed=0
# check NAME CMD...: one expectation; CMD succeeding is a pass.
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name" >&2
        echo "     body: $(head -c 400 "$T/body" 2>/dev/null)" >&2
    fi
}
# is A B: string equality, for check.
is() { [ "$1" = "$2" ] || { echo "     expected '$2', got '$1'" >&2; return 1; }; }
# js EXPR [ARGS...]: jq -e EXPR over the response body.
js() { jq -e "$@" "$T/body" >/dev/null 2>&1; }
lacks() { ! grep -qF -- "$1" "$2"; }   # lacks STRING FILE
lacks_re() { ! grep -q -- "$1" "$2"; } # lacks_re REGEX FILE
log_is_json_lines() { jq -se 'length > 50 and all(has("ts"))' "$T/server.log" >/dev/null 2>&1; }
not_json() { ! jq -e . "$1" >/dev/null 2>&1; }
# some_data_not_json: a `data:` line of $T/body does not parse (besides [DONE]).
some_data_not_json() {
    local l
    while IFS= read -r l; do
        [ "$l" = '[DONE]' ] || printf %s "$l" | jq -e . >/dev/null 2>&1 || return 0
    done < <(sse_data)
    return 1
}
header() { grep -i "^$1:" "$T/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# post PATH BODY [curl args...]: sets STATUS, CURL_RC, $T/body, $T/headers.
post() {
    local path=$1 body=$2
    shift 2
    : >"$T/headers"
    STATUS=$(curl -sS -N -o "$T/body" -D "$T/headers" -w '%{http_code}' -H 'content-type: application/json' \
        --data-binary "$body" "$@" "$BASE$path" 2>"$T/curl.err")
    CURL_RC=$?
}

# call API STREAM TEXT [curl args...]: a one-turn request in the API's own
# format, with the right credential (CALL_KEY overrides the key; an empty one
# sends none). API is responses, chat, openrouter or messages.
call() {
    local api=$1 stream=$2 text=$3 key=${CALL_KEY-$KEY}
    shift 3
    local auth=(-H "Authorization: Bearer $key")
    case $api in
    responses)
        post /v1/responses "$(jq -nc --arg t "$text" --argjson s "$stream" \
            '{model:"mock-1", instructions:"be brief", input:$t, stream:$s, max_output_tokens:64}')" "${auth[@]}" "$@" ;;
    chat)
        post /v1/chat/completions "$(jq -nc --arg t "$text" --argjson s "$stream" \
            '{model:"mock-1", messages:[{role:"system",content:"be brief"},{role:"user",content:$t}], stream:$s}
             + (if $s then {stream_options:{include_usage:true}} else {} end)')" "${auth[@]}" "$@" ;;
    openrouter)
        post /api/v1/chat/completions "$(jq -nc --arg t "$text" --argjson s "$stream" \
            '{model:"vendor/mock-1", messages:[{role:"user",content:[{type:"text",text:$t}]}], stream:$s}')" "${auth[@]}" "$@" ;;
    messages)
        post /v1/messages "$(jq -nc --arg t "$text" --argjson s "$stream" \
            '{model:"mock-1", max_tokens:64, system:"be brief", messages:[{role:"user",content:[{type:"text",text:$t}]}], stream:$s}')" \
            -H "x-api-key: $key" -H 'anthropic-version: 2023-06-01' "$@" ;;
    esac
}

sse_data() { sed -n 's/^data: //p' "$T/body"; }
sse_events() { sed -n 's/^event: //p' "$T/body"; }
sse_json() { sse_data | grep -v '^\[DONE\]$' | jq -s .; }

# reply_text API STREAM: the reply text in $T/body (deltas concatenated).
reply_text() {
    case $1:$2 in
    responses:true) sse_json | jq -j '[.[] | select(.type == "response.output_text.delta").delta] | join("")' ;;
    chat:true | openrouter:true) sse_json | jq -j '[.[] | .choices[]?.delta.content // empty] | join("")' ;;
    messages:true) sse_json | jq -j '[.[] | select(.type == "content_block_delta").delta.text] | join("")' ;;
    responses:false) jq -j '.output[0].content[0].text' "$T/body" ;;
    chat:false | openrouter:false) jq -j '.choices[0].message.content' "$T/body" ;;
    messages:false) jq -j '.content[0].text' "$T/body" ;;
    esac
}

delta_count() {
    case $1 in
    responses) grep -c '^event: response.output_text.delta$' "$T/body" ;;
    chat | openrouter) sse_json | jq '[.[] | .choices[]?.delta.content // empty | select(. != "")] | length' ;;
    messages) grep -c '^event: content_block_delta$' "$T/body" ;;
    esac
}

# The frame only a complete stream of API carries.
final_marker() {
    case $1 in
    responses) echo '^event: response.completed$' ;;
    chat | openrouter) echo '^data: \[DONE\]$' ;;
    messages) echo '^event: message_stop$' ;;
    esac
}

events_match_types() { [ "$(sse_events)" = "$(sse_data | jq -r .type)" ]; }

# stream_complete API TEXT: $T/body is a whole, well-formed stream of API.
stream_complete() {
    case $1 in
    responses)
        is "$(sse_events | uniq | tr '\n' ' ')" "response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed " &&
            events_match_types && ! grep -q '^data: \[DONE\]' "$T/body" &&
            sse_json | jq -e --arg t "$2" '(to_entries | all(.value.sequence_number == .key))
                and (.[0].response.status == "in_progress")
                and ([.[] | select(.type == "response.output_text.done")][0].text == $t)
                and (.[-1].response.status == "completed") and (.[-1].response.output[0].content[0].text == $t)
                and (.[-1].response.usage.total_tokens > 0)' >/dev/null ;;
    chat | openrouter)
        is "$(sse_data | tail -1)" '[DONE]' && ! grep -q '^event:' "$T/body" &&
            sse_json | jq -e 'all(.object == "chat.completion.chunk") and (map(.id) | unique | length == 1)
                and (.[0].choices[0].delta.role == "assistant")
                and ([.[] | .choices[]? | select(.finish_reason == "stop")] | length == 1)
                and (.[-1].choices == [] and .[-1].usage.total_tokens > 0)' >/dev/null ;;
    messages)
        is "$(sse_events | uniq | tr '\n' ' ')" "message_start content_block_start ping content_block_delta content_block_stop message_delta message_stop " &&
            events_match_types &&
            sse_json | jq -e '(.[0].message.role == "assistant") and (.[0].message.content == [])
                and (.[-2].delta.stop_reason == "end_turn") and (.[-2].usage.output_tokens > 0)' >/dev/null ;;
    esac
}

# json_complete API TEXT: $T/body is API's whole non-streamed reply object.
json_complete() {
    case $1 in
    responses) js --arg t "$2" '.object == "response" and .status == "completed" and .output[0].type == "message"
        and .output[0].content[0].type == "output_text" and .usage.total_tokens > 0 and .instructions == "be brief"' ;;
    chat | openrouter) js '.object == "chat.completion" and .choices[0].message.role == "assistant"
        and .choices[0].finish_reason == "stop" and .usage.total_tokens > 0' ;;
    messages) js '.type == "message" and .role == "assistant" and .content[0].type == "text"
        and .stop_reason == "end_turn" and .usage.output_tokens > 0' ;;
    esac
}

# error_shape API STATUS: $T/body is API's error document for STATUS.
error_shape() {
    case $1:$2 in
    openrouter:*) js --argjson s "$2" '.error.code == $s and (.error.message | type) == "string"' ;;
    messages:*)
        local type
        type=$(jq -rn --argjson s "$2" '{"400":"invalid_request_error","401":"authentication_error","404":"not_found_error",
            "413":"request_too_large","429":"rate_limit_error","500":"api_error","529":"overloaded_error"}[$s | tostring]')
        js --arg t "$type" '.type == "error" and .error.type == $t and (.error.message | type) == "string"' ;;
    *:429) js '.error.type == "requests" and .error.code == "rate_limit_exceeded" and (.error.message | type) == "string"' ;;
    *:5*) js '.error.type == "server_error" and (.error.message | type) == "string"' ;;
    *) js '.error.type == "invalid_request_error" and (.error.message | type) == "string" and (.error | has("param") and has("code"))' ;;
    esac
}

APIS="responses chat openrouter messages"
EXPECT='Hello, wörld ✓ "quoted" {braces} done.'

echo "== endpoints x stream/non-stream"
for api in $APIS; do
    for stream in false true; do
        n="$api stream=$stream"
        call "$api" "$stream" "say it [[mock:text=$EXPECT]]"
        check "$n: 200" is "$STATUS" 200
        check "$n: text" is "$(reply_text "$api" "$stream")" "$EXPECT"
        check "$n: request id header" test -n "$(header x-request-id)$(header request-id)"
        if [ "$stream" = true ]; then
            check "$n: content type" is "$(header content-type)" 'text/event-stream; charset=utf-8'
            check "$n: complete stream" stream_complete "$api" "$EXPECT"
            check "$n: several deltas" test "$(delta_count "$api")" -ge 5
        else
            check "$n: content type" is "$(header content-type)" 'application/json'
            check "$n: reply object" json_complete "$api" "$EXPECT"
        fi
    done
done
call openrouter true 'hi'
check "openrouter: keep-alive comment" grep -qx ': OPENROUTER PROCESSING' "$T/body"
check "openrouter: usage chunk unasked" stream_complete openrouter ''
post /v1/chat/completions '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' -H "Authorization: Bearer $KEY"
check "chat: no usage field unless include_usage" test "$(sse_json | jq '[.[] | select(has("usage"))] | length')" = 0
check "chat: still ends with [DONE]" is "$(sse_data | tail -1)" '[DONE]'

echo "== default reply, canary, input shapes"
call chat false 'hello there'
check "default reply" is "$(reply_text chat false)" 'mock reply to: hello there'
long=$(printf 'x%.0s' $(seq 300))
call messages true "$long"
check "echo truncated to 200 chars" is "$(reply_text messages true)" "mock reply to: ${long:0:200}"
call responses false 'Please reply with exactly KHEISH_ROUTE_CANARY_OK [[mock:delay_ms=1]]'
check "canary (responses)" is "$(reply_text responses false)" KHEISH_ROUTE_CANARY_OK
call openrouter true 'route check: answer KHEISH_ROUTE_CANARY_OK'
check "canary (openrouter stream)" is "$(reply_text openrouter true)" KHEISH_ROUTE_CANARY_OK
post /v1/responses "$(jq -nc '{model:"m", input:[{role:"user",content:[{type:"input_text",text:"first"}]},
    {type:"message",role:"assistant",content:[{type:"output_text",text:"ok"}]},
    {role:"user",content:[{type:"input_text",text:"second"}]}]}')" -H "Authorization: Bearer $KEY"
check "responses: input items, last user turn" is "$(reply_text responses false)" 'mock reply to: second'
call chat true 'abc [[mock:chunk_size=1,repeat=3,text=ab✓]]'
check "chunk_size=1 + repeat" is "$(reply_text chat true)" 'ab✓ab✓ab✓'
check "chunk_size=1: one delta per character" test "$(delta_count chat)" = 9

echo "== auth"
for api in $APIS; do
    CALL_KEY=wrong-key call "$api" false 'hi'
    check "$api: wrong key 401" is "$STATUS" 401
    check "$api: wrong key shape" error_shape "$api" 401
    CALL_KEY='' call "$api" true 'hi'
    check "$api: no key 401" is "$STATUS" 401
    check "$api: no key shape" error_shape "$api" 401
done
CALL_KEY=wrong-key call responses false hi
check "openai: invalid_api_key code" js '.error.code == "invalid_api_key"'
post /v1/messages '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}' -H "x-api-key: $KEY"
check "anthropic: anthropic-version required" is "$STATUS" 400
check "anthropic: anthropic-version error shape" error_shape messages 400

echo "== scripted status"
for api in $APIS; do
    text="retry me on $api [[mock:status=429,retry_after=1,times=2]]"
    for i in 1 2; do
        call "$api" false "$text"
        check "$api: 429 #$i" is "$STATUS" 429
        check "$api: Retry-After #$i" is "$(header retry-after)" 1
        check "$api: 429 shape #$i" error_shape "$api" 429
    done
    call "$api" true "$text"
    check "$api: 200 after times=2" is "$STATUS" 200
    check "$api: stream after 429s" stream_complete "$api" "mock reply to: retry me on $api"
    call "$api" false "$text [[mock:delay_ms=1]]"
    check "$api: another directive set counts apart" is "$STATUS" 429
    for i in 1 2; do
        call "$api" "$([ $i = 1 ] && echo true || echo false)" "boom on $api [[mock:status=500]]"
        check "$api: 500 #$i" is "$STATUS" 500
        check "$api: 500 shape #$i" error_shape "$api" 500
    done
done
call messages false 'busy [[mock:status=529]]'
check "anthropic: 529 overloaded" error_shape messages 529
call chat false 'reset me [[mock:status=429,times=1]]'
check "times=1: first 429" is "$STATUS" 429
call chat false 'reset me [[mock:status=429,times=1]]'
check "times=1: then 200" is "$STATUS" 200

echo "== malformed, cut, hang"
for api in $APIS; do
    call "$api" true "go [[mock:malformed]]"
    check "$api malformed stream: 200, clean close" is "$STATUS:$CURL_RC" 200:0
    check "$api malformed stream: a data line is no JSON" some_data_not_json
    check "$api malformed stream: no final event" lacks_re "$(final_marker "$api")" "$T/body"
    call "$api" false "go [[mock:malformed]]"
    check "$api malformed json: 200" is "$STATUS:$CURL_RC" 200:0
    check "$api malformed json: not JSON" not_json "$T/body"

    call "$api" true "go [[mock:cut]]"
    check "$api cut stream: transfer cut (curl 18)" is "$CURL_RC" 18
    check "$api cut stream: some deltas" test "$(grep -c '^data: ' "$T/body")" -ge 2
    check "$api cut stream: no final event" lacks_re "$(final_marker "$api")" "$T/body"
    call "$api" false "go [[mock:cut]]"
    check "$api cut json: transfer cut (curl 18)" is "$CURL_RC" 18

    call "$api" true "go [[mock:hang]]" --max-time 2
    check "$api hang stream: curl timed out (28)" is "$STATUS:$CURL_RC" 200:28
    check "$api hang stream: first frames arrived" test "$(grep -c '^data: ' "$T/body")" -ge 1
    check "$api hang stream: no final event" lacks_re "$(final_marker "$api")" "$T/body"
done
call chat false "go [[mock:hang]]" --max-time 1
check "hang json: headers then timeout" is "$STATUS:$CURL_RC" 200:28
curl -sS -o "$T/body" -w '%{http_code}' "$BASE/_mock/health" >"$T/status"
check "healthy after hangs" is "$(cat "$T/status")" 200
established() { # connections in state ESTABLISHED on the server's side
    grep -ciE "^ *[0-9]+: 0100007F:$(printf %04X "$PORT") [0-9A-F]{8}:[0-9A-F]{4} 01 " /proc/net/tcp
}
for _ in $(seq 50); do
    [ "$(established)" = 0 ] && break
    sleep 0.1
done
check "hung connections released" is "$(established)" 0
curl -sS -o "$T/body" "$BASE/_mock/requests"
check "hangs recorded as released" js '[.[] | select(.script == "hang")] | length == 5 and all(.outcome == "hang" and .status == 200)'

echo "== timing"
t=$(curl -sS -N -o "$T/body" -w '%{time_starttransfer}' -H "Authorization: Bearer $KEY" \
    --data-binary '{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"slow [[mock:delay_ms=600]]"}]}' \
    "$BASE/v1/chat/completions")
check "delay_ms: first byte after 0.6 s" awk -v t="$t" 'BEGIN { exit !(t >= 0.6) }'
check "delay_ms: then the whole stream" stream_complete chat 'mock reply to: slow'
: >"$T/body"
t=$(curl -sS -N -o "$T/body" -w '%{time_starttransfer} %{time_total}' -H "Authorization: Bearer $KEY" \
    --data-binary '{"model":"m","stream":true,"messages":[{"role":"user","content":"[[mock:chunk_delay_ms=100,chunk_size=4,text=abcdefgh]]"}]}' \
    "$BASE/v1/chat/completions")
# 1 role chunk + 2 deltas + finish + [DONE] = 5 frames, 4 gaps
check "chunk_delay_ms: frames spaced, headers early" awk -v a="${t% *}" -v b="${t#* }" 'BEGIN { exit !(a < 0.3 && b >= 0.4) }'
check "chunk_delay_ms: text intact" is "$(reply_text chat true)" abcdefgh

echo "== bad requests and limits"
head -c $((9 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big"
for api in responses messages; do
    path=/v1/responses
    [ $api = messages ] && path=/v1/messages
    STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $KEY" -H "x-api-key: $KEY" \
        --data-binary @"$T/big" "$BASE$path")
    check "$api: 9 MiB body 413" is "$STATUS" 413
    check "$api: 413 shape" error_shape "$api" 413
done
post /v1/nope '{}' -H "Authorization: Bearer $KEY"
check "unknown path 404" is "$STATUS" 404
check "unknown path shape" error_shape chat 404
post /v1/messages/nope '{}' -H "x-api-key: $KEY"
check "unknown anthropic path 404 shape" error_shape messages 404
STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' "$BASE/v1/responses" -H "Authorization: Bearer $KEY")
check "GET on a POST endpoint 405" is "$STATUS" 405
post /v1/chat/completions '{"model":' -H "Authorization: Bearer $KEY"
check "invalid JSON 400" is "$STATUS" 400
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}]}' -H "Authorization: Bearer $KEY"
check "missing model 400" js '.error.param == "model"'
post /v1/messages '{"model":"m","messages":[{"role":"user","content":"x"}]}' -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01'
check "anthropic: missing max_tokens 400" is "$STATUS" 400
call responses false 'x [[mock:bogus=1]]'
check "unknown directive 400" is "$STATUS" 400
check "unknown directive says so" js '.error.message | test("unknown key .bogus.")'
call messages false 'x [[mock:delay_ms=-5]]'
check "out-of-range directive 400" error_shape messages 400

echo "== tool calls"
# The tool offered, in each API's shape.
tool_of() {
    case $1 in
    responses) echo '{"type":"function","name":"get","description":"d","parameters":{"type":"object","properties":{}},"strict":false}' ;;
    chat | openrouter) echo '{"type":"function","function":{"name":"get","description":"d","parameters":{"type":"object"}}}' ;;
    messages) echo '{"name":"get","description":"d","input_schema":{"type":"object"}}' ;;
    esac
}
# tcall API STREAM TEXT [JQ]: a request in API's shape offering the tool
# `get`, its one message the user's TEXT, changed by the jq filter JQ.
tcall() {
    local api=$1 stream=$2 text=$3 filter=${4:-.} body
    body=$(jq -nc --arg t "$text" --argjson s "$stream" --argjson tool "$(tool_of "$api")" --arg api "$api" '
        {model: "mock-1", stream: $s, tools: [$tool]}
        + if $api == "responses" then {input: [{role: "user", content: $t}]}
          elif $api == "messages" then {max_tokens: 64, messages: [{role: "user", content: $t}]}
          else {messages: [{role: "user", content: $t}]} end' | jq -c "$filter") || return 1
    case $api in
    responses) post /v1/responses "$body" -H "Authorization: Bearer $KEY" ;;
    chat) post /v1/chat/completions "$body" -H "Authorization: Bearer $KEY" ;;
    openrouter) post /api/v1/chat/completions "$body" -H "Authorization: Bearer $KEY" ;;
    messages) post /v1/messages "$body" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' ;;
    esac
}
# stream_calls API: the calls of the stream in $T/body, [{name, args}] in
# order, their arguments put together from the fragments.
stream_calls() {
    case $1 in
    responses) sse_json | jq -c '
        [.[] | select(.type == "response.output_item.added" and .item.type == "function_call") | .item] as $items
        | (reduce (.[] | select(.type == "response.function_call_arguments.delta")) as $d ({}; .[$d.item_id] += $d.delta)) as $a
        | [$items[] | {name, args: ($a[.id] // "")}]' ;;
    chat | openrouter) sse_json | jq -c '[.[] | .choices[]?.delta.tool_calls[]?] | group_by(.index)
        | map({name: (map(.function.name // empty) | first), args: (map(.function.arguments // "") | join(""))})' ;;
    messages) sse_json | jq -c '
        [.[] | select(.type == "content_block_start" and .content_block.type == "tool_use") | {index, name: .content_block.name}] as $b
        | (reduce (.[] | select(.delta.type? == "input_json_delta")) as $d ({}; .[$d.index | tostring] += $d.delta.partial_json)) as $a
        | [$b[] | {name, args: ($a[.index | tostring] // "")}]' ;;
    esac
}
# stream_says_calls API WANT: the stream in $T/body ends saying it waits for
# its calls (and Responses' whole arguments, repeated, are WANT's).
stream_says_calls() {
    case $1 in
    responses) sse_json | jq -e --argjson w "$2" '(.[-1].type == "response.completed")
        and ([.[-1].response.output[] | select(.type == "function_call") | {name, args: .arguments}] == $w)
        and ([.[] | select(.type == "response.function_call_arguments.done") | {name, args: .arguments}] == $w)' >/dev/null ;;
    chat | openrouter) sse_json | jq -e '[.[] | .choices[]? | select(.finish_reason != null) | .finish_reason] == ["tool_calls"]' >/dev/null ;;
    messages) sse_json | jq -e '.[-2].delta.stop_reason == "tool_use" and .[-1].type == "message_stop"' >/dev/null ;;
    esac
}
ARGS='{"city":"Zürich","q":"a \"b\" \\c ✓ 😀"}'
WANT=$(jq -nc --arg a "$ARGS" '[{name: "get", args: $a}, {name: "get", args: "{}"}]')
for api in $APIS; do
    tcall "$api" true "go [[mock:args_chunk=3]] [[mock:call=get:$ARGS]] [[mock:call=get:{}]]"
    check "$api tools: 200" is "$STATUS" 200
    check "$api tools: calls from the fragments" is "$(stream_calls "$api")" "$WANT"
    check "$api tools: the stream says it waits for calls" stream_says_calls "$api" "$WANT"
    check "$api tools: no text" is "$(reply_text "$api" true)" ''
    tcall "$api" false "go [[mock:call=get:$ARGS]]"
    case $api in
    responses) check "$api tools json" js --arg a "$ARGS" '[.output[] | select(.type == "function_call")] | length == 1 and .[0].name == "get" and .[0].arguments == $a and (.[0].call_id | startswith("call_"))' ;;
    chat | openrouter) check "$api tools json" js --arg a "$ARGS" '.choices[0] | .finish_reason == "tool_calls" and .message.content == null and .message.tool_calls[0].function == {name: "get", arguments: $a} and .message.tool_calls[0].type == "function"' ;;
    messages) check "$api tools json" js --arg a "$ARGS" '.stop_reason == "tool_use" and .content[0].type == "tool_use" and .content[0].input == ($a | fromjson) and (.content[0].id | startswith("toolu_"))' ;;
    esac
    tcall "$api" true "split [[mock:args_chunk=1]] [[mock:call=get:$ARGS]]"
    check "$api tools: one character a fragment" is "$(stream_calls "$api")" "$(jq -nc --arg a "$ARGS" '[{name: "get", args: $a}]')"
    tcall "$api" true "bytes [[mock:args_chunk=2,write_bytes=3]] [[mock:call=get:$ARGS]]"
    check "$api tools: written 3 bytes at a time" is "$(stream_calls "$api")" "$(jq -nc --arg a "$ARGS" '[{name: "get", args: $a}]')"
    tcall "$api" true 'bad [[mock:text=Hm.]] [[mock:call=get:{"city":]]'
    check "$api tools: malformed arguments as scripted, after the text" is "$(stream_calls "$api")" '[{"name":"get","args":"{\"city\":"}]'
    check "$api tools: the text first" is "$(reply_text "$api" true)" 'Hm.'
done
tcall chat true 'two [[mock:call=get:{"a":1111}]] [[mock:call=get:{"b":2222}]] [[mock:args_chunk=2,interleave]]'
check "interleave: fragments alternate" is "$(sse_json | jq -c '[.[] | .choices[]?.delta.tool_calls[]? | select(.function.arguments != "") | .index] | .[0:4]')" '[0,1,0,1]'
check "interleave: calls intact" is "$(stream_calls chat)" '[{"name":"get","args":"{\"a\":1111}"},{"name":"get","args":"{\"b\":2222}"}]'
tcall messages true 'two [[mock:call=get:{"a":1}]] [[mock:call=get:{}]] [[mock:args_chunk=1,interleave]]'
check "interleave (messages): blocks 0 and 1 alternate" is "$(sse_json | jq -c '[.[] | select(.delta.type? == "input_json_delta") | .index] | .[0:4]')" '[0,1,0,1]'

echo "== tool results, the next turns"
CHAT_ROUND='.messages += [{role: "assistant", content: null, tool_calls: [{id: "c1", type: "function", function: {name: "get", arguments: "{}"}}]}, {role: "tool", tool_call_id: "c1", content: "R1"}]'
tcall chat true 'go [[mock:call=get:{}]]' "$CHAT_ROUND"
check "chat: a result reaches the model" is "$(reply_text chat true)" 'got: R1'
tcall openrouter false 'go [[mock:call=get:{}]] [[mock@2:text=second turn]]' "$CHAT_ROUND"
check "openrouter: turn 2 scripted" is "$(reply_text openrouter false)" 'second turn'
tcall chat false 'go [[mock:call=get:{}]] [[mock@2:call=get:{"n":2}]] [[mock@3:text=third]]' "$CHAT_ROUND"
check "chat: turn 2 calls again" js '.choices[0].message.tool_calls[0].function.arguments == "{\"n\":2}"'
tcall chat false 'go [[mock:call=get:{}]] [[mock@2:call=get:{"n":2}]] [[mock@3:text=third]]' "$CHAT_ROUND | $CHAT_ROUND | .messages[3].tool_calls[0].id = \"c2\" | .messages[4].tool_call_id = \"c2\""
check "chat: turn 3 after two rounds" is "$(reply_text chat false)" 'third'
tcall responses true 'go [[mock:call=get:{}]] [[mock:call=get:{}]]' '.input += [{type: "function_call", call_id: "c1", name: "get", arguments: "{}"}, {type: "function_call", call_id: "c2", name: "get", arguments: "{}"}, {type: "function_call_output", call_id: "c1", output: "R1"}, {type: "function_call_output", call_id: "c2", output: "R2"}]'
check "responses: results reach the model" is "$(reply_text responses true)" 'got: R1 | R2'
tcall messages true 'go [[mock:call=get:{}]] [[mock:call=get:{}]]' '.messages += [{role: "assistant", content: [{type: "text", text: "Looking."}, {type: "tool_use", id: "t1", name: "get", input: {}}, {type: "tool_use", id: "t2", name: "get", input: {}}]}, {role: "user", content: [{type: "tool_result", tool_use_id: "t1", content: "R1"}, {type: "tool_result", tool_use_id: "t2", content: [{type: "text", text: "R2"}], is_error: true}]}]'
check "messages: results reach the model, is_error too" is "$(reply_text messages true)" 'got: R1 | [error] R2'

echo "== tool shapes the wrong dialect's"
# reject NAME API PHRASE JQ: tcall API's request, changed by JQ, is refused
# with a 400 in API's error shape whose message holds PHRASE.
reject() {
    tcall "$2" false 'x' "$4"
    check "$1: 400" is "$STATUS" 400
    check "$1: says why" js --arg p "$3" '.error.message | contains($p)'
    check "$1: error shape" error_shape "$2" 400
}
A_CALL='{type: "function_call", call_id: "c1", name: "get", arguments: "{}"}'
reject "responses: a chat tool" responses "'tools[0].function'" '.tools = [{type: "function", function: {name: "get", parameters: {type: "object"}}}]'
reject "responses: tool_choice without tools" responses "only allowed when 'tools'" 'del(.tools) | .tool_choice = "auto"'
reject "responses: parallel_tool_calls without tools" responses "only allowed when 'tools'" 'del(.tools) | .parallel_tool_calls = false'
reject "responses: a chat tool_choice" responses "Invalid value for 'tool_choice'" '.tool_choice = {type: "function", function: {name: "get"}}'
reject "responses: a forced tool not offered" responses "not found in 'tools'" '.tool_choice = {type: "function", name: "nope"}'
reject "responses: a call without output" responses 'No tool output found for function call c1' ".input += [$A_CALL]"
reject "responses: an output of no call" responses 'No tool call found' '.input += [{type: "function_call_output", call_id: "c9", output: "r"}]'
reject "responses: arguments not a string" responses 'expected a string' ".input += [$A_CALL | .arguments = {}, {type: \"function_call_output\", call_id: \"c1\", output: \"r\"}]"
reject "chat: a Responses tool" chat "'tools[0].name'" '.tools = [{type: "function", name: "get", parameters: {type: "object"}}]'
reject "chat: a Responses tool_choice" chat "Invalid value for 'tool_choice'" '.tool_choice = {type: "function", name: "get"}'
reject "chat: tool_choice without tools" chat "only allowed when 'tools'" 'del(.tools) | .tool_choice = "none"'
reject "chat: calls without results" chat 'did not have response messages: c1' '.messages += [{role: "assistant", content: null, tool_calls: [{id: "c1", type: "function", function: {name: "get", arguments: "{}"}}]}]'
reject "chat: a result of no call" openrouter 'must be a response to a preceeding message' '.messages += [{role: "tool", tool_call_id: "c1", content: "r"}]'
reject "chat: arguments not a string" chat 'expected a string' '.messages += [{role: "assistant", tool_calls: [{id: "c1", type: "function", function: {name: "get", arguments: {}}}]}, {role: "tool", tool_call_id: "c1", content: "r"}]'
reject "chat: is_error on a tool message" chat "'messages[2].is_error'" "$CHAT_ROUND | .messages[2].is_error = true"
reject "messages: an OpenAI tool" messages 'tools.0.parameters: Extra inputs' '.tools = [{type: "function", name: "get", parameters: {type: "object"}}]'
reject "messages: parallel_tool_calls" messages 'parallel_tool_calls: Extra inputs' '.parallel_tool_calls = false'
reject "messages: an OpenAI tool_choice" messages 'tool_choice: Input should be an object' '.tool_choice = "auto"'
reject "messages: none with disable_parallel_tool_use" messages 'Extra inputs are not permitted' '.tool_choice = {type: "none", disable_parallel_tool_use: true}'
reject "messages: tool blocks without tools" messages 'must define tools' 'del(.tools) | .messages += [{role: "assistant", content: [{type: "tool_use", id: "t1", name: "get", input: {}}]}, {role: "user", content: [{type: "tool_result", tool_use_id: "t1", content: "r"}]}]'
reject "messages: results not first" messages 'at the beginning of this message' '.messages += [{role: "assistant", content: [{type: "tool_use", id: "t1", name: "get", input: {}}]}, {role: "user", content: [{type: "text", text: "hm"}, {type: "tool_result", tool_use_id: "t1", content: "r"}]}]'
reject "messages: a call without result" messages 'Did not find 1 tool_result block(s)' '.messages += [{role: "assistant", content: [{type: "tool_use", id: "t1", name: "get", input: {}}]}, {role: "user", content: "next"}]'
reject "messages: ends with a call" messages 'ids were found without `tool_result` blocks immediately after: t1' '.messages += [{role: "assistant", content: [{type: "tool_use", id: "t1", name: "get", input: {}}]}]'
reject "messages: a result of no call" messages 'unexpected `tool_use_id`' '.messages = [{role: "user", content: [{type: "tool_result", tool_use_id: "t1", content: "r"}]}]'
reject "messages: input not an object" messages 'valid dictionary' '.messages += [{role: "assistant", content: [{type: "tool_use", id: "t1", name: "get", input: "{}"}]}, {role: "user", content: [{type: "tool_result", tool_use_id: "t1", content: "r"}]}]'
reject "messages: a tool role" messages "Input should be 'user' or 'assistant'" '.messages += [{role: "tool", tool_call_id: "c1", content: "r"}]'
call chat false 'x [[mock:call=two words:{}]]'
check "call=: a bad tool name is a 400" js '.error.message | contains("tool name")'
call chat false 'x [[mock:args_chunk=0]]'
check "args_chunk=0 is a 400" is "$STATUS" 400

echo "== control API"
curl -sS -o "$T/body" "$BASE/_mock/requests"
check "requests: a JSON list" js 'type == "array" and length > 50'
check "requests: bearer key hashed" js --arg h "Bearer $KEY_SHA" '[.[] | select(.path == "/v1/chat/completions" and .status == 200)][0].headers.authorization == $h'
check "requests: x-api-key hashed" js --arg h "$KEY_SHA" '[.[] | select(.path == "/v1/messages" and .status == 200)][0].headers["x-api-key"] == $h'
check "requests: parsed body" js '[.[] | select(.path == "/v1/messages" and .status == 200)][0].body.messages[0].role == "user"'
check "requests: status, outcome and script" js 'any(.status == 429 and .script == "status=429,retry_after=1,times=2" and .outcome == "complete")'
check "requests: no raw key" lacks "$KEY" "$T/body"
check "log: no raw key" lacks "$KEY" "$T/server.log"
check "log: one JSON object a line" log_is_json_lines
check "log: cut, malformed and hang outcomes" is "$(jq -r 'select(.outcome == "cut" or .outcome == "malformed" or .outcome == "hang").outcome' "$T/server.log" | sort -u | tr '\n' ' ')" 'cut hang malformed '
STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' -X POST "$BASE/_mock/reset")
check "reset 200" is "$STATUS" 200
curl -sS -o "$T/body" "$BASE/_mock/requests"
check "reset clears the list" js '. == []'
call chat false 'reset me [[mock:status=429,times=1]]'
check "reset clears times counters" is "$STATUS" 429
STATUS=$(curl -sS -o "$T/body" -w '%{http_code}' "$BASE/_mock/health")
check "health 200" is "$STATUS" 200

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
