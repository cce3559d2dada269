-- pgbench script: the SQL of one run submission as the API sends it (POST
-- /v1/sessions/{id}/runs, store/runs.c), into one of 100 sessions made by
-- bench/run.sh: the submission, one statement that is its own transaction
-- (sql/functions/runs.sql), then the WAL flush it waits for. The API sends both in one
-- pipeline; pgbench, without \syncpipeline (PostgreSQL 17), sends them as two
-- round trips. Needs -M prepared: variables are then parameters, as in the API.
-- The actor is one the API would pass (its admin_actions row is part of the
-- work).
\set s random(1, 100)
SELECT kheish_run_submit('bench-' || :s, '{"content":"benchmark input"}'::jsonb, NULL, NULL, false,
    '{"role":"admin","token_fingerprint":"0123456789abcdef","remote_addr":"127.0.0.1","request_id":"bench","user_agent":"pgbench","method":"POST","path":"/v1/sessions/bench/runs"}'::jsonb);
SELECT kheish_flush_wal();
