//! `token`: mint a dev JWT with the configured (or generated) HS256 secret.

use chrono::Utc;
use ledger_http::auth::{mint_hs256, Claims};

use crate::cli::TokenArgs;
use crate::keys::{self, KeySource};

pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let KeySource::Secret(secret, _) = keys::source(&args.keys)? else {
        anyhow::bail!("tokens can only be minted with an HS256 secret (JWT_SECRET or the generated dev secret); this service verifies with a public key or a JWKS")
    };
    for site in &args.sites {
        anyhow::ensure!(site == "*" || uuid::Uuid::parse_str(site).is_ok(), "--site {site:?} is not a UUID or *");
    }
    anyhow::ensure!(
        !args.sub.trim().is_empty() && !args.sub.chars().any(char::is_control),
        "--sub must be non-empty, without control characters"
    );
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: args.sub.clone(),
        exp: now + args.ttl_s,
        iat: Some(now),
        nbf: None,
        sites: args.sites.clone(),
        scope: args.scopes.join(" "),
    };
    println!("{}", mint_hs256(&secret, &claims));
    Ok(())
}

/// A token for the startup banner of the embedded default: every site, every scope.
pub fn dev_token(secret: &[u8]) -> String {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: "dev".into(),
        exp: now + 30 * 86_400,
        iat: Some(now),
        nbf: None,
        sites: vec!["*".into()],
        scope: "billing-credit:read billing-credit:write billing-credit:audit billing-credit:admin".into(),
    };
    mint_hs256(secret, &claims)
}
