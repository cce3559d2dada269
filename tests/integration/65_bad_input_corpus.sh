# Bad-input corpus: every case of tests/bad-input/cases.tsv (format in its
# header) is sent through nginx with api() and must be answered with its
# expected 4xx status as an application/problem+json document with a
# non-empty string `code` and the same `status`, never a 5xx; the corpus must
# change no row (checked after the big-body group and at the end) and must
# make kheish-fcgi log no error or crash. One line per failing case.
# (Kept to few processes per case: a fork costs ~10 ms on a loaded box, so
# expansion and header checks are bash builtins and jq runs once at the end.)
CORPUS_DIR=tests/bad-input
CASES=${BAD_INPUT_CASES:-$CORPUS_DIR/cases.tsv} # another file, to debug a subset
MIN_CASES=200
corpus_started=$SECONDS
FCGI_LOG=$STATE_ROOT/logs/fcgi.log
log_offset=$(stat -c %s "$FCGI_LOG" 2>/dev/null || echo 0)

# The objects the cases point at: {session} with a queued run {run} and an
# earlier submission under Idempotency-Key {idem}; {ended} ended, its run
# {done} cancelled (requests that a lenient server would accept there change
# nothing).
c_session=$(uid) c_ended=$(uid) c_idem=idem-$(uid)
api POST /v1/sessions "{\"session_id\":\"$c_session\"}"
expect_status 201
api POST "/v1/sessions/$c_session/runs" '{"content":"corpus"}'
expect_status 202
c_run=$(jqr .run_id)
api POST "/v1/sessions/$c_session/runs" '{"content":"corpus replay"}' -H "Idempotency-Key: $c_idem"
expect_status 202
api POST /v1/sessions "{\"session_id\":\"$c_ended\"}"
expect_status 201
api POST "/v1/sessions/$c_ended/runs" '{"content":"to cancel"}'
expect_status 202
c_done=$(jqr .run_id)
api POST "/v1/runs/$c_done/cancel" '{}'
expect_json '.status == "cancelled"'
api POST "/v1/sessions/$c_ended/end" '{"reason":"corpus"}'
expect_status 200
before=$(row_counts)
workers() { pgrep -P "$(cat "$STATE_ROOT/run/fcgi.pid")" | sort; }
workers_before=$(workers)

# expand TEXT: sets REPLY to TEXT with the placeholders of cases.tsv filled in.
expand() {
    local s=$1 pad
    s=${s//\{session\}/$c_session}
    s=${s//\{run\}/$c_run}
    s=${s//\{ended\}/$c_ended}
    s=${s//\{done\}/$c_done}
    s=${s//\{idem\}/$c_idem}
    while [[ $s =~ \{rep:([^:]*):([0-9]+)\} ]]; do
        printf -v pad '%*s' "${BASH_REMATCH[2]}" ''
        s=${s/"${BASH_REMATCH[0]}"/"${pad// /"${BASH_REMATCH[1]}"}"}
    done
    REPLY=$s
}

repeat() { # STRING COUNT: STRING COUNT times, to stdout
    local pad
    printf -v pad '%*s' "$2" ''
    printf '%s' "${pad// /"$1"}"
}

# body_file SPEC: sets BODY_PATH to a file holding the body ("" for none).
# Generated bodies are made once per distinct spec, in $RESP_DIR.
declare -A body_cache=()
body_seq=0
body_file() {
    local spec=$1 f n field
    BODY_PATH=
    case $spec in
    -) return ;;
    @file:*)
        BODY_PATH=$CORPUS_DIR/${spec#@file:}
        return
        ;;
    esac
    if [ -n "${body_cache[$spec]-}" ]; then
        BODY_PATH=${body_cache[$spec]}
        return
    fi
    body_seq=$((body_seq + 1))
    f=$RESP_DIR/case-body-$body_seq
    case $spec in
    @empty) : >"$f" ;;
    @esc:*)
        expand "${spec#@esc:}"
        printf '%b' "$REPLY" >"$f"
        ;;
    @deep:*)
        n=${spec#@deep:}
        { repeat '[' "$n"; repeat ']' "$n"; } >"$f"
        ;;
    @deepobj:*)
        n=${spec#@deepobj:}
        { repeat '{"a":' "$n"; printf 1; repeat '}' "$n"; } >"$f"
        ;;
    @deepin:*)
        field=${spec#@deepin:} n=${field##*:} field=${field%:*}
        { printf '{"%s":' "$field"; repeat '{"a":' "$n"; printf 1; repeat '}' "$n"; printf '}'; } >"$f"
        ;;
    @bytes:*)
        n=${spec#@bytes:}
        case $n in
        *K) n=$((${n%K} * 1024)) ;;
        *M) n=$((${n%M} * 1024 * 1024)) ;;
        esac
        { printf '{"content":"'; head -c $((n - 14)) /dev/zero | tr '\0' a; printf '"}'; } >"$f"
        ;;
    @*)
        fail "cases.tsv:$lineno: unknown body generator '$spec'"
        : >"$f"
        ;;
    *)
        expand "$spec"
        printf '%s' "$REPLY" >"$f"
        ;;
    esac
    body_cache[$spec]=$f
    BODY_PATH=$f
}

