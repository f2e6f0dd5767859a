//! Bearer JWT authentication and site tenancy. A request names its site in the path;
//! the token must grant that site (`sites`) and the endpoint's scope (`scope`).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use jsonwebtoken::errors::ErrorKind;
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::ApiError;
use crate::startup::AppState;

mod jwks;
pub use jwks::{
    JwksSettings, JwksSource, JWKS_BODY_MAX_BYTES, JWKS_FETCH_TIMEOUT_S, JWKS_REFETCH_MIN_INTERVAL_S,
    JWKS_REFRESH_INTERVAL_S,
};

/// Clock skew tolerated on `exp`, `nbf` and `iat` (a token issued further in the future is refused).
pub const CLOCK_LEEWAY_S: u64 = 60;

/// The claims the ledger reads. `aud` and `iss` are checked when configured
/// ([`Authenticator::with_audience`], [`Authenticator::with_issuer`]), not kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Who is calling; recorded as the actor of every event they cause. Required,
    /// non-empty, without control characters.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch; refused when further than the leeway in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Site ids this token may touch, or `"*"` for all.
    pub sites: Vec<String>,
    /// Space-separated scopes: `billing-credit:read`, `billing-credit:write`, `billing-credit:audit`.
    pub scope: String,
}

impl Claims {
    pub fn grants_site(&self, site_id: Uuid) -> bool {
        self.sites.iter().any(|s| s == "*" || Uuid::parse_str(s).is_ok_and(|granted| granted == site_id))
    }

    pub fn grants_scope(&self, scope: &str) -> bool {
        self.scope.split_whitespace().any(|s| s == scope)
    }

    /// The checks a signature cannot make: `iat` not in the future, and text claims that
    /// can be stored (`sub` becomes the actor of events) without control characters.
    fn check(&self, now: i64) -> Result<(), String> {
        if let Some(iat) = self.iat {
            if iat > now.saturating_add(CLOCK_LEEWAY_S as i64) {
                return Err("the token was issued in the future (iat)".into());
            }
        }
        if self.sub.trim().is_empty() {
            return Err("the sub claim is empty".into());
        }
        text_claim("sub", &self.sub)?;
        text_claim("scope", &self.scope)?;
        self.sites.iter().try_for_each(|site| text_claim("sites", site))
    }
}

fn text_claim(name: &str, value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("the {name} claim contains a control character (U+{:04X})", c as u32)),
        None => Ok(()),
    }
}

/// Where verification keys come from.
enum Keys {
    /// One key: an HS256 secret, or an RS256/ES256 public key.
    Single(DecodingKey),
    /// A JWKS document, keys chosen by `kid`, refreshed on an interval and on an unknown `kid`.
    Jwks(Arc<jwks::Jwks>),
}

/// Verifies bearer tokens: signature, `exp`/`nbf`/`iat` within [`CLOCK_LEEWAY_S`],
/// `aud` and `iss` when configured, and the text claims.
pub struct Authenticator {
    keys: Keys,
    /// With the single key's algorithm; for a JWKS, the key's algorithm is set per token.
    validation: Validation,
    audience: Vec<String>,
    issuer: Vec<String>,
}

impl Authenticator {
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(Keys::Single(DecodingKey::from_secret(secret)), Algorithm::HS256)
    }

    /// A PEM public key for RS256 or ES256.
    pub fn public_key(algorithm: Algorithm, pem: &[u8]) -> anyhow::Result<Self> {
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem)?,
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem)?,
            other => anyhow::bail!("{other:?} is not a public-key algorithm this service accepts (RS256, ES256)"),
        };
        Ok(Self::new(Keys::Single(key), algorithm))
    }

    /// Keys from a JWKS document (an http(s) URL or a file). The first load must succeed
    /// and yield at least one signing key; later refreshes that fail keep the keys loaded.
    /// Call within a Tokio runtime: the periodic refresh is a task on it.
    pub async fn jwks(source: JwksSource, settings: JwksSettings) -> anyhow::Result<Self> {
        let jwks = jwks::Jwks::start(source, settings).await?;
        Ok(Self::new(Keys::Jwks(jwks), Algorithm::RS256))
    }

    /// Accept only tokens whose `aud` names one of these (an empty list: `aud` is not checked).
    pub fn with_audience<S: ToString>(mut self, audience: &[S]) -> Self {
        self.audience = audience.iter().map(ToString::to_string).collect();
        self.configure_validation();
        self
    }

    /// Accept only tokens whose `iss` is one of these (an empty list: `iss` is not checked).
    pub fn with_issuer<S: ToString>(mut self, issuer: &[S]) -> Self {
        self.issuer = issuer.iter().map(ToString::to_string).collect();
        self.configure_validation();
        self
    }

    fn new(keys: Keys, algorithm: Algorithm) -> Self {
        let mut auth = Self { keys, validation: Validation::new(algorithm), audience: vec![], issuer: vec![] };
        auth.configure_validation();
        auth
    }

    fn configure_validation(&mut self) {
        let v = &mut self.validation;
        v.leeway = CLOCK_LEEWAY_S;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if self.audience.is_empty() {
            // Without a configured audience there is nothing to compare `aud` with.
            v.validate_aud = false;
            v.aud = None;
        } else {
            v.validate_aud = true;
            v.set_audience(&self.audience);
            required.push("aud");
        }
        if self.issuer.is_empty() {
            v.iss = None;
        } else {
            v.set_issuer(&self.issuer);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let decoded = match &self.keys {
            Keys::Single(key) => jsonwebtoken::decode::<Claims>(token, key, &self.validation),
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(refused)?;
                let key = jwks.key_for(header.kid.as_deref(), header.alg).await.map_err(unauthorized)?;
                let mut validation = self.validation.clone();
                validation.algorithms = vec![key.algorithm];
                jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            }
        };
        let claims = decoded.map_err(refused)?.claims;
        claims.check(chrono::Utc::now().timestamp()).map_err(unauthorized)?;
        Ok(claims)
    }
}

