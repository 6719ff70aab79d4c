//! Measures toosimple's enqueue and drain throughput and its enqueue-to-start latency.
//!
//! Run with: `cargo run -p toosimple-bench --release -- --backend sqlite --tasks 20000 --concurrency 32`
//! (`--json` for one JSON object, `--backlog 1000000` to drain beside a deep queue).
//!
//! Each figure is printed with the rate of a plain-diesel baseline measured in the same run on
//! the same database, so that results compare across machines and loads.
//!
//! `views --backend sqlite --rows 1000000` times instead what the admin's pages, `status` and
//! the monitor read, beside a big history (see `views.rs`).

mod views;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use diesel::prelude::*;
use toosimple_core::{State, Store, TaskExec, TaskExecFilter, task};
use toosimple_worker::{Exit, Worker};

/// A task that does nothing: what is measured is the queue itself.
#[task]
fn noop() {}

/// The backlog (`--backlog`): queued in a queue the drain does not serve, after `noop` in
/// claim order, and never run.
#[task(queue = "backlog", priority = -1)]
fn waiting() {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    /// MariaDB or MySQL.
    Mysql,
}

/// toosimple benchmark.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    /// Another measurement than the queue's throughput.
    #[command(subcommand)]
    mode: Option<Mode>,
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
    /// Also drain `--tasks` tasks out of a table holding this many more queued rows (of a
    /// queue the worker does not serve, due after them): how the claim holds up with a deep
    /// queue.
    #[arg(long, default_value_t = 0)]
    backlog: usize,
    /// Also drain `--tasks` tasks out of a table holding this many finished (succeeded) rows:
    /// how the claim holds up with history kept.
    #[arg(long, default_value_t = 0)]
    history: usize,
    /// With `--history` on PostgreSQL: also drain while another client holds a REPEATABLE
    /// READ snapshot open, so that vacuum cannot clean the rows the drain leaves dead.
    #[arg(long)]
    hold_snapshot: bool,
    /// Also drain `--tasks` tasks with this many worker processes at once, for each count
    /// given (`--workers 1,2,4`): the scale-out curve.
    #[arg(long, value_delimiter = ',')]
    workers: Vec<usize>,
    /// The worker's claim-ahead buffer (default: the concurrency; 0 turns it off).
    #[arg(long)]
    claim_ahead: Option<usize>,
    /// Internal: run as one of `--workers`' processes on this database URL, until done.
    #[arg(long, hide = true)]
    work_on: Option<String>,
    /// Internal: run as the latency measurement's enqueuing process on this database URL,
    /// printing one latency in milliseconds per line.
    #[arg(long, hide = true)]
    enqueue_from: Option<String>,
    /// Internal: run an idle worker (default settings) on this database URL, then print its
    /// own CPU percentage over 10 s and its resident memory in MB.
    #[arg(long, hide = true)]
    idle_on: Option<String>,
    /// Print one JSON object (for machines) instead of lines for people.
    #[arg(long)]
    json: bool,
    /// The PostgreSQL server (a fresh schema is created and dropped on it). With
    /// `pgbouncer=true` (a transaction-pooling proxy), statements are sent unprepared: on a
    /// direct URL, that measures what pooled deployments pay.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// The MariaDB or MySQL server (a fresh database is created and dropped on it).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/test")]
    mysql_url: String,
}

/// The measurements besides the default one.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Times what each admin page, `status` and a monitor refresh read, beside a big history.
    Views(views::ViewsArgs),
}

/// The drain's worker: every queue but the backlog's.
fn bench_worker(store: &Store, args: &Args, label: &str) -> Worker {
    let worker = Worker::new()
        .store(store.clone())
        .concurrency(args.concurrency)
        .label(label)
        .exclude_queues(["backlog"]);
    match args.claim_ahead {
        Some(rows) => worker.claim_ahead(rows),
        None => worker,
    }
}

/// A database for one run, removed afterwards.
struct BenchDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_schema: Option<(String, String)>,
    drop_database: Option<(String, String)>,
}

