//! Flows (django-pq's `Flow`/`FlowStore`): task calls run one after another, each enqueued
//! only once the one before it succeeded; a failed step stops the flow and marks the rest
//! skipped; a flow is found by id and by name (API and `app flow`); each step is advanced
//! exactly once however many workers and sweepers race; retention keeps a running flow whole.

use std::sync::Barrier;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use toosimple_core::{
    Error, Flow, FlowExec, FlowHandle, FlowState, State, StepState, TaskExec, TaskExecFilter, Ttl,
};
use toosimple_tests::tasks::{fail_with, fails_once, record};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Exit;
use toosimple_worker::maintenance::flows::StalledFlows;
use toosimple_worker::maintenance::retention::{self, Retention};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

backend_suite!(
    steps_run_in_order_each_only_after_the_one_before_succeeded,
    a_failing_step_stops_the_flow_and_the_later_steps_are_skipped,
    a_step_that_fails_once_then_succeeds_on_its_retry_lets_the_flow_go_on,
    a_flow_is_found_by_id_and_by_name_and_bad_flows_store_nothing,
    the_cli_shows_a_flow_by_id_and_by_name_and_lists_flows,
    a_step_cancelled_before_it_ran_fails_the_flow_through_the_sweeper,
    sweepers_racing_on_a_stalled_step_advance_it_exactly_once,
    two_workers_and_sweepers_racing_run_each_step_exactly_once,
    retention_keeps_a_running_flow_and_deletes_it_with_its_final_execution,
);

fn states(flow: &FlowExec) -> Vec<StepState> {
    flow.steps.iter().map(|s| s.state).collect()
}

/// Runs a worker until `flow` has ended, and returns it. (Not `until_done`: a retry made by
/// `run_by_hand` is due by the test's clock, which a worker reading the database's clock may
/// see as not due yet, and stop.)
fn run_flow(db: &TestDb, flow: &FlowHandle) -> FlowExec {
    let worker = db.worker();
    let stop = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    let done = flow.wait(Duration::from_secs(30));
    stop.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    done.unwrap()
}

fn count_flows(db: &TestDb) -> usize {
    Flow::list_in(&db.store, 1000).unwrap().len()
}

fn steps_run_in_order_each_only_after_the_one_before_succeeded(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .named("order")
        .then(record::call(1))
        .then(record::call(2))
        .then(record::call(3))
        .start()
        .unwrap();
    // Stored whole, and only the first step enqueued.
    let stored = flow.get().unwrap();
    assert_eq!(stored.state, FlowState::Running);
    assert_eq!(stored.name.as_deref(), Some("order"));
    assert_eq!(
        states(&stored),
        [StepState::Enqueued, StepState::Waiting, StepState::Waiting]
    );
    assert_eq!(flow.executions().unwrap().len(), 1);
    let first = stored.steps[0].exec.unwrap();
    assert_eq!(TaskExec::get(first).unwrap().flow, Some(flow.id()));
    assert_eq!(stored.steps[1].exec, None);

    // Recording the first step's success enqueues the second, and only it.
    assert_eq!(db.run_by_hand(first), State::Succeeded);
    let after_one = flow.get().unwrap();
    assert_eq!(
        states(&after_one),
        [
            StepState::Succeeded,
            StepState::Enqueued,
            StepState::Waiting
        ]
    );
    assert_eq!(flow.executions().unwrap().len(), 2);
    assert_eq!(db.side_effects(), [1]);

    // A worker runs the rest.
    let done = run_flow(db, &flow);
    assert_eq!(done.state, FlowState::Succeeded);
    assert_eq!(states(&done), [StepState::Succeeded; 3]);
    assert_eq!(db.side_effects(), [1, 2, 3]);
    let execs = flow.executions().unwrap();
    assert_eq!(execs.len(), 3);
    assert_eq!(done.final_exec, Some(execs[2].id));
    assert!(done.finished.is_some());
    for pair in execs.windows(2) {
        let finished = pair[0].finished.expect("the step before finished");
        assert!(
            pair[1].created >= finished,
            "step #{} was enqueued at {} before #{} finished at {finished}",
            pair[1].id,
            pair[1].created,
            pair[0].id
        );
        assert!(pair[1].started.unwrap() >= finished);
    }
}

