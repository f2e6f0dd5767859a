//! Verification keys from a JWKS document (RFC 7517), so that an identity provider can
//! rotate its signing keys with no downtime: several keys at once, chosen by the token's
//! `kid`; the document is read again on an interval, and on a `kid` it does not hold yet,
//! at most once per [`JwksSettings::refetch_min_interval`] so that a flood of tokens with
//! made-up kids cannot hammer the identity provider.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Default interval between two reads of the JWKS document.
pub const JWKS_REFRESH_INTERVAL_S: u64 = 300;
/// Default shortest interval between two reads caused by unknown `kid`s.
pub const JWKS_REFETCH_MIN_INTERVAL_S: u64 = 10;
/// How long one fetch of a JWKS URL may take.
pub const JWKS_FETCH_TIMEOUT_S: u64 = 10;
/// The largest JWKS document read.
pub const JWKS_BODY_MAX_BYTES: usize = 1024 * 1024;

/// Where the JWKS document is: an `http://` or `https://` URL, or a file (a path, or `file://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

impl JwksSource {
    pub fn parse(location: &str) -> Self {
        let lower = location.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            JwksSource::Url(location.to_string())
        } else {
            JwksSource::File(PathBuf::from(location.strip_prefix("file://").unwrap_or(location)))
        }
    }
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::Url(url) => f.write_str(url),
            JwksSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Read the document again this often; zero: only on an unknown `kid`.
    pub refresh_interval: Duration,
    /// An unknown `kid` reads the document again only if the last read is at least this old.
    pub refetch_min_interval: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(JWKS_REFRESH_INTERVAL_S),
            refetch_min_interval: Duration::from_secs(JWKS_REFETCH_MIN_INTERVAL_S),
        }
    }
}

/// One verification key and the algorithm it verifies.
pub(crate) struct VerifyKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    /// Keys without a `kid`: usable only when the set holds a single key.
    unnamed: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    fn get(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.len() == 1 => self.by_kid.values().chain(&self.unnamed).next().cloned(),
            None => None,
        }
    }
}

pub(crate) struct Jwks {
    source: JwksSource,
    settings: JwksSettings,
    client: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    /// When the document was last read; held while reading, so reads never overlap.
    last_read: Mutex<Instant>,
}

impl Jwks {
    pub(crate) async fn start(source: JwksSource, settings: JwksSettings) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(JWKS_FETCH_TIMEOUT_S))
            .pool_max_idle_per_host(0)
            .build()
            .context("building the JWKS HTTP client")?;
        let jwks =
            Self { source, settings, client, keys: RwLock::new(Arc::default()), last_read: Mutex::new(Instant::now()) };
        let keys = jwks.load().await.with_context(|| format!("loading the JWKS from {}", jwks.source))?;
        tracing::info!(source = %jwks.source, keys = keys.len(), "JWKS loaded");
        *jwks.keys.write().expect("JWKS lock") = Arc::new(keys);
        let jwks = Arc::new(jwks);
        if !jwks.settings.refresh_interval.is_zero() {
            let weak = Arc::downgrade(&jwks);
            let period = jwks.settings.refresh_interval;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    // Stops once the authenticator is gone.
                    let Some(jwks) = weak.upgrade() else { break };
                    let mut last_read = jwks.last_read.lock().await;
                    jwks.reload(&mut last_read).await;
                }
            });
        }
        Ok(jwks)
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        self.keys.read().expect("JWKS lock").get(kid)
    }

    /// The key for a token's `kid` and `alg`; an unknown `kid` reads the document again
    /// unless it was read less than `refetch_min_interval` ago.
    pub(crate) async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<VerifyKey>, String> {
        let key = match (self.lookup(kid), kid) {
            (Some(key), _) => key,
            (None, None) => return Err("the token has no kid, and the key set holds several keys".into()),
            (None, Some(kid)) => {
                let mut last_read = self.last_read.lock().await;
                // Another request may have read the document while this one waited.
                match self.lookup(Some(kid)) {
                    Some(key) => key,
                    None if last_read.elapsed() < self.settings.refetch_min_interval => {
                        return Err(format!("no key has kid {:?}", shown(kid)))
                    }
                    None => {
                        self.reload(&mut last_read).await;
                        self.lookup(Some(kid)).ok_or_else(|| format!("no key has kid {:?}", shown(kid)))?
                    }
                }
            }
        };
        if key.algorithm != alg {
            return Err(format!("the token's alg {alg:?} is not its key's ({:?})", key.algorithm));
        }
        Ok(key)
    }

    /// Reads the document again; on failure keeps the keys already loaded.
    async fn reload(&self, last_read: &mut Instant) {
        *last_read = Instant::now();
        match self.load().await {
            Ok(keys) => {
                tracing::debug!(source = %self.source, keys = keys.len(), "JWKS refreshed");
                *self.keys.write().expect("JWKS lock") = Arc::new(keys);
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = %format!("{e:#}"), "JWKS refresh failed; keeping the keys loaded before")
            }
        }
    }

    async fn load(&self) -> anyhow::Result<KeySet> {
        let body = match &self.source {
            JwksSource::Url(url) => fetch(&self.client, url).await?,
            JwksSource::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || std::fs::read(&path)).await?.context("reading the file")?
            }
        };
        anyhow::ensure!(body.len() <= JWKS_BODY_MAX_BYTES, "the JWKS document exceeds {JWKS_BODY_MAX_BYTES} bytes");
        parse(&body)
    }
}