fn unauthorized(reason: String) -> ApiError {
    ApiError::Unauthorized(format!("invalid bearer token: {reason}"))
}

fn refused(e: jsonwebtoken::errors::Error) -> ApiError {
    unauthorized(match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired (exp)".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token's aud does not name this service".into(),
        ErrorKind::InvalidIssuer => "the token's iss is not a trusted issuer".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the {claim} claim is required"),
        ErrorKind::InvalidSignature => "the signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's alg is not its key's".into(),
        _ => e.to_string(),
    })
}

/// Signs an HS256 token (the `token` command and tests).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 signing cannot fail")
}

/// The credentials of an `Authorization: Bearer <JWT>` header; the scheme is
/// case-insensitive (RFC 7235).
fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("an Authorization: Bearer <JWT> header is required".into());
    let value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(missing)?;
    let (scheme, token) = value.trim_start().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

pub const SCOPE_READ: &str = "billing-credit:read";
pub const SCOPE_WRITE: &str = "billing-credit:write";
pub const SCOPE_AUDIT: &str = "billing-credit:audit";
/// Administers the site's alerts: webhook endpoints, their secrets and deliveries, thresholds.
pub const SCOPE_ADMIN: &str = "billing-credit:admin";

/// The scope an endpoint needs, as a type, so a handler's signature says it.
pub trait RequiredScope {
    const SCOPE: &'static str;
}
pub struct Read;
pub struct Write;
pub struct Audit;
pub struct Admin;
impl RequiredScope for Read {
    const SCOPE: &'static str = SCOPE_READ;
}
impl RequiredScope for Write {
    const SCOPE: &'static str = SCOPE_WRITE;
}
impl RequiredScope for Audit {
    const SCOPE: &'static str = SCOPE_AUDIT;
}
impl RequiredScope for Admin {
    const SCOPE: &'static str = SCOPE_ADMIN;
}

/// A caller allowed to act on the path's `{siteId}` with scope `S`. Extract it first in
/// a handler, so that no body is parsed and nothing is read before access is granted.
pub struct SiteAccess<S> {
    pub site_id: Uuid,
    pub actor: String,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> SiteAccess<S> {
    async fn check(
        state: web::Data<AppState>,
        token: Result<String, ApiError>,
        raw_site: String,
    ) -> Result<Self, ApiError> {
        let claims = state.auth.verify(&token?).await?;
        let site_id = Uuid::parse_str(&raw_site)
            .map_err(|_| ApiError::bad_field("siteId", "invalid-uuid", format!("{raw_site:?} is not a UUID")))?;
        if !claims.grants_site(site_id) {
            return Err(ApiError::Forbidden(format!("the token does not grant site {site_id}")));
        }
        if !claims.grants_scope(S::SCOPE) {
            return Err(ApiError::Forbidden(format!("the token lacks the {} scope", S::SCOPE)));
        }
        Ok(Self { site_id, actor: claims.sub, _scope: PhantomData })
    }
}

impl<S: RequiredScope + 'static> FromRequest for SiteAccess<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered").clone();
        let token = bearer_token(req).map(str::to_owned);
        let raw_site = req.match_info().get("siteId").unwrap_or_default().to_owned();
        Box::pin(Self::check(state, token, raw_site))
    }
}
