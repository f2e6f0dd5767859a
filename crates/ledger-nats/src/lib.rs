//! # The ledger on NATS JetStream
//!
//! For the wellness-plan engine, which sends commands and listens to events:
//!
//! - **Intake** ([`intake`]): a durable pull consumer (shared by every replica) on
//!   `{prefix}.commands.{siteId}`; each message is one command ([`command`] documents the
//!   format, `docs/nats-commands.schema.json` is its JSON Schema). Deduplicated by
//!   `commandId` in the store, acked only after the commit; a refused command is
//!   answered on `{prefix}.rejections.{siteId}` and terminated; a transient fault is
//!   nak'ed with backoff.
//! - **Publication** ([`publisher`]): the replica holding the lease publishes every
//!   committed event, in feed order, to `{prefix}.events.{siteId}.{eventType}` with
//!   `Nats-Msg-Id` = eventId, and checkpoints in a KV bucket after each acknowledged page.
//!
//! - **Alerts** ([`alerts`]): the ledger's balance alerts (derived by the alerter into
//!   an outbox, see `ledger_store::alerts`), on `{prefix}.alerts.{siteId}.{kind}` with
//!   `Nats-Msg-Id` = alertId, in the stream `BILLING_CREDIT_ALERTS`.
//!
//! The default prefix is `ahds.billing-credit`. [`start`] creates the streams, the
//! consumer and the KV bucket when absent, and runs both; [`NatsHandle::shutdown`] stops
//! them gracefully.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use ledger_store::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod alerts;
pub mod command;
pub mod intake;
mod lease;
pub mod publisher;
mod streams;
pub mod wire;

pub use command::{parse, Action, ParsedCommand, Refusal, COMMAND_TYPES};
pub use publisher::{event_message, event_subject, Checkpoint, CHECKPOINT_KEY, LEASE_KEY};

/// The subject prefix of every subject the ledger uses.
pub const SUBJECT_PREFIX_DEFAULT: &str = "ahds.billing-credit";
pub const COMMAND_STREAM_DEFAULT: &str = "BILLING_CREDIT_COMMANDS";
pub const CONSUMER_DEFAULT: &str = "billing-credit-ledger";
pub const EVENT_STREAM_DEFAULT: &str = "BILLING_CREDIT_EVENTS";
pub const REJECTION_STREAM_DEFAULT: &str = "BILLING_CREDIT_REJECTIONS";
pub const ALERT_STREAM_DEFAULT: &str = "BILLING_CREDIT_ALERTS";
pub const KV_BUCKET_DEFAULT: &str = "billing_credit_ledger";
/// The actor of a command that names none.
pub const ACTOR_DEFAULT: &str = "nats:wellness-plan-engine";

/// Messages taken per pull, committed as one group. Measured by scripts/bench (20,000
/// queued uses): 100 drained about 2,950 commands/s, 500 about 3,970, 1,000 about 4,320.
/// The cost: a command waits for its whole batch (about a quarter of a second at 1,000),
/// and a REST command on a credit of the batch waits as long for its lock.
pub const BATCH_MESSAGES_DEFAULT: usize = 1_000;
/// Delivered but unacknowledged messages across all replicas (JetStream max_ack_pending).
pub const ACK_PENDING_MESSAGES_MAX_DEFAULT: i64 = 1_000;
/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT_S_DEFAULT: u64 = 30;
/// Deliveries of one message before the intake gives up on it (rejects it).
pub const MAX_DELIVER_DEFAULT: i64 = 10;
/// How long one idle pull waits for a message.
pub const IDLE_POLL_MS_DEFAULT: u64 = 1_000;
/// The first nak delay; it doubles with each delivery up to the maximum.
pub const NAK_DELAY_BASE_MS_DEFAULT: u64 = 500;
pub const NAK_DELAY_MAX_MS_DEFAULT: u64 = 30_000;
/// Events read from the feed per page (one checkpoint write per page).
pub const FEED_BATCH_EVENTS_DEFAULT: u32 = 500;
/// How often an idle publisher looks at the feed again.
pub const PUBLISH_POLL_MS_DEFAULT: u64 = 200;
/// How long the publisher lease lasts without renewal (renewed every third of it).
pub const LEASE_TTL_S_DEFAULT: u64 = 15;
/// JetStream duplicate windows (Nats-Msg-Id): commands (the engine's retries) and events
/// (re-publication after a publisher crash or a lease takeover).
pub const COMMAND_DUPLICATE_WINDOW_S_DEFAULT: u64 = 10 * 60;
pub const EVENT_DUPLICATE_WINDOW_S_DEFAULT: u64 = 10 * 60;
/// Retention: unprocessed commands, events (the ledger itself keeps every event forever;
/// the stream is the distribution log) and rejections.
pub const COMMAND_MAX_AGE_S_DEFAULT: u64 = 7 * 24 * 3600;
pub const EVENT_MAX_AGE_S_DEFAULT: u64 = 7 * 24 * 3600;
pub const REJECTION_MAX_AGE_S_DEFAULT: u64 = 7 * 24 * 3600;
/// Copies of every stream and of the KV bucket (1 on a single server, 3 on a cluster).
pub const STREAM_REPLICAS_DEFAULT: usize = 1;
/// JetStream allows at most 5 copies.
pub const STREAM_REPLICAS_MAX: usize = 5;
/// One connection attempt to one server (TCP, TLS, INFO, CONNECT/PONG).
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// One JetStream API request (stream info, KV get/put, pull request) or publish
/// acknowledgement. During a stream leader election requests fail for a few seconds;
/// each is retried after its timeout, so this bounds how long one try can hang.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Reconnection never gives up; the delay between tries doubles up to this.
pub const RECONNECT_DELAY_MAX_MS_DEFAULT: u64 = 2_000;
/// How often the client pings its server: a server that died without closing the
/// connection (a lost machine, not a killed process) is noticed after two missed pongs.
pub const PING_INTERVAL_MS_DEFAULT: u64 = 10_000;

