//! Connection failures carry the database's own reason and name what failed.

use toosimple_core::{Error, Store};
use toosimple_tests::TestDb;

fn postgres_url_with(path_and_user: impl FnOnce(&str) -> String) -> Option<String> {
    // Only meaningful with a reachable server; TestDb::postgres applies the CI rule.
    let _db = TestDb::postgres()?;
    Some(path_and_user(&TestDb::postgres_admin_url()))
}

#[test]
fn unknown_postgres_database_reports_the_server_reason() {
    let Some(url) = postgres_url_with(|admin| {
        let base = admin.split('?').next().unwrap();
        let (server, _db) = base.rsplit_once('/').unwrap();
        format!("{server}/toosimple_no_such_database")
    }) else {
        return;
    };
    let err = Store::connect(&url).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("database \"toosimple_no_such_database\" does not exist"),
        "{message}"
    );
}

#[test]
fn unknown_postgres_role_reports_the_server_reason() {
    let Some(url) = postgres_url_with(|admin| {
        admin.replacen(
            "postgres://postgres",
            "postgres://toosimple_nobody:secret",
            1,
        )
    }) else {
        return;
    };
    let err = Store::connect(&url).unwrap_err();
    let message = err.to_string();
    // The password is never shown; the server's reason is.
    assert!(!message.contains("secret"), "{message}");
    assert!(
        message.contains("role \"toosimple_nobody\" does not exist"),
        "{message}"
    );
    assert!(message.contains("***"), "{message}");
}

#[test]
fn closed_postgres_port_reports_connection_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres:pw@127.0.0.1:{port}/test");
    let err = Store::connect(&url).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "cannot connect to postgres://postgres:***@127.0.0.1:{port}/test"
        )),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
}

#[test]
fn missing_sqlite_folder_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not").join("here");
    let url = format!("sqlite://{}", missing.join("tasks.sqlite3").display());
    let err = Store::connect(&url).unwrap_err();
    assert!(matches!(err, Error::SqliteFolderMissing { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn unsupported_scheme_says_which_urls_work() {
    let err = Store::connect("mssql://sa@localhost/db").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("sqlite://")
            && message.contains("postgres://")
            && message.contains("mysql://"),
        "{message}"
    );
}

#[test]
fn sqlite_file_is_created_and_migrated_on_first_connect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite3");
    let store = Store::connect(&format!("sqlite://{}", path.display())).unwrap();
    assert!(path.exists());
    assert!(
        toosimple_core::TaskExec::list_in(&store, &Default::default())
            .unwrap()
            .is_empty()
    );
    // Connecting again finds the migrations applied.
    Store::connect(&format!("sqlite://{}", path.display())).unwrap();
}

/// Found by the long chaos run: a worker's session whose client vanished behind a partition
/// held its row locks until the server's own keepalive (two hours), and every other worker's
/// claim and rescue waited on them. Each session of the store sets server-side keepalives
/// and a time limit on idle transactions.
#[test]
fn postgres_sessions_guard_against_vanished_clients() {
    use diesel::prelude::*;
    let Some(db) = TestDb::postgres() else {
        return;
    };
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = db.store.connection().unwrap();
    let mut show = |name: &str| {
        diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
            .get_result::<Setting>(&mut *conn)
            .unwrap()
            .value
    };
    assert_eq!(show("idle_in_transaction_session_timeout"), "1min");
    assert_eq!(show("tcp_keepalives_idle"), "10");
    assert_eq!(show("tcp_keepalives_interval"), "3");
    assert_eq!(show("tcp_keepalives_count"), "3");
}
