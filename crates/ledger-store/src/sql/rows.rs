//! Reading stored rows back into the store's types, the same way on every database.

use ledger_domain::{read_stored, Credit};
use uuid::Uuid;

use super::db::SqlDb;
use super::dialect::{DbRow, Dialect};
use crate::error::StoreError;
use crate::model::{FeedCursor, RecordedEvent, StoredEvent, UndecodableEvent};

/// The projection's state column, as `Dialect::STATE_COLUMN` selects it.
pub(crate) fn state<D: Dialect>(row: &DbRow<D>) -> Result<Credit, StoreError> {
    let text = D::Db::text(row, "state")?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("projection state: {e}")))
}

/// The state column of a row that also holds `billing_credit_id` (and `site_id` unless
/// given): a corrupt one is named, so the operator knows which credit to replay.
pub(crate) fn listed_state<D: Dialect>(row: &DbRow<D>, site_id: Option<Uuid>) -> Result<Credit, StoreError> {
    state::<D>(row).map_err(|e| {
        let site_id = site_id.or_else(|| D::Db::uuid(row, "site_id").ok()).unwrap_or_default();
        of_credit(e, site_id, D::Db::uuid(row, "billing_credit_id").unwrap_or_default())
    })
}

/// Names the credit a corrupt projection row belongs to.
pub(crate) fn of_credit(e: StoreError, site_id: Uuid, billing_credit_id: Uuid) -> StoreError {
    match e {
        StoreError::Corrupt(reason) => StoreError::Corrupt(format!(
            "the projection row of credit {billing_credit_id} (site {site_id}) cannot be read, \
             `billing-credit-ledger replay --site {site_id}` rebuilds it: {reason}"
        )),
        other => other,
    }
}

pub(crate) fn hash<D: Dialect>(row: &DbRow<D>, column: &str) -> Result<[u8; 32], StoreError> {
    D::Db::bytes(row, column)?.try_into().map_err(|_| StoreError::Corrupt(format!("{column} is not 32 bytes")))
}

fn count<D: Dialect>(row: &DbRow<D>, column: &str) -> Result<u64, StoreError> {
    let value = D::Db::i64(row, column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value} is negative")))
}

/// An event, from the columns `Dialect::EVENT_COLUMNS` selects. Only a row whose place
/// (cursor, ids, version) is unreadable fails the read: any other fault makes it an
/// [`UndecodableEvent`], so a reader can name it and go on past it.
pub(crate) fn event<D: Dialect>(row: &DbRow<D>) -> Result<StoredEvent, StoreError> {
    let cursor = D::cursor(row)?;
    let (event_id, site_id) = (D::Db::uuid(row, "event_id")?, D::Db::uuid(row, "site_id")?);
    let (billing_credit_id, version) = (D::Db::uuid(row, "billing_credit_id")?, count::<D>(row, "version")?);
    Ok(recorded::<D>(row, cursor).map_err(|e| UndecodableEvent {
        cursor,
        event_id,
        site_id,
        billing_credit_id,
        version,
        event_type: D::Db::text(row, "event_type").unwrap_or_else(|_| "(unreadable type)".into()),
        reason: match e {
            StoreError::Corrupt(reason) => reason,
            other => other.to_string(),
        },
    }))
}

fn recorded<D: Dialect>(row: &DbRow<D>, cursor: FeedCursor) -> Result<RecordedEvent, StoreError> {
    let event_type = D::Db::text(row, "event_type")?;
    let schema_version = D::Db::i16(row, "schema_version")?;
    let schema_version =
        u16::try_from(schema_version).map_err(|_| StoreError::Corrupt(format!("schema version {schema_version}")))?;
    let payload = D::Db::text(row, "payload")?;
    let event = read_stored(&event_type, schema_version, &payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(RecordedEvent {
        position: cursor.position,
        event_id: D::Db::uuid(row, "event_id")?,
        site_id: D::Db::uuid(row, "site_id")?,
        billing_credit_id: D::Db::uuid(row, "billing_credit_id")?,
        version: count::<D>(row, "version")?,
        event,
        schema_version,
        actor: D::Db::text(row, "actor")?,
        command_id: D::Db::opt_uuid(row, "command_id")?,
        correlation_id: D::Db::opt_uuid(row, "correlation_id")?,
        causation_id: D::Db::opt_uuid(row, "causation_id")?,
        occurred_at: D::read_time(row, "occurred_at")?,
        recorded_at: D::read_time(row, "recorded_at")?,
        hash: hash::<D>(row, "hash")?,
        cursor,
    })
}

/// Every row read back, undecodable ones in their place.
pub(crate) fn stored_events<D: Dialect>(rows: &[DbRow<D>]) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter().map(event::<D>).collect()
}

/// Every row read back; the first that cannot be is the error.
pub(crate) fn events<D: Dialect>(rows: &[DbRow<D>]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(|row| event::<D>(row)?.map_err(|e| StoreError::Undecodable(Box::new(e)))).collect()
}