# response_type: sets REPLY to the Content-Type of the last response.
response_type() {
    local line
    REPLY=
    while IFS= read -r line; do
        line=${line%$'\r'}
        if [[ ${line,,} == content-type:* ]]; then
            REPLY=${line#*:}
            REPLY=${REPLY# }
            return
        fi
    done <"$HEADER_FILE"
}

check_rows() { # WHEN
    local now
    now=$(row_counts)
    [ "$now" = "$before" ] || fail "the corpus changed rows ($1): $before -> $now"
}

total=0 lineno=0 prev_category=
declare -A per_category=() why=() summary_of=()
RESULTS=$RESP_DIR/corpus-results # lineno TAB status TAB body, one line per case

while IFS=$'\t' read -r want method path body headers category extra; do
    lineno=$((lineno + 1))
    case $want in '' | '#'*) continue ;; esac
    if [ -z "$category" ] || [ -n "$extra" ]; then
        fail "cases.tsv:$lineno: expected 6 tab-separated columns"
        continue
    fi
    if [ "$prev_category" = big-body ] && [ "$category" != big-body ]; then
        check_rows "after the big-body group"
    fi
    prev_category=$category
    total=$((total + 1))
    per_category[$category]=$((${per_category[$category]:-0} + 1))

    args=(--path-as-is --globoff --max-time 20)
    expand "$path"
    url_path=$REPLY
    if [[ $url_path == raw:* ]]; then
        printf -v target '%b' "${url_path#raw:}"
        args+=(--request-target "$target")
        url_path=/
    fi
    ctype_given=
    if [ "$headers" != - ]; then
        rest=$headers
        while [ -n "$rest" ]; do
            h=${rest%%||*}
            if [ "$h" = "$rest" ]; then rest=; else rest=${rest#*||}; fi
            expand "$h"
            printf -v h '%b' "$REPLY"
            args+=(-H "$h")
            [[ ${h,,} == content-type:* ]] && ctype_given=1
        done
    fi
    body_file "$body"
    if [ -n "$BODY_PATH" ]; then
        args+=(--data-binary "@$BODY_PATH")
        [ -n "$ctype_given" ] || args+=(-H 'Content-Type: application/json')
    fi
    api "$method" "$url_path" '' "${args[@]}"

    response_type
    ctype=$REPLY
    IFS= read -r -d '' resp <"$BODY_FILE"
    resp=${resp//[$'\r\n\t']/ }
    problems=
    [[ "|$want|" == *"|$STATUS|"* ]] || problems="status"
    case $STATUS in 5??) problems="$problems 5xx" ;; 000) problems="$problems no-answer" ;; esac
    [[ $ctype == application/problem+json* ]] || problems="$problems content-type"
    printf '%d\t%s\t%s\n' "$lineno" "$STATUS" "$resp" >>"$RESULTS"
    why[$lineno]=$problems
    summary_of[$lineno]="[$category] $method ${path:0:100}: expected $want, got $STATUS (${ctype:-no content-type})"$'\x1f'"${resp:0:160}"
done <"$CASES"
[ "$prev_category" = big-body ] && check_rows "after the big-body group"

# One jq for every body: a JSON object with a non-empty string code and the
# response's status.
if [ -s "$RESULTS" ]; then
    while read -r n; do
        why[$n]="${why[$n]} not-a-problem"
    done < <(jq -R -r '(index("\t")) as $i | .[:$i] as $n | .[$i + 1:] as $rest |
        ($rest | index("\t")) as $j | ($rest[:$j] | tonumber? // 0) as $st |
        ($rest[$j + 1:] | try fromjson catch null) as $d |
        select(($d | type) != "object" or ($d.code | type) != "string" or
               ($d.code | length) == 0 or $d.status != $st) | $n' "$RESULTS")
fi
failures=0
for n in $(printf '%s\n' "${!why[@]}" | sort -n); do
    [ -n "${why[$n]}" ] || continue
    failures=$((failures + 1))
    FAILED=1
    s=${summary_of[$n]}
    echo "  FAIL cases.tsv:$n ${s%%$'\x1f'*} -${why[$n]}: ${s#*$'\x1f'}" >&2
done

[ "$total" -ge "$MIN_CASES" ] || fail "the corpus has $total cases, fewer than $MIN_CASES"
check_rows "at the end"

# The server still answers with the same workers, and logged neither an
# error nor a crash.
api GET /healthz
expect_status 200
[ "$(workers)" = "$workers_before" ] || fail "workers changed during the corpus: $workers_before -> $(workers)"
if [ -f "$FCGI_LOG" ]; then
    bad_log=$(tail -c +$((log_offset + 1)) "$FCGI_LOG" |
        grep -E '"level":"error"|worker_replaced|Sanitizer|runtime error:|Segmentation|Aborted' | head -n 10)
    if [ -n "$bad_log" ]; then
        fail "kheish-fcgi logged errors or a crash during the corpus:"
        echo "${bad_log:0:3000}" >&2
    fi
fi

summary=
for c in $(printf '%s\n' "${!per_category[@]}" | sort); do summary+=" $c=${per_category[$c]}"; done
echo "bad-input corpus: $total cases, $((total - failures)) passed, $failures failed," \
    "$((SECONDS - corpus_started)) s;$summary"
