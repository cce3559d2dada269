-- 003: what each SSE relay reports about itself, for the events block of
-- /v1/status (subscribers, lagged clients, gap frames). A relay upserts its
-- row every few seconds and deletes it when it stops; a row not updated for
-- a while belongs to a relay that died.

CREATE TABLE relay_stats (
    relay_id        text PRIMARY KEY, -- kheish-sse-relay@<host>:<pid>
    started_at_ms   bigint NOT NULL,
    updated_at_ms   bigint NOT NULL,
    subscribers     integer NOT NULL,
    replaying       integer NOT NULL,
    newest_event_id bigint NOT NULL,
    lagged_total    bigint NOT NULL,  -- clients cut for falling behind (live_lag)
    gaps_total      bigint NOT NULL   -- stream_gap frames sent
);

GRANT SELECT, INSERT, UPDATE, DELETE ON relay_stats TO kheish_app;
GRANT SELECT ON relay_stats TO kheish_auditor;
