//! The built binary, started on a free port against a real Postgres, driven over HTTP.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn the_binary_serves_the_api_on_postgres() {
    let db = TestDatabase::postgres().await;
    let migrate = Command::new(BIN).arg("migrate").env("DATABASE_URL", &db.url).output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let service = start(&db.url, &[]).await;
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let client = reqwest::Client::new();
    let credits = service.credits_url();

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

    let patched: Value = client
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({ "usedAmount": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let token = mint_token(&["billing-credit:read", "billing-credit:write"]);
    let credits = service.credits_url();
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

fn auth_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/ledger-http/tests/fixtures").join(name)
}

/// An RS256 token from the test identity provider's key A (kid `a`).
fn idp_token(claims: Value) -> String {
    let pem = std::fs::read(auth_fixture("rsa-a.key.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("a".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

#[tokio::test]
async fn the_binary_verifies_tokens_with_a_jwks_file_audience_and_issuer() {
    let dir = std::env::temp_dir().join(format!("ledger-blackbox-jwks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwk: Value = serde_json::from_slice(&std::fs::read(auth_fixture("rsa-a.jwk.json")).unwrap()).unwrap();
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, json!({ "keys": [jwk] }).to_string()).unwrap();
    let database_url = format!("sqlite://{}", dir.join("ledger.db").display());
    let jwks_url = jwks_path.display().to_string();

    // One way to verify tokens at a time; a JWKS cannot mint tokens.
    let both = Command::new(BIN)
        .args(["token", "--site", "*"])
        .env("JWKS_URL", &jwks_url)
        .env("JWT_SECRET", SECRET)
        .env("DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("JWKS_URL"), "{}", String::from_utf8_lossy(&both.stderr));

    let service = start_without(
        &database_url,
        &[
            ("JWKS_URL", &jwks_url),
            ("JWT_AUDIENCE", "billing-credit-ledger"),
            ("JWT_ISSUER", "https://idp.test,https://idp2.test"),
            ("DATA_DIR", &dir.display().to_string()),
        ],
        &["JWT_SECRET"],
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, iss: &str| {
        json!({ "sub": "engine", "exp": now + 600, "iat": now, "aud": aud, "iss": iss,
                "sites": [SITE], "scope": "billing-credit:read" })
    };
    let client = reqwest::Client::new();
    let get =
        |token: String| client.get(service.credits_url()).header("authorization", format!("bearer {token}")).send();
    assert_eq!(get(idp_token(claims("billing-credit-ledger", "https://idp2.test"))).await.unwrap().status(), 200);
    assert_eq!(get(idp_token(claims("other-service", "https://idp.test"))).await.unwrap().status(), 401);
    assert_eq!(get(idp_token(claims("billing-credit-ledger", "https://evil.test"))).await.unwrap().status(), 401);
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_log_that_is_not_a_terminal_carries_no_colour_codes() {
    let db = TestDatabase::postgres().await;
    let log_path = std::env::temp_dir().join(format!("ledger-log-{}.txt", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).unwrap();
    let service = start_logging_to(&db.url, &[("RUST_LOG", "info")], &[], log.into()).await;
    drop(service);
    let text = std::fs::read_to_string(&log_path).unwrap();
    std::fs::remove_file(&log_path).unwrap();
    assert!(text.contains("serving the billing-credit API"), "the log was written: {text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes in a file: {text:?}");
}

/// Each command's --help lists the options it uses and no other: the server's settings
/// under `serve`, the database under the commands that open one, the keys under `token`.
#[test]
fn each_command_lists_only_the_options_it_uses() {
    let options = |command: &[&str]| -> Vec<String> {
        let out = Command::new(BIN).args(command).arg("--help").output().unwrap();
        assert!(out.status.success(), "{command:?} --help");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|line| line.trim_start().starts_with('-'))
            .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("--")))
            .map(|w| w.trim_end_matches(',').to_string())
            .collect()
    };
    let db = ["--database-url", "--db-max-connections"];
    let expected: [(&[&str], Vec<&str>); 6] = [
        (&[], vec![]),
        (&["migrate"], [&db[..], &["--db-failover-probe-interval-ms"]].concat()),
        (&["replay"], [&db[..], &["--site", "--credits-in-memory-max"]].concat()),
        (&["verify"], [&db[..], &["--site"]].concat()),
        (&["export"], [&db[..], &["--site", "--from", "--to"]].concat()),
        (
            &["token"],
            vec![
                "--data-dir",
                "--jwt-secret",
                "--jwt-public-key-file",
                "--jwt-algorithm",
                "--jwks-url",
                "--site",
                "--scope",
                "--sub",
                "--ttl-s",
            ],
        ),
    ];
    for (command, mut wanted) in expected {
        wanted.extend(["--log-format", "--help"]);
        if command.is_empty() {
            wanted.push("--version");
        }
        let mut listed = options(command);
        listed.sort();
        wanted.sort();
        assert_eq!(listed, wanted, "{command:?} --help");
    }
    let serve = options(&["serve"]);
    for option in
        ["--listen-addr", "--database-url", "--jwt-secret", "--nats-url", "--alerts-enabled", "--database-read-url"]
    {
        assert!(serve.iter().any(|o| o == option), "serve --help lists {option}: {serve:?}");
    }
}