/// Where and how the ledger talks to NATS. [`NatsSettings::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats://host:4222`, or several, comma-separated, for a cluster: the client is given
    /// every one and connects (and reconnects) to any that answers.
    pub url: String,
    /// Copies of each stream and of the KV bucket; an existing one with another count is
    /// changed to this at start (see [`streams`]).
    pub stream_replicas: usize,
    pub connect_timeout: Duration,
    /// Bounds every JetStream request and publish acknowledgement.
    pub request_timeout: Duration,
    pub reconnect_delay_max: Duration,
    pub ping_interval: Duration,
    /// Subjects are `{prefix}.commands.{siteId}`, `{prefix}.rejections.{siteId}`,
    /// `{prefix}.events.{siteId}.{eventType}`.
    pub subject_prefix: String,
    pub command_stream: String,
    /// The durable consumer's name; every replica uses the same one.
    pub consumer: String,
    pub event_stream: String,
    pub rejection_stream: String,
    /// Captures `{prefix}.alerts.>`.
    pub alert_stream: String,
    /// Holds the publication checkpoint and the publisher lease.
    pub kv_bucket: String,
    /// This process's name in the lease; must differ between running processes.
    pub instance_id: String,
    pub default_actor: String,
    /// Run the command intake.
    pub intake: bool,
    /// Take part in publishing events (the lease picks one replica).
    pub publish: bool,
    /// Publish the alert outbox's NATS rows (every replica takes part; each row is
    /// claimed by one).
    pub alerts: bool,
    pub batch_messages: usize,
    pub max_ack_pending: i64,
    pub ack_wait: Duration,
    pub max_deliver: i64,
    pub idle_poll: Duration,
    pub nak_delay_base: Duration,
    pub nak_delay_max: Duration,
    pub feed_batch_events: u32,
    pub publish_poll: Duration,
    pub lease_ttl: Duration,
    pub command_duplicate_window: Duration,
    pub event_duplicate_window: Duration,
    pub command_max_age: Duration,
    pub event_max_age: Duration,
    pub rejection_max_age: Duration,
}