impl BenchDb {
    fn new(backend: Backend, postgres_url: &str, mysql_url: &str) -> BenchDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
                BenchDb {
                    url,
                    _dir: Some(dir),
                    drop_schema: None,
                    drop_database: None,
                }
            }
            Backend::Postgres => {
                let schema = format!("bench_{:08x}", rand::random::<u32>());
                let mut admin =
                    PgConnection::establish(&libpq_url(postgres_url)).expect("reach PostgreSQL");
                diesel::sql_query(format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .unwrap();
                let sep = if postgres_url.contains('?') { '&' } else { '?' };
                let url = format!("{postgres_url}{sep}options=-csearch_path%3D{schema}");
                BenchDb {
                    url,
                    _dir: None,
                    drop_schema: Some((postgres_url.to_string(), schema)),
                    drop_database: None,
                }
            }
            Backend::Mysql => {
                let database = format!("bench_{:08x}", rand::random::<u32>());
                let mut admin =
                    MysqlConnection::establish(mysql_url).expect("reach MariaDB or MySQL");
                diesel::sql_query(format!("CREATE DATABASE {database}"))
                    .execute(&mut admin)
                    .unwrap();
                let (server, query) = match mysql_url.split_once('?') {
                    Some((server, query)) => (server, format!("?{query}")),
                    None => (mysql_url, String::new()),
                };
                let authority = server.find("://").map_or(0, |i| i + 3);
                let server = server[authority..]
                    .find('/')
                    .map_or(server, |slash| &server[..authority + slash]);
                BenchDb {
                    url: format!("{server}/{database}{query}"),
                    _dir: None,
                    drop_schema: None,
                    drop_database: Some((mysql_url.to_string(), database)),
                }
            }
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = &self.drop_schema
            && let Ok(mut admin) = PgConnection::establish(&libpq_url(admin_url))
        {
            let _ = diesel::sql_query(format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin);
        }
        if let Some((admin_url, database)) = &self.drop_database
            && let Ok(mut admin) = MysqlConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE {database}")).execute(&mut admin);
        }
    }
}

/// `url` without toosimple's `pgbouncer=…` parameter, for connections of the benchmark's own
/// made by diesel directly (libpq refuses parameters it does not know).
fn libpq_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("pgbouncer="))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
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

/// One claimed id, read back from `RETURNING`.
#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The plain-SQL claim of up to `limit` rows of the `default` queue through the claim's partial
/// index (queue, then claim order), as the framework's claim does for a worker of one queue
/// (the state as a literal: with a bound parameter the planner would sort every queued row on
/// each claim), with `SKIP LOCKED` on PostgreSQL. On MariaDB and MySQL, which have no `UPDATE …
/// RETURNING`, see [`baseline_claim_mysql`].
fn baseline_claim_sql(store: &Store, limit: usize) -> String {
    format!(
        "UPDATE task_execs SET state = 'processing' WHERE id IN (SELECT id FROM task_execs{index} \
         WHERE state = 'queued' AND queue = 'default' ORDER BY priority DESC, due, id \
         LIMIT {limit}{lock}) RETURNING id",
        index = claim_index(store),
        lock = if is_postgres(store) {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        },
    )
}

fn is_postgres(store: &Store) -> bool {
    store.url().starts_with("postgres")
}

/// SQLite's planner prefers the index on (state, id) and sorts, even with the literal: name
/// the claim's index.
fn claim_index(store: &Store) -> &'static str {
    if is_postgres(store) {
        ""
    } else if store.url().starts_with("mysql") {
        " FORCE INDEX (task_execs_queued)"
    } else {
        " INDEXED BY task_execs_queued"
    }
}

/// The plain-SQL claim on MariaDB and MySQL: the rows read and locked (`FOR UPDATE SKIP
/// LOCKED`, walking the claim index), then marked, in the caller's transaction.
fn baseline_claim_mysql(
    c: &mut toosimple_core::AnyConnection,
    limit: usize,
) -> diesel::QueryResult<Vec<ClaimedId>> {
    use toosimple_core::schema::task_execs::dsl as te;
    let ids: Vec<ClaimedId> = diesel::sql_query(format!(
        "SELECT id FROM task_execs FORCE INDEX (task_execs_queued) WHERE state = 'queued' \
         AND queue = 'default' ORDER BY priority DESC, due, id LIMIT {limit} FOR UPDATE SKIP LOCKED"
    ))
    .load(c)?;
    if !ids.is_empty() {
        diesel::update(te::task_execs.filter(te::id.eq_any(ids.iter().map(|row| row.id))))
            .set(te::state.eq("processing"))
            .execute(c)?;
    }
    Ok(ids)
}