fn a_failing_step_stops_the_flow_and_the_later_steps_are_skipped(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .then(record::call(1))
        .then(fail_with::call("boom".to_string()))
        .then(record::call(3))
        .then(record::call(4))
        .start()
        .unwrap();
    let done = run_flow(db, &flow);
    assert_eq!(done.state, FlowState::Failed);
    assert_eq!(
        states(&done),
        [
            StepState::Succeeded,
            StepState::Failed,
            StepState::Skipped,
            StepState::Skipped
        ]
    );
    // Not dropped: the skipped steps are still there, never enqueued.
    assert_eq!(done.steps.len(), 4);
    assert_eq!(done.steps[2].task_name, "record");
    assert_eq!(done.steps[2].args, serde_json::json!({"n": 3}));
    assert_eq!(done.steps[2].exec, None);
    assert_eq!(db.side_effects(), [1]);
    let error = done.error.as_deref().unwrap();
    assert!(
        error.contains("step 2 (`fail_with`") && error.contains("boom"),
        "{error}"
    );
    let failed = TaskExec::get(done.steps[1].exec.unwrap()).unwrap();
    assert_eq!(failed.state, State::Failed);
    assert_eq!(done.final_exec, Some(failed.id));
    assert_eq!(flow.executions().unwrap().len(), 2);
}

fn a_step_that_fails_once_then_succeeds_on_its_retry_lets_the_flow_go_on(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("failed-once").display().to_string();
    let flow = Flow::new()
        .named("retried")
        .then(fails_once::call(marker, 2, 3))
        .then(record::call(7))
        .start()
        .unwrap();
    let first = flow.get().unwrap().steps[0].exec.unwrap();
    // The first run fails and is retried: the flow waits for the retry, it does not fail.
    assert_eq!(db.run_by_hand(first), State::Failed);
    let waiting = flow.get().unwrap();
    assert_eq!(waiting.state, FlowState::Running);
    assert_eq!(states(&waiting), [StepState::Enqueued, StepState::Waiting]);
    let retry = TaskExec::get(first).unwrap().replaced_by.unwrap();
    assert_eq!(
        waiting.steps[0].exec,
        Some(retry),
        "the step follows its retry"
    );
    assert_eq!(TaskExec::get(retry).unwrap().flow, Some(flow.id()));

    let done = run_flow(db, &flow);
    assert_eq!(done.state, FlowState::Succeeded, "{:?}", done.error);
    assert_eq!(states(&done), [StepState::Succeeded; 2]);
    assert_eq!(db.side_effects(), [7]);
    let execs = flow.executions().unwrap();
    let run_states: Vec<State> = execs.iter().map(|e| e.state).collect();
    assert_eq!(
        run_states,
        [State::Failed, State::Succeeded, State::Succeeded]
    );
    assert_eq!(execs[1].result, Some(serde_json::json!(5)));
}

fn a_flow_is_found_by_id_and_by_name_and_bad_flows_store_nothing(db: &TestDb) {
    db.create_side_effects();
    let older = Flow::new()
        .named("signup")
        .then(record::call(1))
        .start()
        .unwrap();
    let other = Flow::new()
        .named("report")
        .then(record::call(2))
        .start()
        .unwrap();
    let newer = Flow::new()
        .named("signup")
        .then(record::call(3))
        .then(record::with().priority(5).on_queue("later").call(4))
        .start()
        .unwrap();
    let unnamed = Flow::new().then(record::call(5)).start().unwrap();

    let got = Flow::get(newer.id()).unwrap();
    assert_eq!(got, newer.get().unwrap());
    assert_eq!(got.name.as_deref(), Some("signup"));
    assert_eq!(got.steps[1].queue, "later");
    assert_eq!(got.steps[1].priority, 5);
    assert_eq!(Flow::get(unnamed.id()).unwrap().name, None);
    let signups: Vec<i64> = Flow::find("signup").unwrap().iter().map(|f| f.id).collect();
    assert_eq!(signups, [newer.id(), older.id()], "newest first");
    assert_eq!(Flow::find("report").unwrap()[0].id, other.id());
    assert!(Flow::find("nobody").unwrap().is_empty());
    // `flow show` takes either.
    assert_eq!(
        Flow::lookup_in(&db.store, &older.id().to_string())
            .unwrap()
            .id,
        older.id()
    );
    assert_eq!(Flow::lookup_in(&db.store, "signup").unwrap().id, newer.id());

    let missing = Flow::get(newer.id() + 1000).unwrap_err();
    assert!(matches!(missing, Error::FlowNotFound { .. }));
    assert!(
        missing
            .to_string()
            .starts_with(&format!("no flow with id {}", newer.id() + 1000)),
        "{missing}"
    );
    let unnamed_missing = Flow::lookup_in(&db.store, "nobody").unwrap_err();
    assert!(
        unnamed_missing.to_string().contains("named \"nobody\""),
        "{unnamed_missing}"
    );

    // Refused before anything is stored, saying what to write.
    let flows_before = count_flows(db);
    let execs_before = db.count("1 = 1");
    let empty = Flow::new().named("empty").start().unwrap_err();
    assert!(matches!(empty, Error::InvalidFlow { .. }));
    assert!(
        empty.to_string().contains(".then(my_task::call(...))"),
        "{empty}"
    );
    let bad_step = Flow::new()
        .then(record::call(1))
        .then(record::with().retries(-2).call(2))
        .start()
        .unwrap_err();
    assert!(
        bad_step.to_string().contains("retries must be -1"),
        "{bad_step}"
    );
    assert_eq!(count_flows(db), flows_before);
    assert_eq!(db.count("1 = 1"), execs_before);
}