impl NatsSettings {
    pub fn new(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            stream_replicas: STREAM_REPLICAS_DEFAULT,
            connect_timeout: Duration::from_millis(CONNECT_TIMEOUT_MS_DEFAULT),
            request_timeout: Duration::from_millis(REQUEST_TIMEOUT_MS_DEFAULT),
            reconnect_delay_max: Duration::from_millis(RECONNECT_DELAY_MAX_MS_DEFAULT),
            ping_interval: Duration::from_millis(PING_INTERVAL_MS_DEFAULT),
            subject_prefix: SUBJECT_PREFIX_DEFAULT.into(),
            command_stream: COMMAND_STREAM_DEFAULT.into(),
            consumer: CONSUMER_DEFAULT.into(),
            event_stream: EVENT_STREAM_DEFAULT.into(),
            rejection_stream: REJECTION_STREAM_DEFAULT.into(),
            alert_stream: ALERT_STREAM_DEFAULT.into(),
            kv_bucket: KV_BUCKET_DEFAULT.into(),
            instance_id: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
            default_actor: ACTOR_DEFAULT.into(),
            intake: true,
            publish: true,
            alerts: false,
            batch_messages: BATCH_MESSAGES_DEFAULT,
            max_ack_pending: ACK_PENDING_MESSAGES_MAX_DEFAULT,
            ack_wait: Duration::from_secs(ACK_WAIT_S_DEFAULT),
            max_deliver: MAX_DELIVER_DEFAULT,
            idle_poll: Duration::from_millis(IDLE_POLL_MS_DEFAULT),
            nak_delay_base: Duration::from_millis(NAK_DELAY_BASE_MS_DEFAULT),
            nak_delay_max: Duration::from_millis(NAK_DELAY_MAX_MS_DEFAULT),
            feed_batch_events: FEED_BATCH_EVENTS_DEFAULT,
            publish_poll: Duration::from_millis(PUBLISH_POLL_MS_DEFAULT),
            lease_ttl: Duration::from_secs(LEASE_TTL_S_DEFAULT),
            command_duplicate_window: Duration::from_secs(COMMAND_DUPLICATE_WINDOW_S_DEFAULT),
            event_duplicate_window: Duration::from_secs(EVENT_DUPLICATE_WINDOW_S_DEFAULT),
            command_max_age: Duration::from_secs(COMMAND_MAX_AGE_S_DEFAULT),
            event_max_age: Duration::from_secs(EVENT_MAX_AGE_S_DEFAULT),
            rejection_max_age: Duration::from_secs(REJECTION_MAX_AGE_S_DEFAULT),
        }
    }

    /// The subjects of the command stream and consumer: `{prefix}.commands.>`.
    pub fn command_subjects(&self) -> String {
        format!("{}.commands.>", self.subject_prefix)
    }

    /// The subject a command for `site_id` is published on.
    pub fn command_subject(&self, site_id: uuid::Uuid) -> String {
        format!("{}.commands.{site_id}", self.subject_prefix)
    }

    /// Every server of [`url`](Self::url), in the order given.
    pub fn server_addrs(&self) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
        let addrs = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse::<async_nats::ServerAddr>().map_err(|e| anyhow::anyhow!("the NATS URL {u:?} is invalid: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!addrs.is_empty(), "the NATS URL list {:?} names no server", self.url);
        Ok(addrs)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.server_addrs()?;
        anyhow::ensure!(
            (1..=STREAM_REPLICAS_MAX).contains(&self.stream_replicas),
            "the NATS stream replica count must be 1 to {STREAM_REPLICAS_MAX}, not {}",
            self.stream_replicas
        );
        for (what, value) in [
            ("connect timeout", self.connect_timeout),
            ("request timeout", self.request_timeout),
            ("reconnect delay maximum", self.reconnect_delay_max),
            ("ping interval", self.ping_interval),
        ] {
            anyhow::ensure!(!value.is_zero(), "the NATS {what} must not be zero");
        }
        let token_ok = |s: &str| !s.is_empty() && !s.contains(['.', '*', '>', ' ']);
        anyhow::ensure!(
            !self.subject_prefix.is_empty() && self.subject_prefix.split('.').all(token_ok),
            "the NATS subject prefix {:?} must be dot-separated tokens without wildcards",
            self.subject_prefix
        );
        for (what, name) in [
            ("command stream", &self.command_stream),
            ("consumer", &self.consumer),
            ("event stream", &self.event_stream),
            ("rejection stream", &self.rejection_stream),
            ("alert stream", &self.alert_stream),
            ("KV bucket", &self.kv_bucket),
        ] {
            anyhow::ensure!(
                token_ok(name),
                "the NATS {what} name {name:?} must be one token (no dots, spaces or wildcards)"
            );
        }
        anyhow::ensure!((1..=1_000).contains(&self.batch_messages), "batch_messages must be 1 to 1000");
        anyhow::ensure!(self.max_deliver >= 1, "max_deliver must be at least 1");
        anyhow::ensure!(!self.lease_ttl.is_zero(), "lease_ttl must not be zero");
        anyhow::ensure!(
            self.event_duplicate_window > self.lease_ttl,
            "the event duplicate window must outlast the publisher lease, or a takeover could re-publish past it"
        );
        Ok(())
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "ledger".into())
}

/// The running intake and publisher. Dropping it aborts them at once (as a crash
/// would: unacked commands are redelivered, the lease expires); [`shutdown`](Self::shutdown)
/// stops them gracefully.
pub struct NatsHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    client: async_nats::Client,
    leading: Arc<AtomicBool>,
}

