#!/usr/bin/env bash
# shellcheck disable=SC1003,SC2016,SC2094 # backslashes and $ in quotes are meant; files are only read
# Checks that every `kheish ...` command fragment of the given markdown files
# still runs: an unknown verb or flag, or a wrong exit code, fails with
# FILE:LINE and the fragment. tests/integration/87_runbook.sh runs it on
# docs/runbooks/*.md and README.md.
#
#   tests/runbook-check.sh [--parse-only] [--verbose] FILE.md...
#
# --parse-only runs nothing against a stack; --verbose prints how each
# fragment was checked. KHEISH_DAEMON_URL and KHEISH_DAEMON_TOKEN_FILE (an
# admin token) name the stack the read-only fragments run against (the CLI's
# defaults otherwise): a test stack, as the checker adds a session and a run
# to it. KHEISH is the CLI (default $BIN_DIR/kheish, else bin/kheish, else
# kheish on the PATH). Needs bash, coreutils, grep, awk and jq.
#
# Fragments. A fragment is a command whose first word is `kheish` or ends in
# `/kheish` (bin/kheish), found in fenced code blocks (no language, or sh,
# bash, shell, console) and in inline code spans that start with it. It must
# stand where a command starts: at the start of a line, after `&&`, `||`,
# `|`, `;`, `(` or `$(`, after VAR=value words, or after sudo, env, time,
# exec or nohup. It ends at the next one of those, at a redirection or at a
# comment. Lines ending in `\` are joined (the fragment is reported at its
# first line); heredoc bodies are skipped. Words are unquoted as the shell
# would; `<name>` is a placeholder word, not a redirection.
#
# Every fragment is parsed: `kheish WORDS --help` must exit 0 (the CLI refuses
# an unknown command with --help as without it, and --help runs nothing), and
# each flag of the fragment must be in the usage that prints, or be a global
# flag (the first line of `kheish --help`). --token and --token-file (and
# their values) are left out of this call: the file may not exist here.
#
# Read-only fragments are then run against the stack: those with --help,
# and the commands status, doctor, doctor routes, runtime get|revisions,
# sessions list|get|events|stream, runs list|get|events|stream|wait, events
# stream and secrets list|generate (the command as its usage line names it,
# so aliases count), unless they hold --canary or --offline (a real run,
# another database), --base-url, --token or --token-file (another stack or
# identity) or `...` or `[...]` (a synopsis). Every other command
# changes state, or needs ids the checker cannot make up: it is only parsed.
# A run must exit 0, or N when its line ends in a comment that starts with
# `exits N` (`# exits 1`; it applies to the line's last fragment).
# Before a run:
#   - `demo`, `<session-id>` become a session the checker creates, and
#     `run-N`, `<run-id>` a run it submits there and cancels at once (so a
#     wait ends);
#   - the value of --routes-file becomes the stack's routes file;
#   - a stream without --timeout-ms gets `--timeout-ms 1000` (exit 0 when it
#     runs out), and every run is cut at 60 s;
#   - any other <placeholder> or $VARIABLE makes the fragment fail: write a
#     runnable value, or make the fragment a synopsis.
#
# Prints one line per failure and a summary; exits 1 when a fragment failed,
# 2 on bad usage.
set -u

READ_ONLY="status|doctor|doctor routes|runtime get|runtime revisions|sessions list|sessions get\
|sessions events|sessions stream|runs list|runs get|runs events|runs stream|runs wait|events stream\
|secrets list|secrets generate"
STREAMS="sessions stream|runs stream|events stream"
HELP_DROPS="--token|--token-file"
OTHER_STACK="--base-url|--token|--token-file"
RUN_LIMIT_S=60
FENCE_RE='^[[:space:]]*(```+|~~~+)[[:space:]]*([A-Za-z]*)'
SPAN_RE='`([^`]+)`'
PLACEHOLDER_RE='^(<[A-Za-z][A-Za-z0-9_.:-]*>)'

# in_list WORD LIST: whether WORD is one of the |-separated LIST.
in_list() { [[ "|$2|" == *"|$1|"* ]]; }

PARSE_ONLY=0 VERBOSE=0
while [ "${1-}" = --parse-only ] || [ "${1-}" = --verbose ]; do
    [ "$1" = --parse-only ] && PARSE_ONLY=1
    [ "$1" = --verbose ] && VERBOSE=1
    shift
