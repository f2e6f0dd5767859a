//! Throwaway databases for tests: each test gets its own Postgres database or SQLite
//! file, so tests run in parallel and leave nothing behind.

use std::sync::Arc;

use sqlx::{Connection, PgConnection, SqliteConnection};
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

/// Replaces the stored payload of one event behind the store's back, as a legacy writer
/// or a corrupted disk would: the append-only trigger is stepped around for this one
/// UPDATE and put back.
pub async fn overwrite_payload(db: &TestDatabase, event_id: Uuid, payload: &str) {
    match db.backend {
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.expect("connect");
            let mut tx = conn.begin().await.expect("begin");
            sqlx::query("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
                .execute(&mut *tx)
                .await
                .unwrap();
            let updated = sqlx::query("UPDATE events SET payload = $1::json WHERE event_id = $2")
                .bind(payload)
                .bind(event_id)
                .execute(&mut *tx)
                .await
                .expect("overwrite the payload");
            assert_eq!(updated.rows_affected(), 1, "event {event_id} is stored");
            sqlx::query("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.expect("commit");
        }
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&db.url).await.expect("connect");
            let mut tx = conn.begin().await.expect("begin");
            let trigger: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'",
            )
            .fetch_one(&mut *tx)
            .await
            .expect("the append-only trigger");
            sqlx::query("DROP TRIGGER events_no_update").execute(&mut *tx).await.unwrap();
            let updated = sqlx::query("UPDATE events SET payload = ? WHERE event_id = ?")
                .bind(payload)
                .bind(event_id)
                .execute(&mut *tx)
                .await
                .expect("overwrite the payload");
            assert_eq!(updated.rows_affected(), 1, "event {event_id} is stored");
            sqlx::query(&trigger).execute(&mut *tx).await.unwrap();
            tx.commit().await.expect("commit");
        }
    }
}

/// Gives the database a rule of its own that the service knows nothing of: an event whose
/// payload mentions `word` is refused (a CHECK constraint on Postgres, a trigger on
/// SQLite). What a command caused the database to refuse is then a rejection, not a fault.
pub async fn refuse_payloads_mentioning(db: &TestDatabase, word: &str) {
    assert!(word.chars().all(|c| c.is_ascii_alphanumeric()), "a plain word, quoted into SQL");
    match db.backend {
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.expect("connect");
            let sql =
                format!("ALTER TABLE events ADD CONSTRAINT refuse_{word} CHECK (strpos(payload::text, '{word}') = 0)");
            sqlx::query(&sql).execute(&mut conn).await.expect("add the rule");
        }
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&db.url).await.expect("connect");
            let sql = format!(
                "CREATE TRIGGER refuse_{word} BEFORE INSERT ON events WHEN instr(NEW.payload, '{word}') > 0 \
                 BEGIN SELECT RAISE(ABORT, 'refuse_{word}: this payload is refused'); END"
            );
            sqlx::query(&sql).execute(&mut conn).await.expect("add the rule");
        }
    }
}

/// Makes Postgres fail, as a transient fault (a serialization failure, SQLSTATE 40001),
/// every insert of an event whose payload mentions `word`: what a command meets when the
/// database is briefly unable to commit it.
pub async fn fail_payloads_mentioning_transiently(db: &TestDatabase, word: &str) {
    assert!(word.chars().all(|c| c.is_ascii_alphanumeric()), "a plain word, quoted into SQL");
    assert_eq!(db.backend, Backend::Postgres, "SQLite has no error code to raise that is transient");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let function = format!(
        "CREATE FUNCTION fail_{word}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF strpos(NEW.payload::text, '{word}') > 0 THEN \
         RAISE EXCEPTION 'fail_{word}: try again' USING ERRCODE = 'serialization_failure'; END IF; \
         RETURN NEW; END $$"
    );
    sqlx::query(&function).execute(&mut conn).await.expect("add the fault");
    let trigger =
        format!("CREATE TRIGGER fail_{word} BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_{word}()");
    sqlx::query(&trigger).execute(&mut conn).await.expect("add the fault");
}

/// The stored payload of one event, as text.
pub async fn stored_payload(db: &TestDatabase, event_id: Uuid) -> String {
    match db.backend {
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar("SELECT payload::text FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_one(&mut conn)
                .await
                .expect("stored event")
        }
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar("SELECT payload FROM events WHERE event_id = ?")
                .bind(event_id)
                .fetch_one(&mut conn)
                .await
                .expect("stored event")
        }
    }
}

/// A payload with its `details.extensions` (an event that carries details:
/// CreditIssued, CreditDetailsChanged) nested `depth` objects deep: past serde_json's
/// recursion limit of 128, no reader can decode it, as a legacy row written before the
/// wire's depth limit might be.
pub fn nested_extensions(payload: &str, depth: usize) -> String {
    let mut value: serde_json::Value = serde_json::from_str(payload).expect("a JSON payload");
    value["details"]["extensions"] = serde_json::Value::String("@nested@".into());
    let nested = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    value.to_string().replace("\"@nested@\"", &nested)
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
