//! `views`: how long each admin page, `app status` and a monitor refresh take to read their
//! data beside a big history.
//!
//! Run with: `cargo run -p toosimple-bench --release -- views --backend sqlite --rows 1000000`
//! (`--json` for one JSON object).
//!
//! A fresh database is filled by SQL with `--rows` executions spread over the last seven days
//! (ids in time order): mostly succeeded, 2.7% failed, a few cancelled, interrupted and
//! invalid, and the newest 3,000 still live (a third sleeping, the rest queued but for a few
//! processing), over eight tasks in five queues; four workers online, one of which links
//! every task but one, and a few schedules. Each view's data function (the one its handler
//! calls) then runs `--runs` times after one warm-up run; the median and the slowest are
//! printed in milliseconds. The overview, `status` and the monitor are also timed as they
//! read before bounded counts (`before`: every row counted per queue and state, and SQLite's
//! chart through the state index), in the same run on the same data.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use clap::Args;
use diesel::prelude::*;
use toosimple_core::schema::{schedule_execs, worker_statuses};
use toosimple_core::store::MinuteCount;
use toosimple_core::{EXACT_COUNT_LIMIT, State, Store, TaskExec, TaskExecFilter, WorkerStatus};

use crate::{Backend, BenchDb, is_postgres, settle};

/// The `views` measurement's options.
#[derive(Debug, Args)]
pub(crate) struct ViewsArgs {
    /// Which database to measure.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// How many executions the table holds.
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
    /// How many timed runs per view (after one warm-up run).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Print one JSON object (for machines) instead of a table for people.
    #[arg(long)]
    json: bool,
    /// The PostgreSQL server (a fresh schema is created and dropped on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// The MariaDB or MySQL server (a fresh database is created and dropped on it).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/test")]
    mysql_url: String,
}

/// The task names and their queues, by `i % 16`.
const TASKS: [(&str, &str); 16] = [
    ("orders.sync", "default"),
    ("orders.sync", "default"),
    ("orders.sync", "default"),
    ("orders.sync", "default"),
    ("orders.sync", "default"),
    ("orders.sync", "default"),
    ("orders.invoice", "default"),
    ("orders.invoice", "default"),
    ("mail.send", "emails"),
    ("mail.send", "emails"),
    ("mail.send", "emails"),
    ("mail.digest", "emails"),
    ("reports.build", "reports"),
    ("reports.export", "reports"),
    ("webhooks.deliver", "webhooks"),
    ("cleanup.sessions", "maintenance"),
];

/// The task no online worker links: the overview and `status` list its queued executions.
const UNLINKED: &str = "reports.export";

/// How many rows one `INSERT … SELECT` adds.
const CHUNK: i64 = 100_000;

/// `expr` plus `seconds` seconds, as `backend` writes it.
fn plus(backend: Backend, expr: &str, seconds: i64) -> String {
    match backend {
        Backend::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', {expr}, '+{seconds} seconds')"),
        Backend::Postgres => format!("({expr} + interval '{seconds} seconds')"),
        Backend::Mysql => format!("({expr} + INTERVAL {seconds} SECOND)"),
    }
}

