//! `token`: mint a dev JWT with the configured (or generated) HS256 secret.

use chrono::Utc;
use ledger_http::auth::{mint_hs256, Claims};

use crate::cli::{Common, TokenArgs};
use crate::keys::{self, KeySource};

pub fn run(common: &Common, args: &TokenArgs) -> anyhow::Result<()> {
    let (_, source) = keys::resolve(common)?;
    let KeySource::Secret(secret, _) = source else {
        anyhow::bail!("tokens can only be minted with an HS256 secret (JWT_SECRET or the generated dev secret); this service verifies with a public key")
    };
    for site in &args.sites {
        anyhow::ensure!(site == "*" || uuid::Uuid::parse_str(site).is_ok(), "--site {site:?} is not a UUID or *");
    }
    let claims = Claims {
        sub: args.sub.clone(),
        exp: Utc::now().timestamp() + args.ttl_s,
        sites: args.sites.clone(),
        scope: args.scopes.join(" "),
    };
    println!("{}", mint_hs256(&secret, &claims));
    Ok(())
}

/// A token for the startup banner of the embedded default: every site, every scope.
pub fn dev_token(secret: &[u8]) -> String {
    let claims = Claims {
        sub: "dev".into(),
        exp: Utc::now().timestamp() + 30 * 86_400,
        sites: vec!["*".into()],
        scope: "billing-credit:read billing-credit:write billing-credit:audit".into(),
    };
    mint_hs256(secret, &claims)
}
