//! Command line and environment: every flag is also an env var.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "billing-credit-ledger",
    version,
    about = "Event-sourced ledger of wellness-plan billing credits (AHDS billing-credit API on :8083)",
    after_help = "With no command it serves, configured from the environment: `serve --help` lists its settings."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log lines as text or JSON (filter with RUST_LOG, default info).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (the default; migrates first).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Mint a signed dev token (HS256, with the configured or generated secret).
    Token(TokenArgs),
    /// Rebuild projections from the events (all sites, or one). Safe beside a running
    /// service: a rebuilt row never replaces a newer one. On Postgres, all sites at once
    /// are rebuilt into a fresh table that is swapped in (writers wait for the swap only).
    Replay(ReplayArgs),
    /// Recompute every hash chain and compare every projection row with the replay of
    /// its events. Exits non-zero on any mismatch, naming the first ones.
    Verify(VerifyArgs),
    /// Write one site's events as JSON lines to stdout, oldest first, in constant memory.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this site.
    #[arg(long)]
    pub site: Option<uuid::Uuid>,
    /// The most credits folded in memory at once when rebuilding every site on Postgres
    /// (about 2.3 KiB each); more are rebuilt in several passes over the events.
    #[arg(
        long,
        env = "REPLAY_CREDITS_IN_MEMORY_MAX",
        default_value_t = ledger_store::REBUILD_CREDITS_IN_MEMORY_MAX as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub credits_in_memory_max: u64,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this site.
    #[arg(long)]
    pub site: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[arg(long)]
    pub site: uuid::Uuid,
    /// Only events recorded at or after this instant (RFC 3339).
    #[arg(long)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events recorded before this instant (RFC 3339).
    #[arg(long)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// The database every command that reads or writes the ledger opens.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// postgres://user@host:5432/db, or sqlite://path (the embedded default).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/ledger.db")]
    pub database_url: String,
    /// Connection pool size (Postgres), reader pool size (SQLite).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

/// The database as the service (and `migrate`) keep it open: following a failover.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// With several Postgres hosts in DATABASE_URL: how often the primary is checked, and
    /// looked for again while there is none (requests get 503 meanwhile).
    #[arg(long, env = "DB_FAILOVER_PROBE_INTERVAL_MS", default_value_t = ledger_store::postgres::FAILOVER_PROBE_INTERVAL_MS, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub db_failover_probe_interval_ms: u64,
}

impl StoreArgs {
    pub fn store_settings(&self) -> ledger_store::sql::ConnectSettings {
        ledger_store::sql::ConnectSettings {
            max_connections: self.db.db_max_connections,
            failover_probe_interval: std::time::Duration::from_millis(self.db_failover_probe_interval_ms),
        }
    }
}

