-- Idle workers LISTEN on this channel to start new work at once instead of at their next
-- tick. One notification per INSERT statement (not per row), delivered at commit; identical
-- notifications of one transaction are folded into one by PostgreSQL.
CREATE FUNCTION toosimple_notify_queued() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('toosimple_queued', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER task_execs_notify_queued AFTER INSERT ON task_execs
    FOR EACH STATEMENT EXECUTE FUNCTION toosimple_notify_queued();
