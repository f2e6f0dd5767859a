//! The event store contract, run against Postgres and SQLite alike.

mod common;

use std::sync::Arc;

use common::*;
use ledger_domain::event::{CreditUsed, StatusChange};
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use uuid::Uuid;

ledger_store::backend_tests!(
    issued_credit_reads_back_as_its_folded_events,
    append_checks_the_expected_version,
    the_same_event_id_appended_twice_is_stored_once,
    a_command_id_is_applied_once,
    refused_commands_write_nothing,
    raw_update_and_delete_of_events_fail,
    thirty_two_concurrent_uses_of_twenty_units_never_overspend,
    list_filters_sorts_and_pages,
    feed_returns_every_event_once_in_order,
    hashes_chain_each_stream,
    one_execution_appends_to_several_streams_atomically,
);

async fn issued_credit_reads_back_as_its_folded_events(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;
    run(&store, site, id, use_("2")).await.unwrap();
    let committed =
        run(&store, site, id, Command::Waste { amount: d("1"), reason: Some("no-show".into()) }).await.unwrap();

    let credit = store.load(site, id).await.unwrap().unwrap();
    assert_eq!((credit.used_amount, credit.wasted_amount, credit.remaining_amount()), (d("2"), d("1"), d("2")));
    assert_eq!(credit.version, 3);
    assert_eq!(committed.credits, vec![credit.clone()]);
    assert_eq!(fold_stream(&store, site, id).await, Some(credit));
    assert_eq!(store.load(Uuid::new_v4(), id).await.unwrap(), None, "another site never sees it");
}

async fn append_checks_the_expected_version(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;
    let used = |amount: &str| NewEvent {
        event_id: Uuid::new_v4(),
        event: Event::CreditUsed(CreditUsed { amount: d(amount), reference: None, note: None }),
    };
    let at = |expected_version| StreamAppend {
        site_id: site,
        billing_credit_id: id,
        expected_version,
        events: vec![used("1")],
    };
    store.append(vec![at(1)], meta()).await.unwrap();
    let stale = store.append(vec![at(1)], meta()).await.unwrap_err();
    assert!(matches!(stale, StoreError::VersionConflict { expected: 1, actual: 2, .. }), "{stale:?}");
    assert_eq!(store.load(site, id).await.unwrap().unwrap().used_amount, d("1"));
}

async fn the_same_event_id_appended_twice_is_stored_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;
    let append = StreamAppend {
        site_id: site,
        billing_credit_id: id,
        expected_version: 1,
        events: vec![NewEvent {
            event_id: Uuid::new_v4(),
            event: Event::CreditUsed(CreditUsed { amount: d("2"), reference: None, note: None }),
        }],
    };
    let first = store.append(vec![append.clone()], meta()).await.unwrap();
    let second = store.append(vec![append], meta()).await.unwrap();
    assert!(!first.replayed && second.replayed);
    assert_eq!(first.events, second.events);
    assert_eq!(store.read_stream(site, id, 0, 100).await.unwrap().len(), 2);
    assert_eq!(store.load(site, id).await.unwrap().unwrap().used_amount, d("2"));
}

async fn a_command_id_is_applied_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;
    let mut with_id = meta();
    with_id.command_id = Some(Uuid::new_v4());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, with_id) = (store.clone(), with_id.clone());
            tokio::spawn(async move { run_as(&store, site, id, use_("2"), with_id).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let applied = results.iter().filter(|r| matches!(r, Ok(c) if !c.replayed)).count();
    assert_eq!(applied, 1, "{results:?}");
    assert_eq!(store.load(site, id).await.unwrap().unwrap().used_amount, d("2"));
    assert_eq!(store.read_stream(site, id, 0, 100).await.unwrap().len(), 2);
}

async fn refused_commands_write_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("2")).await;
    let err = run(&store, site, id, use_("3")).await.unwrap_err();
    assert!(matches!(err, StoreError::Domain(DomainError::InsufficientBalance { .. })), "{err:?}");
    let err = run(&store, site, Uuid::new_v4(), use_("1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Domain(DomainError::NotFound)), "{err:?}");
    assert_eq!(store.read_stream(site, id, 0, 100).await.unwrap().len(), 1);
    assert_eq!(drain_feed(&store, None, 1).await.len(), 1);
}

async fn raw_update_and_delete_of_events_fail(backend: Backend) {
    use sqlx::Connection;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    issue(&store, site, draft("2")).await;
    let statements = ["UPDATE events SET actor = 'mallory'", "DELETE FROM events"];
    for sql in statements {
        let result = match backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.map(|_| ())
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.map(|_| ())
            }
        };
        let err = result.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let events = drain_feed(&store, None, 1).await;
    assert_eq!(events[0].actor, "test");
}