/// Where the key that signs or verifies tokens comes from.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Where the embedded default keeps its generated dev secret.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// HS256 shared secret for bearer tokens.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key for RS256/ES256 tokens (instead of JWT_SECRET).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Algorithm of JWT_PUBLIC_KEY_FILE (RS256 or ES256; JWT_SECRET always means HS256).
    #[arg(long, env = "JWT_ALGORITHM", value_enum, ignore_case = true, default_value_t = JwtAlgorithm::Rs256)]
    pub jwt_algorithm: JwtAlgorithm,
    /// JWKS document of an identity provider, an http(s) URL or a file path: keys chosen by
    /// the token's `kid`, read again on an interval and on an unknown `kid` (instead of
    /// JWT_SECRET and JWT_PUBLIC_KEY_FILE).
    #[arg(long, env = "JWKS_URL")]
    pub jwks_url: Option<String>,
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// How often the JWKS document is read again; 0: only on an unknown `kid`.
    #[arg(long, env = "JWKS_REFRESH_INTERVAL_S", default_value_t = ledger_http::auth::JWKS_REFRESH_INTERVAL_S)]
    pub jwks_refresh_interval_s: u64,
    /// Tokens with an unknown `kid` read the JWKS again at most once per this many seconds.
    #[arg(long, env = "JWKS_REFETCH_MIN_INTERVAL_S", default_value_t = ledger_http::auth::JWKS_REFETCH_MIN_INTERVAL_S)]
    pub jwks_refetch_min_interval_s: u64,
    /// Accepted `aud` values, comma-separated; a token must name one. Unset: `aud` is not checked.
    #[arg(long, env = "JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Vec<String>,
    /// Accepted `iss` values, comma-separated; a token must carry one. Unset: `iss` is not checked.
    #[arg(long, env = "JWT_ISSUER", value_delimiter = ',')]
    pub jwt_issuer: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Address and port to serve on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8083")]
    pub listen_addr: String,
    /// HTTP worker threads; 0 means one per core.
    #[arg(long, env = "HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    #[arg(long, env = "SHUTDOWN_DEADLINE_S", default_value_t = ledger_http::startup::SHUTDOWN_DEADLINE_S)]
    pub shutdown_deadline_s: u64,
    /// A client must send its request line and headers within this many milliseconds of
    /// connecting (or of its previous request), or gets a 408.
    #[arg(long, env = "REQUEST_HEAD_TIMEOUT_MS", default_value_t = ledger_http::startup::REQUEST_HEAD_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_head_timeout_ms: u64,
    /// A client must send the whole request body within this many milliseconds of its
    /// headers, or gets a 408.
    #[arg(long, env = "BODY_READ_TIMEOUT_MS", default_value_t = ledger_http::startup::BODY_READ_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_ms: u64,
    /// NATS URL for the JetStream command intake and event publication; unset: REST only.
    /// A cluster: several, comma-separated (`nats://n1:4222,nats://n2:4222`); the client
    /// connects and reconnects to any of them.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// Copies of each stream and of the KV bucket the ledger creates (3 on a 3-node
    /// cluster). An existing stream with another count is changed to this at start.
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = ledger_nats::STREAM_REPLICAS_DEFAULT as u8, value_parser = clap::value_parser!(u8).range(1..=ledger_nats::STREAM_REPLICAS_MAX as i64))]
    pub nats_stream_replicas: u8,
    /// One connection attempt to one NATS server, TCP to the server's first PONG.
    #[arg(long, env = "NATS_CONNECT_TIMEOUT_MS", default_value_t = ledger_nats::CONNECT_TIMEOUT_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    pub nats_connect_timeout_ms: u64,
    /// One JetStream request (KV read or write, stream info, pull) or publish
    /// acknowledgement; after it the operation is retried.
    #[arg(long, env = "NATS_REQUEST_TIMEOUT_MS", default_value_t = ledger_nats::REQUEST_TIMEOUT_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    pub nats_request_timeout_ms: u64,
    /// The longest pause between two reconnection tries (they never stop; the pause
    /// starts at 100 ms and doubles).
    #[arg(long, env = "NATS_RECONNECT_DELAY_MAX_MS", default_value_t = ledger_nats::RECONNECT_DELAY_MAX_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    pub nats_reconnect_delay_max_ms: u64,
    /// How often the client pings its server; two missed pongs and it reconnects elsewhere.
    #[arg(long, env = "NATS_PING_INTERVAL_MS", default_value_t = ledger_nats::PING_INTERVAL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(1..))]
    pub nats_ping_interval_ms: u64,
    /// Commands taken from the command stream per pull; each pull is decided command by
    /// command and committed as one group. At most the consumer's ack-pending limit (1000).
    #[arg(long, env = "NATS_BATCH_MESSAGES", default_value_t = ledger_nats::BATCH_MESSAGES_DEFAULT as u64, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub nats_batch_messages: u64,
    /// Subject prefix of the command, event and rejection subjects.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = "ahds.billing-credit")]
    pub nats_subject_prefix: String,
    /// Whether this replica takes commands from the NATS command stream.
    #[arg(long, env = "NATS_INTAKE", default_value_t = true, action = clap::ArgAction::Set)]
    pub nats_intake: bool,
    /// Whether this replica takes part in publishing events (one replica at a time holds
    /// the publication lease).
    #[arg(long, env = "NATS_PUBLISH", default_value_t = true, action = clap::ArgAction::Set)]
    pub nats_publish: bool,
    /// How often the expiry sweep writes CreditExpired for credits past their endDate; 0 disables it.
    #[arg(long, env = "EXPIRY_SWEEP_INTERVAL_S", default_value_t = 60)]
    pub expiry_sweep_interval_s: u64,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub replica: ReplicaArgs,
}

