//! Measures toosimple's enqueue and drain throughput and its enqueue-to-start latency.
//!
//! Run with: `cargo run -p toosimple-bench --release -- --backend sqlite --tasks 20000 --concurrency 32`
//!
//! Each figure is printed with the rate of a plain-diesel baseline measured in the same run on
//! the same database, so that results compare across machines and loads.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use diesel::prelude::*;
use toosimple_core::{State, Store, TaskExec, TaskExecFilter, task};
use toosimple_worker::{Exit, Worker};

/// A task that does nothing: what is measured is the queue itself.
#[task]
fn noop() {}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// toosimple benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Which database to measure.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// How many tasks per measurement.
    #[arg(long, default_value_t = 10_000)]
    tasks: usize,
    /// The worker's concurrency for the drain.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How many single tasks the latency measurement enqueues.
    #[arg(long, default_value_t = 50)]
    latency_samples: usize,
    /// The PostgreSQL server (a fresh schema is created and dropped on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
}

/// A database for one run, removed afterwards.
struct BenchDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_schema: Option<(String, String)>,
}

impl BenchDb {
    fn new(args: &Args) -> BenchDb {
        match args.backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
                BenchDb {
                    url,
                    _dir: Some(dir),
                    drop_schema: None,
                }
            }
            Backend::Postgres => {
                let schema = format!("bench_{:08x}", rand::random::<u32>());
                let mut admin =
                    PgConnection::establish(&args.postgres_url).expect("reach PostgreSQL");
                diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .unwrap();
                let sep = if args.postgres_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let url = format!("{}{sep}options=-csearch_path%3D{schema}", args.postgres_url);
                BenchDb {
                    url,
                    _dir: None,
                    drop_schema: Some((args.postgres_url.clone(), schema)),
                }
            }
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = &self.drop_schema
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin);
        }
    }
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn clear(store: &Store) {
    let mut conn = store.connection().unwrap();
    diesel::sql_query("DELETE FROM task_execs")
        .execute(&mut *conn)
        .unwrap();
}

/// Baseline: the same row inserted by plain diesel, one statement per task.
fn baseline_insert(store: &Store, n: usize) -> f64 {
    let mut conn = store.connection().unwrap();
    let now = chrono::Utc::now().naive_utc();
    let start = Instant::now();
    for _ in 0..n {
        use toosimple_core::schema::task_execs::dsl as te;
        diesel::insert_into(te::task_execs)
            .values((
                te::task_name.eq("noop"),
                te::args.eq("{}"),
                te::queue.eq("default"),
                te::priority.eq(0),
                te::state.eq("queued"),
                te::due.eq(now),
                te::created.eq(now),
                te::retries.eq(0),
                te::retry_delay.eq(0i64),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    rate(n, start.elapsed())
}

/// Baseline: plain diesel claims and completes one row per transaction, in one thread.
fn baseline_drain(store: &Store, n: usize) -> f64 {
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = store.connection().unwrap();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let id: Option<i64> = conn
            .transaction::<_, diesel::result::Error, _>(|c| {
                let id: Option<i64> = te::task_execs
                    .filter(te::state.eq("queued"))
                    .order((te::priority.desc(), te::due, te::id))
                    .select(te::id)
                    .first(c)
                    .optional()?;
                if let Some(id) = id {
                    diesel::update(te::task_execs.find(id))
                        .set(te::state.eq("processing"))
                        .execute(c)?;
                }
                Ok(id)
            })
            .unwrap();
        let Some(id) = id else { break };
        diesel::update(te::task_execs.find(id))
            .set((te::state.eq("succeeded"), te::result.eq("null")))
            .execute(&mut *conn)
            .unwrap();
        done += 1;
    }
    rate(done, start.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let args = Args::parse();
    // `TOOSIMPLE_LOG=info` shows the worker's log (rounds per drain, for instance).
    toosimple_worker::init_tracing("warn");
    let db = BenchDb::new(&args);
    let store = toosimple_core::init(&db.url).expect("open the benchmark database");
    let n = args.tasks;
    println!(
        "toosimple-bench: backend {:?}, {} tasks, concurrency {}, database {}",
        args.backend,
        n,
        args.concurrency,
        store.url()
    );

    // Enqueue, one call per task.
    let base_insert = baseline_insert(&store, n);
    clear(&store);
    let start = Instant::now();
    for _ in 0..n {
        noop::queue().unwrap();
    }
    let single = rate(n, start.elapsed());
    clear(&store);
    println!(
        "enqueue, 1 call per task:   {single:>10.0} tasks/s   (plain diesel INSERT: {base_insert:.0}/s, ratio {:.2})",
        single / base_insert
    );

    // Enqueue in one call.
    let start = Instant::now();
    noop::queue_many((0..n).map(|_| ())).unwrap();
    let many = rate(n, start.elapsed());
    println!(
        "enqueue, queue_many:        {many:>10.0} tasks/s   (ratio to plain INSERT: {:.2})",
        many / base_insert
    );

    // Drain the queued tasks with one worker (this process).
    let start = Instant::now();
    let exit = Worker::new()
        .store(store.clone())
        .concurrency(args.concurrency)
        .label("bench-drain")
        .until_done()
        .run();
    let drain = rate(n, start.elapsed());
    assert_eq!(exit, Exit::Stopped);
    let left = TaskExec::list_in(
        &store,
        &TaskExecFilter::default().state(State::Queued).limit(1),
    )
    .unwrap();
    assert!(left.is_empty(), "the worker left queued tasks");
    clear(&store);
    noop::queue_many((0..n).map(|_| ())).unwrap();
    let base_drain = baseline_drain(&store, n);
    clear(&store);
    println!(
        "drain, one worker process:  {drain:>10.0} tasks/s   (plain diesel claim+complete per row: {base_drain:.0}/s, ratio {:.2})",
        drain / base_drain
    );

    // Enqueue-to-start latency on an idle worker (default tick).
    let worker = Worker::new().store(store.clone()).label("bench-latency");
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::new();
    for _ in 0..args.latency_samples {
        let handle = noop::queue().unwrap();
        handle.wait(Duration::from_secs(30)).unwrap();
        let exec = handle.exec().unwrap();
        let waited = exec.started.unwrap() - exec.created;
        latencies.push(waited.num_microseconds().unwrap_or(0) as f64 / 1000.0);
        std::thread::sleep(Duration::from_millis(rand::random_range(0..200)));
    }
    shutdown.graceful();
    running.join().unwrap();
    latencies.sort_by(f64::total_cmp);
    println!(
        "enqueue-to-start, idle worker (tick 1 s): p50 {:.1} ms, p99 {:.1} ms over {} tasks",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
}
