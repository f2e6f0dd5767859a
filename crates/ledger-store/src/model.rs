//! What goes into and comes out of the store.

use chrono::{DateTime, Utc};
use ledger_domain::{Credit, CreditType, Event};
use uuid::Uuid;

/// One event to append, with the id that makes a retried append harmless.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: Event,
}

/// Events for one stream, valid only if the stream is still at `expected_version`
/// (0: the stream must not exist yet).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub expected_version: u64,
    pub events: Vec<NewEvent>,
}

/// Who asked, why, and when it happened in the business's time.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMeta {
    /// The JWT `sub` (or the service's own name for the expiry sweep).
    pub actor: String,
    /// The REST Idempotency-Key or NATS commandId the events answer, when there is one.
    pub command_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
}

impl CommandMeta {
    pub fn new(actor: impl Into<String>, occurred_at: DateTime<Utc>) -> Self {
        Self { actor: actor.into(), command_id: None, correlation_id: None, causation_id: None, occurred_at }
    }
}

/// An event as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub version: u64,
    pub event: Event,
    pub schema_version: u16,
    pub actor: String,
    pub command_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub hash: [u8; 32],
    /// Where a feed reader resumes after this event.
    pub cursor: FeedCursor,
}

impl RecordedEvent {
    /// Where the event sits in its stream, as `evolve` needs it.
    pub fn position_in_stream(&self) -> ledger_domain::EventPosition {
        ledger_domain::EventPosition {
            site_id: self.site_id,
            billing_credit_id: self.billing_credit_id,
            event_id: self.event_id,
            version: self.version,
            recorded_at: self.recorded_at,
        }
    }
}

/// The result of a committed append: the events written and the credits as they now stand.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub events: Vec<RecordedEvent>,
    pub credits: Vec<Credit>,
    /// True when every event id was already stored: nothing was written this time.
    pub replayed: bool,
}

/// A position in the global (or one site's) event feed. Opaque to clients.
/// On Postgres `txid` orders commits; on SQLite it is always 0 and `position` suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct FeedCursor {
    pub txid: u64,
    pub position: i64,
}

impl FeedCursor {
    pub const START: FeedCursor = FeedCursor { txid: 0, position: 0 };

    pub fn encode(&self) -> String {
        format!("{}-{}", self.txid, self.position)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (txid, position) = s.split_once('-')?;
        Some(Self { txid: txid.parse().ok()?, position: position.parse().ok()? })
    }
}

/// A stored event whose row cannot be read back as an event (a corrupt or legacy
/// payload, a schema version from the future): what its columns still tell, and why.
/// Readers of many events get it in place of the event, so one bad row stops no one.
#[derive(Debug, Clone, PartialEq)]
pub struct UndecodableEvent {
    pub cursor: FeedCursor,
    pub event_id: Uuid,
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub version: u64,
    pub event_type: String,
    pub reason: String,
}

impl std::fmt::Display for UndecodableEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} ({} version {} of credit {}, site {}, feed cursor {}) cannot be read: {}",
            self.event_id,
            self.event_type,
            self.version,
            self.billing_credit_id,
            self.site_id,
            self.cursor.encode(),
            self.reason
        )
    }
}

/// One stored event, read back or not.
pub type StoredEvent = Result<RecordedEvent, UndecodableEvent>;

/// A slice of the feed and where to resume. An event that cannot be read is in its
/// place as an [`UndecodableEvent`]: the reader decides to skip, report or stop.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub events: Vec<StoredEvent>,
    pub next: FeedCursor,
}

/// Bounds on when the events a feed returns were recorded: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordedWindow {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl RecordedWindow {
    /// Every event, whenever recorded.
    pub const ALL: RecordedWindow = RecordedWindow { from: None, to: None };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortField {
    #[default]
    CreatedAt,
    UpdatedAt,
    StartDate,
    EndDate,
    TotalAmount,
    UsedAmount,
    WastedAmount,
    RemainingAmount,
}