/// A streaming standby that answers the read endpoints while it is fresh enough.
#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    /// postgres:// URL of a read-only streaming standby of DATABASE_URL's primary. Lists, the
    /// site feed, credit histories, balances and statements are read there while it is
    /// fresh; everything else stays on the primary. Postgres only. Its pool has
    /// DB_MAX_CONNECTIONS connections.
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
    /// Reads go to the primary whenever the replica is more than this many milliseconds behind.
    #[arg(long, env = "READ_REPLICA_MAX_LAG_MS", default_value_t = ledger_store::postgres::replica::READ_REPLICA_MAX_LAG_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_replica_max_lag_ms: u64,
    /// How often the replica's lag is measured; must be below READ_REPLICA_MAX_LAG_MS.
    #[arg(long, env = "READ_REPLICA_PROBE_INTERVAL_MS", default_value_t = ledger_store::postgres::replica::READ_REPLICA_PROBE_INTERVAL_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_replica_probe_interval_ms: u64,
}

/// Balance alerts (low, depleted, expiring) pushed to webhooks and NATS.
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Derive and deliver balance alerts (every replica takes part; each alert is
    /// derived once and each delivery attempted by one replica at a time).
    #[arg(long, env = "ALERTS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub alerts_enabled: bool,
    /// How often an idle alerter reads the feed and an idle worker looks for due deliveries.
    #[arg(long, env = "ALERT_POLL_INTERVAL_MS", default_value_t = ledger_http::alerts::ALERT_POLL_INTERVAL_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_poll_interval_ms: u64,
    /// How often credits nearing their endDate are looked for.
    #[arg(long, env = "ALERT_EXPIRING_SCAN_INTERVAL_S", default_value_t = ledger_http::alerts::EXPIRING_SCAN_INTERVAL_S, value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_expiring_scan_interval_s: u64,
    /// A member's balance of a (creditType, unit) at or below this raises a `low` alert,
    /// for sites (and units) that set no threshold of their own.
    #[arg(long, env = "ALERT_LOW_THRESHOLD", default_value = "1", value_parser = non_negative_decimal)]
    pub alert_low_threshold: rust_decimal::Decimal,
    /// A credit with something left ending within this many days raises an `expiring`
    /// alert, for sites that set no window of their own.
    #[arg(long, env = "ALERT_EXPIRING_WITHIN_DAYS", default_value_t = ledger_domain::balance::EXPIRING_WITHIN_DAYS_DEFAULT, value_parser = clap::value_parser!(u32).range(0..=i64::from(ledger_domain::balance::EXPIRING_WITHIN_DAYS_MAX)))]
    pub alert_expiring_within_days: u32,
    /// One webhook attempt's limit, connecting to answering.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = ledger_http::alerts::WEBHOOK_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_timeout_ms: u64,
    /// The first retry of a failed delivery waits up to this long (a random share of it:
    /// full jitter); each further retry up to twice as long as the one before.
    #[arg(long, env = "WEBHOOK_BACKOFF_BASE_MS", default_value_t = ledger_http::alerts::WEBHOOK_BACKOFF_BASE_MS)]
    pub webhook_backoff_base_ms: u64,
    /// The longest wait between two attempts of a delivery.
    #[arg(long, env = "WEBHOOK_BACKOFF_MAX_MS", default_value_t = ledger_http::alerts::WEBHOOK_BACKOFF_MAX_MS)]
    pub webhook_backoff_max_ms: u64,
    /// A delivery (webhook or NATS) not done this long after its alert is marked failed.
    #[arg(long, env = "WEBHOOK_RETRY_HORIZON_S", default_value_t = ledger_http::alerts::WEBHOOK_RETRY_HORIZON_S)]
    pub webhook_retry_horizon_s: u64,
}

fn non_negative_decimal(text: &str) -> Result<rust_decimal::Decimal, String> {
    let value: rust_decimal::Decimal = text.parse().map_err(|e| format!("{text:?} is not a decimal number: {e}"))?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err("a threshold must be 0 or more".into());
    }
    Ok(value)
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Site the token grants (repeatable); `*` grants every site.
    #[arg(long = "site", required = true)]
    pub sites: Vec<String>,
    /// Scopes granted (repeatable).
    #[arg(long = "scope", default_values_t = ["billing-credit:read".to_string(), "billing-credit:write".to_string(), "billing-credit:audit".to_string(), "billing-credit:admin".to_string()])]
    pub scopes: Vec<String>,
    /// The token's subject, recorded as the actor of the events it causes.
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    Rs256,
    Es256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