/// Plain SQL: claims up to `per_claim` rows per transaction (one `UPDATE … RETURNING`, or a
/// locking read and an update on MariaDB and MySQL), then completes them in one statement, in
/// one thread, without the framework.
fn baseline_drain_sql(store: &Store, n: usize, per_claim: usize) -> f64 {
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = store.connection().unwrap();
    let claim = baseline_claim_sql(store, per_claim);
    let mysql = store.url().starts_with("mysql");
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let ids: Vec<i64> = conn
            .transaction::<_, diesel::result::Error, _>(|c| {
                if mysql {
                    baseline_claim_mysql(c, per_claim)
                } else {
                    diesel::sql_query(&claim).load::<ClaimedId>(c)
                }
            })
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect();
        if ids.is_empty() {
            break;
        }
        diesel::update(te::task_execs.filter(te::id.eq_any(&ids)))
            .set((te::state.eq("succeeded"), te::result.eq("null")))
            .execute(&mut *conn)
            .unwrap();
        done += ids.len();
    }
    rate(done, start.elapsed())
}

/// Baseline: plain SQL claims and completes one row per transaction.
fn baseline_drain(store: &Store, n: usize) -> f64 {
    baseline_drain_sql(store, n, 1)
}

/// Baseline: plain SQL claims 100 rows per transaction and completes them in one statement:
/// the database's batched limit, without a framework.
fn baseline_drain_batched(store: &Store, n: usize) -> f64 {
    baseline_drain_sql(store, n, 100)
}

/// Adds `n` queued rows of [`waiting`], in small enough calls.
fn add_backlog(n: usize) {
    let mut left = n;
    while left > 0 {
        let chunk = left.min(10_000);
        waiting::queue_many((0..chunk).map(|_| ())).unwrap();
        left -= chunk;
    }
}

/// Drains `n` noop tasks beside the backlog: a worker of every queue but the backlog's runs
/// until they are done (its claims after that, which walk the whole backlog to find nothing,
/// are not timed).
fn drain_beside_backlog(store: &Store, n: usize, args: &Args) -> f64 {
    let worker = bench_worker(store, args, "bench-backlog");
    let shutdown = worker.shutdown_handle();
    let start = Instant::now();
    let running = std::thread::spawn(move || worker.run());
    // Done when no noop row is queued or running: two look-ups on the partial indexes of
    // those states (the first queued row of the noop's queue, and the index of running rows
    // by worker), with literal states so that PostgreSQL's plans use them, every few
    // milliseconds: neither reads the backlog.
    let first_queued = format!(
        "SELECT id FROM task_execs{index} WHERE state = 'queued' AND queue = 'default' \
         ORDER BY priority DESC, due, id LIMIT 1",
        index = claim_index(store)
    );
    let mut conn = store.connection().unwrap();
    let mut pending = |sql: &str| {
        !diesel::sql_query(sql)
            .load::<ClaimedId>(&mut *conn)
            .unwrap()
            .is_empty()
    };
    while pending(&first_queued)
        || pending(
            "SELECT id FROM task_execs WHERE state = 'processing' AND worker = 'bench-backlog' \
             LIMIT 1",
        )
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rate = rate(n, start.elapsed());
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    rate
}

/// Drains the queued tasks with one worker (this process), serving every queue but the
/// backlog's.
fn drain(store: &Store, queued: usize, args: &Args, label: &str) -> f64 {
    let start = Instant::now();
    let exit = bench_worker(store, args, label).until_done().run();
    let rate = rate(queued, start.elapsed());
    assert_eq!(exit, Exit::Stopped);
    let left = TaskExec::list_in(
        store,
        &TaskExecFilter::default()
            .state(State::Queued)
            .queue("default")
            .limit(1),
    )
    .unwrap();
    assert!(left.is_empty(), "the worker left queued tasks");
    rate
}