async fn thirty_two_concurrent_uses_of_twenty_units_never_overspend(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("20")).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { run(&store, site, id, use_("1")).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::Domain(DomainError::InsufficientBalance { .. })) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let credit = store.load(site, id).await.unwrap().unwrap();
    assert_eq!(accepted, 20);
    assert_eq!((credit.used_amount, credit.remaining_amount()), (d("20"), d("0")));
    assert_eq!(store.read_stream(site, id, 0, 100).await.unwrap().len(), 21);
    assert_eq!(fold_stream(&store, site, id).await, Some(credit));
}

async fn list_filters_sorts_and_pages(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let member = Uuid::new_v4();
    let mut ids = Vec::new();
    for total in 1..=7 {
        let mut draft = draft(&total.to_string());
        if total % 2 == 0 {
            draft.details.wellness_plan_membership_id = Some(member);
        }
        draft.is_active = total != 3;
        ids.push(issue(&store, site, draft).await);
    }
    issue(&store, Uuid::new_v4(), draft("100")).await; // another site's credit
    run(&store, site, ids[6], Command::Delete(StatusChange::default())).await.unwrap();

    let all = store.list(site, &ListQuery::default()).await.unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(all.credits.iter().map(|c| c.billing_credit_id).collect::<Vec<_>>(), ids[..6].to_vec());

    let by_total_desc = ListQuery {
        sort_by: SortField::TotalAmount,
        sort_order: SortOrder::Desc,
        page: 1,
        page_size: 4,
        ..Default::default()
    };
    let page = store.list(site, &by_total_desc).await.unwrap();
    assert_eq!(page.total, 6);
    assert_eq!(page.credits.iter().map(|c| c.total_amount).collect::<Vec<_>>(), vec![d("2"), d("1")]);

    let mut members = ListQuery::default();
    members.filter.wellness_plan_membership_id = Some(member);
    assert_eq!(store.list(site, &members).await.unwrap().total, 3);
    let mut inactive = ListQuery::default();
    inactive.filter.is_active = Some(false);
    let page = store.list(site, &inactive).await.unwrap();
    assert_eq!(page.credits.iter().map(|c| c.billing_credit_id).collect::<Vec<_>>(), vec![ids[2]]);
    let mut monetary = ListQuery::default();
    monetary.filter.credit_type = Some(CreditType::Monetary);
    assert_eq!(store.list(site, &monetary).await.unwrap().total, 0);
    let beyond = ListQuery { page: 5, ..Default::default() };
    let page = store.list(site, &beyond).await.unwrap();
    assert_eq!((page.total, page.credits.len()), (6, 0));
}

async fn feed_returns_every_event_once_in_order(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (site_a, site_b) = (Uuid::new_v4(), Uuid::new_v4());
    let a = issue(&store, site_a, draft("5")).await;
    let b = issue(&store, site_b, draft("5")).await;
    run(&store, site_a, a, use_("1")).await.unwrap();
    run(&store, site_b, b, use_("1")).await.unwrap();

    let seen: Vec<_> = drain_feed(&store, None, 4).await.iter().map(|e| (e.billing_credit_id, e.version)).collect();
    assert_eq!(seen, vec![(a, 1), (b, 1), (a, 2), (b, 2)]);
    let only_a = drain_feed(&store, Some(site_a), 2).await;
    assert!(only_a.iter().all(|e| e.site_id == site_a));
}

async fn hashes_chain_each_stream(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let id = issue(&store, site, draft("5")).await;
    run(&store, site, id, use_("1")).await.unwrap();
    let events = store.read_stream(site, id, 0, 100).await.unwrap();
    let mut previous = chain::GENESIS;
    for e in &events {
        let expected = chain::recompute(&previous, e);
        assert_eq!(e.hash, expected, "event {}", e.version);
        previous = e.hash;
    }
}

async fn one_execution_appends_to_several_streams_atomically(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store: Arc<dyn EventStore> = db.store().await;
    let site = Uuid::new_v4();
    let a = issue(&store, site, draft("2")).await;
    let b = issue(&store, site, draft("2")).await;
    let now = meta().occurred_at;
    let spend = |amount_a: &'static str, amount_b: &'static str| Execution {
        site_id: site,
        billing_credit_ids: vec![a, b],
        meta: meta(),
        reverses: None,
        decide: Box::new(move |states| {
            Ok(vec![
                (a, decide(states[0].as_ref(), &use_(amount_a), now)?),
                (b, decide(states[1].as_ref(), &use_(amount_b), now)?),
            ])
        }),
    };
    store.execute(spend("1", "2")).await.unwrap();
    let err = store.execute(spend("1", "1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Domain(DomainError::InsufficientBalance { .. })));
    let a_now = store.load(site, a).await.unwrap().unwrap();
    let b_now = store.load(site, b).await.unwrap().unwrap();
    assert_eq!((a_now.used_amount, b_now.used_amount), (d("1"), d("2")), "the refused half wrote nothing");
}
