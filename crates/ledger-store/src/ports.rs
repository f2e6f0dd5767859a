//! What callers ask of a store, one role per trait, so each caller names only what it
//! uses: the REST writes take [`Commands`], the list and GET take [`Reads`], the NATS
//! publisher takes [`Feed`], the auditors' tools take [`Audit`], the sweeps [`Upkeep`],
//! the alerter [`Alerts`], the delivery workers [`AlertOutbox`].
//! [`EventStore`] is all of them, for the binary that wires a store into everything.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::{Credit, Event};
use uuid::Uuid;

use crate::alerts::*;
use crate::error::StoreError;
use crate::model::*;

/// The decision a command makes once its credits are locked: from the credits as they
/// stand (in the order asked, None where absent), the events to append to each.
/// It may refuse with a business rule ([`StoreError::Domain`]) or a stale version
/// ([`StoreError::VersionConflict`], for If-Match).
/// A pure function of the credits: group commit may run it again if its batch has to
/// be retried command by command.
pub type Decider = Box<dyn Fn(&[Option<Credit>]) -> Result<Vec<(Uuid, Vec<Event>)>, StoreError> + Send + Sync>;

/// A command to run against the credits it names, atomically.
pub struct Execution {
    pub site_id: Uuid,
    pub billing_credit_ids: Vec<Uuid>,
    pub meta: CommandMeta,
    /// The event a reversal undoes, on the first credit: what is left of it is restored
    /// on the loaded credit before deciding (stored credits do not carry it).
    pub reverses: Option<Uuid>,
    pub decide: Decider,
}

/// An Idempotency-Key and the fingerprint of the request that first used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// What a keyed command came to: its outcome, first time or kept.
#[derive(Debug)]
pub struct Keyed {
    /// Committed, or refused by a rule ([`StoreError::is_refusal`]); faults are returned
    /// as the call's error instead and nothing is kept.
    pub outcome: Result<Committed, StoreError>,
    /// True when this is the kept outcome of an earlier request with the same key.
    pub replayed: bool,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[async_trait]
pub trait Commands: Send + Sync {
    /// Locks the named credits, decides on them, appends the result: one transaction.
    /// With a `command_id`, a command already applied is not applied again: the events
    /// it wrote then are returned (`replayed`).
    async fn execute(&self, execution: Execution) -> Result<Committed, StoreError>;

    /// Runs the commands in the order given, sharing transactions (see [`crate::group`]):
    /// each is decided against the credits as the ones before it left them and has its
    /// own outcome. Order per credit survives faults: after a command fails
    /// transiently, the later ones on its credits fail likewise without running.
    async fn execute_all(&self, executions: Vec<Execution>) -> Vec<Result<Committed, StoreError>>;

    /// Like [`execute`](Self::execute), once per idempotency key: the first outcome
    /// (committed or refused) is kept in the same transaction as the events and is the
    /// outcome of every retry with the same request. A retry that arrives while the first
    /// attempt runs waits for it.
    async fn execute_once(&self, execution: Execution, key: IdempotencyKey) -> Result<Keyed, StoreError>;

    /// Appends events to one or several streams in one transaction, each only if its
    /// stream is still at the expected version, and updates their projections.
    /// If every event id is already stored, writes nothing and returns them (`replayed`).
    async fn append(&self, appends: Vec<StreamAppend>, meta: CommandMeta) -> Result<Committed, StoreError>;
}

#[async_trait]
pub trait Reads: Send + Sync {
    /// The credit as its projection holds it, deleted or not.
    async fn load(&self, site_id: Uuid, billing_credit_id: Uuid) -> Result<Option<Credit>, StoreError>;

