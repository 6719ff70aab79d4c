-- PostgreSQL notifies idle workers of new executions; MariaDB and MySQL have no such channel
-- (their workers find new work at their next tick). Kept so every backend lists the same
-- migrations.
DO 0;
