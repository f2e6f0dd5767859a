//! Property, on both backends: whatever commands run, folding a credit's stored events
//! gives exactly its projection row, the projection keeps every invariant, and the
//! list counters agree with it.

mod common;

use chrono::Duration;
use common::*;
use ledger_domain::event::StatusChange;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use uuid::Uuid;

fn command() -> impl Strategy<Value = (Command, usize)> {
    let amount = (-2i64..12).prop_map(Decimal::from);
    prop_oneof![
        amount.clone().prop_map(|a| (Command::Use { amount: a, reference: Some("visit".into()), note: None }, 0)),
        amount.clone().prop_map(|a| (Command::Waste { amount: a, reason: None }, 0)),
        Just((Command::Expire { reason: None }, 0)),
        (proptest::option::of(amount.clone()), 0usize..3)
            .prop_map(|(a, n)| (Command::Reverse { event_id: Uuid::nil(), amount: a, reason: None }, n)),
        (-5i64..8).prop_map(|x| (Command::AdjustTotal { delta: Decimal::from(x), reason: None }, 0)),
        Just((Command::Deactivate(StatusChange::default()), 0)),
        Just((Command::Activate(StatusChange::default()), 0)),
        (proptest::option::of(amount.clone()), proptest::option::of(amount)).prop_map(|(u, t)| {
            (Command::Patch(CreditPatch { used_amount: u, total_amount: t, ..Default::default() }), 0)
        }),
    ]
}

fn check(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, store) = rt.block_on(async {
        let db = TestDatabase::new(backend).await;
        let store = db.store().await;
        (db, store)
    });
    let site = Uuid::new_v4();
    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    runner
        .run(&(0i64..15, proptest::collection::vec(command(), 1..25)), |(total, commands)| {
            rt.block_on(async {
                let id = issue(&store, site, draft(&total.to_string())).await;
                for (i, (mut command, nth)) in commands.into_iter().enumerate() {
                    if let Command::Reverse { event_id, .. } = &mut command {
                        let credit = store.load(site, id).await.unwrap().unwrap();
                        if let Some(target) = credit.reversible.keys().nth(nth) {
                            *event_id = *target;
                        }
                    }
                    let mut at = meta();
                    at.occurred_at += Duration::minutes(i as i64);
                    match run_as(&store, site, id, command, at).await {
                        Ok(_) | Err(StoreError::Domain(_)) => {}
                        Err(other) => panic!("store failed: {other:?}"),
                    }
                }
                let projection = store.load(site, id).await.unwrap().unwrap();
                projection.assert_invariants();
                prop_assert_eq!(Some(projection), fold_stream(&store, site, id).await);
                Ok(())
            })
        })
        .unwrap();
    let mismatches = rt.block_on(store.count_mismatches(None)).unwrap();
    assert!(mismatches.is_empty(), "list counters agree with the projection: {mismatches:?}");
    drop(store);
    drop(db);
}

#[test]
fn postgres_projection_equals_folded_events() {
    check(Backend::Postgres);
}

#[test]
fn sqlite_projection_equals_folded_events() {
    check(Backend::Sqlite);
}
