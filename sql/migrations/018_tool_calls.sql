-- 018: what a run's model did (issue 15): its turns and its tool calls.
--
-- A run is a loop: the model answers (a turn: text, and maybe tool calls),
-- the runner decides each call with the permission engine and runs the
-- allowed ones, and the results go back to the model in the next turn. The
-- runner reports each turn and each result in its turn statement
-- (kheish_work, sql/functions/tools.sql), in the transaction that appends
-- the calls' ledger records, so what the ledger says was done is what these
-- tables say was asked. GET /v1/runs/{id} shows them (tool_calls).
--
-- kheish_work's second argument is now each run's report (its traces, its
-- steps, its status when it ends): the function is dropped here and made
-- again with the new argument names.

DROP FUNCTION IF EXISTS kheish_work(text, jsonb, jsonb, bigint, int, int);

CREATE TABLE run_turns (
    run_id        text NOT NULL REFERENCES runs,
    turn          int NOT NULL CHECK (turn > 0),
    text          text NOT NULL,
    stop          text NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (run_id, turn)
);

CREATE TABLE tool_calls (
    run_id         text NOT NULL,
    tool_call_id   text NOT NULL,
    turn           int NOT NULL,
    position       int NOT NULL CHECK (position >= 0),
    name           text NOT NULL,
    input          jsonb,
    input_error    text,
    decision       text NOT NULL,
    reason         text,
    result         jsonb,
    is_error       boolean,
    created_at_ms  bigint NOT NULL,
    finished_at_ms bigint,
    PRIMARY KEY (run_id, tool_call_id),
    FOREIGN KEY (run_id, turn) REFERENCES run_turns,
    CHECK ((result IS NULL) = (finished_at_ms IS NULL))
);
CREATE UNIQUE INDEX tool_calls_order ON tool_calls (run_id, turn, position);

GRANT SELECT, INSERT ON run_turns TO kheish_app;
GRANT SELECT, INSERT, UPDATE ON tool_calls TO kheish_app;

COMMENT ON TABLE run_turns IS
    'Each model turn of a run (issue 15): what the model said, and why it stopped.';
COMMENT ON COLUMN run_turns.run_id IS 'The run.';
COMMENT ON COLUMN run_turns.turn IS 'Its place in the run: 1, 2, ...';
COMMENT ON COLUMN run_turns.text IS 'The text the model answered in that turn.';
COMMENT ON COLUMN run_turns.stop IS
    'Why the model stopped: end, tool_calls, max_tokens, filtered or unknown.';
COMMENT ON COLUMN run_turns.created_at_ms IS 'When the runner reported it (the database''s clock).';
COMMENT ON TABLE tool_calls IS
    'Each tool call of a run''s model (issue 15): its input, the permission decision, its result.';
COMMENT ON COLUMN tool_calls.run_id IS 'The run.';
COMMENT ON COLUMN tool_calls.tool_call_id IS 'The model''s id of the call.';
COMMENT ON COLUMN tool_calls.turn IS 'The turn that made it (run_turns).';
COMMENT ON COLUMN tool_calls.position IS 'Its place among the turn''s calls, from 0.';
COMMENT ON COLUMN tool_calls.name IS 'The tool called.';
COMMENT ON COLUMN tool_calls.input IS 'The arguments, parsed; NULL when they were malformed.';
COMMENT ON COLUMN tool_calls.input_error IS 'Why the arguments were malformed, else NULL.';
COMMENT ON COLUMN tool_calls.decision IS
    'The permission engine''s decision: allow, ask or deny (its audit: permission_audits).';
COMMENT ON COLUMN tool_calls.reason IS 'Why it was denied or asked, else NULL.';
COMMENT ON COLUMN tool_calls.result IS 'What the model got back (the tool''s result), once known.';
COMMENT ON COLUMN tool_calls.is_error IS 'The result is an error (refused, failed, denied).';
COMMENT ON COLUMN tool_calls.created_at_ms IS 'When the call was reported.';
COMMENT ON COLUMN tool_calls.finished_at_ms IS 'When its result was reported.';
COMMENT ON INDEX tool_calls_order IS 'A run''s calls in their order.';
