//! Postgres failover drills (issue 17): a private primary and a synchronous streaming
//! standby (scripts/lib/servers.sh), the real binary given both hosts in a libpq
//! multi-host DATABASE_URL. Under load the primary is crashed and the standby promoted:
//! the service answers 503 with Retry-After meanwhile, finds the new primary by itself,
//! and every use a client was told of is on the new primary exactly once.
//!
//! Needs PostgreSQL's server binaries (initdb, pg_basebackup; scripts/test installs
//! them); fails, never skips, without them.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Connection;
use support::pg_pair::{PgPair, Replication};
use support::*;
use uuid::Uuid;

const CLIENTS: usize = 6;
const CREDITS: usize = 3;
const CREDIT_TOTAL: i64 = 1_000_000;
/// Uses acknowledged before the primary is crashed, and after the standby is promoted.
const ACKS_BEFORE_CRASH: usize = 40;
const ACKS_AFTER_PROMOTION: usize = 40;
/// The service checks the primary this often in the drills.
const PROBE_INTERVAL_MS: &str = "200";
/// Every wait of a drill ends by this.
const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// One use a client was told of (2xx): the attempt that succeeded was sent at `sent`.
struct Ack {
    key: String,
    credit: usize,
    sent: Instant,
    answered: Instant,
}

/// What the clients share.
#[derive(Default)]
struct Log {
    acks: Mutex<Vec<Ack>>,
    unavailable: AtomicU64,
    stop: AtomicBool,
}

impl Log {
    fn acks_where(&self, keep: impl Fn(&Ack) -> bool) -> usize {
        self.acks.lock().unwrap().iter().filter(|a| keep(a)).count()
    }
}