impl SortField {
    pub const ALL: [SortField; 8] = [
        SortField::CreatedAt,
        SortField::UpdatedAt,
        SortField::StartDate,
        SortField::EndDate,
        SortField::TotalAmount,
        SortField::UsedAmount,
        SortField::WastedAmount,
        SortField::RemainingAmount,
    ];

    /// The API name, as in `sortBy=createdAt`.
    pub fn api_name(self) -> &'static str {
        match self {
            SortField::CreatedAt => "createdAt",
            SortField::UpdatedAt => "updatedAt",
            SortField::StartDate => "startDate",
            SortField::EndDate => "endDate",
            SortField::TotalAmount => "totalAmount",
            SortField::UsedAmount => "usedAmount",
            SortField::WastedAmount => "wastedAmount",
            SortField::RemainingAmount => "remainingAmount",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.api_name() == s)
    }

    /// Whether credits may lack a value (they sort last, both ways).
    pub(crate) fn nullable(self) -> bool {
        self == SortField::EndDate
    }

    /// The projection column; a fixed whitelist, so safe to splice into SQL.
    pub(crate) fn column(self) -> &'static str {
        match self {
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
            SortField::StartDate => "start_date",
            SortField::EndDate => "end_date",
            SortField::TotalAmount => "total_amount",
            SortField::UsedAmount => "used_amount",
            SortField::WastedAmount => "wasted_amount",
            SortField::RemainingAmount => "remaining_amount",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

impl SortOrder {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        }
    }
}

/// The seed's list filters; every one is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreditFilter {
    pub credit_type: Option<CreditType>,
    pub is_active: Option<bool>,
    pub wellness_plan_id: Option<Uuid>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    pub wellness_plan_membership_id: Option<Uuid>,
    pub wellness_plan_membership_cycle_id: Option<Uuid>,
    pub wellness_plan_membership_status_period_id: Option<Uuid>,
}

/// The largest page a list may ask for.
pub const PAGE_SIZE_MAX: u32 = 100;

/// The last page number a list may ask for: deeper offsets only make the database count.
pub const PAGE_MAX: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: CreditFilter,
    pub sort_by: SortField,
    pub sort_order: SortOrder,
    /// 0-based.
    pub page: u32,
    /// 1..=PAGE_SIZE_MAX.
    pub page_size: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            filter: CreditFilter::default(),
            sort_by: SortField::default(),
            sort_order: SortOrder::default(),
            page: 0,
            page_size: 10,
        }
    }
}

impl ListQuery {
    pub(crate) fn offset(&self) -> i64 {
        assert!((1..=PAGE_SIZE_MAX).contains(&self.page_size), "page size {} out of range", self.page_size);
        i64::from(self.page) * i64::from(self.page_size)
    }
}

/// One page of credits and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditPage {
    pub credits: Vec<Credit>,
    pub total: u64,
}

/// Called with the number of events processed so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// The most credits a full rebuild folds in memory at once by default: about 600 MiB.
pub const REBUILD_CREDITS_IN_MEMORY_MAX: usize = 250_000;

/// Bounds a replay keeps to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayLimits {
    /// The most credits folded in memory at once by a full rebuild (Postgres); more
    /// credits than this are rebuilt in several passes.
    pub credits_in_memory_max: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self { credits_in_memory_max: REBUILD_CREDITS_IN_MEMORY_MAX }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub events: u64,
    pub credits: u64,
    /// Reads of the events it took (more than one when the credits did not fit in memory).
    pub passes: u32,
    pub elapsed: std::time::Duration,
}

/// An event's place in stream order: (site, credit, version).
pub type StreamPosition = (Uuid, Uuid, u64);

/// The largest number of events one feed or history read returns.
pub const READ_LIMIT_MAX: u32 = 1_000;

/// The largest number of rows one replay/verify scan returns.
pub const SCAN_LIMIT_MAX: u32 = 10_000;

/// Projection rows per batch a replay writes.
pub const PROJECTION_BATCH_MAX: usize = 500;

/// Whether a read of credits includes the deleted ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tombstones {
    Excluded,
    Included,
}
