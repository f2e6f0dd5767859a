//! Tokens as an identity provider issues them: time claims within the leeway, a usable
//! `sub`, `aud`/`iss` when configured, the `Bearer` scheme in any case, and keys from a
//! JWKS document that rotates under a running app.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ledger_http::auth::{Authenticator, JwksSettings, JwksSource, CLOCK_LEEWAY_S};
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

ledger_store::backend_tests!(
    time_claims_are_checked_with_the_leeway,
    sub_must_be_non_empty_text_and_nothing_is_written_otherwise,
    aud_and_iss_are_checked_when_configured,
    the_bearer_scheme_is_case_insensitive,
);

fn now() -> i64 {
    Utc::now().timestamp()
}

/// Claims granting `site` every scope, changed by `edit` (a `null` removes a claim).
fn claims(site: &str, edit: Value) -> Value {
    let mut claims =
        json!({ "sub": "tester", "exp": now() + 3600, "iat": now(), "sites": [site], "scope": ALL_SCOPES });
    for (key, value) in edit.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

async fn status_of(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app.client.get(app.credits_url()).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn time_claims_are_checked_with_the_leeway(backend: Backend) {
    let app = TestApp::start(backend).await;
    let site = app.site.to_string();
    let leeway = CLOCK_LEEWAY_S as i64;
    let cases = [
        ("valid", json!({}), 200),
        ("nbf in the future", json!({ "nbf": now() + 3600 }), 401),
        ("nbf within the leeway", json!({ "nbf": now() + leeway / 2 }), 200),
        ("nbf in the past", json!({ "nbf": now() - 10 }), 200),
        ("iat far in the future", json!({ "iat": now() + 3600 }), 401),
        ("iat within the leeway", json!({ "iat": now() + leeway / 2 }), 200),
        ("no iat", json!({ "iat": null }), 200),
        ("expired", json!({ "exp": now() - 3600 }), 401),
        ("expired within the leeway", json!({ "exp": now() - leeway / 2 }), 200),
        ("no exp", json!({ "exp": null }), 401),
    ];
    for (name, edit, expected) in cases {
        let (status, problem) = status_of(&app, &hs256(&claims(&site, edit))).await;
        assert_eq!(status, expected, "{name}: {problem}");
    }
    let (_, problem) = status_of(&app, &hs256(&claims(&site, json!({ "nbf": now() + 3600 })))).await;
    assert!(problem["detail"].as_str().unwrap().contains("nbf"), "{problem}");
    let (_, problem) = status_of(&app, &hs256(&claims(&site, json!({ "iat": now() + 3600 })))).await;
    assert!(problem["detail"].as_str().unwrap().contains("iat"), "{problem}");
}

async fn sub_must_be_non_empty_text_and_nothing_is_written_otherwise(backend: Backend) {
    let app = TestApp::start(backend).await;
    let site = app.site.to_string();
    let cases = [
        ("empty sub", json!({ "sub": "" }), "sub"),
        ("blank sub", json!({ "sub": "  " }), "sub"),
        ("no sub", json!({ "sub": null }), "sub"),
        ("NUL in sub", json!({ "sub": "eve\u{0}" }), "control character (U+0000)"),
        ("newline in sub", json!({ "sub": "eve\nadmin" }), "control character (U+000A)"),
        ("DEL in sub", json!({ "sub": "eve\u{7f}" }), "control character"),
        ("C1 control in sub", json!({ "sub": "eve\u{85}" }), "control character"),
        ("NUL in scope", json!({ "scope": format!("{ALL_SCOPES}\u{0}") }), "scope"),
    ];
    for (name, edit, detail) in cases {
        let token = hs256(&claims(&site, edit));
        // A write: the actor would be stored with the event.
        let response = app.client.post(app.credits_url()).bearer_auth(&token).json(&visits(5)).send().await.unwrap();
        let problem = assert_problem(response, 401, "", "").await;
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{name}: {problem}");
    }
    // Non-ASCII text is fine.
    let token = hs256(&claims(&site, json!({ "sub": "zoë@clinic.example" })));
    let response = app.client.post(app.credits_url()).bearer_auth(&token).json(&visits(5)).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 1, "only the valid token wrote");
}

async fn aud_and_iss_are_checked_when_configured(backend: Backend) {
    let auth = Authenticator::hs256(SECRET)
        .with_audience(&["billing-credit-ledger", "ledger"])
        .with_issuer(&["https://idp.test"]);
    let app = TestApp::start_with(backend, auth).await;
    let site = app.site.to_string();
    let good = json!({ "aud": "ledger", "iss": "https://idp.test" });
    let cases = [
        ("right aud and iss", good.clone(), 200),
        (
            "aud list naming this service",
            json!({ "aud": ["other", "billing-credit-ledger"], "iss": "https://idp.test" }),
            200,
        ),
        ("wrong aud", json!({ "aud": "other", "iss": "https://idp.test" }), 401),
        ("wrong iss", json!({ "aud": "ledger", "iss": "https://evil.test" }), 401),
        ("no aud", json!({ "aud": null, "iss": "https://idp.test" }), 401),
        ("no iss", json!({ "aud": "ledger", "iss": null }), 401),
    ];
    for (name, edit, expected) in cases {
        let (status, problem) = status_of(&app, &hs256(&claims(&site, edit))).await;
        assert_eq!(status, expected, "{name}: {problem}");
    }
    let (_, problem) =
        status_of(&app, &hs256(&claims(&site, json!({ "aud": "other", "iss": "https://idp.test" })))).await;
    assert!(problem["detail"].as_str().unwrap().contains("aud"), "{problem}");

    // Unconfigured, neither is checked: an IdP's token with any aud and iss passes.
    let open = TestApp::start(backend).await;
    let token = hs256(&claims(&open.site.to_string(), json!({ "aud": "anything", "iss": "anyone" })));
    assert_eq!(status_of(&open, &token).await.0, 200);
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let with_header =
        |value: String| app.client.request(Method::GET, app.credits_url()).header("authorization", value).send();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = with_header(format!("{scheme} {}", app.token)).await.unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    assert_eq!(with_header(format!("Bearer   {}", app.token)).await.unwrap().status(), 200);
    for refused in [format!("Basic {}", app.token), app.token.clone(), "Bearer".into(), "Bearer ".into()] {
        assert_problem(with_header(refused).await.unwrap(), 401, "", "").await;
    }
}

// ---- JWKS ----

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(&format!("{name}.jwk.json"))).unwrap()).unwrap()
}

