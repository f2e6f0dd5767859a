//! Replay and verify on both backends: a tampered event or projection row is found and
//! named; replay rebuilds projections byte for byte.

mod common;

use common::*;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use sqlx::Connection;
use uuid::Uuid;

ledger_store::backend_tests!(
    verify_passes_on_an_untouched_ledger_and_replay_is_byte_identical,
    verify_names_an_event_changed_behind_the_services_back,
    verify_names_a_tampered_projection_and_replay_repairs_it,
    verify_credit_checks_one_credit_and_names_its_first_mismatch,
);

/// A few credits with some history on two sites.
async fn ledger(store: &std::sync::Arc<dyn EventStore>) -> (Uuid, Vec<Uuid>) {
    let site = Uuid::new_v4();
    let mut ids = Vec::new();
    for total in 1..=5 {
        let id = issue(store, site, draft(&(total * 2).to_string())).await;
        run(store, site, id, use_("1")).await.unwrap();
        run(store, site, id, Command::Waste { amount: d("1"), reason: Some("no-show".into()) }).await.unwrap();
        ids.push(id);
    }
    issue(store, Uuid::new_v4(), draft("3")).await;
    (site, ids)
}

/// The projection table as text, every column, in key order.
async fn dump(db: &TestDatabase) -> Vec<String> {
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT b::text FROM billing_credits b ORDER BY site_id, billing_credit_id")
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(
                "SELECT quote(site_id)||quote(billing_credit_id)||version||quote(last_hash)||deleted||expired||credit_type||\
                 is_active||quote(wellness_plan_id)||start_date||quote(end_date)||created_at||updated_at||total_amount||\
                 used_amount||wasted_amount||remaining_amount||state FROM billing_credits ORDER BY site_id, billing_credit_id",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
        }
    }
}

/// Runs SQL with the append-only triggers out of the way, as an attacker with table access would.
async fn behind_the_back(db: &TestDatabase, sql: &str) {
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(&mut conn).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            sqlx::query("ALTER TABLE events ENABLE TRIGGER USER").execute(&mut conn).await.unwrap();
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("DROP TRIGGER events_no_update").execute(&mut conn).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

async fn verify_passes_on_an_untouched_ledger_and_replay_is_byte_identical(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    ledger(&store).await;
    let report = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!((report.events, report.credits), (16, 6));

    let before = dump(&db).await;
    let replayed = audit::replay(store.as_ref(), None, Default::default(), &|_| {}).await.unwrap();
    assert_eq!((replayed.events, replayed.credits), (16, 6));
    assert_eq!(dump(&db).await, before);
}

async fn verify_names_an_event_changed_behind_the_services_back(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (site, ids) = ledger(&store).await;
    let victim = store.read_stream(site, ids[2], 0, 10).await.unwrap().remove(1);
    let payload = serde_json::to_string(&victim.event.payload()).unwrap().replace("\"1\"", "\"0\"");
    let id = match backend {
        Backend::Postgres => format!("'{}'", victim.event_id),
        Backend::Sqlite => format!("X'{}'", victim.event_id.simple()),
    };
    behind_the_back(&db, &format!("UPDATE events SET payload = '{payload}' WHERE event_id = {id}")).await;

    let report = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert!(!report.ok());
    assert!(report.findings[0].contains(&victim.event_id.to_string()), "{:?}", report.findings);
    assert!(report.findings[0].contains("changed after it was written"), "{:?}", report.findings);
}

async fn verify_names_a_tampered_projection_and_replay_repairs_it(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (site, ids) = ledger(&store).await;
    let before = dump(&db).await;
    let mut credit = store.load(site, ids[0]).await.unwrap().unwrap();
    credit.used_amount = d("0");
    let state = serde_json::to_string(&credit).unwrap();
    let key = match backend {
        Backend::Postgres => format!("'{}'", ids[0]),
        Backend::Sqlite => format!("X'{}'", ids[0].simple()),
    };
    behind_the_back(&db, &format!("UPDATE billing_credits SET state = '{state}' WHERE billing_credit_id = {key}"))
        .await;

    let report = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert_eq!(report.finding_count, 1, "{:?}", report.findings);
    assert!(report.findings[0].contains(&ids[0].to_string()) && report.findings[0].contains("differs"));

    audit::replay(store.as_ref(), Some(site), Default::default(), &|_| {}).await.unwrap();
    assert!(audit::verify(store.as_ref(), None, &|_| {}).await.unwrap().ok());
    assert_eq!(dump(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_tampered_list_counter_and_replay_recounts() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let (site, _) = ledger(&store).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE credit_counts SET live = live + 7 WHERE site_id = $1")
        .bind(site)
        .execute(&mut conn)
        .await
        .unwrap();
    let report = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert_eq!(report.finding_count, 1, "{:?}", report.findings);
    assert!(report.findings[0].contains("counted 12 but the projection holds 5"), "{:?}", report.findings);
    audit::replay(store.as_ref(), None, Default::default(), &|_| {}).await.unwrap();
    assert!(audit::verify(store.as_ref(), None, &|_| {}).await.unwrap().ok());
    assert_eq!(store.list(site, &ListQuery::default()).await.unwrap().total, 5);
}

/// Postgres rebuilds every site into a fresh table and swaps it in. Here the credits do
/// not fit in memory at once (several passes), a projection row is tampered with, and a
/// writer keeps using credits the whole time: afterwards every row equals its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rebuild_in_several_passes_beside_a_writer_matches_the_events() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(issue(&store, site, draft("1000")).await);
    }
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE billing_credits SET used_amount = 999 WHERE billing_credit_id = $1")
        .bind(ids[0])
        .execute(&mut conn)
        .await
        .unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, ids, stop) = (store.clone(), ids.clone(), stop.clone());
        tokio::spawn(async move {
            let mut used = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || used < 20 {
                run(&store, site, ids[used % ids.len()], use_("1")).await.unwrap();
                used += 1;
            }
            used
        })
    };
    let limits = ledger_store::ReplayLimits { credits_in_memory_max: 7 };
    let report = audit::replay(store.as_ref(), None, limits, &|_| {}).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let used = writer.await.unwrap();

    assert!(report.passes > 2, "{report:?}");
    assert!(report.credits >= 40 && report.events >= 40, "{report:?}");
    let verified = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert!(verified.ok(), "{:?}", verified.findings);
    let list = store.list(site, &ListQuery { page_size: 100, ..Default::default() }).await.unwrap();
    assert_eq!(list.total, 40);
    let used_total: rust_decimal::Decimal = list.credits.iter().map(|c| c.used_amount).sum();
    assert_eq!(used_total, rust_decimal::Decimal::from(used as u64));
}

