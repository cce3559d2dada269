#!/usr/bin/env bash
# A burst of stream events for the SSE tests: TOTAL events named `burst`,
# data {"type":"burst","burst":TAG,"seq":N} for N = 1..TOTAL (no session, no
# run), BATCH per transaction through kheish_append_events (so the event-id
# rule and the NOTIFY apply), PAUSE seconds between transactions; then one
# `burst_end` event {"type":"burst_end","burst":TAG,"last_seq":TOTAL}.
#
#   PSQL="psql ... -d kheish" burst.sh TAG TOTAL BATCH PAUSE [DEADLINE_S]
#
# It survives the database going away: when the connection drops it waits,
# reads the highest seq that committed and resumes after it, so each seq is
# committed exactly once. Gives up after DEADLINE_S seconds (default 60).
set -u
tag=$1 total=$2 batch=$3 pause=$4 deadline=$((SECONDS + ${5:-60}))
case "$tag$total$batch$pause" in *[!A-Za-z0-9._-]*)
    echo "burst.sh: TAG must be [A-Za-z0-9._-]" >&2
    exit 2
    ;;
esac

# The highest committed seq of this burst, or nothing when the database is away.
committed() {
    $PSQL -Atc "SELECT coalesce(max((data->>'seq')::int), 0) FROM events
                WHERE name = 'burst' AND data->>'burst' = '$tag'" 2>/dev/null
}

resumes=0
while [ $SECONDS -lt $deadline ]; do
    next=$(committed) || {
        sleep 0.05
        continue
    }
    [ "$next" -lt "$total" ] || break
    [ "$next" -eq 0 ] || resumes=$((resumes + 1))
    # One statement, so the DO block runs outside a transaction block and may
    # COMMIT: one transaction per batch.
    $PSQL -c "DO \$\$
DECLARE
    s int := $next;
    b int;
BEGIN
    WHILE s < $total LOOP
        b := least($batch, $total - s);
        PERFORM kheish_append_events(
            (SELECT jsonb_agg(jsonb_build_object('name', 'burst', 'data',
                      jsonb_build_object('type', 'burst', 'burst', '$tag', 'seq', g)) ORDER BY g)
             FROM generate_series(s + 1, s + b) g), '[]'::jsonb);
        COMMIT;
        s := s + b;
        PERFORM pg_sleep($pause);
    END LOOP;
END
\$\$" >/dev/null 2>&1 || sleep 0.05
done
[ "$(committed)" = "$total" ] || {
    echo "burst.sh: $tag incomplete after the deadline: $(committed) of $total" >&2
    exit 1
}
# The end marker, once (a retry first checks whether the last try committed).
until $PSQL -Atc "SELECT count(*) FROM events WHERE name = 'burst_end' AND data->>'burst' = '$tag'" 2>/dev/null |
    grep -qx 1; do
    [ $SECONDS -lt $deadline ] || {
        echo "burst.sh: could not append burst_end for $tag" >&2
        exit 1
    }
    $PSQL -c "SELECT kheish_append_events(jsonb_build_array(jsonb_build_object('name', 'burst_end',
                'data', jsonb_build_object('type', 'burst_end', 'burst', '$tag', 'last_seq', $total))),
                '[]'::jsonb)" >/dev/null 2>&1 || sleep 0.05
done
echo "burst.sh: $tag: $total events committed, $resumes resumes" >&2
