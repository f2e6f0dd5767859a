//! A member's statement: every movement of their credits' balances, newest first, each with
//! the credit's remaining balance after it, read in pages behind an opaque cursor.
//!
//! Built from the credits' streams (the events are the truth; nothing new is stored). The
//! order is (recordedAt, position), newest first, and a cursor names the last entry read,
//! so a page is stable while new events arrive: they sort before the first page. (On
//! Postgres a transaction that commits late can carry a recordedAt a moment older than
//! events committed before it; a reader paging at that very moment may not see it.)

use chrono::{DateTime, Utc};
use ledger_domain::evolve;
use ledger_domain::statement::{entry_move, EntryType};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::balance::{MemberCreditsError, MEMBER_CREDITS_MAX};
use crate::history;
use crate::model::Tombstones;
use crate::ports::Reads;

/// The largest page of entries.
pub const ENTRIES_LIMIT_MAX: u32 = 100;

/// One line of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub event_id: Uuid,
    pub billing_credit_id: Uuid,
    pub entry_type: EntryType,
    /// Signed: positive adds to the remaining balance.
    pub amount: Decimal,
    /// The credit's remaining balance once this entry was applied.
    pub remaining_after: Decimal,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    position: i64,
}

/// Where a page ended: the entries after it are older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryCursor {
    recorded_at_us: i64,
    position: i64,
}

impl EntryCursor {
    fn of(entry: &Entry) -> Self {
        EntryCursor { recorded_at_us: entry.recorded_at.timestamp_micros(), position: entry.position }
    }

    pub fn encode(&self) -> String {
        format!("{}_{}", self.recorded_at_us, self.position)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (at, position) = text.split_once('_')?;
        Some(EntryCursor { recorded_at_us: at.parse().ok()?, position: position.parse().ok()? })
    }
}

/// Which entries, and which page of them.
#[derive(Debug, Clone)]
pub struct EntryQuery {
    pub membership_id: Uuid,
    pub billing_credit_id: Option<Uuid>,
    /// Empty: every type.
    pub types: Vec<EntryType>,
    /// Recorded at or after.
    pub recorded_from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub recorded_to: Option<DateTime<Utc>>,
    pub reference: Option<String>,
    /// The `next` of the previous page; the newest entries when absent.
    pub after: Option<EntryCursor>,
    /// 1..=ENTRIES_LIMIT_MAX.
    pub limit: u32,
}

impl EntryQuery {
    fn matches(&self, entry: &Entry) -> bool {
        (self.types.is_empty() || self.types.contains(&entry.entry_type))
            && self.recorded_from.is_none_or(|from| entry.recorded_at >= from)
            && self.recorded_to.is_none_or(|to| entry.recorded_at < to)
            && self.reference.as_deref().is_none_or(|r| entry.reference.as_deref() == Some(r))
            && self.after.is_none_or(|after| EntryCursor::of(entry) < after)
    }
}

/// One page of entries and the cursor of the next (None on the last page).
#[derive(Debug, Clone)]
pub struct EntryPage {
    pub entries: Vec<Entry>,
    pub next: Option<EntryCursor>,
}

/// The entries of a credit's stream, oldest first, each with the remaining balance after it.
fn stream_entries(events: &[crate::RecordedEvent]) -> Vec<Entry> {
    let mut state = None;
    let mut entries = Vec::new();
    for e in events {
        let credit = evolve(state.take(), &e.event, &e.position_in_stream());
        if let Some(m) = entry_move(&e.event) {
            entries.push(Entry {
                event_id: e.event_id,
                billing_credit_id: e.billing_credit_id,
                entry_type: m.entry_type,
                amount: m.amount,
                remaining_after: credit.remaining_amount(),
                reference: m.reference.map(str::to_string),
                reason: m.reason.map(str::to_string),
                note: m.note.map(str::to_string),
                actor: e.actor.clone(),
                recorded_at: e.recorded_at,
                occurred_at: e.occurred_at,
                position: e.position,
            });
        }
        state = Some(credit);
    }
    entries
}

/// A page of the member's statement in the site, newest first.
pub async fn member_entries(
    store: &dyn Reads,
    site_id: Uuid,
    query: &EntryQuery,
) -> Result<EntryPage, MemberCreditsError> {
    assert!((1..=ENTRIES_LIMIT_MAX).contains(&query.limit), "limit {} out of range", query.limit);
    // Deleted credits keep their history, so their movements stay on the statement.
    let mut ids = store.membership_credit_ids(site_id, query.membership_id, Tombstones::Included).await?;
    if ids.len() > MEMBER_CREDITS_MAX {
        return Err(MemberCreditsError::TooMany);
    }
    if let Some(only) = query.billing_credit_id {
        ids.retain(|id| *id == only);
    }
    let mut entries = Vec::new();
    for id in ids {
        let events = history::read_all(store, site_id, id).await?;
        entries.extend(stream_entries(&events).into_iter().filter(|e| query.matches(e)));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(EntryCursor::of(e)));
    let has_more = entries.len() > query.limit as usize;
    entries.truncate(query.limit as usize);
    let next = if has_more { entries.last().map(EntryCursor::of) } else { None };
    Ok(EntryPage { entries, next })
}
