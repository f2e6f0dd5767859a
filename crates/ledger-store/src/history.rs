//! Reading a credit back from its events: the fold auditors trust, and the credit as it
//! stood at any past instant.

use chrono::{DateTime, Utc};
use ledger_domain::{evolve, Credit};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{RecordedEvent, READ_LIMIT_MAX};
use crate::ports::Reads;

/// Folds recorded events (one stream, in version order) into the credit they make.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Option<Credit> {
    events.into_iter().fold(None, |state, e| Some(evolve(state, &e.event, &e.position_in_stream())))
}

/// Every event of one stream, oldest first, read in bounded pages.
pub async fn read_all(
    store: &dyn Reads,
    site_id: Uuid,
    billing_credit_id: Uuid,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.version);
        let page = store.read_stream(site_id, billing_credit_id, after, READ_LIMIT_MAX).await?;
        let done = page.len() < READ_LIMIT_MAX as usize;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}

/// The credit as the ledger knew it at `as_of`: its events recorded up to then, folded.
/// None if it did not exist yet (or had been deleted by then). Read at millisecond
/// precision, the precision of the timestamps the API shows: an event recorded at
/// 12:00:00.734512 is included as of 12:00:00.734.
pub async fn as_of(
    store: &dyn Reads,
    site_id: Uuid,
    billing_credit_id: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Option<Credit>, StoreError> {
    let events = read_all(store, site_id, billing_credit_id).await?;
    let as_of_ms = as_of.timestamp_millis();
    Ok(fold(events.iter().take_while(|e| e.recorded_at.timestamp_millis() <= as_of_ms)).filter(|c| !c.deleted))
}
