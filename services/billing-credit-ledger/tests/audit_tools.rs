//! The auditors' commands of the built binary (`verify`, `export`) on real databases:
//! they name an event that cannot be read instead of failing blind, export chooses its
//! window in the database (an unreadable event outside the window does not matter),
//! values at the wire's bounds come out whole, and on Postgres both run as a role that
//! may only SELECT.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_domain::{Command as Cmd, CreditDetails, CreditDraft, CreditType, JsonObject};
use ledger_store::testing::{nested_extensions, overwrite_payload, stored_payload, TestDatabase};
use ledger_store::{commands, Backend, CommandMeta, EventStore, RecordedEvent};
use ledger_wire::limits::{FREE_FORM_BYTES_MAX, FREE_FORM_DEPTH_MAX};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Connection;
use support::BIN;
use uuid::Uuid;

fn draft() -> CreditDraft {
    CreditDraft {
        details: CreditDetails::new(CreditType::Quantity, "2020-01-01T00:00:00Z".parse().unwrap()),
        is_active: true,
        total_amount: Decimal::from(10),
        used_amount: Decimal::ZERO,
        wasted_amount: Decimal::ZERO,
        remaining_amount: None,
    }
}

/// FREE_FORM_DEPTH_MAX objects deep, exactly FREE_FORM_BYTES_MAX bytes of compact JSON.
fn at_bounds() -> JsonObject {
    let build = |pad: usize| {
        let mut value = json!({ "pad": "x".repeat(pad) });
        for _ in 1..FREE_FORM_DEPTH_MAX {
            value = json!({ "a": value });
        }
        value
    };
    let value = build(FREE_FORM_BYTES_MAX - build(0).to_string().len());
    value.as_object().unwrap().clone()
}

async fn apply(store: &dyn EventStore, site: Uuid, credit: Uuid, command: Cmd) -> RecordedEvent {
    let meta = CommandMeta::new("auditor-test", Utc::now());
    let committed = commands::run_command(store, site, credit, command, meta, None).await.expect("applies");
    committed.events.into_iter().next().expect("one event")
}

fn spend() -> Cmd {
    Cmd::Use { amount: Decimal::ONE, reference: Some("visit".into()), note: None }
}

fn cli(database_url: &str, args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("DATABASE_URL", database_url).env("RUST_LOG", "warn").output().unwrap()
}

