//! A real app on a random port, over a real store, with tokens to call it.

use chrono::Utc;
use ledger_http::auth::{mint_hs256, Authenticator, Claims};
use ledger_http::AppState;
use ledger_store::testing::TestDatabase;
use ledger_store::Backend;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use uuid::Uuid;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
pub const ALL_SCOPES: &str = "billing-credit:read billing-credit:write billing-credit:audit";

pub struct TestApp {
    pub base: String,
    pub site: Uuid,
    pub token: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
}

pub fn token_for(sites: &[&str], scope: &str, exp_offset_s: i64) -> String {
    let claims = Claims {
        sub: "tester".into(),
        exp: Utc::now().timestamp() + exp_offset_s,
        iat: Some(Utc::now().timestamp()),
        nbf: None,
        sites: sites.iter().map(|s| s.to_string()).collect(),
        scope: scope.into(),
    };
    mint_hs256(SECRET, &claims)
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Authenticator::hs256(SECRET)).await
    }

    /// The app verifying tokens with `auth`; `token` is then signed with [`SECRET`].
    pub async fn start_with(backend: Backend, auth: Authenticator) -> Self {
        let db = TestDatabase::new(backend).await;
        let store = db.store().await;
        let base = ledger_http::spawn(AppState { store, auth, replica: None }).unwrap();
        let site = Uuid::new_v4();
        let token = token_for(&[&site.to_string()], ALL_SCOPES, 3600);
        Self { base, site, token, client: reqwest::Client::new(), db }
    }

    pub fn credits_url(&self) -> String {
        format!("{}/site/{}/ahds/v1/billing-credit", self.base, self.site)
    }

    pub fn credit_url(&self, id: impl std::fmt::Display) -> String {
        format!("{}/{id}", self.credits_url())
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }

    pub async fn post(&self, body: &Value) -> Response {
        self.request(Method::POST, &self.credits_url()).json(body).send().await.unwrap()
    }

    /// Creates a credit and returns its JSON.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.post(&body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn get(&self, id: impl std::fmt::Display) -> Response {
        self.request(Method::GET, &self.credit_url(id)).send().await.unwrap()
    }

    pub async fn list(&self, query: &str) -> Response {
        self.request(Method::GET, &format!("{}?{query}", self.credits_url())).send().await.unwrap()
    }
}

/// A valid create body: 5 visits from 2025-01-01, no end.
pub fn visits(total: u32) -> Value {
    json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": total })
}

/// Reads a problem+json response and checks its status, field and rule.
pub async fn assert_problem(response: Response, status: u16, field: &str, rule: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert!(response.headers().contains_key("x-request-id"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status);
    assert!(problem["requestId"].is_string(), "{problem}");
    if !field.is_empty() {
        let errors = problem["errors"].as_array().unwrap_or_else(|| panic!("no errors in {problem}"));
        assert!(
            errors.iter().any(|e| e["field"] == field && e["rule"] == rule),
            "expected {field}/{rule} in {problem}"
        );
    }
    problem
}
