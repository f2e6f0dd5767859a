//! Which database errors are worth retrying: a statement the database refuses for what it
//! holds (a constraint, a trigger) fails the same way every time and is not transient;
//! a lock that could not be had in time, or a busy database, is. On both backends, with
//! the refusals made by the real database.

mod common;

use std::time::Duration;

use common::*;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use sqlx::Connection;
use uuid::Uuid;

ledger_store::backend_tests!(database_refusals_are_final_and_lock_timeouts_are_transient);

fn spend(reference: &str) -> Command {
    Command::Use { amount: d("1"), reference: Some(reference.into()), note: None }
}

async fn database_refusals_are_final_and_lock_timeouts_are_transient(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;

    // The database refuses one reference: a rule of its own the service knows nothing of.
    ledger_store::testing::refuse_payloads_mentioning(&db, "poison").await;
    let refused = run(&store, site, id, spend("poison")).await.expect_err("the database refuses it");
    assert!(matches!(refused, StoreError::Database(_)), "{refused:?}");
    assert!(!refused.is_transient(), "a refusal fails the same way every time: {refused}");
    assert!(refused.to_string().contains("refuse_poison"), "the database's own words: {refused}");
    run(&store, site, id, spend("visit-1")).await.expect("the next command of the credit applies");

    // Another session holds what the command needs, longer than it may wait.
    let started = std::time::Instant::now();
    let (blocked, hold) = match backend {
        Backend::Postgres => {
            let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("{site}/{id}"))
                .execute(&mut holder)
                .await
                .unwrap();
            let impatient = ledger_store::sql::connect(&format!("{}?options[lock_timeout]=200ms", db.url), 2)
                .await
                .expect("a store that waits 200 ms for a lock");
            (run(&impatient, site, id, spend("visit-2")).await, Holder::Postgres(holder))
        }
        Backend::Sqlite => {
            let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
            (run(&store, site, id, spend("visit-2")).await, Holder::Sqlite(holder))
        }
    };
    let busy = blocked.expect_err("the lock is held elsewhere");
    assert!(busy.is_transient(), "a lock not had in time may be had later: {busy:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    hold.release().await;
    run(&store, site, id, spend("visit-2")).await.expect("applies once the lock is free");
    assert_eq!(store.load(site, id).await.unwrap().unwrap().used_amount, d("2"));
}

enum Holder {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Holder {
    async fn release(self) {
        match self {
            Holder::Postgres(conn) => conn.close().await.unwrap(),
            Holder::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}
