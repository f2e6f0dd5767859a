//! Which key verifies bearer tokens: a configured secret or public key, or, in the
//! embedded default, a secret generated once in the data folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ledger_http::auth::{Algorithm, Authenticator};

use crate::cli::{Common, JwtAlgorithm};

/// Where the key came from; a generated one means this is a dev setup.
pub enum KeySource {
    Secret(Vec<u8>, SecretOrigin),
    PublicKey,
}

#[derive(PartialEq, Eq)]
pub enum SecretOrigin {
    Configured,
    Generated(PathBuf),
}

pub fn resolve(common: &Common) -> anyhow::Result<(Authenticator, KeySource)> {
    if let Some(secret) = &common.jwt_secret {
        anyhow::ensure!(secret.len() >= 32, "JWT_SECRET must be at least 32 bytes");
        let secret = secret.as_bytes().to_vec();
        return Ok((Authenticator::hs256(&secret), KeySource::Secret(secret, SecretOrigin::Configured)));
    }
    if let Some(path) = &common.jwt_public_key_file {
        let pem = std::fs::read(path).with_context(|| format!("reading JWT_PUBLIC_KEY_FILE {}", path.display()))?;
        let algorithm = match common.jwt_algorithm {
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        };
        return Ok((Authenticator::public_key(algorithm, &pem)?, KeySource::PublicKey));
    }
    let path = common.data_dir.join("dev-jwt-secret");
    let secret = dev_secret(&path)?;
    Ok((Authenticator::hs256(&secret), KeySource::Secret(secret, SecretOrigin::Generated(path))))
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