fn exported_ids(out: &Output) -> Vec<Uuid> {
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>();
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["eventId"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Waits until the site's feed shows `n` events: on Postgres it holds back what a
/// transaction of a parallel test, older than ours and still open, might precede.
async fn wait_visible(store: &dyn EventStore, site: Uuid, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while store.feed(Some(site), ledger_store::FeedCursor::START, 1_000).await.unwrap().events.len() < n {
        assert!(std::time::Instant::now() < deadline, "the feed never showed {n} events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An instant strictly between what was recorded before and what is recorded after.
async fn instant_between() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_and_export_name_unreadable_events_and_export_reads_only_its_window() {
    unreadable_events_and_windows(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_verify_and_export_name_unreadable_events_and_export_reads_only_its_window() {
    unreadable_events_and_windows(Backend::Sqlite).await
}

async fn unreadable_events_and_windows(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let (x, y, z) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let before =
        [apply(store.as_ref(), site, x, Cmd::Issue(draft())).await, apply(store.as_ref(), site, x, spend()).await];
    let from = instant_between().await;
    let mut bounded = draft();
    bounded.details.applied_to = Some(at_bounds());
    bounded.details.extensions = Some(at_bounds());
    let within = [
        apply(store.as_ref(), site, y, Cmd::Issue(bounded)).await,
        apply(store.as_ref(), site, y, spend()).await,
        apply(store.as_ref(), site, z, Cmd::Issue(draft())).await,
    ];
    let to = instant_between().await;
    let after = apply(store.as_ref(), site, z, spend()).await;
    wait_visible(store.as_ref(), site, 6).await;
    // X's issue, before the window, can no longer be read by anyone.
    let broken = before[0].event_id;
    overwrite_payload(&db, broken, &nested_extensions(&stored_payload(&db, broken).await, 200)).await;

    let (from_arg, to_arg) = (from.to_rfc3339(), to.to_rfc3339());
    let window = cli(&db.url, &["export", "--site", &site.to_string(), "--from", &from_arg, "--to", &to_arg]);
    assert!(window.status.success(), "{}", String::from_utf8_lossy(&window.stderr));
    assert_eq!(exported_ids(&window), within.iter().map(|e| e.event_id).collect::<Vec<_>>(), "exactly the window");
    let first: Value = serde_json::from_str(String::from_utf8_lossy(&window.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["payload"]["details"]["appliedTo"], json!(at_bounds()), "values at the bounds come out whole");
    assert_eq!(first["payload"]["details"]["extensions"], json!(at_bounds()));

    // The whole history: every readable event written, the unreadable one named, exit 1.
    let whole = cli(&db.url, &["export", "--site", &site.to_string()]);
    assert!(!whole.status.success());
    let mut readable = vec![before[1].event_id];
    readable.extend(within.iter().map(|e| e.event_id));
    readable.push(after.event_id);
    assert_eq!(exported_ids(&whole), readable);
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(stderr.contains(&broken.to_string()) && stderr.contains("cannot be read"), "{stderr}");

    let verify = cli(&db.url, &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verify.stdout);
    let line = report.lines().find(|l| l.contains(&broken.to_string())).unwrap_or_else(|| panic!("{report}"));
    for named in [x.to_string(), site.to_string(), "CreditIssued".into(), "recursion limit".into()] {
        assert!(line.contains(&named), "verify names {named}: {line}");
    }
    assert_eq!(report.matches("MISMATCH").count(), 1, "the other credits check out: {report}");
}

/// A login role that may only read, created in the test's own database and dropped
/// (with its grants) before the database is.
struct ReadOnlyRole {
    name: String,
    admin_url: String,
}

impl ReadOnlyRole {
    async fn create(db: &TestDatabase) -> ReadOnlyRole {
        let name = format!("ledger_reader_{}", Uuid::new_v4().simple());
        let database = db.url.rsplit('/').next().unwrap().to_string();
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for statement in [
            format!("CREATE ROLE {name} LOGIN PASSWORD 'reader'"),
            // Nothing for everyone: no TEMP tables, no CREATE in the schema.
            format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC".into(),
            format!("GRANT CONNECT ON DATABASE {database} TO {name}"),
            format!("GRANT USAGE ON SCHEMA public TO {name}"),
            format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}"),
        ] {
            sqlx::query(&statement).execute(&mut conn).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        ReadOnlyRole { name, admin_url: db.url.clone() }
    }

    /// The database's URL, logged in as this role.
    fn url(&self) -> String {
        let (scheme, rest) = self.admin_url.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}:reader@{host}", self.name)
    }
}

impl Drop for ReadOnlyRole {
    fn drop(&mut self) {
        let (name, url) = (self.name.clone(), self.admin_url.clone());
        // Roles are cluster-wide: always dropped, from a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(&format!("DROP OWNED BY {name}")).execute(&mut conn).await?;
                sqlx::query(&format!("DROP ROLE {name}")).execute(&mut conn).await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop role {}: {dropped:?}", self.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_export_run_as_a_postgres_role_that_may_only_select() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut ids = vec![];
    for _ in 0..3 {
        let credit = Uuid::new_v4();
        ids.push(apply(store.as_ref(), site, credit, Cmd::Issue(draft())).await.event_id);
        ids.push(apply(store.as_ref(), site, credit, spend()).await.event_id);
    }
    wait_visible(store.as_ref(), site, 6).await;
    drop(store);
    let role = ReadOnlyRole::create(&db).await;
    let reader = role.url();
    let mut conn = sqlx::PgConnection::connect(&reader).await.expect("the role logs in");
    let refused = sqlx::query("CREATE TEMP TABLE t (x int)").execute(&mut conn).await;
    assert!(refused.is_err(), "the role may not even create a temporary table");
    conn.close().await.unwrap();

    let verify = cli(&reader, &["verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("checked 6 events of 3 credits"));
    let export = cli(&reader, &["export", "--site", &site.to_string()]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    assert_eq!(exported_ids(&export), ids);
}

#[test]
fn the_cli_names_an_unreachable_database_and_an_unknown_scheme() {
    for (url, expected) in [
        (
            "postgres://postgres@127.0.0.1:1/x?connect_timeout=2",
            "cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)",
        ),
        ("mysql://root:secret@db:3306/ledger", "the supported schemes are postgres://, postgresql:// and sqlite://"),
        ("foo", "the supported schemes are postgres://, postgresql:// and sqlite://"),
    ] {
        for command in ["verify", "migrate"] {
            let out = cli(url, &[command]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && stderr.contains(expected), "{command} on {url}: {stderr}");
            assert!(!stderr.contains("secret"), "{stderr}");
        }
    }
}
