-- pgbench script: the SQL transaction of one run submission, statement for
-- statement as store/runs.c issues it (POST /v1/sessions/{id}/runs), into one
-- of 100 sessions made by bench/run.sh. The new run id comes back through
-- \gset so later statements look it up by key, as the API does (a
-- `run_id = 'run-' || currval(...)` predicate is volatile and scans the table).
-- Needs -M prepared: variables are then parameters, as in the API.
\set s random(1, 100)
BEGIN;
SELECT ended_at_ms IS NOT NULL, agent_id FROM sessions WHERE session_id = 'bench-' || :s FOR SHARE;
INSERT INTO runs (run_id, run_no, session_id, agent_id, kind, status, submitted_at_ms, updated_at_ms, request, payload, input_metadata, idempotency_key, idempotency_fingerprint) SELECT 'run-' || n, n, 'bench-' || :s, 'agent-bench-' || :s, 'input', 'queued', kheish_now_ms(), kheish_now_ms(), jsonb_build_object('source_plugin', coalesce(p->>'source_plugin', 'api'), 'source_kind', coalesce(p->>'source_kind', 'api'), 'actor_id', p->'actor_id', 'text_preview', nullif(left(coalesce(p->>'content', ''), 200), ''), 'provider', p->'provider', 'model', p#>'{generation,model}'), p, p->'metadata', NULL, NULL FROM (SELECT nextval('runs_run_no_seq') AS n, '{"content":"benchmark input"}'::jsonb AS p) v ON CONFLICT (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING run_id AS rid
\gset
SELECT run_view(r) FROM runs r WHERE run_id = :rid;
SELECT kheish_append_events(jsonb_build_array(jsonb_build_object('name', 'run_updated', 'session_id', 'bench-' || :s, 'run_id', r.run_id, 'data', jsonb_build_object('type', 'run_updated', 'run', run_view(r)))), jsonb_build_array(jsonb_build_object('run_id', r.run_id, 'session_id', r.session_id, 'agent_id', r.agent_id, 'event', '{"type":"accepted"}'::jsonb), jsonb_build_object('run_id', r.run_id, 'session_id', r.session_id, 'agent_id', r.agent_id, 'event', jsonb_build_object('type', 'queued', 'position', 1)))) FROM runs r WHERE run_id = :rid;
COMMIT;
