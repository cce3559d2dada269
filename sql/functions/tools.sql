-- A run's turns and tool calls (migration 018), as its runner reports them
-- in its turn statement (kheish_work, work.sql).

-- Records the steps of run rid of session sid:
--   {turns: [{turn, text, stop, calls: [{tool_call_id, name, input?,
--             input_error?, decision, reason?, permission}]}],
--    results: [{tool_call_id, result, is_error}]}
-- Each call's permission (the engine's audit record, perm_audit_json) is
-- appended to permission_audits, with the id of the approval a call asked
-- for opens (kheish_approval_id) when its run waits. A turn or a call reported twice (a
-- statement tried again) is recorded once; a result, once its call is.
CREATE OR REPLACE FUNCTION kheish_run_steps(rid text, sid text, steps jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    now_ms bigint := kheish_now_ms();
BEGIN
    WITH turn AS (
        INSERT INTO run_turns
        SELECT rid, (t->>'turn')::int, coalesce(t->>'text', ''), t->>'stop', now_ms
          FROM jsonb_array_elements(steps->'turns') t
            ON CONFLICT DO NOTHING
        RETURNING turn),
    call AS (
        INSERT INTO tool_calls (run_id, tool_call_id, turn, position, name, input, input_error,
                                decision, reason, created_at_ms)
        SELECT rid, c->>'tool_call_id', (t->>'turn')::int, (i - 1)::int, c->>'name', c->'input',
               c->>'input_error', c->>'decision', c->>'reason', now_ms
          FROM jsonb_array_elements(steps->'turns') t,
               jsonb_array_elements(t->'calls') WITH ORDINALITY AS x(c, i)
         WHERE (t->>'turn')::int IN (SELECT turn FROM turn)
        RETURNING tool_call_id)
    INSERT INTO permission_audits (at_ms, session_id, run_id, tool_call_id, tool_name, scope,
                                   decision, base_decision, effective_mode, mode_effect,
                                   matched_rule_pattern, matched_rule_origin, justification,
                                   reason, approval_request_id)
    SELECT now_ms, sid, rid, p->>'tool_call_id', p->>'tool_name', p->>'scope', p->>'decision',
           p->>'base_decision', p->>'effective_mode', p->>'mode_effect',
           p->>'matched_rule_pattern', p->>'matched_rule_origin', p->>'justification',
           p->>'reason', CASE WHEN c->>'decision' = 'ask'
                              THEN kheish_approval_id(rid, (t->>'turn')::int, (i - 1)::int) END
      FROM jsonb_array_elements(steps->'turns') t,
           jsonb_array_elements(t->'calls') WITH ORDINALITY AS x(c, i),
           LATERAL (SELECT c->'permission' AS p) a
     WHERE c->>'tool_call_id' IN (SELECT tool_call_id FROM call);
    UPDATE tool_calls tc SET result = x->'result', is_error = (x->>'is_error')::boolean,
                             finished_at_ms = now_ms
      FROM jsonb_array_elements(steps->'results') x
     WHERE tc.run_id = rid AND tc.tool_call_id = x->>'tool_call_id' AND tc.result IS NULL;
END
$$;
COMMENT ON FUNCTION kheish_run_steps(text, text, jsonb) IS
    'Records a run''s turns, tool calls (with their permission audits) and results, as its '
    'runner reports them.';
