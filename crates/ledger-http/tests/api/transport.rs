//! What the server owes a client at the transport level: stalled requests time out with
//! a 408 instead of holding a connection forever, and the OpenAPI document declares the
//! Idempotency-Key on every write.

use std::time::Duration;

use ledger_http::auth::Authenticator;
use ledger_http::{AppState, ServerSettings};
use ledger_store::testing::TestDatabase;
use ledger_store::Backend;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::*;

/// Well above actix's half-second clock tick, which the head timeout is measured with.
const TIMEOUT_MS: u64 = 1_000;
/// How long the test waits for the server's answer before calling the connection hung.
const ANSWER_WAIT_MS: u64 = 5_000;

async fn app_with_short_timeouts() -> (String, Uuid, TestDatabase) {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let settings = ServerSettings {
        workers: 1,
        request_head_timeout: Duration::from_millis(TIMEOUT_MS),
        body_read_timeout: Duration::from_millis(TIMEOUT_MS),
        ..Default::default()
    };
    let state = AppState { store: db.store().await, auth: Authenticator::hs256(SECRET), replica: None };
    let base = ledger_http::spawn_with(state, settings).unwrap();
    (base.trim_start_matches("http://").to_string(), Uuid::new_v4(), db)
}

/// Sends `request` as is and returns what the server answers before closing (or the
/// first answer), failing if it answers nothing within [`ANSWER_WAIT_MS`].
async fn exchange(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_millis(ANSWER_WAIT_MS), stream.read(&mut answer))
        .await
        .expect("the server answers a stalled request instead of waiting for it forever")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_and_nothing_is_written() {
    let (addr, site, _db) = app_with_short_timeouts().await;
    let token = token_for(&[&site.to_string()], ALL_SCOPES, 3600);
    let partial = r#"{"creditType": "quantity", "startDate": "2025-01-01", "#;
    let request = format!(
        "POST /site/{site}/ahds/v1/billing-credit HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{partial}"
    );
    let answer = exchange(&addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    let answer = exchange(
        &addr,
        &format!(
            "GET /site/{site}/ahds/v1/billing-credit HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let list: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(list["meta"]["total"], 0, "a timed-out request writes nothing: {list}");
}

#[tokio::test]
async fn headers_that_stall_get_408() {
    let (addr, site, _db) = app_with_short_timeouts().await;
    let answer = exchange(&addr, &format!("GET /site/{site}/ahds/v1/billing-credit HTTP/1.1\r\nHost: x\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_body_in_time_is_served_normally() {
    let (addr, site, _db) = app_with_short_timeouts().await;
    let token = token_for(&[&site.to_string()], ALL_SCOPES, 3600);
    let body = visits(3).to_string();
    let request = format!(
        "POST /site/{site}/ahds/v1/billing-credit HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(&addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[tokio::test]
async fn openapi_declares_idempotency_key_on_every_write() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc: Value = app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let mut writes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // The alert administration API is configuration, not ledger writes: it keeps no
        // Idempotency-Key, and says so by not declaring one.
        let admin = path.contains("billing-credit-webhooks") || path.contains("billing-credit-alert-settings");
        for method in ["post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else { continue };
            if admin {
                let params = operation["parameters"].as_array().cloned().unwrap_or_default();
                assert!(!params.iter().any(|p| p["name"] == "Idempotency-Key"), "{method} {path} keeps no key");
                continue;
            }
            writes += 1;
            let declared = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
            assert!(declared, "{method} {path} declares Idempotency-Key");
            let ok = operation["responses"].as_object().unwrap().iter().find(|(code, _)| code.starts_with('2'));
            let (_, ok) = ok.unwrap_or_else(|| panic!("{method} {path} has a 2xx answer"));
            assert!(ok["headers"]["Idempotent-Replayed"].is_object(), "{method} {path} declares Idempotent-Replayed");
            assert!(ok["headers"]["Ledger-Position"].is_object(), "{method} {path} declares Ledger-Position");
        }
    }
    assert_eq!(writes, 9, "create, replace, patch, delete, use, waste, expire, reverse, consume");
}