/// The statement adding the executions numbered `from..to` of `rows`: the numbers come from a
/// cross join of digits (one form for the three backends), the time from `start` on.
fn fill_sql(backend: Backend, rows: i64, from: i64, to: i64, start: &str) -> String {
    let digits_needed = (rows.max(2) - 1).to_string().len();
    let digits = "(SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let tables: Vec<String> = (0..digits_needed)
        .map(|d| format!("{digits} AS d{d}"))
        .collect();
    let number: Vec<String> = (0..digits_needed)
        .map(|d| format!("d{d}.x * {}", 10i64.pow((digits_needed - 1 - d) as u32)))
        .collect();
    // Seven days over the rows, in microseconds per row.
    let step_us = 7 * 86_400 * 1_000_000 / rows.max(1);
    let t = match backend {
        Backend::Sqlite => format!(
            "strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || (i * {step_us} / 1000000.0) || ' seconds')"
        ),
        Backend::Postgres => {
            format!("(timestamp '{start}' + i * interval '{step_us} microseconds')")
        }
        Backend::Mysql => format!("(TIMESTAMP '{start}' + INTERVAL (i * {step_us}) MICROSECOND)"),
    };
    let live_from = rows - 3_000.min(rows / 10);
    let task = TASKS
        .iter()
        .enumerate()
        .map(|(k, (task, _))| format!("WHEN {k} THEN '{task}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let queue = TASKS
        .iter()
        .enumerate()
        .map(|(k, (_, queue))| format!("WHEN {k} THEN '{queue}'"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "INSERT INTO task_execs (task_name, args, queue, priority, state, due, created, started, \
         finished, result, error, retries, retry_delay, worker) \
         SELECT CASE i % 16 {task} END, '{{}}', CASE i % 16 {queue} END, 0, state, \
         CASE WHEN state = 'sleeping' THEN {due_later} ELSE t END, t, \
         CASE WHEN state IN ('sleeping', 'queued') THEN NULL ELSE {started} END, \
         CASE WHEN state IN ('sleeping', 'queued', 'processing') THEN NULL ELSE {finished} END, \
         CASE WHEN state = 'succeeded' THEN 'null' END, \
         CASE WHEN state = 'failed' THEN 'boom' END, 0, 0, \
         CASE WHEN state IN ('sleeping', 'queued') THEN NULL \
              ELSE CASE i % 4 WHEN 0 THEN 'w0' WHEN 1 THEN 'w1' WHEN 2 THEN 'w2' ELSE 'w3' END END \
         FROM (SELECT i, \
           CASE WHEN i >= {live_from} THEN \
                  (CASE WHEN i % 3 = 0 THEN 'sleeping' WHEN i % 30 = 2 THEN 'processing' ELSE 'queued' END) \
                WHEN i % 37 = 7 THEN 'failed' WHEN i % 997 = 0 THEN 'cancelled' \
                WHEN i % 1999 = 1 THEN 'interrupted' WHEN i % 9973 = 5 THEN 'invalid' \
                ELSE 'succeeded' END AS state, \
           {t} AS t \
           FROM (SELECT {number} AS i FROM {tables}) AS n WHERE i >= {from} AND i < {to}) AS r \
         ORDER BY i",
        due_later = plus(backend, "t", 3600),
        started = plus(backend, "t", 1),
        finished = plus(backend, "t", 2),
        number = number.join(" + "),
        tables = tables.join(", "),
    )
}

/// The id of the row in the middle of the table (MariaDB's ids have gaps between statements).
fn middle_id(store: &Store, rows: i64) -> i64 {
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = store.connection().unwrap();
    te::task_execs
        .select(te::id)
        .order(te::id)
        .offset(rows / 2)
        .limit(1)
        .load::<i64>(&mut *conn)
        .unwrap()
        .first()
        .copied()
        .unwrap_or(1)
}

/// Fills `store` with `rows` executions, the workers and the schedules.
fn fill(store: &Store, backend: Backend, rows: i64) {
    let mut conn = store.connection().unwrap();
    let now = Utc::now().naive_utc();
    let start = (now - TimeDelta::days(7))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut from = 0;
    while from < rows {
        let to = (from + CHUNK).min(rows);
        diesel::sql_query(fill_sql(backend, rows, from, to, &start))
            .execute(&mut *conn)
            .unwrap();
        from = to;
    }
    let linked: Vec<&str> = TASKS
        .iter()
        .map(|(task, _)| *task)
        .filter(|task| *task != UNLINKED)
        .collect();
    let linked = serde_json::to_string(&linked).unwrap();
    for w in 0..6 {
        use worker_statuses::dsl as ws;
        let stopped = (w >= 4).then(|| now - TimeDelta::hours(2));
        diesel::insert_into(ws::worker_statuses)
            .values((
                ws::label.eq(format!("w{w}")),
                ws::queues.eq("[]"),
                ws::excluded_queues.eq("[]"),
                ws::timeout.eq(30.0),
                ws::last_tick.eq(stopped.unwrap_or(now)),
                ws::started.eq(now - TimeDelta::days(1)),
                ws::stopped.eq(stopped),
                ws::exit_code.eq(stopped.map(|_| 0)),
                ws::tasks.eq(Some(&linked)),
                ws::handled.eq(1000i64),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    drop(conn);
    let middle = middle_id(store, rows);
    let mut conn = store.connection().unwrap();
    for (k, (task, _)) in TASKS.iter().enumerate().step_by(2) {
        use schedule_execs::dsl as se;
        diesel::insert_into(se::schedule_execs)
            .values((
                se::name.eq(format!("every-{task}-{k}")),
                se::last_due.eq(Some(now - TimeDelta::hours(1))),
                se::last_task.eq(Some(middle)),
                se::state.eq("active"),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    drop(conn);
    settle(store);
}

/// One timed view: its name and what it reads.
type View<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// The base commit's chart: on SQLite, its planner walked every succeeded row through the
/// index on `(state, id)` instead of the last hour's through the index on `finished`.
fn chart_before(store: &Store) -> Vec<MinuteCount> {
    let since = (Utc::now() - TimeDelta::hours(1)).naive_utc();
    let mut conn = store.connection().unwrap();
    if store.url().starts_with("sqlite") {
        diesel::sql_query(
            "SELECT CAST(strftime('%s', m || ':00') AS INTEGER) AS minute, state, n FROM \
             (SELECT substr(finished, 1, 16) AS m, state, COUNT(*) AS n FROM task_execs \
              WHERE finished >= ? AND state IN ('succeeded', 'failed') GROUP BY 1, 2)",
        )
        .bind::<diesel::sql_types::Timestamp, _>(since)
        .load(&mut *conn)
        .unwrap()
    } else {
        drop(conn);
        store.finished_per_minute(since.and_utc()).unwrap()
    }
}

/// The views, each with its data function as the handler, `status` or the monitor calls it.
fn views<'a>(store: &'a Store, middle: i64) -> Vec<View<'a>> {
    let page = 51;
    let list = move |filter: TaskExecFilter| {
        Box::new(move || {
            toosimple_admin::views::executions(store, &filter).unwrap();
        }) as Box<dyn Fn() + 'a>
    };
    vec![
        (
            "admin /  (overview)",
            Box::new(move || {
                toosimple_admin::views::overview(store, Utc::now(), EXACT_COUNT_LIMIT).unwrap();
            }),
        ),
        (
            "  of which the counts",
            Box::new(move || {
                TaskExec::view_counts_in(store, EXACT_COUNT_LIMIT).unwrap();
            }),
        ),
        ("admin /execs", list(TaskExecFilter::default().limit(page))),
        (
            "admin /execs?before=(middle)",
            list(TaskExecFilter::default().before_id(middle).limit(page)),
        ),
        (
            "admin /execs?state=failed",
            list(TaskExecFilter::default().state(State::Failed).limit(page)),
        ),
        (
            "admin /execs?state=queued",
            list(TaskExecFilter::default().state(State::Queued).limit(page)),
        ),
        (
            "admin /execs?queue=reports",
            list(TaskExecFilter::default().queue("reports").limit(page)),
        ),
        (
            "admin /execs?task=reports.build",
            list(
                TaskExecFilter::default()
                    .task_name("reports.build")
                    .limit(page),
            ),
        ),
        (
            "admin /execs?state=failed&queue=emails",
            list(
                TaskExecFilter::default()
                    .state(State::Failed)
                    .queue("emails")
                    .limit(page),
            ),
        ),
        (
            "admin /execs/{id}",
            Box::new(move || {
                TaskExec::get_in(store, middle).unwrap();
            }),
        ),
        (
            "admin /workers",
            Box::new(move || {
                toosimple_admin::views::workers(store).unwrap();
            }),
        ),
        (
            "admin /schedules",
            Box::new(move || {
                toosimple_admin::views::schedules(store).unwrap();
            }),
        ),
        (
            "app status",
            Box::new(move || {
                toosimple_worker::status::Status::read(store, Utc::now()).unwrap();
            }),
        ),
        (
            "app monitor (one refresh)",
            Box::new(move || {
                toosimple_worker::monitor::Snapshot::read(store, Utc::now()).unwrap();
            }),
        ),
    ]
}

/// The overview, `status` and the monitor as the base commit read them.
fn views_before<'a>(store: &'a Store) -> Vec<View<'a>> {
    vec![
        (
            "admin /  (overview)",
            Box::new(move || {
                let now = Utc::now();
                TaskExec::counts_in(store).unwrap();
                WorkerStatus::list_in(store).unwrap();
                chart_before(store);
                TaskExec::unknown_to_online_workers_in(store, now).unwrap();
            }),
        ),
        (
            "  of which the counts",
            Box::new(move || {
                TaskExec::counts_in(store).unwrap();
            }),
        ),
        (
            "app status",
            Box::new(move || {
                let now = Utc::now();
                TaskExec::counts_in(store).unwrap();
                WorkerStatus::list_in(store).unwrap();
                TaskExec::unknown_to_online_workers_in(store, now).unwrap();
                TaskExec::running_per_worker_in(store).unwrap();
                TaskExec::list_in(
                    store,
                    &TaskExecFilter::default().state(State::Processing).limit(20),
                )
                .unwrap();
            }),
        ),
        (
            "app monitor (one refresh)",
            Box::new(move || {
                let now = Utc::now();
                TaskExec::running_per_worker_in(store).unwrap();
                WorkerStatus::list_in(store).unwrap();
                TaskExec::counts_in(store).unwrap();
                store
                    .finished_per_second(now - TimeDelta::seconds(59))
                    .unwrap();
            }),
        ),
    ]
}

/// Median and slowest of `runs` timed calls of `f`, after one warm-up call, in milliseconds.
fn time(f: &dyn Fn(), runs: usize) -> (f64, f64) {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[times.len() / 2]), ms(*times.last().unwrap()))
}

/// Runs the measurement and prints it.
pub(crate) fn run(args: &ViewsArgs) {
    let db = BenchDb::new(args.backend, &args.postgres_url, &args.mysql_url);
    let store = toosimple_core::init(&db.url).expect("open the benchmark database");
    let started = Instant::now();
    fill(&store, args.backend, args.rows);
    let load_s = started.elapsed().as_secs_f64();
    let backend = format!("{:?}", args.backend).to_lowercase();
    if !args.json {
        println!(
            "toosimple-bench views: backend {backend}, {} executions (loaded in {load_s:.1} s), median and slowest of {} runs, ms",
            args.rows, args.runs
        );
        println!(
            "{:<40} {:>9} {:>9}   {:>9} {:>9}",
            "view", "median", "max", "before", "max"
        );
    }
    let before: Vec<(&str, (f64, f64))> = views_before(&store)
        .iter()
        .map(|(name, f)| (*name, time(f.as_ref(), args.runs)))
        .collect();
    let mut figures = Vec::new();
    for (name, f) in views(&store, middle_id(&store, args.rows)) {
        let (median, max) = time(f.as_ref(), args.runs);
        let old = before.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        if !args.json {
            let old_text = old.map_or(String::new(), |(m, x)| format!("{m:>9.1} {x:>9.1}"));
            println!("{name:<40} {median:>9.1} {max:>9.1}   {old_text}");
        }
        let mut figure = serde_json::json!({
            "view": name.trim(),
            "median_ms": median,
            "max_ms": max,
        });
        if let Some((m, x)) = old {
            figure["before_median_ms"] = serde_json::json!(m);
            figure["before_max_ms"] = serde_json::json!(x);
        }
        figures.push(figure);
    }
    let counts = TaskExec::view_counts_in(&store, EXACT_COUNT_LIMIT).unwrap();
    let estimated: Vec<&str> = counts
        .per_state
        .iter()
        .filter(|c| c.approximate)
        .map(|c| c.state.as_str())
        .collect();
    if args.json {
        let out = serde_json::json!({
            "backend": backend,
            "rows": args.rows,
            "runs": args.runs,
            "load_s": load_s,
            "views": figures,
            "per_state": counts.per_state,
        });
        println!("{}", serde_json::to_string(&out).unwrap());
    } else {
        let shown: Vec<String> = counts
            .per_state
            .iter()
            .map(|c| {
                let count = toosimple_core::Count {
                    n: c.count,
                    approximate: c.approximate,
                };
                format!("{} {count}", c.state.as_str())
            })
            .collect();
        println!("counts shown: {}", shown.join(", "));
        if !estimated.is_empty() {
            println!(
                "(estimated totals: {}; {})",
                estimated.join(", "),
                if is_postgres(&store) {
                    "PostgreSQL's planner"
                } else {
                    "the optimizer's index dives"
                }
            );
        }
    }
}