/// Adds `n` succeeded rows, finished an hour ago, in one statement.
fn add_history(store: &Store, n: usize) {
    let mut conn = store.connection().unwrap();
    let columns = "task_name, args, queue, priority, state, due, created, started, finished, \
                   result, retries, retry_delay, worker";
    let values = "'noop', '{}', 'default', 0, 'succeeded', t, t, t, t, 'null', 0, 0, 'history'";
    let sql = if is_postgres(store) {
        format!(
            "INSERT INTO task_execs ({columns}) SELECT {values} FROM \
             (SELECT now()::timestamp - interval '1 hour' AS t FROM generate_series(1, {n})) s"
        )
    } else if store.url().starts_with("mysql") {
        format!(
            "INSERT INTO task_execs ({columns}) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL \
             SELECT i + 1 FROM s WHERE i < {n}) SELECT {values} FROM \
             (SELECT UTC_TIMESTAMP(6) - INTERVAL 1 HOUR AS t FROM s) AS times"
        )
    } else {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
             INSERT INTO task_execs ({columns}) SELECT {values} FROM \
             (SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour') AS t FROM s)"
        )
    };
    diesel::sql_query(sql).execute(&mut *conn).unwrap();
    settle(store);
}

/// After a bulk load: the figure is of a table that holds the rows, not of one that just took
/// them in, so the load's aftermath (SQLite's checkpoint of a write-ahead log of hundreds of
/// megabytes, PostgreSQL's vacuum and statistics) is done before the drain, not during it.
fn settle(store: &Store) {
    let mut conn = store.connection().unwrap();
    let sql = if is_postgres(store) {
        "VACUUM ANALYZE task_execs"
    } else if store.url().starts_with("mysql") {
        "ANALYZE TABLE task_execs"
    } else {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    };
    diesel::connection::SimpleConnection::batch_execute(&mut *conn, sql).unwrap();
}