fn app(db: &TestDb, args: &[&str]) -> std::process::Output {
    db.app(APP).args(args).output().unwrap()
}

fn the_cli_shows_a_flow_by_id_and_by_name_and_lists_flows(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .named("nightly")
        .then(record::call(1))
        .then(fail_with::call("no disk".to_string()))
        .then(record::call(3))
        .start()
        .unwrap();
    let done = run_flow(db, &flow);
    let failed_exec = done.steps[1].exec.unwrap();

    for key in [flow.id().to_string(), "nightly".to_string()] {
        let out = app(db, &["flow", "show", &key]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with(&format!("flow {} \"nightly\": failed", flow.id())),
            "{stdout}"
        );
        assert!(stdout.contains("no disk"), "{stdout}");
        let lines: Vec<&str> = stdout.lines().collect();
        let step = |n: &str| {
            lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(n))
                .unwrap_or_else(|| panic!("no line for step {n}:\n{stdout}"))
                .to_string()
        };
        assert!(step("1").contains("succeeded"), "{stdout}");
        assert!(step("2").contains("failed"), "{stdout}");
        assert!(step("2").contains(&format!("#{failed_exec}")), "{stdout}");
        assert!(step("3").contains("skipped"), "{stdout}");
    }

    let out = app(db, &["flow", "show", &flow.id().to_string(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["state"], "failed");
    assert_eq!(json["steps"][2]["state"], "skipped");
    assert_eq!(json["executions"].as_array().unwrap().len(), 2);

    let out = app(db, &["flow", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("nightly") && l.contains("failed")),
        "{stdout}"
    );

    let out = app(db, &["flow", "show", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no flow named \"nope\""), "{stderr}");
    assert!(stderr.contains("flow list"), "{stderr}");
}

fn a_step_cancelled_before_it_ran_fails_the_flow_through_the_sweeper(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .then(record::with().after(Duration::from_secs(3600)).call(1))
        .then(record::call(2))
        .start()
        .unwrap();
    let first = flow.get().unwrap().steps[0].exec.unwrap();
    assert_eq!(TaskExec::get(first).unwrap().state, State::Sleeping);
    TaskExec::cancel_in(&db.store, first).unwrap();
    // Ended outside a worker's round: only the sweep moves the flow on, once.
    let sweeper = StalledFlows::default();
    assert_eq!(
        sweeper.run_once(&db.store, Utc::now()).unwrap().advanced,
        [flow.id()]
    );
    assert!(
        sweeper
            .run_once(&db.store, Utc::now())
            .unwrap()
            .advanced
            .is_empty()
    );
    let done = flow.get().unwrap();
    assert_eq!(done.state, FlowState::Failed);
    assert_eq!(states(&done), [StepState::Failed, StepState::Skipped]);
    assert!(
        done.error.as_deref().unwrap().contains("cancelled"),
        "{:?}",
        done.error
    );
    assert_eq!(flow.executions().unwrap().len(), 1);
}

fn sweepers_racing_on_a_stalled_step_advance_it_exactly_once(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .then(record::call(1))
        .then(record::call(2))
        .then(record::call(3))
        .start()
        .unwrap();
    let first = flow.get().unwrap().steps[0].exec.unwrap();
    // What a worker without flows (or a crash between two transactions) would leave: the
    // step's execution succeeded, the flow not moved on.
    db.execute(&format!(
        "UPDATE task_execs SET state = 'succeeded', finished = created WHERE id = {first}"
    ));
    let racers = 4;
    let barrier = Barrier::new(racers);
    let advanced: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..racers)
            .map(|_| {
                let (store, barrier) = (db.store.with_own_pool(2), &barrier);
                s.spawn(move || {
                    barrier.wait();
                    StalledFlows::default()
                        .run_once(&store, Utc::now())
                        .unwrap()
                        .advanced
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        advanced.iter().map(Vec::len).sum::<usize>(),
        1,
        "one sweeper advances it: {advanced:?}"
    );
    let now = flow.get().unwrap();
    assert_eq!(
        states(&now),
        [
            StepState::Succeeded,
            StepState::Enqueued,
            StepState::Waiting
        ]
    );
    assert_eq!(flow.executions().unwrap().len(), 2, "the second step once");
}

fn two_workers_and_sweepers_racing_run_each_step_exactly_once(db: &TestDb) {
    db.create_side_effects();
    let steps = 12;
    let flows: Vec<_> = (0..3)
        .map(|f| {
            (1..=steps)
                .fold(Flow::new().named(format!("race-{f}")), |flow, i| {
                    flow.then(record::call(f * 100 + i))
                })
                .start()
                .unwrap()
        })
        .collect();
    let finished = || {
        flows
            .iter()
            .all(|f| f.get().unwrap().state != FlowState::Running)
    };
    std::thread::scope(|s| {
        let mut stops = Vec::new();
        for label in ["racer-a", "racer-b"] {
            let worker = db.worker().label(label).concurrency(4);
            stops.push(worker.shutdown_handle());
            s.spawn(move || worker.run());
        }
        for _ in 0..2 {
            let store = db.store.with_own_pool(2);
            s.spawn(move || {
                let sweeper = StalledFlows::default();
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while std::time::Instant::now() < deadline {
                    sweeper.run_once(&store, Utc::now()).unwrap();
                    let all_done = Flow::list_in(&store, 10)
                        .unwrap()
                        .iter()
                        .all(|f| f.state != FlowState::Running);
                    if all_done {
                        break;
                    }
                }
            });
        }
        wait_until("the flows to end", Duration::from_secs(60), finished);
        stops.iter().for_each(|stop| stop.graceful());
    });
    let mut seen = db.side_effects();
    seen.sort_unstable();
    let mut expected: Vec<i64> = (0..3)
        .flat_map(|f| (1..=steps).map(move |i| f * 100 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "each step ran exactly once");
    for flow in &flows {
        let done = flow.get().unwrap();
        assert_eq!(done.state, FlowState::Succeeded, "{:?}", done.error);
        assert_eq!(flow.executions().unwrap().len(), steps as usize);
    }
    // And each flow's steps in order.
    let ran = TaskExec::list(&TaskExecFilter::default().task_name("record").limit(1000)).unwrap();
    for flow in &flows {
        let mut mine: Vec<&TaskExec> = ran.iter().filter(|e| e.flow == Some(flow.id())).collect();
        mine.sort_by_key(|e| e.id);
        let args: Vec<i64> = mine.iter().map(|e| e.args["n"].as_i64().unwrap()).collect();
        let mut sorted = args.clone();
        sorted.sort_unstable();
        assert_eq!(args, sorted, "flow {} ran out of order", flow.id());
    }
}

fn retention_keeps_a_running_flow_and_deletes_it_with_its_final_execution(db: &TestDb) {
    db.create_side_effects();
    let flow = Flow::new()
        .named("kept")
        .then(record::with().ttl(Duration::ZERO).call(1))
        .then(record::with().after(Duration::from_secs(3600)).call(2))
        .start()
        .unwrap();
    let plain = record::with().ttl(Duration::ZERO).queue(9).unwrap();
    let first = flow.get().unwrap().steps[0].exec.unwrap();
    assert_eq!(db.run_by_hand(first), State::Succeeded);
    assert_eq!(db.run_by_hand(plain.id()), State::Succeeded);

    let retention = Retention::new(retention::Config {
        default_ttl: Some(Ttl::After(Duration::from_secs(1))),
        ..retention::Config::default()
    });
    let later = Utc::now() + TimeDelta::days(1);
    let report = retention.run_once(&db.store, later).unwrap();
    // The execution of no flow goes; the running flow's first step, TTL 0 and all, stays.
    assert!(TaskExec::get(plain.id()).is_err());
    assert_eq!(report.flows, 0);
    assert_eq!(TaskExec::get(first).unwrap().state, State::Succeeded);
    assert_eq!(flow.get().unwrap().state, FlowState::Running);

    // The flow ends (its second step cancelled); its final execution expires by the default
    // TTL, and the whole flow goes with it.
    let second = flow.get().unwrap().steps[1].exec.unwrap();
    TaskExec::cancel_in(&db.store, second).unwrap();
    StalledFlows::default()
        .run_once(&db.store, Utc::now())
        .unwrap();
    let ended = flow.get().unwrap();
    assert_eq!(ended.state, FlowState::Failed);
    assert_eq!(ended.final_exec, Some(second));
    let report = retention.run_once(&db.store, later).unwrap();
    assert_eq!(report.flows, 1, "{report:?}");
    assert!(matches!(
        flow.get().unwrap_err(),
        Error::FlowNotFound { .. }
    ));
    assert_eq!(db.count(&format!("flow_id = {}", flow.id())), 0);
    assert!(TaskExec::get(first).is_err());
}
