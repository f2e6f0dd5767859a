//! Reading stored rows back into the store's types, the same way on every database.

use ledger_domain::{read_stored, Credit};

use super::db::SqlDb;
use super::dialect::{DbRow, Dialect};
use crate::error::StoreError;
use crate::model::RecordedEvent;

/// The projection's state column, as `Dialect::STATE_COLUMN` selects it.
pub(crate) fn state<D: Dialect>(row: &DbRow<D>) -> Result<Credit, StoreError> {
    let text = D::Db::text(row, "state")?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("projection state: {e}")))
}

pub(crate) fn hash<D: Dialect>(row: &DbRow<D>, column: &str) -> Result<[u8; 32], StoreError> {
    D::Db::bytes(row, column)?.try_into().map_err(|_| StoreError::Corrupt(format!("{column} is not 32 bytes")))
}

fn count<D: Dialect>(row: &DbRow<D>, column: &str) -> Result<u64, StoreError> {
    let value = D::Db::i64(row, column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} {value} is negative")))
}

/// An event, from the columns `Dialect::EVENT_COLUMNS` selects.
pub(crate) fn event<D: Dialect>(row: &DbRow<D>) -> Result<RecordedEvent, StoreError> {
    let event_type = D::Db::text(row, "event_type")?;
    let schema_version = D::Db::i16(row, "schema_version")?;
    let schema_version =
        u16::try_from(schema_version).map_err(|_| StoreError::Corrupt(format!("schema version {schema_version}")))?;
    let payload = D::Db::text(row, "payload")?;
    let event = read_stored(&event_type, schema_version, &payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let cursor = D::cursor(row)?;
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

pub(crate) fn events<D: Dialect>(rows: &[DbRow<D>]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(event::<D>).collect()
}
