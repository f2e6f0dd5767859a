//! Verify one credit: the same fold as [`crate::audit::verify`] (hash chain, versions,
//! projection), over that credit's stream only, stopping at the first event that does
//! not match.

use uuid::Uuid;

use crate::audit::{Flaw, StreamFold};
use crate::error::StoreError;
use crate::model::*;
use crate::ports::Audit;

/// Where one credit's check failed first.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstMismatch {
    /// The event that does not match; none when the events are intact and the
    /// projection row is what differs (or is missing).
    pub event_id: Option<Uuid>,
    pub version: Option<u64>,
    pub finding: String,
}

/// What checking one credit found.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditVerification {
    /// Events read, up to and including the first that does not match.
    pub events: u64,
    pub first_mismatch: Option<FirstMismatch>,
}

impl CreditVerification {
    pub fn ok(&self) -> bool {
        self.first_mismatch.is_none()
    }
}

/// The key just before `id` in the projection order (UUIDs compare as big-endian bytes
/// on both backends), so a scan "after" it starts at `id`.
fn key_before(site_id: Uuid, id: Uuid) -> Option<(Uuid, Uuid)> {
    id.as_u128().checked_sub(1).map(|prev| (site_id, Uuid::from_u128(prev)))
}

/// Recomputes the hash chain of one credit and folds its events, then compares the
/// fold with the projection row. `None` when the credit has neither events nor a row.
pub async fn verify_credit(
    store: &dyn Audit,
    site_id: Uuid,
    billing_credit_id: Uuid,
) -> Result<Option<CreditVerification>, StoreError> {
    let key = (site_id, billing_credit_id);
    let mut fold = StreamFold::new(key);
    let mut events = 0u64;
    let mut after: StreamPosition = (site_id, billing_credit_id, 0);
    loop {
        let page = store.scan_events(Some(site_id), Some(after), SCAN_LIMIT_MAX).await?;
        let full_page = page.len() == SCAN_LIMIT_MAX as usize;
        for stored in &page {
            let (credit, version, event_id) = match stored {
                Ok(e) => (e.billing_credit_id, e.version, e.event_id),
                Err(u) => (u.billing_credit_id, u.version, u.event_id),
            };
            if credit != billing_credit_id {
                return finish(store, fold, events).await;
            }
            events += 1;
            after = (site_id, billing_credit_id, version);
            let flaw = match stored {
                Ok(e) => fold.apply(e).map(|flaw| match flaw {
                    Flaw::Tampered(text) | Flaw::Broken(text) => text,
                }),
                Err(undecodable) => Some(undecodable.to_string()),
            };
            if let Some(finding) = flaw {
                let first = FirstMismatch { event_id: Some(event_id), version: Some(version), finding };
                return Ok(Some(CreditVerification { events, first_mismatch: Some(first) }));
            }
        }
        if !full_page {
            return finish(store, fold, events).await;
        }
    }
}

/// Compares the fold of an intact stream with the credit's projection row.
async fn finish(store: &dyn Audit, fold: StreamFold, events: u64) -> Result<Option<CreditVerification>, StoreError> {
    let (site_id, billing_credit_id) = fold.key;
    let row = store
        .scan_projections(Some(site_id), key_before(site_id, billing_credit_id), 1)
        .await?
        .into_iter()
        .find(|(c, _)| c.site_id == site_id && c.billing_credit_id == billing_credit_id);
    let finding = match (&row, &fold.credit) {
        (None, None) => return Ok(None),
        (None, Some(_)) => Some(format!("credit {billing_credit_id} has events but no projection row")),
        (Some(_), None) => Some(format!("credit {billing_credit_id} has a projection row but no events")),
        (Some((credit, hash)), Some(folded)) => (credit != folded || *hash != fold.last_hash)
            .then(|| format!("credit {billing_credit_id}: the projection row differs from the replay of its events")),
    };
    let first_mismatch = finding.map(|finding| FirstMismatch { event_id: None, version: None, finding });
    Ok(Some(CreditVerification { events, first_mismatch }))
}
