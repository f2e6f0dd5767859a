//! Webhook signatures, Stripe-style: every delivery carries
//!
//! - `Ledger-Delivery-Id`: the delivery's id (the same on every retry of it),
//! - `Ledger-Timestamp`: when this attempt was signed, in Unix seconds,
//! - `Ledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<deliveryId>.<body>")>`.
//!
//! A receiver recomputes the HMAC over the raw body with the endpoint's secret and
//! compares in constant time ([`verify`] does all of it), and refuses a timestamp too
//! far from its clock, so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

pub const DELIVERY_ID_HEADER: &str = "Ledger-Delivery-Id";
pub const TIMESTAMP_HEADER: &str = "Ledger-Timestamp";
pub const SIGNATURE_HEADER: &str = "Ledger-Signature";
/// How far a signature's timestamp may be from the receiver's clock (Stripe's default).
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: i64, delivery_id: Uuid, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.{delivery_id}.").as_bytes());
    mac.update(body);
    mac
}

/// The `Ledger-Signature` header value of a delivery signed at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, delivery_id: Uuid, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, delivery_id, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=<seconds>,v1=<hex>`")]
    Malformed,
    #[error("the signature's timestamp is more than {SIGNATURE_TOLERANCE_S} s from now")]
    Stale,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks a delivery as its receiver got it: the `Ledger-Signature` header, the
/// `Ledger-Delivery-Id` header, the raw body, and the receiver's clock (Unix seconds).
/// Several `v1=` entries are accepted (any may match), for a future rotation overlap.
pub fn verify(secret: &str, header: &str, delivery_id: Uuid, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_S {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, delivery_id, body);
    // verify_slice compares in constant time.
    match candidates.iter().any(|c| expected.clone().verify_slice(c).is_ok()) {
        true => Ok(()),
        false => Err(SignatureError::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_is_detected() {
        let id = Uuid::new_v4();
        let header = sign("whsec_a", 1_700_000_000, id, b"{\"a\":1}");
        assert_eq!(verify("whsec_a", &header, id, b"{\"a\":1}", 1_700_000_010), Ok(()));
        assert_eq!(verify("whsec_a", &header, id, b"{\"a\":2}", 1_700_000_010), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_b", &header, id, b"{\"a\":1}", 1_700_000_010), Err(SignatureError::Mismatch));
        assert_eq!(
            verify("whsec_a", &header, Uuid::new_v4(), b"{\"a\":1}", 1_700_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify("whsec_a", &header, id, b"{\"a\":1}", 1_700_001_000), Err(SignatureError::Stale));
        assert_eq!(verify("whsec_a", "v1=00", id, b"", 0), Err(SignatureError::Malformed));
    }
}