fn jwks(names: &[&str]) -> String {
    json!({ "keys": names.iter().map(|n| jwk(n)).collect::<Vec<_>>() }).to_string()
}

/// A token signed with a fixture key (`rsa-a`, `rsa-b`: RS256; `ec-c`: ES256) naming `kid`.
fn signed(key: &str, kid: &str, site: &str) -> String {
    let pem = std::fs::read(fixture(&format!("{key}.key.pem"))).unwrap();
    let (algorithm, encoding) = if key.starts_with("ec") {
        (Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap())
    } else {
        (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap())
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims(site, json!({})), &encoding).unwrap()
}

/// A tiny identity provider: serves its current JWKS document on 127.0.0.1 and counts reads.
struct Idp {
    url: String,
    document: Arc<Mutex<String>>,
    status: Arc<Mutex<u16>>,
    reads: Arc<AtomicUsize>,
}

impl Idp {
    async fn start(document: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let document = Arc::new(Mutex::new(document));
        let status = Arc::new(Mutex::new(200));
        let reads = Arc::new(AtomicUsize::new(0));
        let (doc, st, count) = (document.clone(), status.clone(), reads.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { break };
                let (doc, st, count) = (doc.clone(), st.clone(), count.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = doc.lock().unwrap().clone();
                    let status = *st.lock().unwrap();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, document, status, reads }
    }

    fn publish(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

fn settings(refresh_interval: Duration, refetch_min_interval: Duration) -> JwksSettings {
    JwksSettings { refresh_interval, refetch_min_interval }
}

async fn jwks_app(source: JwksSource, settings: JwksSettings) -> TestApp {
    let auth = Authenticator::jwks(source, settings).await.unwrap();
    TestApp::start_with(Backend::Sqlite, auth).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_with_no_restart() {
    let idp = Idp::start(jwks(&["rsa-a"])).await;
    // No periodic refresh and no rate limit: only unknown kids read the document again.
    let app = jwks_app(JwksSource::parse(&idp.url), settings(Duration::ZERO, Duration::ZERO)).await;
    let site = app.site.to_string();
    assert_eq!(idp.reads(), 1);
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 200);
    assert_eq!(idp.reads(), 1, "a known kid reads nothing");
    let (status, problem) = status_of(&app, &signed("rsa-b", "b", &site)).await;
    assert_eq!(status, 401, "b is not published yet");
    assert!(problem["detail"].as_str().unwrap().contains("kid"), "{problem}");

    // The IdP rotates: A and B (and an ES256 key) published together, tokens signed with B.
    idp.publish(jwks(&["rsa-a", "rsa-b", "ec-c"]));
    let response = app.client.post(app.credits_url()).bearer_auth(signed("rsa-b", "b", &site));
    assert_eq!(response.json(&visits(3)).send().await.unwrap().status(), 201, "an unknown kid reads the JWKS again");
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 200, "A still verifies");
    assert_eq!(status_of(&app, &signed("ec-c", "c", &site)).await.0, 200, "ES256, alg inferred from the curve");

    assert_eq!(status_of(&app, &signed("rsa-a", "zz", &site)).await.0, 401, "a kid in no set");
    assert_eq!(status_of(&app, &signed("rsa-b", "a", &site)).await.0, 401, "kid a, signed by B");
    assert_eq!(status_of(&app, &signed("ec-c", "a", &site)).await.0, 401, "ES256 token naming an RS256 key");
    let none = {
        let mut parts: Vec<&str> = Vec::new();
        let header = r#"{"alg":"none","typ":"JWT","kid":"a"}"#;
        let token = signed("rsa-a", "a", &site);
        let payload = token.split('.').nth(1).unwrap().to_string();
        let header = base64url(header.as_bytes());
        parts.push(&header);
        parts.push(&payload);
        parts.push("");
        parts.join(".")
    };
    assert_eq!(status_of(&app, &none).await.0, 401, "alg none");

    // A refresh that fails keeps the keys.
    *idp.status.lock().unwrap() = 500;
    assert_eq!(status_of(&app, &signed("rsa-a", "unknown", &site)).await.0, 401);
    assert_eq!(status_of(&app, &signed("rsa-b", "b", &site)).await.0, 200, "kept after a failed read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_read_the_jwks_at_most_once_per_interval() {
    let idp = Idp::start(jwks(&["rsa-a"])).await;
    let app = jwks_app(JwksSource::parse(&idp.url), settings(Duration::ZERO, Duration::from_secs(3600))).await;
    let site = app.site.to_string();
    assert_eq!(idp.reads(), 1);
    let flood = (0..20).map(|i| {
        let token = signed("rsa-a", &format!("made-up-{i}"), &site);
        let request = app.client.get(app.credits_url()).bearer_auth(token).send();
        async move { request.await.unwrap().status().as_u16() }
    });
    assert!(futures::future::join_all(flood).await.iter().all(|s| *s == 401));
    assert_eq!(idp.reads(), 1, "the document was read less than the interval ago: no read");
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_read_again_on_its_interval_and_dropped_keys_stop_verifying() {
    let idp = Idp::start(jwks(&["rsa-a"])).await;
    let app =
        jwks_app(JwksSource::parse(&idp.url), settings(Duration::from_millis(300), Duration::from_secs(3600))).await;
    let site = app.site.to_string();
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 200);
    idp.publish(jwks(&["rsa-b"]));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(idp.reads() >= 2);
    assert_eq!(status_of(&app, &signed("rsa-b", "b", &site)).await.0, 200, "picked up by the periodic read");
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 401, "A was withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_from_a_file() {
    let dir = std::env::temp_dir().join(format!("ledger-jwks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks(&["rsa-a"])).unwrap();
    let app =
        jwks_app(JwksSource::parse(&format!("file://{}", path.display())), settings(Duration::ZERO, Duration::ZERO))
            .await;
    let site = app.site.to_string();
    assert_eq!(status_of(&app, &signed("rsa-a", "a", &site)).await.0, 200);
    assert_eq!(status_of(&app, &signed("ec-c", "c", &site)).await.0, 401);
    std::fs::write(&path, jwks(&["rsa-a", "ec-c"])).unwrap();
    assert_eq!(status_of(&app, &signed("ec-c", "c", &site)).await.0, 200, "the file is read again on an unknown kid");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_jwks_that_cannot_be_loaded_fails_at_startup() {
    let idp = Idp::start(r#"{"keys": []}"#.into()).await;
    assert!(Authenticator::jwks(JwksSource::parse(&idp.url), JwksSettings::default()).await.is_err(), "no keys");
    let missing = JwksSource::parse("/nonexistent/jwks.json");
    assert!(Authenticator::jwks(missing, JwksSettings::default()).await.is_err(), "no file");
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_public_key_pem_still_verifies() {
    for (key, algorithm) in [("rsa-a", Algorithm::RS256), ("ec-c", Algorithm::ES256)] {
        let pem = std::fs::read(fixture(&format!("{key}.pub.pem"))).unwrap();
        let app = TestApp::start_with(Backend::Sqlite, Authenticator::public_key(algorithm, &pem).unwrap()).await;
        let site = app.site.to_string();
        assert_eq!(status_of(&app, &signed(key, "any", &site)).await.0, 200, "{key}");
        let other = if key == "rsa-a" { "rsa-b" } else { "rsa-a" };
        assert_eq!(status_of(&app, &signed(other, "any", &site)).await.0, 401, "{key}: signed by another key");
        assert_eq!(status_of(&app, &app.token).await.0, 401, "{key}: an HS256 token");
    }
}
