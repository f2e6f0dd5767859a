//! Bearer JWT authentication and site tenancy. A request names its site in the path;
//! the token must grant that site (`sites`) and the endpoint's scope (`scope`).

use std::future::{ready, Ready};
use std::marker::PhantomData;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::ApiError;
use crate::startup::AppState;

/// Clock skew tolerated on `exp`.
pub const LEEWAY_S: u64 = 5;

/// The claims the ledger reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Who is calling; recorded as the actor of every event they cause.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
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
}

/// Verifies tokens with one key: an HS256 secret, or an RS256/ES256 public key.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// A PEM public key for RS256 or ES256.
    pub fn public_key(algorithm: Algorithm, pem: &[u8]) -> anyhow::Result<Self> {
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem)?,
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem)?,
            other => anyhow::bail!("{other:?} is not a public-key algorithm this service accepts (RS256, ES256)"),
        };
        Ok(Self::new(key, algorithm))
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_S;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::Unauthorized(format!("invalid bearer token: {e}")))
    }
}

/// Signs an HS256 token (the `token` command and tests).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 signing cannot fail")
}

pub const SCOPE_READ: &str = "billing-credit:read";
pub const SCOPE_WRITE: &str = "billing-credit:write";
pub const SCOPE_AUDIT: &str = "billing-credit:audit";

/// The scope an endpoint needs, as a type, so a handler's signature says it.
pub trait RequiredScope {
    const SCOPE: &'static str;
}
pub struct Read;
pub struct Write;
pub struct Audit;
impl RequiredScope for Read {
    const SCOPE: &'static str = SCOPE_READ;
}
impl RequiredScope for Write {
    const SCOPE: &'static str = SCOPE_WRITE;
}
impl RequiredScope for Audit {
    const SCOPE: &'static str = SCOPE_AUDIT;
}

/// A caller allowed to act on the path's `{siteId}` with scope `S`. Extract it first in
/// a handler, so that no body is parsed and nothing is read before access is granted.
pub struct SiteAccess<S> {
    pub site_id: Uuid,
    pub actor: String,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> SiteAccess<S> {
    fn check(req: &HttpRequest) -> Result<Self, ApiError> {
        let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered");
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("an Authorization: Bearer <JWT> header is required".into()))?;
        let claims = state.auth.verify(token.trim())?;
        let raw_site = req.match_info().get("siteId").unwrap_or_default();
        let site_id = Uuid::parse_str(raw_site)
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

impl<S: RequiredScope> FromRequest for SiteAccess<S> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::check(req))
    }
}
