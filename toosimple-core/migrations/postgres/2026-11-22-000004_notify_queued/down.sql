DROP TRIGGER task_execs_notify_queued ON task_execs; DROP FUNCTION toosimple_notify_queued();
