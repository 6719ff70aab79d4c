-- PostgreSQL notifies idle workers of new executions; SQLite has no such channel (its workers
-- find new work at their next tick). Kept so both backends list the same migrations.
SELECT 1;
