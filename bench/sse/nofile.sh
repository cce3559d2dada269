# Sourced by bench/sse/run.sh and followers.sh. raise_nofile NEED WHO: the
# hard descriptor limit raised to 65536 where we may, the soft one to the
# hard one; NOFILE is the result. Exits when it is below NEED.
raise_nofile() {
    ulimit -Hn 65536 2>/dev/null || true
    NOFILE=$(ulimit -Hn)
    ulimit -n "$NOFILE"
    if [ "$NOFILE" -lt "$1" ]; then
        echo "$2: the streams need a descriptor limit of at least $1 (ulimit -Hn is $NOFILE)" >&2
        exit 1
    fi
}