done
if [ $# -eq 0 ]; then
    echo "usage: tests/runbook-check.sh [--parse-only] [--verbose] FILE.md..." >&2
    exit 2
fi
if [ -z "${KHEISH-}" ]; then
    if [ -n "${BIN_DIR-}" ]; then
        KHEISH=$BIN_DIR/kheish
    elif [ -x bin/kheish ]; then
        KHEISH=bin/kheish
    else
        KHEISH=kheish
    fi
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/runbook-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The global flags: the first line of `kheish --help`.
GLOBALS=$("$KHEISH" --help 2>/dev/null | head -n 1)
if [ -z "$GLOBALS" ]; then
    echo "runbook-check: cannot run $KHEISH --help" >&2
    exit 2
fi

total=0 ran=0 parsed=0 failed=0
FIX_SESSION="" FIX_RUN="" STACK_ROUTES=""

# ---- scanning ---------------------------------------------------------------

# tokenize TEXT: splits one (joined) line as the shell would into TOK (words
# unquoted, operators as written) and TOK_KIND (w word, o a command
# separator, r a redirection). Sets COMMENT to the text after an unquoted #,
# and HEREDOC to the delimiter of a << on the line.
tokenize() {
    local s=$1 i=0 c q="" cur="" inword=0 want_delim=0
    TOK=() TOK_KIND=() COMMENT="" HEREDOC=""
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        if [ "$q" = "'" ]; then
            if [ "$c" = "'" ]; then q=''; else cur+=$c; fi
            continue
        fi
        if [ "$q" = '"' ]; then
            if [ "$c" = '\' ] && [[ ${s:i+1:1} == [\"\\\$\`] ]]; then
                i=$((i + 1))
                cur+=${s:i:1}
            elif [ "$c" = '"' ]; then
                q=''
            else
                cur+=$c
            fi
            continue
        fi
        case $c in
        ' ' | $'\t') end_word ;;
        "'" | '"') q=$c inword=1 ;;
        '\')
            i=$((i + 1))
            cur+=${s:i:1} inword=1
            ;;
        '#')
            if [ $inword = 0 ]; then
                COMMENT=${s:i+1}
                break
            fi
            cur+=$c
            ;;
        ';' | '(' | ')' | '`')
            end_word
            push_op "$c" o
            ;;
        '&' | '|')
            end_word
            if [ "${s:i+1:1}" = "$c" ]; then
                push_op "$c$c" o
                i=$((i + 1))
            elif [ "$c" = '&' ] && [ "${s:i+1:1}" = '>' ]; then
                push_op '&>' r
                i=$((i + 1))
            else
                push_op "$c" o
            fi
            ;;
        '$')
            if [ "${s:i+1:1}" = '(' ]; then
                end_word
                push_op '$(' o
                i=$((i + 1))
            else
                cur+=$c inword=1
            fi
            ;;
        '<' | '>')
            if [[ $c == '<' && ${s:i} =~ $PLACEHOLDER_RE ]]; then
                cur+=${BASH_REMATCH[1]} inword=1
                i=$((i + ${#BASH_REMATCH[1]} - 1))
                continue
            fi
            [[ $cur =~ ^[0-9]+$ ]] && cur="" inword=0 # the 2 of 2>&1
            end_word
            push_op "$c" r
            if [ "${s:i:3}" = '<<<' ]; then
                i=$((i + 2))
            elif [ "${s:i:2}" = '<<' ]; then
                i=$((i + 1))
                want_delim=1
            fi
            ;;
        *) cur+=$c inword=1 ;;
        esac
    done
    end_word
}

# Helpers of tokenize, on its locals: the word so far ends; an operator.
end_word() {
    if [ $inword = 1 ] || [ -n "$cur" ]; then
        [ $want_delim = 1 ] && HEREDOC=${cur#-} want_delim=0
        TOK+=("$cur") TOK_KIND+=(w)
    fi
    cur="" inword=0
}
push_op() { TOK+=("$1") TOK_KIND+=("$2"); }

# scan_line FILE LINE TEXT: checks each fragment of one (joined) line.
scan_line() {
    local file=$1 line=$2 k cmdpos=1 from=-1 starts=() ends=() expect=0
    tokenize "$3"
    [[ $COMMENT =~ ^[[:space:]]*exits\ ([0-9]+) ]] && expect=${BASH_REMATCH[1]}
    for ((k = 0; k < ${#TOK[@]}; k++)); do
        if [ "${TOK_KIND[k]}" != w ]; then
            [ $from -ge 0 ] && ends+=("$k") && from=-1
            cmdpos=0
            [ "${TOK_KIND[k]}" = o ] && [ "${TOK[k]}" != ')' ] && cmdpos=1
        elif [ $from -lt 0 ] && [ $cmdpos = 1 ]; then
            case ${TOK[k]} in
            kheish | */kheish) from=$k starts+=("$k") ;;
            [A-Za-z_]*=* | sudo | env | time | exec | nohup | '$' | '!' | then | do | else) ;;
            *) cmdpos=0 ;;
            esac
        fi
    done
    [ $from -ge 0 ] && ends+=("${#TOK[@]}")
    for ((k = 0; k < ${#starts[@]}; k++)); do
        check_fragment "$file" "$line" "${starts[k]}" "${ends[k]}" \
            "$([ $((k + 1)) = ${#starts[@]} ] && echo "$expect" || echo 0)"
    done
}

# scan_file FILE: fenced blocks line by line, inline spans elsewhere.
scan_file() {
    local file=$1 lineno=0 raw fence="" shellish=0 heredoc="" joined="" joined_at=0 rest span
    while IFS= read -r raw || [ -n "$raw" ]; do
        lineno=$((lineno + 1))
        if [ -z "$fence" ]; then
            if [[ $raw =~ $FENCE_RE ]]; then
                fence=${BASH_REMATCH[1]:0:3}
                case ${BASH_REMATCH[2],,} in
                '' | sh | bash | shell | console | zsh) shellish=1 ;;
                *) shellish=0 ;;
                esac
                continue
            fi
            rest=$raw
            while [[ $rest =~ $SPAN_RE ]]; do
                span=${BASH_REMATCH[1]}
                rest=${rest#*"${BASH_REMATCH[0]}"}
                [[ $span =~ ^([^[:space:]]*/)?kheish([[:space:]]|$) ]] &&
                    scan_line "$file" "$lineno" "$span"
            done
            continue
        fi
        if [[ $raw =~ ^[[:space:]]*"$fence" ]]; then
            fence="" heredoc="" joined=""
        elif [ $shellish = 0 ]; then
            :
        elif [ -n "$heredoc" ]; then
            [[ $raw =~ ^[[:space:]]*"$heredoc"[[:space:]]*$ ]] && heredoc=''
        elif [[ $raw =~ ^(.*)\\$ ]]; then
            [ -z "$joined" ] && joined_at=$lineno
            joined+="${BASH_REMATCH[1]} "
        else
            [ -z "$joined" ] && joined_at=$lineno
            scan_line "$file" "$joined_at" "$joined$raw"
            heredoc=$HEREDOC joined=''
        fi
    done <"$file"
}

# ---- checking ---------------------------------------------------------------

# report FILE LINE WHAT: one failure of the current fragment.
report() {
    failed=$((failed + 1))
    echo "$1:$2: $3: $FRAGMENT"
}

# check_fragment FILE LINE FROM TO EXPECT: the words after kheish are tokens
# FROM+1 to TO-1. Parses them, then runs them when they only read.
check_fragment() {
    local file=$1 line=$2 k w name usage path only_parse=0 run=1
    WORDS=()
    for ((k = $3 + 1; k < $4; k++)); do
        w=${TOK[k]}
        case $w in
        ... | …)
            only_parse=1
            continue
            ;;
        \[* | *\]) only_parse=1 w=${w#[} w=${w%]} ;;
        esac
        name=${w%%=*}
        in_list "$name" "$OTHER_STACK" && only_parse=1
        if in_list "$name" "$HELP_DROPS"; then
            [ "$name" = "$w" ] && k=$((k + 1)) # and its value
            continue
        fi
        WORDS+=("$w")
    done
    [ $(($4 - $3)) = 1 ] && return 0 # `kheish` alone: the program's name in prose
    total=$((total + 1))
    FRAGMENT=${TOK[$3]}
    for w in "${TOK[@]:$3+1:$4-$3-1}"; do
        [[ $w == *[[:space:]]* ]] && w="\"$w\""
        FRAGMENT+=" $w"
    done
    if ! env -u KHEISH_DAEMON_TOKEN -u KHEISH_DAEMON_TOKEN_FILE \
        "$KHEISH" "${WORDS[@]}" --help >"$WORK/usage" 2>"$WORK/err" </dev/null; then
        name=$(head -n 1 "$WORK/err")
        report "$file" "$line" "${name:-kheish: --help failed}"
        return 0
    fi
    usage="$GLOBALS $(cat "$WORK/usage")"
    # The command as its usage line names it: the words after `usage: kheish`
    # up to the first that is no plain word.
    path=$(awk 'NR == 1 { for (i = 3; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++)
                            p = p (i > 3 ? " " : "") $i; print p }' "$WORK/usage")
    in_list "$path" "$READ_ONLY" || run=0
    for w in "${WORDS[@]}"; do
        [ "$w" = -- ] && break
        name=${w%%=*}
        case $name in
        -h | --help) run=1 && continue ;;
        --offline | --canary) only_parse=1 ;;
        -?*) ;;
        *) continue ;;
        esac
        if ! grep -qE -- "(^|[^A-Za-z0-9-])$name([^A-Za-z0-9-]|\$)" <<<"$usage"; then
            report "$file" "$line" "unknown flag $name for 'kheish $path'"
            return 0
        fi
    done
    if [ $PARSE_ONLY = 1 ] || [ $only_parse = 1 ] || [ $run = 0 ]; then
        parsed=$((parsed + 1))
        [ $VERBOSE = 1 ] && echo "$file:$line: parsed: $FRAGMENT"
        return 0
    fi
    ran=$((ran + 1))
    [ $VERBOSE = 1 ] && echo "$file:$line: run (exit $5): $FRAGMENT"
    run_fragment "$file" "$line" "$path" "$5"
}

