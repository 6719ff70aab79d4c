//! Executions this worker will never run, said out loud: a worker that finds nothing it can
//! run looks exactly like one that has nothing to do (`--until-done` exits 0 either way).

use toosimple_core::store::QueueSelection;
use toosimple_core::{TaskCount, TaskDef};

/// The warnings for `queued` (per task and queue) seen by a worker linking `defs` and
/// serving `queues`: queued executions of tasks it does not link, in queues it serves, and
/// queues it was told to serve that none of its tasks uses.
pub(crate) fn warnings(
    defs: &[&TaskDef],
    queues: &QueueSelection,
    queued: &[TaskCount],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut unlinked: Vec<(&str, i64)> = Vec::new();
    for row in queued.iter().filter(|r| queues.includes(&r.queue)) {
        if defs.iter().any(|d| d.name() == row.task) {
            continue;
        }
        match unlinked.iter_mut().find(|(task, _)| *task == row.task) {
            Some((_, count)) => *count += row.count,
            None => unlinked.push((&row.task, row.count)),
        }
    }
    for (task, count) in unlinked {
        // Library tasks are named `crate.function` by convention (toosimple-mail's are).
        let fix = match task.split_once('.') {
            Some(("toosimple_mail", _)) => {
                "add `use toosimple_mail as _;` to this binary's main.rs".to_string()
            }
            Some((krate, _)) if krate.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                format!(
                    "link the crate that defines it (`use {krate} as _;` in this binary's main.rs, if that is its crate)"
                )
            }
            _ => "link the crate that defines it: `use that_crate as _;` in this binary's main.rs"
                .to_string(),
        };
        out.push(format!(
            "{count} queued execution{} of `{task}`, a task this binary does not link: no worker of this binary will run {}; {fix}",
            if count == 1 { "" } else { "s" },
            if count == 1 { "it" } else { "them" },
        ));
    }
    if let QueueSelection::Only(served) = queues {
        let used: Vec<&str> = defs.iter().map(|d| d.queue()).collect();
        for queue in served.iter().filter(|q| !used.contains(&q.as_str())) {
            let mut known = used.clone();
            known.sort_unstable();
            known.dedup();
            out.push(format!(
                "no task linked into this binary uses queue `{queue}`: this worker will find nothing to run there; the linked tasks' queues are {}",
                known
                    .iter()
                    .map(|q| format!("`{q}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(task: &str, queue: &str, count: i64) -> TaskCount {
        TaskCount {
            task: task.into(),
            queue: queue.into(),
            count,
        }
    }

    #[test]
    fn unlinked_tasks_in_served_queues_and_unused_queues_are_named() {
        fn run(_: serde_json::Value) -> toosimple_core::runtime::RunResult {
            Ok(serde_json::Value::Null)
        }
        const ADD: TaskDef =
            TaskDef::new("add", toosimple_core::runtime::Invoker::Sync(run), "x.rs:1");
        let defs = [&ADD];
        let queued = [
            count("add", "default", 5),
            count("toosimple_mail.send", "emails", 3),
            count("billing.invoice", "other", 2),
            count("gone", "default", 1),
            count("gone", "other", 1),
        ];
        assert_eq!(
            warnings(&defs, &QueueSelection::All, &queued),
            [
                "3 queued executions of `toosimple_mail.send`, a task this binary does not link: no worker of this binary will run them; add `use toosimple_mail as _;` to this binary's main.rs",
                "2 queued executions of `billing.invoice`, a task this binary does not link: no worker of this binary will run them; link the crate that defines it (`use billing as _;` in this binary's main.rs, if that is its crate)",
                "2 queued executions of `gone`, a task this binary does not link: no worker of this binary will run them; link the crate that defines it: `use that_crate as _;` in this binary's main.rs",
            ]
        );
        let only = QueueSelection::Only(vec!["default".into(), "nonexistent".into()]);
        assert_eq!(
            warnings(&defs, &only, &queued),
            [
                "1 queued execution of `gone`, a task this binary does not link: no worker of this binary will run it; link the crate that defines it: `use that_crate as _;` in this binary's main.rs",
                "no task linked into this binary uses queue `nonexistent`: this worker will find nothing to run there; the linked tasks' queues are `default`",
            ]
        );
        assert!(warnings(&defs, &QueueSelection::All, &queued[..1]).is_empty());
    }
}
