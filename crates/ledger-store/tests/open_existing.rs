//! The auditors' tools open a ledger that must exist: nothing is created or migrated.

use ledger_store::sql::{open, Access};
use ledger_store::testing::TestDatabase;
use ledger_store::{Backend, StoreError};

#[tokio::test]
async fn a_missing_sqlite_file_is_refused_and_not_created() {
    let path = std::env::temp_dir().join(format!("ledger-missing-{}.db", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", path.display());
    let opened = open(&url, 2, Access::Existing).await;
    assert!(matches!(opened, Err(StoreError::Config(_))), "a missing file must be refused");
    assert!(!path.exists(), "opening an existing ledger must not create {}", path.display());
}

#[tokio::test]
async fn a_database_without_the_ledger_schema_is_refused_on_both_backends() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = TestDatabase::new(backend).await;
        if backend == Backend::Sqlite {
            // An empty SQLite file: exists, but holds no ledger.
            std::fs::write(db.url.trim_start_matches("sqlite://"), b"").expect("create an empty file");
        }
        let opened = open(&db.url, 2, Access::Existing).await;
        match opened {
            Err(StoreError::Config(message)) => assert!(message.contains("holds no ledger"), "{message}"),
            Err(other) => panic!("{backend:?}: expected a clear refusal, got {other}"),
            Ok(_) => panic!("{backend:?}: an empty database must be refused"),
        }
        // Once served (migrated), the same database opens as an existing ledger.
        drop(db.store().await);
        assert!(open(&db.url, 2, Access::Existing).await.is_ok(), "{backend:?}: a migrated ledger opens");
    }
}

/// An operator reading the error learns where the store looked and what went wrong,
/// not that a pool timed out.
#[tokio::test]
async fn an_unreachable_postgres_is_named_with_host_port_and_cause() {
    let started = std::time::Instant::now();
    for access in [Access::Serve, Access::Existing] {
        match open("postgres://postgres@127.0.0.1:1/x?connect_timeout=2", 2, access).await {
            Err(e @ StoreError::Unreachable(_)) => {
                assert_eq!(e.to_string(), "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)");
                assert!(e.is_transient(), "a database may come back");
            }
            Err(other) => panic!("{access:?}: expected the place and the cause, got {other}"),
            Ok(_) => panic!("nothing listens on port 1"),
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_unknown_url_scheme_names_the_supported_ones() {
    for url in ["mysql://root:secret@db:3306/ledger", "foo"] {
        match open(url, 2, Access::Serve).await {
            Err(StoreError::Config(message)) => {
                assert!(message.contains("postgres://") && message.contains("sqlite://"), "{message}");
                assert!(!message.contains("secret"), "a password is never repeated: {message}");
            }
            Err(other) => panic!("{url}: expected a configuration error, got {other}"),
            Ok(_) => panic!("{url} is not a ledger URL"),
        }
    }
}
