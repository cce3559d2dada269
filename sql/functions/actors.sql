-- Who did what (migration 014): the admin_actions ledger, its guard, and
-- the helpers every writer an API request calls uses to record its actor
-- and link the rows it changes.
--
-- An actor is the jsonb kheish-fcgi builds once per request (fcgi/worker.c):
-- {role, token_fingerprint, remote_addr, request_id, user_agent, method,
-- path}. NULL is no actor (the runners, the maintenance pass, the offline
-- CLI): nothing is recorded and the links stay NULL.

-- admin_actions is append-only: UPDATE, DELETE and TRUNCATE are refused to
-- everyone, the owner included, unless the owner disables the triggers for
-- a maintenance (docs/security.md).
CREATE OR REPLACE FUNCTION admin_actions_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'admin_actions is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the owner''s maintenance path is in docs/security.md ("Who did what")';
END
$$;
COMMENT ON FUNCTION admin_actions_guard() IS
    'Trigger function refusing UPDATE, DELETE and TRUNCATE on admin_actions (append-only).';
CREATE OR REPLACE TRIGGER admin_actions_append_only BEFORE UPDATE OR DELETE ON admin_actions
    FOR EACH ROW EXECUTE FUNCTION admin_actions_guard();
CREATE OR REPLACE TRIGGER admin_actions_no_truncate BEFORE TRUNCATE ON admin_actions
    FOR EACH STATEMENT EXECUTE FUNCTION admin_actions_guard();

-- Records that actor did action to the ids given, with the answer result;
-- returns the row's id, or NULL (and records nothing) without an actor.
CREATE OR REPLACE FUNCTION kheish_admin_action(actor jsonb, action text, session_id text,
                                               run_id text, target_id text, result text)
    RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    act bigint;
BEGIN
    IF actor IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO admin_actions (at_ms, role, token_fingerprint, remote_addr, request_id,
                               user_agent, method, path, action, session_id, run_id, target_id,
                               result)
        VALUES (kheish_now_ms(), actor->>'role', actor->>'token_fingerprint',
                actor->>'remote_addr', actor->>'request_id', actor->>'user_agent',
                actor->>'method', actor->>'path', action, session_id, run_id, target_id, result)
        RETURNING id INTO act;
    RETURN act;
END
$$;
COMMENT ON FUNCTION kheish_admin_action(jsonb, text, text, text, text, text) IS
    'Appends one admin_actions row for actor (NULL: none) and returns its id.';

-- A writer's answer that changed nothing to link (an error, a reuse, a
-- replay): records it with its result and returns it unchanged.
CREATE OR REPLACE FUNCTION kheish_admin_answer(actor jsonb, action text, session_id text,
                                               run_id text, target_id text, answer jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM kheish_admin_action(actor, action, session_id, run_id, target_id,
                                answer->>'result');
    RETURN answer;
END
$$;
COMMENT ON FUNCTION kheish_admin_answer(jsonb, text, text, text, text, jsonb) IS
    'Records actor''s action with the result of answer (a writer''s {result, ...}) and returns '
    'answer.';

-- Run events (kheish_append_events's run argument) caused by action act:
-- each carries admin_action_id, which the append stores in run_events.
CREATE OR REPLACE FUNCTION kheish_run_events_by(run jsonb, act bigint) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF act IS NULL THEN
        RETURN run;
    END IF;
    RETURN (SELECT coalesce(jsonb_agg(e || jsonb_build_object('admin_action_id', act)
                                      ORDER BY i), '[]')
            FROM jsonb_array_elements(run) WITH ORDINALITY AS t(e, i));
END
$$;
COMMENT ON FUNCTION kheish_run_events_by(jsonb, bigint) IS
    'Marks run events (an array for kheish_append_events) as caused by admin action act.';
