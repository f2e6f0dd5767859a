//! Which keys verify bearer tokens: a configured secret, public key or JWKS document, or,
//! in the embedded default, a secret generated once in the data folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ledger_http::auth::{Algorithm, Authenticator, JwksSettings, JwksSource};

use crate::cli::{AuthArgs, JwtAlgorithm, KeyArgs};

/// Where the keys come from; a generated secret means this is a dev setup.
pub enum KeySource {
    Secret(Vec<u8>, SecretOrigin),
    PublicKey(Algorithm, Vec<u8>),
    Jwks(JwksSource),
}

#[derive(PartialEq, Eq)]
pub enum SecretOrigin {
    Configured,
    Generated(PathBuf),
}

/// The configured key source (reading key files, generating the dev secret), without
/// fetching anything.
pub fn source(keys: &KeyArgs) -> anyhow::Result<KeySource> {
    if let Some(location) = &keys.jwks_url {
        anyhow::ensure!(
            keys.jwt_secret.is_none() && keys.jwt_public_key_file.is_none(),
            "JWKS_URL is set together with JWT_SECRET or JWT_PUBLIC_KEY_FILE: set only one way to verify tokens"
        );
        anyhow::ensure!(!location.trim().is_empty(), "JWKS_URL is empty");
        return Ok(KeySource::Jwks(JwksSource::parse(location.trim())));
    }
    if let Some(secret) = &keys.jwt_secret {
        anyhow::ensure!(secret.len() >= 32, "JWT_SECRET must be at least 32 bytes");
        return Ok(KeySource::Secret(secret.as_bytes().to_vec(), SecretOrigin::Configured));
    }
    if let Some(path) = &keys.jwt_public_key_file {
        let pem = std::fs::read(path).with_context(|| format!("reading JWT_PUBLIC_KEY_FILE {}", path.display()))?;
        let algorithm = match keys.jwt_algorithm {
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        };
        return Ok(KeySource::PublicKey(algorithm, pem));
    }
    let path = keys.data_dir.join("dev-jwt-secret");
    let secret = dev_secret(&path)?;
    Ok(KeySource::Secret(secret, SecretOrigin::Generated(path)))
}

/// The authenticator for a key source, with the configured audience and issuers. A JWKS
/// is loaded now (failing if it cannot be) and refreshed in the background.
pub async fn authenticator(args: &AuthArgs, source: &KeySource) -> anyhow::Result<Authenticator> {
    let auth = match source {
        KeySource::Secret(secret, _) => Authenticator::hs256(secret),
        KeySource::PublicKey(algorithm, pem) => Authenticator::public_key(*algorithm, pem)?,
        KeySource::Jwks(location) => {
            let settings = JwksSettings {
                refresh_interval: Duration::from_secs(args.jwks_refresh_interval_s),
                refetch_min_interval: Duration::from_secs(args.jwks_refetch_min_interval_s),
            };
            Authenticator::jwks(location.clone(), settings).await.context("JWKS_URL")?
        }
    };
    let audience: Vec<&str> = args.jwt_audience.iter().map(|a| a.trim()).filter(|a| !a.is_empty()).collect();
    let issuer: Vec<&str> = args.jwt_issuer.iter().map(|i| i.trim()).filter(|i| !i.is_empty()).collect();
    Ok(auth.with_audience(&audience).with_issuer(&issuer))
}

/// Reads the dev secret, creating it (32 random bytes, hex) on first use.
fn dev_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("no system randomness for the dev secret")?;
    let secret = hex::encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret.into_bytes())
}
