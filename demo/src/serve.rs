//! `demo` with no subcommand: the web site and a worker in one process.

use std::process::ExitCode;

use toosimple_worker::Worker;

use crate::{subscribers, web};

/// Where the site listens when `--bind` is not given.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

/// The site's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The address to listen on.
    pub bind: String,
    /// Whether to run a worker in the same process.
    pub worker: bool,
    /// `--database-url`, else `TOOSIMPLE_DATABASE_URL` or the default.
    pub database_url: Option<String>,
}

/// Runs the site (and the worker) until Ctrl-C or SIGTERM.
pub fn run(options: Options) -> ExitCode {
    toosimple_worker::init_tracing("info");
    let store = match options
        .database_url
        .as_deref()
        .map_or_else(toosimple_core::default_store, toosimple_core::init)
        .and_then(|store| subscribers::migrate(&store).map(|()| store))
    {
        Ok(store) => store,
        Err(e) => {
            eprintln!("demo: {}", e.report());
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&options.bind).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("demo: cannot listen on {}: {e}", options.bind);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener
            .local_addr()
            .map_or(options.bind.clone(), |a| a.to_string());
        let worker = options.worker.then(|| {
            let worker = Worker::new().store(store.clone()).label("demo-{pid}");
            let shutdown = worker.shutdown_handle();
            (shutdown, tokio::spawn(worker.run_async()))
        });
        println!("demo: database {}", store.url());
        println!(
            "demo: {}",
            if worker.is_some() {
                "a worker runs in this process"
            } else {
                "no worker in this process: run `demo worker`"
            }
        );
        if web::admin_enabled() {
            println!("demo: admin dashboard at http://{addr}/admin");
        } else {
            println!("demo: set TOOSIMPLE_ADMIN_PASSWORD to get the admin dashboard at /admin");
        }
        println!("demo: open http://{addr}/ (Ctrl-C to stop)");
        // With each connection's address, the admin slows failed logins per client rather
        // than for everyone at once.
        let app = web::router(store.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await;
        println!("demo: stopping");
        let mut code = ExitCode::SUCCESS;
        if let Err(e) = served {
            eprintln!("demo: the web server failed: {e}");
            code = ExitCode::FAILURE;
        }
        if let Some((shutdown, running)) = worker {
            shutdown.graceful();
            match running.await {
                Ok(exit) if exit.code() == 0 => {}
                Ok(exit) => {
                    eprintln!("demo: the worker ended with {exit:?}");
                    code = ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("demo: the worker panicked: {e}");
                    code = ExitCode::FAILURE;
                }
            }
        }
        println!("demo: stopped");
        code
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` sends).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}
