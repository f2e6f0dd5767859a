//! Throwaway databases for tests: each test gets its own Postgres database or SQLite
//! file, so tests run in parallel and leave nothing behind.

use std::sync::Arc;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::ports::{Backend, EventStore};

/// The server tests create their databases on (`scripts/test` makes sure it answers).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test and is dropped with this value.
pub struct TestDatabase {
    pub backend: Backend,
    /// What `DATABASE_URL` would be for a service using this database.
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite(),
        }
    }

    pub async fn postgres() -> Self {
        let admin = postgres_admin_url();
        let name = format!("ledger_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("Postgres at {admin} must answer (run scripts/test): {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        Self { backend: Backend::Postgres, url: format!("{base}/{name}"), name }
    }

    pub fn sqlite() -> Self {
        let name = std::env::temp_dir().join(format!("ledger-test-{}.db", Uuid::new_v4().simple()));
        let name = name.to_string_lossy().into_owned();
        Self { backend: Backend::Sqlite, url: format!("sqlite://{name}"), name }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Arc<dyn EventStore> {
        crate::sql::connect(&self.url, 8).await.expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Backend::Postgres => {
                let name = self.name.clone();
                // Drop runs inside the test's runtime, which cannot block on async work:
                // a thread with its own runtime does the DROP DATABASE.
                let result = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    rt.block_on(async {
                        let mut conn = PgConnection::connect(&postgres_admin_url()).await?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await?;
                        Ok::<_, sqlx::Error>(())
                    })
                })
                .join();
                if let Ok(Err(e)) = result {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
        }
    }
}

/// Runs each listed `async fn(Backend)` test once per backend:
/// `backend_tests!(my_test, other_test);` makes `postgres::my_test`, `sqlite::my_test`, ….
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await })*
        }
    };
}