async fn verify_credit_checks_one_credit_and_names_its_first_mismatch(backend: Backend) {
    use ledger_store::audit_credit::verify_credit;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (site, ids) = ledger(&store).await;
    for id in &ids {
        let verdict = verify_credit(store.as_ref(), site, *id).await.unwrap().unwrap();
        assert!(verdict.ok(), "{:?}", verdict.first_mismatch);
        assert_eq!(verdict.events, 3);
    }
    assert_eq!(verify_credit(store.as_ref(), site, Uuid::new_v4()).await.unwrap(), None, "no such credit");
    assert_eq!(verify_credit(store.as_ref(), Uuid::new_v4(), ids[0]).await.unwrap(), None, "another site's");

    // An event of one credit is changed: that credit names it, its neighbours are ok.
    let victim = store.read_stream(site, ids[2], 0, 10).await.unwrap().remove(1);
    let payload = serde_json::to_string(&victim.event.payload()).unwrap().replace("\"1\"", "\"0\"");
    ledger_store::testing::overwrite_payload(&db, victim.event_id, &payload).await;
    let verdict = verify_credit(store.as_ref(), site, ids[2]).await.unwrap().unwrap();
    let mismatch = verdict.first_mismatch.unwrap();
    assert_eq!((mismatch.event_id, mismatch.version), (Some(victim.event_id), Some(2)));
    assert!(mismatch.finding.contains("changed after it was written"), "{}", mismatch.finding);
    assert_eq!(verdict.events, 2, "stops at the first mismatch");
    assert!(verify_credit(store.as_ref(), site, ids[1]).await.unwrap().unwrap().ok());
    assert!(verify_credit(store.as_ref(), site, ids[3]).await.unwrap().unwrap().ok());

    // The projection row of another credit differs: named, with no event.
    let key = |id: Uuid| match backend {
        Backend::Postgres => format!("'{id}'"),
        Backend::Sqlite => format!("X'{}'", id.simple()),
    };
    let mut credit = store.load(site, ids[0]).await.unwrap().unwrap();
    credit.used_amount = d("0");
    let state = serde_json::to_string(&credit).unwrap();
    behind_the_back(
        &db,
        &format!("UPDATE billing_credits SET state = '{state}' WHERE billing_credit_id = {}", key(ids[0])),
    )
    .await;
    let verdict = verify_credit(store.as_ref(), site, ids[0]).await.unwrap().unwrap();
    let mismatch = verdict.first_mismatch.unwrap();
    assert_eq!((mismatch.event_id, mismatch.version), (None, None));
    assert!(mismatch.finding.contains("differs"), "{}", mismatch.finding);
}
