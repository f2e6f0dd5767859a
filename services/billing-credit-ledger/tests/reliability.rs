//! Reliability under concurrency and crashes: two instances on one Postgres, one killed
//! with SIGKILL mid-load, and Postgres itself restarted under load.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Connection;
use support::*;
use uuid::Uuid;

const CLIENTS: usize = 64;
const REQUESTS_PER_CLIENT: usize = 6;
const MEMBERS: usize = 4;
/// How long a client keeps retrying one request through the surviving instance.
const RETRY_DEADLINE_S: u64 = 60;

fn amount(v: &Value) -> Decimal {
    v.to_string().parse().unwrap()
}

/// A client's record of one accepted request.
struct Accepted {
    key: String,
    allocated: Decimal,
}

/// Sends one keyed consume, retrying through the other instance while the first is
/// unreachable. Returns the allocated amount if accepted, None if refused (422).
async fn consume_with_retries(
    client: &reqwest::Client,
    urls: &[String; 2],
    first: usize,
    token: &str,
    key: &str,
    body: &Value,
) -> Option<Decimal> {
    let deadline = Instant::now() + Duration::from_secs(RETRY_DEADLINE_S);
    let mut target = first;
    loop {
        assert!(Instant::now() < deadline, "request {key} never got an answer");
        let sent = client
            .post(format!("{}/consume", urls[target]))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => {
                let result: Value = response.json().await.unwrap();
                return Some(amount(&result["allocatedAmount"]));
            }
            Ok(response) if response.status() == 422 => return None,
            Ok(response) if response.status() == 503 => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(response) => {
                panic!("{key}: unexpected {} {}", response.status(), response.text().await.unwrap_or_default())
            }
            // The instance died under us: the same key through the other one.
            Err(_) => target = 1 - target,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_one_killed_mid_load_lose_and_double_nothing() {
    let db = TestDatabase::postgres().await;
    let first = start(&db.url, &[]).await;
    let second = start(&db.url, &[]).await;
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let client = reqwest::Client::new();
    let urls = [first.credits_url(), second.credits_url()];

    let members: Vec<Uuid> = (0..MEMBERS).map(|_| Uuid::new_v4()).collect();
    let mut available = Decimal::ZERO;
    for member in &members {
        for (total, end) in [(10, "2030-01-01"), (10, "2031-01-01"), (10, "2032-01-01")] {
            let body = json!({ "creditType": "quantity", "startDate": "2025-01-01", "endDate": end, "totalAmount": total,
                               "wellnessPlanMembershipId": member, "measurementUnit": { "code": "visit" } });
            let created = client.post(&urls[0]).bearer_auth(&token).json(&body).send().await.unwrap();
            assert_eq!(created.status(), 201);
            available += Decimal::from(total);
        }
    }

    let second = Arc::new(std::sync::Mutex::new(Some(second)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, urls, token, member) = (client.clone(), urls.clone(), token.clone(), members[c % MEMBERS]);
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for r in 0..REQUESTS_PER_CLIENT {
                    let key = format!("client-{c}-request-{r}");
                    let body = json!({ "wellnessPlanMembershipId": member, "amount": 1 + (c + r) % 3,
                                       "creditType": "quantity", "measurementUnit": "visit", "reference": key });
                    if let Some(allocated) =
                        consume_with_retries(&client, &urls, (c + r) % 2, &token, &key, &body).await
                    {
                        accepted.push(Accepted { key, allocated });
                    }
                }
                accepted
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(second.lock().unwrap().take()); // SIGKILL, mid-load

    let mut log: Vec<Accepted> = Vec::new();
    for c in clients {
        log.extend(c.await.unwrap());
    }
    let accepted_total: Decimal = log.iter().map(|a| a.allocated).sum();
    assert!(accepted_total <= available, "never more than there was");
    assert!(!log.is_empty());

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let used: Decimal = sqlx::query_scalar("SELECT COALESCE(sum(used_amount), 0) FROM billing_credits")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let overspent: i64 = sqlx::query_scalar("SELECT count(*) FROM billing_credits WHERE used_amount > total_amount")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(overspent, 0);
    assert_eq!(used, accepted_total, "the projection holds exactly what clients were told");

    let rows: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT command_id, payload::text FROM events WHERE event_type = 'CreditUsed'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut by_command: HashMap<Uuid, Decimal> = HashMap::new();
    for (command_id, payload) in rows {
        let payload: Value = serde_json::from_str(&payload).unwrap();
        let spent: Decimal = payload["amount"].as_str().unwrap().parse().unwrap();
        *by_command.entry(command_id.expect("consumes are keyed")).or_default() += spent;
    }
    let site: Uuid = SITE.parse().unwrap();
    for a in &log {
        let command = ledger_http::routes::write::idempotency_command_id(site, &a.key);
        assert_eq!(by_command.get(&command), Some(&a.allocated), "{} written once, as told", a.key);
    }
    assert_eq!(by_command.len(), log.len(), "no events for requests that were not accepted");
}

/// A private PostgreSQL cluster this test may stop and start.
struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn bin_dir() -> PathBuf {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test installs them)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop().expect("an initdb")
    }

    /// Runs a server binary as the `postgres` user when we are root (it refuses root).
    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let status = if is_root() {
            Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(&program).args(args).status()
        } else {
            Command::new(&program).args(args).status()
        }
        .unwrap();
        assert!(status.success(), "{tool} {args:?} failed");
    }

    fn init() -> Self {
        let dir = std::env::temp_dir().join(format!("ledger-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success());
        }
        let pg = Self { dir, bin: Self::bin_dir(), port: free_port() };
        pg.run("initdb", &["-D", pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start();
        pg
    }

    fn data(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.data());
        let log = Path::new(self.data()).join("server.log");
        self.run("pg_ctl", &["-D", self.data(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data(), "-m", "immediate", "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_answers_503_then_recovers_losing_nothing() {
    let pg = PrivatePostgres::init();
    let service = start(&pg.url(), &[]).await;
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(service.credits_url())
        .bearer_auth(&token)
        .json(&json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 100000 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let use_url = format!("{}/{}/use", service.credits_url(), created["billingCreditId"].as_str().unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, token, stop, use_url) = (client.clone(), token.clone(), stop.clone(), use_url.clone());
        tokio::spawn(async move {
            let (mut accepted, mut unavailable) = (0u64, 0u64);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("use-{n}");
                loop {
                    let sent = client
                        .post(&use_url)
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&json!({ "amount": 1, "reference": key }))
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await
                        .expect("the service itself stays up");
                    match sent.status().as_u16() {
                        200 => {
                            accepted += 1;
                            break;
                        }
                        503 => {
                            assert!(sent.headers().contains_key("retry-after"), "503 says when to retry");
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("{key}: unexpected {other} {}", sent.text().await.unwrap_or_default()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (accepted, unavailable)
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = client.get(format!("{}/readyz", service.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the store is down");
    pg.start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (accepted, unavailable) = load.await.unwrap();

    assert!(unavailable > 0, "some requests met the outage and got 503");
    assert!(accepted > 0);
    let ready = client.get(format!("{}/readyz", service.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "recovered by itself");
    let credit: Value =
        client.get(use_url.trim_end_matches("/use")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(amount(&credit["usedAmount"]), Decimal::from(accepted), "every accepted use stored, once");
}
