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
