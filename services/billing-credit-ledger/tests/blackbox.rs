//! The built binary, started on a free port against a real Postgres, driven over HTTP.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_billing-credit-ledger");
const SECRET: &str = "blackbox-secret-blackbox-secret-0123456789";
const SITE: &str = "3f1c2a9e-5b7d-4c1e-9a8b-2d6e4f0a1b3c";

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Service {
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", SECRET)
        .env("HTTP_WORKERS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let service = Service { child: command.spawn().expect("start the binary"), base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/readyz", service.base)).await {
            if r.status() == 200 {
                return service;
            }
        }
        assert!(Instant::now() < deadline, "the service did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mint_token(database_url: &str, scopes: &[&str]) -> String {
    let mut command = Command::new(BIN);
    command.args(["token", "--site", SITE]).env("DATABASE_URL", database_url).env("JWT_SECRET", SECRET);
    for scope in scopes {
        command.args(["--scope", scope]);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn the_binary_serves_the_api_on_postgres() {
    let db = TestDatabase::postgres().await;
    let migrate = Command::new(BIN).arg("migrate").env("DATABASE_URL", &db.url).output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let service = start(&db.url, &[]).await;
    let token = mint_token(&db.url, &["billing-credit:read", "billing-credit:write"]);
    let client = reqwest::Client::new();
    let credits = format!("{}/site/{SITE}/ahds/v1/billing-credit", service.base);

    let created = client
        .post(&credits)
        .bearer_auth(&token)
        .json(&json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 4 }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let credit: Value = created.json().await.unwrap();
    let url = format!("{credits}/{}", credit["billingCreditId"].as_str().unwrap());

    let patched: Value = client.patch(&url).bearer_auth(&token).json(&json!({ "usedAmount": 1 })).send().await.unwrap().json().await.unwrap();
    assert_eq!(patched["remainingAmount"], 3);
    let list: Value = client.get(&credits).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(client.delete(&url).bearer_auth(&token).send().await.unwrap().status(), 204);
    assert_eq!(client.get(&url).bearer_auth(&token).send().await.unwrap().status(), 404);
    assert_eq!(client.get(&credits).send().await.unwrap().status(), 401);
    let other_site = format!("{}/site/{}/ahds/v1/billing-credit", service.base, uuid::Uuid::new_v4());
    assert_eq!(client.get(&other_site).bearer_auth(&token).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn sigterm_finishes_accepted_requests_and_writes_nothing_half() {
    let db = TestDatabase::postgres().await;
    let service = start(&db.url, &[("SHUTDOWN_DEADLINE_S", "10")]).await;
    let token = mint_token(&db.url, &["billing-credit:read", "billing-credit:write"]);
    let credits = format!("{}/site/{SITE}/ahds/v1/billing-credit", service.base);
    let client = reqwest::Client::new();

    let load: Vec<_> = (0..200)
        .map(|i| {
            let (client, credits, token) = (client.clone(), credits.clone(), token.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 2)).await;
                let body = json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 1 });
                client.post(&credits).bearer_auth(&token).json(&body).send().await.map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pid = service.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let mut created = 0;
    for task in load {
        match task.await.unwrap() {
            Ok(201) => created += 1,
            Ok(status) => panic!("an accepted request answered {status}"),
            Err(_) => {} // refused after the signal: never accepted
        }
    }
    let mut service = service;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit within the shutdown deadline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(created > 0, "some requests were accepted before the signal");

    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let credits = count("SELECT count(*) FROM billing_credits").fetch_one(&mut conn).await.unwrap();
    let events = count("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();
    assert_eq!(credits, created as i64, "every 201 is stored, nothing else");
    assert_eq!(events, created as i64, "one event per accepted create, none half-written");
}