# run_fragment FILE LINE PATH EXPECT: runs WORDS, placeholders filled in.
run_fragment() {
    local file=$1 line=$2 k w prev="" timed=0 rc argv=()
    for ((k = 0; k < ${#WORDS[@]}; k++)); do
        w=${WORDS[k]}
        if [[ $w == demo || $w == *'<session-id>'* || $w == *'<session_id>'* ]]; then
            fixture
            w=${w//<session-id>/$FIX_SESSION} w=${w//<session_id>/$FIX_SESSION}
            [ "$w" = demo ] && w=$FIX_SESSION
        fi
        if [[ $w =~ ^run-[0-9]+$ || $w == *'<run-id>'* || $w == *'<run_id>'* ]]; then
            fixture
            w=${w//<run-id>/$FIX_RUN} w=${w//<run_id>/$FIX_RUN}
            [[ $w =~ ^run-[0-9]+$ ]] && w=$FIX_RUN
        fi
        if [ "$prev" = --routes-file ] && ! stack_routes; then
            report "$file" "$line" "cannot run: the stack has no routes file for --routes-file"
            return 0
        fi
        [ "$prev" = --routes-file ] && w=$STACK_ROUTES
        [ "${w%%=*}" = --timeout-ms ] && timed=1
        if [[ $w =~ \<[A-Za-z][^\>]*\> || $w == *'$'* ]]; then
            report "$file" "$line" "cannot run: no value for '$w'"
            return 0
        fi
        argv+=("$w") prev=$w
    done
    in_list "$3" "$STREAMS" && [ $timed = 0 ] && argv+=(--timeout-ms 1000)
    timeout "$RUN_LIMIT_S" "$KHEISH" "${argv[@]}" >"$WORK/out" 2>"$WORK/err" </dev/null
    rc=$?
    if [ $rc = 124 ]; then
        report "$file" "$line" "still running after $RUN_LIMIT_S s"
    elif [ $rc != "$4" ]; then
        local why
        why=$(head -n 1 "$WORK/err")
        [ -n "$why" ] || why=$(grep -m 1 -E '^(ERROR|kheish:)' "$WORK/out")
        report "$file" "$line" "exited $rc, expected $4 (${why:0:200})"
    fi
}

# fixture: the session and the cancelled run that stand for demo and run-N.
fixture() {
    [ -n "$FIX_RUN" ] && return 0
    FIX_SESSION=runbook-check-$$-$RANDOM
    if "$KHEISH" sessions create "$FIX_SESSION" >/dev/null &&
        FIX_RUN=$("$KHEISH" --output json sessions input "$FIX_SESSION" "runbook check" |
            jq -r '.run_id // empty') && [ -n "$FIX_RUN" ] &&
        "$KHEISH" runs cancel "$FIX_RUN" >/dev/null; then
        return 0
    fi
    echo "runbook-check: cannot create the session and run that stand for demo and run-N" >&2
    exit 1
}

# stack_routes: sets STACK_ROUTES to the routes file the stack runs with.
stack_routes() {
    [ -n "$STACK_ROUTES" ] ||
        STACK_ROUTES=$("$KHEISH" --output json status | jq -r '.provider_readiness.routes_file.path // empty')
    [ -n "$STACK_ROUTES" ]
}

for f in "$@"; do
    if [ ! -r "$f" ]; then
        echo "runbook-check: cannot read $f" >&2
        exit 2
    fi
    scan_file "$f"
done
echo "runbook-check: $total fragments in $# files: $ran run, $parsed parsed only, $failed failed"
[ $failed = 0 ]