impl NatsHandle {
    /// Stops pulling commands, finishes those in flight (ack/term/nak each), publishes
    /// the page under way, stores the checkpoint and releases the lease.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            task.await.context("a NATS task panicked")?;
        }
        self.client.flush().await.context("flushing the NATS connection")?;
        Ok(())
    }

    /// Whether this process holds the publisher lease now.
    pub fn is_publishing(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Whether the NATS connection is up now (for a readiness probe).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether every task still runs (they only end on shutdown).
    pub fn is_running(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }
}

impl Drop for NatsHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects, creates what is absent (streams, consumer, KV bucket), and starts the
/// intake and the publisher as the settings ask.
pub async fn start(settings: NatsSettings, store: Arc<dyn EventStore>) -> anyhow::Result<NatsHandle> {
    settings.validate()?;
    let client = connect(&settings).await?;
    let js = jetstream::ContextBuilder::new().timeout(settings.request_timeout).build(client.clone());
    let settings = Arc::new(settings);
    let (stop, stop_rx) = watch::channel(false);
    let leading = Arc::new(AtomicBool::new(false));
    // Everything is prepared before anything runs: a failure leaves nothing behind.
    let intake = match settings.intake {
        true => Some(intake::Intake::prepare(&js, settings.clone(), store.clone()).await?),
        false => None,
    };
    let publisher = match settings.publish {
        true => Some(publisher::Publisher::prepare(&js, settings.clone(), store.clone(), leading.clone()).await?),
        false => None,
    };
    let alerts = match settings.alerts {
        true => Some(alerts::AlertPublisher::prepare(&js, settings.clone(), store).await?),
        false => None,
    };
    let mut tasks = Vec::new();
    if let Some(alerts) = alerts {
        tasks.push(tokio::spawn(alerts.run(stop_rx.clone())));
    }
    if let Some(intake) = intake {
        tasks.push(tokio::spawn(intake.run(stop_rx.clone())));
    }
    if let Some(publisher) = publisher {
        tasks.push(tokio::spawn(publisher.run(stop_rx)));
    }
    Ok(NatsHandle { stop, tasks, client, leading })
}

/// Connects to any of the configured servers. Once connected, the client reconnects by
/// itself, forever, to any server of the list or of the cluster (servers announce their
/// peers), and re-creates its subscriptions there.
async fn connect(settings: &NatsSettings) -> anyhow::Result<async_nats::Client> {
    let reconnect_delay_max = settings.reconnect_delay_max;
    async_nats::ConnectOptions::new()
        .name(format!("billing-credit-ledger {}", settings.instance_id))
        .connection_timeout(settings.connect_timeout)
        .request_timeout(Some(settings.request_timeout))
        .ping_interval(settings.ping_interval)
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, reconnect_delay_max))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connection (re)established"),
                async_nats::Event::Disconnected => tracing::warn!("NATS connection lost; reconnecting"),
                other => tracing::info!(event = %other, "NATS connection event"),
            }
        })
        .connect(settings.server_addrs()?)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.url))
}

/// No delay for the first try, then 100 ms doubling up to the maximum.
fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    match attempts {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100u64.saturating_mul(1 << (n - 2).min(16))).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_of_a_comma_separated_list_is_given_to_the_client() {
        let s = NatsSettings::new("nats://10.0.0.1:4222, nats://10.0.0.2:4223,nats://10.0.0.3:4224");
        let addrs = s.server_addrs().unwrap();
        let ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert!(NatsSettings::new(" , ").server_addrs().is_err());
        let err = NatsSettings::new("nats://a:4222,nats://b:notaport").server_addrs().unwrap_err();
        assert!(err.to_string().contains("b:notaport"), "{err}");
    }

    #[test]
    fn replica_counts_outside_what_jetstream_allows_are_refused() {
        let mut s = NatsSettings::new("nats://127.0.0.1:4222");
        s.stream_replicas = 0;
        assert!(s.validate().unwrap_err().to_string().contains("replica"));
        s.stream_replicas = 6;
        assert!(s.validate().is_err());
        s.stream_replicas = 3;
        s.validate().unwrap();
    }

    #[test]
    fn reconnect_delay_doubles_up_to_its_maximum() {
        let max = Duration::from_millis(2_000);
        let delays: Vec<u64> = (1..=8).map(|n| reconnect_delay(n, max).as_millis() as u64).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1_600, 2_000, 2_000]);
    }
}