/// A caller's `kid` as echoed in a problem: at most 64 characters.
fn shown(kid: &str) -> String {
    match kid.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &kid[..end]),
        None => kid.to_string(),
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut response = client.get(url).send().await?.error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        anyhow::ensure!(body.len() <= JWKS_BODY_MAX_BYTES, "the JWKS document exceeds {JWKS_BODY_MAX_BYTES} bytes");
    }
    Ok(body)
}

/// The signing keys of a JWKS document. Keys this service cannot use (encryption keys,
/// shared secrets, unknown types or algorithms) are skipped; none usable is an error.
fn parse(body: &[u8]) -> anyhow::Result<KeySet> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).context("the JWKS document is not {\"keys\": [...]}")?;
    let mut set = KeySet::default();
    for (index, raw) in document.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::debug!(index, error = %e, "JWKS: skipping a key of a type this service does not read");
                continue;
            }
        };
        let kid = jwk.common.key_id.clone();
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(algorithm) = algorithm_of(&jwk) else {
            tracing::debug!(index, ?kid, "JWKS: skipping a key with no signature algorithm this service accepts");
            continue;
        };
        let key = match DecodingKey::from_jwk(&jwk) {
            Ok(key) => Arc::new(VerifyKey { key, algorithm }),
            Err(e) => {
                tracing::warn!(index, ?kid, error = %e, "JWKS: skipping a key that does not parse");
                continue;
            }
        };
        match kid {
            Some(kid) => {
                set.by_kid.insert(kid, key);
            }
            None => set.unnamed.push(key),
        }
    }
    anyhow::ensure!(set.len() > 0, "the JWKS document holds no signing key this service can use");
    Ok(set)
}

/// The algorithm a key verifies: its `alg`, or else the usual one for its type and curve.
/// Shared secrets (`oct`) are never taken from a JWKS.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let declared = match &jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(match alg {
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::RS384 => Algorithm::RS384,
            KeyAlgorithm::RS512 => Algorithm::RS512,
            KeyAlgorithm::PS256 => Algorithm::PS256,
            KeyAlgorithm::PS384 => Algorithm::PS384,
            KeyAlgorithm::PS512 => Algorithm::PS512,
            KeyAlgorithm::ES256 => Algorithm::ES256,
            KeyAlgorithm::ES384 => Algorithm::ES384,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            _ => return None,
        }),
    };
    use Algorithm::*;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            None => Some(RS256),
            Some(alg @ (RS256 | RS384 | RS512 | PS256 | PS384 | PS512)) => Some(alg),
            Some(_) => None,
        },
        AlgorithmParameters::EllipticCurve(params) => match (&params.curve, declared) {
            (EllipticCurve::P256, None | Some(ES256)) => Some(ES256),
            (EllipticCurve::P384, None | Some(ES384)) => Some(ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(params) => match (&params.curve, declared) {
            (EllipticCurve::Ed25519, None | Some(EdDSA)) => Some(EdDSA),
            _ => None,
        },
        AlgorithmParameters::OctetKey(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_kids_are_shortened_in_problems() {
        assert_eq!(shown("a"), "a");
        assert_eq!(shown(&"k".repeat(1000)).chars().count(), 65);
    }

    #[test]
    fn sources_are_urls_or_files() {
        assert_eq!(JwksSource::parse("https://idp/keys"), JwksSource::Url("https://idp/keys".into()));
        assert_eq!(JwksSource::parse("HTTP://idp/keys"), JwksSource::Url("HTTP://idp/keys".into()));
        assert_eq!(JwksSource::parse("file:///etc/jwks.json"), JwksSource::File("/etc/jwks.json".into()));
        assert_eq!(JwksSource::parse("./jwks.json"), JwksSource::File("./jwks.json".into()));
    }

    #[test]
    fn unusable_keys_are_skipped_and_none_usable_is_an_error() {
        let doc = serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "s", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
            { "kty": "XYZ", "kid": "odd" },
            { "kty": "EC", "kid": "c", "crv": "P-256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        ] });
        let set = parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(Some("c")).unwrap().algorithm, Algorithm::ES256);
        assert_eq!(set.get(None).unwrap().algorithm, Algorithm::ES256, "a lone key serves tokens without kid");
        assert!(set.get(Some("s")).is_none(), "shared secrets never come from a JWKS");
        assert!(parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(parse(b"[]").is_err());
    }
}