/// Drains the `queued` tasks with `workers` processes of this binary at once, timed from their
/// start to the last one's exit.
fn drain_with_processes(args: &Args, url: &str, queued: usize, workers: usize) -> f64 {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([
        "--concurrency",
        &args.concurrency.to_string(),
        "--work-on",
        url,
    ]);
    if let Some(rows) = args.claim_ahead {
        command.args(["--claim-ahead", &rows.to_string()]);
    }
    let start = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|_| command.spawn().expect("start a worker process"))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a worker process failed");
    }
    rate(queued, start.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let args = Args::parse();
    if let Some(Mode::Views(views)) = &args.mode {
        toosimple_worker::init_tracing("warn");
        views::run(views);
        return;
    }
    if let Some(url) = &args.work_on {
        toosimple_worker::init_tracing("warn");
        let store = toosimple_core::init(url).expect("open the benchmark database");
        let label = format!("bench-worker-{}", std::process::id());
        let exit = bench_worker(&store, &args, &label).until_done().run();
        assert_eq!(exit, Exit::Stopped);
        return;
    }
    if let Some(url) = &args.idle_on {
        let store = toosimple_core::init(url).expect("open the benchmark database");
        let worker = Worker::new().store(store).label("bench-idle");
        let shutdown = worker.shutdown_handle();
        let running = std::thread::spawn(move || worker.run());
        // Past the start (migrations checked, connections opened, first tick).
        std::thread::sleep(Duration::from_secs(2));
        let from = cpu_seconds();
        let idle_for = Duration::from_secs(10);
        std::thread::sleep(idle_for);
        let cpu_percent = (cpu_seconds() - from) / idle_for.as_secs_f64() * 100.0;
        println!("{cpu_percent} {}", rss_mb());
        shutdown.graceful();
        running.join().unwrap();
        return;
    }
    if let Some(url) = &args.enqueue_from {
        toosimple_core::init(url).expect("open the benchmark database");
        for _ in 0..args.latency_samples {
            println!("{}", enqueue_and_time());
            std::thread::sleep(Duration::from_millis(rand::random_range(0..200)));
        }
        return;
    }
    // `TOOSIMPLE_LOG=info` shows the worker's log (rounds per drain, for instance).
    toosimple_worker::init_tracing("warn");
    let db = BenchDb::new(args.backend, &args.postgres_url, &args.mysql_url);
    let store = toosimple_core::init(&db.url).expect("open the benchmark database");
    let n = args.tasks;
    say(
        args.json,
        format!(
            "toosimple-bench: backend {:?}, {} tasks, concurrency {}, database {}",
            args.backend,
            n,
            args.concurrency,
            store.url()
        ),
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
    say(
        args.json,
        format!(
            "enqueue, 1 call per task:   {single:>10.0} tasks/s   (plain diesel INSERT: {base_insert:.0}/s, ratio {:.2})",
            single / base_insert
        ),
    );

    // Enqueue in one call.
    let start = Instant::now();
    noop::queue_many((0..n).map(|_| ())).unwrap();
    let many = rate(n, start.elapsed());
    say(
        args.json,
        format!(
            "enqueue, queue_many:        {many:>10.0} tasks/s   (ratio to plain INSERT: {:.2})",
            many / base_insert
        ),
    );

    // Drain the queued tasks with one worker (this process).
    let drain_rate = drain(&store, n, &args, "bench-drain");
    clear(&store);
    noop::queue_many((0..n).map(|_| ())).unwrap();
    let base_drain = baseline_drain(&store, n);
    clear(&store);
    noop::queue_many((0..n).map(|_| ())).unwrap();
    let base_batched = baseline_drain_batched(&store, n);
    clear(&store);
    say(
        args.json,
        format!(
            "drain, one worker process:  {drain_rate:>10.0} tasks/s   (plain SQL, 100 per claim and completion: {base_batched:.0}/s, ratio {:.2}; one per transaction: {base_drain:.0}/s, ratio {:.2})",
            drain_rate / base_batched,
            drain_rate / base_drain
        ),
    );

    let mut drain_backlog = None;
    if args.backlog > 0 {
        add_backlog(args.backlog);
        noop::queue_many((0..n).map(|_| ())).unwrap();
        settle(&store);
        let rate = drain_beside_backlog(&store, n, &args);
        say(
            args.json,
            format!(
                "drain beside {} queued rows: {rate:>10.0} tasks/s   (ratio to the drain without: {:.2})",
                args.backlog,
                rate / drain_rate
            ),
        );
        drain_backlog = Some(rate);
        clear(&store);
    }

    let mut drain_history = None;
    let mut drain_history_snapshot = None;
    if args.history > 0 {
        add_history(&store, args.history);
        noop::queue_many((0..n).map(|_| ())).unwrap();
        let rate = drain(&store, n, &args, "bench-history");
        say(
            args.json,
            format!(
                "drain beside {} finished rows: {rate:>10.0} tasks/s   (ratio to the drain without: {:.2})",
                args.history,
                rate / drain_rate
            ),
        );
        drain_history = Some(rate);
        if args.hold_snapshot && matches!(args.backend, Backend::Postgres) {
            let mut holder =
                PgConnection::establish(&libpq_url(&db.url)).expect("reach PostgreSQL");
            diesel::sql_query("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut holder)
                .unwrap();
            diesel::sql_query("SELECT count(*) FROM worker_statuses")
                .execute(&mut holder)
                .unwrap();
            noop::queue_many((0..n).map(|_| ())).unwrap();
            let rate = drain(&store, n, &args, "bench-snapshot");
            diesel::sql_query("COMMIT").execute(&mut holder).unwrap();
            say(
                args.json,
                format!(
                    "... with a snapshot held open: {rate:>10.0} tasks/s   (ratio to the drain without history: {:.2})",
                    rate / drain_rate
                ),
            );
            drain_history_snapshot = Some(rate);
        }
        clear(&store);
    }

    let mut scale_out = serde_json::Map::new();
    for &workers in &args.workers {
        noop::queue_many((0..n).map(|_| ())).unwrap();
        let rate = drain_with_processes(&args, &db.url, n, workers);
        say(
            args.json,
            format!(
                "drain, {workers} worker process(es): {rate:>10.0} tasks/s   (ratio to one in-process worker: {:.2})",
                rate / drain_rate
            ),
        );
        scale_out.insert(workers.to_string(), rate.into());
        clear(&store);
    }

    // Enqueue-to-start latency on an idle worker (default tick).
    let worker = Worker::new().store(store.clone()).label("bench-latency");
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    std::thread::sleep(Duration::from_millis(300));
    // Enqueued by another process, as a web server would: the wake-up must cross processes.
    let enqueuer = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--backend",
            &format!("{:?}", args.backend).to_lowercase(),
            "--latency-samples",
            &args.latency_samples.to_string(),
            "--enqueue-from",
            &db.url,
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the enqueuing process");
    assert!(enqueuer.status.success(), "the enqueuing process failed");
    let mut latencies: Vec<f64> = String::from_utf8_lossy(&enqueuer.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("a latency in milliseconds"))
        .collect();
    assert_eq!(latencies.len(), args.latency_samples);
    shutdown.graceful();
    running.join().unwrap();
    // The idle worker's cost, in a process of its own as users run it (this one holds the
    // benchmark's buffers and pools): its CPU time over 10 s with nothing queued, and its
    // resident memory.
    let idle = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--idle-on", &db.url])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the idle worker's process");
    assert!(idle.status.success(), "the idle worker's process failed");
    let idle = String::from_utf8_lossy(&idle.stdout);
    let mut idle = idle
        .split_whitespace()
        .map(|f| f.parse::<f64>().expect("a figure"));
    let (idle_cpu_percent, idle_rss_mb) = (idle.next().unwrap(), idle.next().unwrap());
    say(
        args.json,
        format!(
            "idle worker: {idle_cpu_percent:.2}% of one core, {idle_rss_mb:.1} MB resident (a worker process of its own, over 10 s)"
        ),
    );
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    say(
        args.json,
        format!(
            "enqueue-to-start, idle worker (tick 1 s), enqueued by another process: p50 {p50:.1} ms, p99 {p99:.1} ms over {} tasks",
            latencies.len()
        ),
    );
    if args.json {
        let mut figures = serde_json::json!({
            "backend": format!("{:?}", args.backend).to_lowercase(),
            "tasks": n,
            "concurrency": args.concurrency,
            "enqueue_per_s": single,
            "enqueue_baseline_per_s": base_insert,
            "enqueue_bulk_per_s": many,
            "drain_per_s": drain_rate,
            "drain_baseline_batched_per_s": base_batched,
            "drain_baseline_per_row_per_s": base_drain,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "idle_cpu_percent": idle_cpu_percent,
            "idle_rss_mb": idle_rss_mb,
        });
        if let Some(rate) = drain_backlog {
            figures["backlog"] = args.backlog.into();
            figures["drain_backlog_per_s"] = rate.into();
        }
        if let Some(rate) = drain_history {
            figures["history"] = args.history.into();
            figures["drain_history_per_s"] = rate.into();
        }
        if let Some(rate) = drain_history_snapshot {
            figures["drain_history_snapshot_per_s"] = rate.into();
        }
        if !scale_out.is_empty() {
            figures["drain_by_workers_per_s"] = scale_out.into();
        }
        println!("{figures}");
    }
}

/// Enqueues one no-op task, waits until it ran, and returns how long it waited to start, in
/// milliseconds (`started - created`, both recorded in the database).
fn enqueue_and_time() -> f64 {
    let handle = noop::queue().unwrap();
    handle.wait(Duration::from_secs(30)).unwrap();
    let exec = handle.exec().unwrap();
    let waited = exec.started.unwrap() - exec.created;
    waited.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// This process's user and system CPU time so far, from `/proc/self/stat` (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line (indexes 11 and 12 here); the clock
    // ticks at 100 Hz on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory, from `/proc/self/status` (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Prints a line for people, unless the output is JSON.
fn say(json: bool, line: String) {
    if !json {
        println!("{line}");
    }
}