    /// Events of one stream with version > `after_version`, oldest first. An event
    /// that cannot be read back fails the read with [`StoreError::Undecodable`].
    async fn read_stream(
        &self,
        site_id: Uuid,
        billing_credit_id: Uuid,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// One page of a site's live (not deleted) credits.
    async fn list(&self, site_id: Uuid, query: &ListQuery) -> Result<CreditPage, StoreError>;

    /// Ids of the credits of one membership in a site, oldest first: the live ones, or
    /// with `Tombstones::Included` the deleted ones too (a past instant may predate the
    /// deletion).
    async fn membership_credit_ids(
        &self,
        site_id: Uuid,
        membership_id: Uuid,
        tombstones: Tombstones,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// The live credits of one membership in a site, oldest first, at most `limit`: one
    /// query where `membership_credit_ids` and a `load` each would take one per credit.
    async fn membership_credits(
        &self,
        site_id: Uuid,
        membership_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Credit>, StoreError>;
}

#[async_trait]
pub trait Feed: Send + Sync {
    /// Events committed after `after`, in commit order, never skipping one that commits
    /// late. All sites, or one. An event that cannot be read back is in its place as an
    /// [`UndecodableEvent`], so one bad row never stops the feed.
    async fn feed(&self, site_id: Option<Uuid>, after: FeedCursor, limit: u32) -> Result<FeedPage, StoreError> {
        self.feed_window(site_id, RecordedWindow::ALL, after, limit).await
    }

    /// Like [`feed`](Self::feed), only the events recorded within `window`, chosen by
    /// the database.
    async fn feed_window(
        &self,
        site_id: Option<Uuid>,
        window: RecordedWindow,
        after: FeedCursor,
        limit: u32,
    ) -> Result<FeedPage, StoreError>;
}

#[async_trait]
pub trait Audit: Send + Sync {
    /// Events in stream order (site, credit, version) after `after`, for replay and
    /// verify; one that cannot be read back is in its place, named.
    async fn scan_events(
        &self,
        site_id: Option<Uuid>,
        after: Option<StreamPosition>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Projection rows (deleted or not) in (site, credit) order after `after`, with their last hash.
    async fn scan_projections(
        &self,
        site_id: Option<Uuid>,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Credit, [u8; 32])>, StoreError>;

    /// Writes rebuilt projection rows, never over a newer version.
    async fn put_projections(&self, rows: Vec<(Credit, [u8; 32])>) -> Result<(), StoreError>;

    /// Rebuilds every projection row from the events, faster than the paged replay,
    /// where the backend knows how (Postgres: a fresh table swapped in); `None` where
    /// it does not, and the caller replays page by page.
    async fn rebuild_projections(
        &self,
        limits: ReplayLimits,
        progress: Progress<'_>,
    ) -> Result<Option<ReplayReport>, StoreError>;

    /// Rebuilds any derived counters from the projection (after a replay).
    async fn recount(&self, site_id: Option<Uuid>) -> Result<(), StoreError>;

    /// Derived counters that disagree with the projection, described.
    async fn count_mismatches(&self, site_id: Option<Uuid>) -> Result<Vec<String>, StoreError>;
}

#[async_trait]
pub trait Upkeep: Send + Sync {
    /// Credits whose endDate has passed with a balance left and no CreditExpired yet.
    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(Uuid, Uuid)>, StoreError>;

    /// Forgets idempotency keys recorded before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Balance alerts: derived from the feed into the [`AlertOutbox`], by each site's
/// settings (see [`crate::alerts`]).
#[async_trait]
pub trait Alerts: Send + Sync {
    /// One alerter step, in one transaction under the alerter's lock: reads up to
    /// `batch` events after the checkpoint, writes the alerts (and their deliveries) of
    /// the members they touched, moves the checkpoint. The first step ever starts at
    /// the feed's end: history raises no alerts.
    async fn derive_alerts(
        &self,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
        batch: u32,
    ) -> Result<AlerterStep, StoreError>;

    /// Writes the expiry alerts due at `now` (credits with something left whose endDate
    /// falls within their site's window), once per (credit, endDate); returns how many.
    async fn derive_expiring_alerts(
        &self,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, StoreError>;

    /// The site's own settings, None if it set none.
    async fn alert_settings(&self, site_id: Uuid) -> Result<Option<AlertSettings>, StoreError>;
    async fn put_alert_settings(
        &self,
        site_id: Uuid,
        settings: &AlertSettings,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The alert outbox: the webhook endpoints of each site, and the deliveries of alerts
/// to them and to NATS (see [`crate::alerts`]).
#[async_trait]
pub trait AlertOutbox: Send + Sync {
    /// Registers an endpoint with its secret; false (nothing written) when the site has
    /// `max_per_site` already.
    async fn create_webhook(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &str,
        max_per_site: u32,
    ) -> Result<bool, StoreError>;
    /// The site's endpoints, oldest first.
    async fn webhooks(&self, site_id: Uuid) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn webhook(&self, site_id: Uuid, endpoint_id: Uuid) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Deletes the endpoint and fails its pending deliveries; false if there was none.
    async fn delete_webhook(&self, site_id: Uuid, endpoint_id: Uuid) -> Result<bool, StoreError>;
    /// Replaces the endpoint's secret; false if there is no such endpoint.
    async fn rotate_webhook_secret(&self, site_id: Uuid, endpoint_id: Uuid, secret: &str) -> Result<bool, StoreError>;
    /// One page (0-based) of an endpoint's deliveries, newest first, and their total.
    async fn webhook_deliveries(
        &self,
        site_id: Uuid,
        endpoint_id: Uuid,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError>;
    /// Sends an alert to the endpoint again: a new delivery (new id, same alert), due
    /// now. None if the endpoint has no such delivery.
    async fn redeliver(
        &self,
        site_id: Uuid,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
        give_up_at: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;

    /// Takes the lease of up to `limit` due deliveries of `target` until `lease_until`:
    /// no other worker gets them while it lasts.
    async fn claim_deliveries(
        &self,
        target: TargetKind,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Records how an attempt ended and releases the lease; false if the lease was lost
    /// (another worker took the delivery over), and nothing is written.
    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait Health: Send + Sync {
    fn backend(&self) -> Backend;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Where the primary's write-ahead log ends now (Postgres: an LSN, `16/B374D848`), for
    /// a read replica's lag probe; None on SQLite.
    async fn wal_position(&self) -> Result<Option<String>, StoreError>;
}

/// What the read endpoints ask: the primary or a read replica answers them alike
/// (see [`crate::postgres::replica`]).
pub trait ReadModels: Reads + Feed {}

impl<T: Reads + Feed> ReadModels for T {}

/// Every role at once: what the binary hands out, each caller taking the part it uses.
pub trait EventStore: Commands + ReadModels + Audit + Upkeep + Alerts + AlertOutbox + Health + 'static {}

impl<T: Commands + ReadModels + Audit + Upkeep + Alerts + AlertOutbox + Health + 'static> EventStore for T {}