/// Uses 1 of a credit, again and again, each with its own Idempotency-Key; a 503 or a
/// connection error is retried with the same key until the answer is definite.
async fn client(c: usize, http: reqwest::Client, token: String, use_urls: Vec<String>, log: Arc<Log>) {
    let mut n = 0;
    while !log.stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("drill-{c}-{n}");
        let credit = (c + n) % CREDITS;
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "{key} got no definite answer within {STEP_DEADLINE:?}");
            let sent = Instant::now();
            let answer = use_one(&http, &token, &use_urls[credit], &key).await;
            match answer {
                Ok(r) if r.status().is_success() => {
                    let ack = Ack { key: key.clone(), credit, sent, answered: Instant::now() };
                    log.acks.lock().unwrap().push(ack);
                    break;
                }
                Ok(r) if r.status() == 503 => {
                    assert_retry_later(&r, &key);
                    log.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("{key}: unexpected {} {}", r.status(), r.text().await.unwrap_or_default()),
                // The service cut the connection: the same key again.
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn use_one(http: &reqwest::Client, token: &str, use_url: &str, key: &str) -> reqwest::Result<reqwest::Response> {
    http.post(use_url)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "amount": 1, "reference": key }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
}

/// A 503 problem that says when to retry.
fn assert_retry_later(r: &reqwest::Response, key: &str) {
    assert_eq!(r.status(), 503, "{key}");
    assert!(r.headers().contains_key("retry-after"), "{key}: a 503 says when to retry");
    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(kind, "application/problem+json", "{key}: a 503 is a problem");
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + STEP_DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {STEP_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn readyz(http: &reqwest::Client, service: &Service) -> Option<reqwest::StatusCode> {
    http.get(format!("{}/readyz", service.base)).timeout(Duration::from_secs(5)).send().await.ok().map(|r| r.status())
}

async fn create_credit(http: &reqwest::Client, service: &Service, token: &str) -> reqwest::Response {
    http.post(service.credits_url())
        .bearer_auth(token)
        .json(&json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": CREDIT_TOTAL }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap()
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_under_load_loses_and_doubles_no_acknowledged_use() {
    let pair = PgPair::start(Replication::Synchronous);
    let url = PgPair::url(&[pair.primary_port, pair.standby_port]);
    let service = start(&url, &[("DB_FAILOVER_PROBE_INTERVAL_MS", PROBE_INTERVAL_MS)]).await;
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let http = reqwest::Client::new();
    let mut credit_ids = vec![];
    for _ in 0..CREDITS {
        let created = create_credit(&http, &service, &token).await;
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        credit_ids.push(created["billingCreditId"].as_str().unwrap().to_string());
    }
    let use_urls: Vec<String> = credit_ids.iter().map(|id| format!("{}/{id}/use", service.credits_url())).collect();

    let log = Arc::new(Log::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(c, http.clone(), token.clone(), use_urls.clone(), log.clone())))
        .collect();
    wait_until("uses acknowledged before the crash", || async { log.acks_where(|_| true) >= ACKS_BEFORE_CRASH }).await;

    pair.crash_primary();
    // pg_ctl has returned: the primary is gone by now.
    let crashed = Instant::now();
    // No primary exists until the promotion: the service must say so, not hang or crash.
    wait_until("/readyz not ready without a primary", || async {
        readyz(&http, &service).await == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    let not_ready = Instant::now();
    // With no primary a use cannot be written: 503, to be retried with the same key.
    let held = "drill-held-over-the-promotion";
    let refused = use_one(&http, &token, &use_urls[0], held).await.expect("the service answers");
    assert_retry_later(&refused, held);
    pair.promote_standby();
    let promoted = Instant::now();
    let retried = loop {
        let sent = Instant::now();
        match use_one(&http, &token, &use_urls[0], held).await {
            Ok(r) if r.status().is_success() => {
                break Ack { key: held.into(), credit: 0, sent, answered: Instant::now() }
            }
            Ok(r) => assert_retry_later(&r, held),
            Err(e) => panic!("{held}: {e}"),
        }
        assert!(promoted.elapsed() < STEP_DEADLINE, "{held}: not written within {STEP_DEADLINE:?} of the promotion");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    log.acks.lock().unwrap().push(retried);
    wait_until("uses acknowledged after the promotion", || async {
        log.acks_where(|a| a.sent > promoted) >= ACKS_AFTER_PROMOTION
    })
    .await;
    log.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("a client failed");
    }
    assert_eq!(readyz(&http, &service).await, Some(reqwest::StatusCode::OK), "ready again by itself");

    // What the clients were told, against the new primary.
    let acks = std::mem::take(&mut *log.acks.lock().unwrap());
    let mut conn = sqlx::PgConnection::connect(&PgPair::url(&[pair.standby_port])).await.unwrap();
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await.unwrap();
    assert!(!in_recovery, "the promoted standby is the primary");
    let rows: Vec<(Option<Uuid>, Uuid)> =
        sqlx::query_as("SELECT command_id, billing_credit_id FROM events WHERE event_type = 'CreditUsed'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut events_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (command_id, credit) in rows {
        events_of.entry(command_id.expect("keyed uses carry their command id")).or_default().push(credit);
    }
    let site: Uuid = SITE.parse().unwrap();
    for ack in &acks {
        let command = ledger_http::routes::write::idempotency_command_id(site, &ack.key);
        let credit: Uuid = credit_ids[ack.credit].parse().unwrap();
        assert_eq!(events_of.get(&command), Some(&vec![credit]), "{}: on the new primary exactly once", ack.key);
    }
    assert_eq!(events_of.len(), acks.len(), "every use written was acknowledged (clients retried to the end)");
    for (i, id) in credit_ids.iter().enumerate() {
        let told = acks.iter().filter(|a| a.credit == i).count() as i64;
        let credit = support::get_json(&http, &format!("{}/{id}", service.credits_url()), &token).await;
        let remaining: Decimal = credit["remainingAmount"].to_string().parse().unwrap();
        assert_eq!(remaining, Decimal::from(CREDIT_TOTAL - told), "credit {id}: remaining = total - acknowledged uses");
    }

    // The figures: from the last use answered before the crash to the first one sent
    // after it (the time without writes includes the wait for /readyz above, which stands
    // for an operator's decision to promote).
    let last_before = acks.iter().filter(|a| a.answered < crashed).map(|a| a.answered).max().unwrap();
    let first_after = acks.iter().filter(|a| a.sent > crashed).map(|a| a.answered).min().unwrap();
    eprintln!(
        "failover drill: {} uses acknowledged, {} answers 503; no writes for {} ms (last success before the \
         crash to first success after); not ready {} ms after the crash; `pg_ctl promote -w` took {} ms; first \
         success {} ms after it returned",
        acks.len(),
        log.unavailable.load(Ordering::Relaxed),
        millis(first_after - last_before),
        millis(not_ready - crashed),
        millis(promoted - not_ready),
        millis(first_after.saturating_duration_since(promoted)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_first_is_passed_over_and_standbys_alone_are_not_ready() {
    let pair = PgPair::start(Replication::Synchronous);
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let http = reqwest::Client::new();

    // The standby first: the service takes the primary behind it.
    let both = start(&PgPair::url(&[pair.standby_port, pair.primary_port]), &[]).await;
    assert_eq!(create_credit(&http, &both, &token).await.status(), 201, "writes go to the primary");

    // Only the standby (named twice, a list of standbys): up, but not ready, and 503.
    let standbys = PgPair::url(&[pair.standby_port, pair.standby_port]);
    let mut waiting = spawn(&standbys, &[("DB_FAILOVER_PROBE_INTERVAL_MS", PROBE_INTERVAL_MS)], &[], Stdio::inherit());
    wait_until("the standby-only service answers /readyz", || async { readyz(&http, &waiting).await.is_some() }).await;
    let ready = http.get(format!("{}/readyz", waiting.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "no primary: not ready");
    assert!(ready.headers().contains_key("retry-after"));
    let refused = create_credit(&http, &waiting, &token).await;
    assert_eq!(refused.status(), 503, "no primary: a write is refused for now");
    assert!(refused.headers().contains_key("retry-after"));
    assert!(waiting.child.try_wait().unwrap().is_none(), "the service keeps running");

    // Once the standby is promoted, the waiting service finds it by itself.
    pair.promote_standby();
    wait_until("the waiting service becomes ready", || async {
        readyz(&http, &waiting).await == Some(reqwest::StatusCode::OK)
    })
    .await;
    assert_eq!(create_credit(&http, &waiting, &token).await.status(), 201);
}

#[test]
fn a_bad_host_list_is_a_configuration_error_naming_the_rule() {
    for (url, rule) in [
        ("postgres://u:secret@127.0.0.1:1,127.0.0.1:99999/x", "not a port"),
        ("postgres://u:secret@127.0.0.1:1,::1:5432/x", "brackets"),
        ("postgres://u:secret@127.0.0.1:1,127.0.0.1:2/x?target_session_attrs=read-only", "read-write or primary"),
    ] {
        let out = Command::new(BIN).arg("migrate").env("DATABASE_URL", url).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: refused");
        assert!(stderr.contains(rule), "{url}: the error names the rule {rule:?}:\n{stderr}");
        assert!(!stderr.contains("secret"), "{url}: the password is not shown:\n{stderr}");
    }
}
