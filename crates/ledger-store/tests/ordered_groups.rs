//! `Commands::execute_all`: commands run in the order given, as shared transactions,
//! each with its own outcome, and order per credit survives faults.

mod common;

use common::*;
use ledger_domain::event::StatusChange;
use ledger_domain::*;
use ledger_store::commands::command_execution;
use ledger_store::testing::{fail_payloads_mentioning_transiently, refuse_payloads_mentioning, TestDatabase};
use ledger_store::*;
use uuid::Uuid;

ledger_store::backend_tests!(
    each_command_is_decided_after_the_ones_before_it,
    a_command_the_database_refuses_fails_alone,
    a_repeated_command_that_wrote_nothing_is_answered_again,
);

fn use_with(id: Uuid, site: Uuid, amount: &str, reference: &str, command_id: Option<Uuid>) -> Execution {
    let command = Command::Use { amount: d(amount), reference: Some(reference.into()), note: None };
    command_execution(site, id, command, CommandMeta { command_id, ..meta() }, None)
}

async fn each_command_is_decided_after_the_ones_before_it(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let (a, b) = (issue(&store, site, draft("5")).await, issue(&store, site, draft("5")).await);
    let repeated = Uuid::new_v4();

    let results = store
        .execute_all(vec![
            use_with(a, site, "3", "first", None),
            use_with(a, site, "3", "too-much", None), // 2 left: refused
            use_with(b, site, "1", "other-credit", None),
            use_with(a, site, "2", "rest", Some(repeated)),
            use_with(a, site, "2", "rest", Some(repeated)), // the same command again
        ])
        .await;

    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap().credits[0].remaining_amount(), d("2"));
    assert!(matches!(results[1], Err(StoreError::Domain(DomainError::InsufficientBalance { .. }))), "{:?}", results[1]);
    assert_eq!(results[2].as_ref().unwrap().credits[0].remaining_amount(), d("4"));
    let rest = results[3].as_ref().unwrap();
    assert!(!rest.replayed);
    assert_eq!(rest.credits[0].remaining_amount(), d("0"));
    let again = results[4].as_ref().unwrap();
    assert!(again.replayed, "a repeated command id is answered from the first");
    assert_eq!(again.events, rest.events);

    let stream = store.read_stream(site, a, 0, 100).await.unwrap();
    let references: Vec<_> = stream
        .iter()
        .filter_map(|e| match &e.event {
            Event::CreditUsed(used) => used.reference.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(references, ["first", "rest"], "applied once each, in the order given");
    assert_eq!(fold_stream(&store, site, a).await, store.load(site, a).await.unwrap());
}

/// An activate of an active credit writes nothing; the same command again in the same
/// group (a redelivery) is answered the same way, not as a replay of missing events.
async fn a_repeated_command_that_wrote_nothing_is_answered_again(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let a = issue(&store, site, draft("5")).await;
    let command_id = Some(Uuid::new_v4());
    let activate = || {
        let command = Command::Activate(StatusChange { reason: None });
        command_execution(site, a, command, CommandMeta { command_id, ..meta() }, None)
    };

    let results = store.execute_all(vec![activate(), use_with(a, site, "1", "between", None), activate()]).await;

    for result in &results {
        assert!(result.is_ok(), "{results:?}");
    }
    assert!(results[0].as_ref().unwrap().events.is_empty() && results[2].as_ref().unwrap().events.is_empty());
    assert_eq!(store.load(site, a).await.unwrap().unwrap().version, 2);
}

async fn a_command_the_database_refuses_fails_alone(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    refuse_payloads_mentioning(&db, "forbidden").await;
    let site = Uuid::new_v4();
    let a = issue(&store, site, draft("5")).await;

    let results = store
        .execute_all(vec![
            use_with(a, site, "1", "one", None),
            use_with(a, site, "1", "forbidden", None),
            use_with(a, site, "1", "three", None),
        ])
        .await;

    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let refused = results[1].as_ref().unwrap_err();
    assert!(!refused.is_transient(), "{refused:?}");
    let credit = store.load(site, a).await.unwrap().unwrap();
    assert_eq!((credit.used_amount, credit.version), (d("2"), 3));
}

/// After a transient fault, the later commands of the same credit do not run (a retry
/// applies them in order); other credits' commands are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_transient_fault_the_credit_s_later_commands_wait() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    fail_payloads_mentioning_transiently(&db, "flaky").await;
    let site = Uuid::new_v4();
    let (a, b) = (issue(&store, site, draft("5")).await, issue(&store, site, draft("5")).await);

    let results = store
        .execute_all(vec![
            use_with(a, site, "1", "one", None),
            use_with(a, site, "1", "flaky", None),
            use_with(b, site, "1", "elsewhere", None),
            use_with(a, site, "1", "after", None),
        ])
        .await;

    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[1].as_ref().is_err_and(StoreError::is_transient), "{:?}", results[1]);
    assert!(results[2].is_ok(), "another credit goes on: {:?}", results[2]);
    assert!(results[3].as_ref().is_err_and(StoreError::is_transient), "held back: {:?}", results[3]);
    assert_eq!(store.load(site, a).await.unwrap().unwrap().used_amount, d("1"));
    assert_eq!(store.load(site, b).await.unwrap().unwrap().used_amount, d("1"));
}
