//! `serve`: open (and migrate) the store, then serve the API until SIGTERM/SIGINT.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_http::{AppState, ServerSettings};
use ledger_store::postgres::replica::{ReadReplica, ReplicaSettings};
use ledger_store::EventStore;

use crate::cli::{ServeArgs, StoreArgs};
use crate::keys::{self, KeySource, SecretOrigin};

/// The database URL with any password masked, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub async fn open_store(store: &StoreArgs) -> anyhow::Result<Arc<dyn EventStore>> {
    let url = &store.db.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    ledger_store::sql::connect_with(url, &store.store_settings())
        .await
        .with_context(|| format!("opening the store at {}", redact(url)))
}

pub async fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let replica_settings = replica_settings(args)?;
    let store = open_store(&args.store).await?;
    let replica = match replica_settings {
        Some(settings) => Some(start_replica(&store, settings)?),
        None => None,
    };
    let key_source = keys::source(&args.auth.keys)?;
    let auth = keys::authenticator(&args.auth, &key_source).await?;
    let listener = TcpListener::bind(&args.listen_addr).with_context(|| format!("binding {}", args.listen_addr))?;
    let port = listener.local_addr()?.port();
    let settings = ServerSettings {
        workers: args.http_workers,
        shutdown_deadline: Duration::from_secs(args.shutdown_deadline_s),
        request_head_timeout: Duration::from_millis(args.request_head_timeout_ms),
        body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
        alert_policy: alert_settings(args).policy,
    };
    let nats = match &args.nats_url {
        Some(url) => {
            let mut nats_settings = ledger_nats::NatsSettings::new(url.as_str());
            nats_settings.subject_prefix = args.nats_subject_prefix.clone();
            nats_settings.intake = args.nats_intake;
            nats_settings.publish = args.nats_publish;
            nats_settings.alerts = args.alerts.alerts_enabled;
            nats_settings.stream_replicas = usize::from(args.nats_stream_replicas);
            nats_settings.connect_timeout = Duration::from_millis(args.nats_connect_timeout_ms);
            nats_settings.request_timeout = Duration::from_millis(args.nats_request_timeout_ms);
            nats_settings.reconnect_delay_max = Duration::from_millis(args.nats_reconnect_delay_max_ms);
            nats_settings.ping_interval = Duration::from_millis(args.nats_ping_interval_ms);
            nats_settings.batch_messages = args.nats_batch_messages as usize; // at most 1000
            let handle = ledger_nats::start(nats_settings, store.clone())
                .await
                .context("starting the NATS intake and publisher")?;
            tracing::info!(url = %url, replicas = args.nats_stream_replicas, "NATS intake and publication running");
            Some(handle)
        }
        None => None,
    };
    let sweep = crate::sweep::spawn(store.clone(), Duration::from_secs(args.expiry_sweep_interval_s));
    let alerting = match args.alerts.alerts_enabled {
        true => {
            let mut alerts = alert_settings(args);
            // NATS rows are written only where a publisher will take them.
            alerts.policy.nats = args.nats_url.is_some();
            Some(ledger_http::alerts::start(store.clone(), alerts).await)
        }
        false => None,
    };
    let server = ledger_http::serve(listener, AppState { store, auth, replica }, &settings)?;
    tracing::info!(addr = %args.listen_addr, store = %redact(&args.store.db.database_url), "serving the billing-credit API");
    if let KeySource::Secret(secret, SecretOrigin::Generated(path)) = &key_source {
        print_dev_banner(secret, path, port);
    }
    server.await.context("server failed")?;
    if let Some(sweep) = sweep {
        sweep.abort();
    }
    // Claimed deliveries are taken over by another replica (or this one, restarted)
    // when their lease runs out.
    drop(alerting);
    if let Some(nats) = nats {
        // Finish the commands in flight and store the publisher's checkpoint, within the deadline.
        match tokio::time::timeout(settings.shutdown_deadline, nats.shutdown()).await {
            Ok(result) => result.context("stopping NATS")?,
            Err(_) => tracing::warn!("NATS did not stop within the shutdown deadline"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The read replica's settings, if one is configured; checked before the store is opened,
/// so a wrong setting fails at once.
fn replica_settings(args: &ServeArgs) -> anyhow::Result<Option<ReplicaSettings>> {
    let Some(url) = &args.replica.database_read_url else { return Ok(None) };
    let settings = ReplicaSettings {
        url: url.clone(),
        max_connections: args.store.db.db_max_connections,
        max_lag: Duration::from_millis(args.replica.read_replica_max_lag_ms),
        probe_interval: Duration::from_millis(args.replica.read_replica_probe_interval_ms),
    };
    settings.check().with_context(|| format!("the read replica at {}", redact(url)))?;
    Ok(Some(settings))
}

/// The read replica, whose probe samples the primary through `store`.
fn start_replica(store: &Arc<dyn EventStore>, settings: ReplicaSettings) -> anyhow::Result<Arc<ReadReplica>> {
    let (url, max_lag) = (redact(&settings.url), settings.max_lag);
    let replica =
        ReadReplica::start(store.clone(), settings).with_context(|| format!("starting the read replica at {url}"))?;
    tracing::info!(replica = %url, max_lag_ms = max_lag.as_millis() as u64, "read endpoints are served by the read replica while it is fresh");
    Ok(Arc::new(replica))
}

/// The alerting configuration the CLI names.
fn alert_settings(args: &ServeArgs) -> ledger_http::alerts::AlertingSettings {
    let a = &args.alerts;
    ledger_http::alerts::AlertingSettings {
        policy: ledger_store::alerts::AlertPolicy {
            low_threshold: a.alert_low_threshold,
            expiring_within_days: a.alert_expiring_within_days,
            nats: false,
            retry_horizon: chrono::Duration::seconds(a.webhook_retry_horizon_s.min(i64::MAX as u64) as i64),
        },
        poll_interval: Duration::from_millis(a.alert_poll_interval_ms),
        expiring_scan_interval: Duration::from_secs(a.alert_expiring_scan_interval_s),
        webhook_timeout: Duration::from_millis(a.webhook_timeout_ms),
        backoff_base: Duration::from_millis(a.webhook_backoff_base_ms),
        backoff_max: Duration::from_millis(a.webhook_backoff_max_ms),
    }
}

fn print_dev_banner(secret: &[u8], path: &std::path::Path, port: u16) {
    let token = crate::token::dev_token(secret);
    let site = "11111111-1111-1111-1111-111111111111";
    println!(
        "\nDev mode: tokens are signed with the generated secret in {path}.\n\
         A token for every site and scope, valid 30 days:\n\n  export TOKEN={token}\n\n\
         Try it:\n\n  curl -s -H \"Authorization: Bearer $TOKEN\" http://localhost:{port}/site/{site}/ahds/v1/billing-credit\n\n\
         API explorer: http://localhost:{port}/docs (Authorize, then Try it out)\n\
         Audit console: http://localhost:{port}/console (paste the token)\n",
        path = path.display()
    );
}
