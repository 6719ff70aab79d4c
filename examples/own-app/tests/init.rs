//! `init` sets the default store once; a test's `TestStore` borrows it and gives it back. One
//! test in this file, so that the process starts with no default store whatever the runner.

use toosimple::testing::TestStore;
use toosimple::{Error, default_store, init};

#[test]
fn a_second_init_with_another_database_is_an_error_and_a_test_store_gives_the_first_back() {
    let dir = tempfile_dir();
    let a = dir.join("a.sqlite3");
    let url = format!("sqlite://{}", a.display());
    let store = init(&url).expect("the first init");

    // The same database, however it is written, is the same store.
    let again = init(&url).expect("init again with the same URL");
    assert_eq!(again.location(), store.location());
    let spelled = format!("sqlite://{}/./a.sqlite3", dir.display());
    assert_eq!(
        init(&spelled).expect("the same file").location(),
        store.location()
    );

    let b = dir.join("b.sqlite3");
    let error = init(&format!("sqlite://{}", b.display())).unwrap_err();
    assert!(
        matches!(error, Error::AlreadyInitialized { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("a.sqlite3") && message.contains("b.sqlite3"),
        "{message}"
    );
    assert!(message.contains("TestStore"), "{message}");
    assert!(!b.exists(), "a refused init created its database");
    assert_eq!(default_store().unwrap().location(), store.location());

    {
        let test = TestStore::new().expect("a test store");
        assert_eq!(default_store().unwrap().location(), test.store().location());
        own_app::triple::queue(1).expect("queued into the test store");
    }
    assert_eq!(default_store().unwrap().location(), store.location());
    assert_eq!(
        toosimple::TaskExec::list(&Default::default()).unwrap(),
        Vec::new(),
        "the test store's execution went into the application's database"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder (the facade is this crate's only dependency: no tempfile).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("own-app-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
