-- 016: the runner's ledger records go in its turn statement.
--
-- A runner appended its external-action records with statements of their
-- own (kheish_ledger_append, committed synchronously): the response records
-- before each turn's outcomes, the request records after its claims. Three
-- statements and two WAL flushes per turn cost a quarter of the runner
-- benchmark's runs/s (docs/performance.md, issue 14). kheish_work now takes
-- the records too and appends them first, in the same transaction as the
-- outcomes they account for (sql/functions/work.sql); its caller flushes
-- the WAL before it reads the answer, so a request record is durable before
-- its call is sent.

DROP FUNCTION IF EXISTS kheish_work(text, jsonb, bigint, int, int);
