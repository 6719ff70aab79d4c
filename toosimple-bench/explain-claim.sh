#!/usr/bin/env bash
# The claim's query plans beside a big table: 1,000,000 queued rows of a queue the worker does
# not serve, 1,000,000 finished rows and 20,000 queued rows of the served queue, on SQLite (a
# scratch file) and PostgreSQL (a scratch database on the local server). PostgreSQL's plan is
# the generic one, executed inside a rolled-back transaction.
#
# Run from the repository: cargo build --release -p demo && toosimple-bench/explain-claim.sh
set -euo pipefail
demo=${DEMO:-target/release/demo}
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cols="task_name, args, queue, priority, state, due, created, retries, retry_delay"
fill="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000000)"
TOOSIMPLE_DATABASE_URL="sqlite://$scratch/explain.sqlite3" "$demo" migrate >/dev/null
sqlite3 "$scratch/explain.sqlite3" <<SQL
$fill INSERT INTO task_execs ($cols) SELECT 'waiting', '[]', 'backlog', -1, 'queued', '2026-12-07 00:00:00', '2026-12-07 00:00:00', 0, 0 FROM n;
$fill INSERT INTO task_execs ($cols, finished) SELECT 'noop', '[]', 'default', 0, 'succeeded', '2026-12-07 00:00:00', '2026-12-07 00:00:00', 0, 0, '2026-12-07 00:00:01' FROM n;
$fill INSERT INTO task_execs ($cols) SELECT 'noop', '[]', 'default', 0, 'queued', '2026-12-07 00:00:00', '2026-12-07 00:00:00', 0, 0 FROM n WHERE i <= 20000;
.print '== SQLite: the claim of one served queue'
EXPLAIN QUERY PLAN UPDATE task_execs SET state = 'processing', started = '2026-12-07 00:00:02', worker = 'w' WHERE id IN (SELECT id FROM task_execs INDEXED BY task_execs_queued WHERE state = 'queued' AND queue = 'default' AND task_name IN (SELECT value FROM json_each('["noop"]')) ORDER BY priority DESC, due, id LIMIT 64) RETURNING id;
.print '== SQLite: the queues that have queued rows'
EXPLAIN QUERY PLAN WITH RECURSIVE q(queue) AS (SELECT (SELECT queue FROM task_execs INDEXED BY task_execs_queued WHERE state = 'queued' ORDER BY queue LIMIT 1) UNION ALL SELECT (SELECT t.queue FROM task_execs AS t INDEXED BY task_execs_queued WHERE t.state = 'queued' AND t.queue > q.queue ORDER BY t.queue LIMIT 1) FROM q WHERE q.queue IS NOT NULL) SELECT queue FROM q WHERE queue IS NOT NULL;
.print '== SQLite: the indexes each transition of a row maintains'
SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'task_execs';
SQL

db=toosimple_explain_claim
psql -X -q "$pg_url/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'rm -rf "$scratch"; psql -X -q "$pg_url/postgres" -c "DROP DATABASE IF EXISTS $db"' EXIT
TOOSIMPLE_DATABASE_URL="$pg_url/$db" "$demo" migrate >/dev/null
psql -X -q "$pg_url/$db" <<SQL
INSERT INTO task_execs ($cols) SELECT 'waiting', '[]', 'backlog', -1, 'queued', '2026-12-07', '2026-12-07', 0, 0 FROM generate_series(1, 1000000);
INSERT INTO task_execs ($cols, finished) SELECT 'noop', '[]', 'default', 0, 'succeeded', '2026-12-07', '2026-12-07', 0, 0, '2026-12-07 00:00:01' FROM generate_series(1, 1000000);
INSERT INTO task_execs ($cols) SELECT 'noop', '[]', 'default', 0, 'queued', '2026-12-07', '2026-12-07', 0, 0 FROM generate_series(1, 20000);
VACUUM ANALYZE task_execs;
SET jit = off;
SET plan_cache_mode = force_generic_plan;
PREPARE claim(timestamp, text, text[], text[], bigint) AS
UPDATE task_execs SET state = 'processing', started = \$1, worker = \$2 WHERE id = ANY(ARRAY(SELECT c.id FROM unnest(\$3) AS served(queue) CROSS JOIN LATERAL (SELECT t.id, t.priority, t.due FROM task_execs AS t WHERE t.state = 'queued' AND t.queue = served.queue AND t.task_name = ANY(\$4) ORDER BY t.priority DESC, t.due, t.id LIMIT \$5 FOR UPDATE SKIP LOCKED) AS c ORDER BY c.priority DESC, c.due, c.id LIMIT \$5)) RETURNING id;
PREPARE claim_in(timestamp, text, text[], text[], bigint) AS
UPDATE task_execs SET state = 'processing', started = \$1, worker = \$2 WHERE id IN (SELECT c.id FROM unnest(\$3) AS served(queue) CROSS JOIN LATERAL (SELECT t.id, t.priority, t.due FROM task_execs AS t WHERE t.state = 'queued' AND t.queue = served.queue AND t.task_name = ANY(\$4) ORDER BY t.priority DESC, t.due, t.id LIMIT \$5 FOR UPDATE SKIP LOCKED) AS c ORDER BY c.priority DESC, c.due, c.id LIMIT \$5) RETURNING id;
\echo '== PostgreSQL: the claim of one served queue (generic plan)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim('2026-12-07 00:00:02', 'w', ARRAY['default'], ARRAY['noop'], 64);
ROLLBACK;
\echo '== PostgreSQL: the same with id IN (...), the form before (generic plan)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE claim_in('2026-12-07 00:00:02', 'w', ARRAY['default'], ARRAY['noop'], 64);
ROLLBACK;
SQL
