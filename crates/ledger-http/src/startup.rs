//! Builds the actix app and runs it. Tests use [`spawn`] to serve the real app on a
//! random port, exactly as the binary does on 8083.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use ledger_store::postgres::replica::ReadReplica;
use ledger_store::EventStore;

use crate::auth::Authenticator;
use crate::problem::ApiError;
use crate::{routes, telemetry};

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub auth: Authenticator,
    /// A standby that may answer the read endpoints (see `routes::consistency`).
    pub replica: Option<Arc<ReadReplica>>,
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_deadline: Duration,
    /// A client must send a request's line and headers within this long of connecting (or
    /// of its previous request on a kept-alive connection), or gets a 408 and is closed.
    pub request_head_timeout: Duration,
    /// A client must send a whole request body within this long of its headers, or gets a 408.
    pub body_read_timeout: Duration,
    /// The alert defaults the alert settings API shows and redelivery retries within.
    pub alert_policy: ledger_store::alerts::AlertPolicy,
}

/// Defaults of [`ServerSettings`], also the CLI's.
pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 5_000;
pub const BODY_READ_TIMEOUT_MS: u64 = 10_000;
pub const SHUTDOWN_DEADLINE_S: u64 = 30;

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            shutdown_deadline: Duration::from_secs(SHUTDOWN_DEADLINE_S),
            request_head_timeout: Duration::from_millis(REQUEST_HEAD_TIMEOUT_MS),
            body_read_timeout: Duration::from_millis(BODY_READ_TIMEOUT_MS),
            alert_policy: Default::default(),
        }
    }
}

/// The body read timeout, as app data for the body extractor.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

impl Default for BodyReadTimeout {
    fn default() -> Self {
        BodyReadTimeout(Duration::from_millis(BODY_READ_TIMEOUT_MS))
    }
}

pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(state.clone());
        routes::configure(cfg);
    }
}

/// Starts serving on `listener`. The returned server runs when awaited (or spawned).
pub fn serve(listener: TcpListener, state: AppState, settings: &ServerSettings) -> std::io::Result<Server> {
    telemetry::metrics_handle();
    let state = web::Data::new(state);
    let body_read_timeout = BodyReadTimeout(settings.body_read_timeout);
    let alert_policy = web::Data::new(settings.alert_policy.clone());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(body_read_timeout)
            .app_data(alert_policy.clone())
            .wrap(from_fn(telemetry::observe))
            .configure(configure(state.clone()))
            .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::NotFound) }))
    })
    .shutdown_timeout(settings.shutdown_deadline.as_secs())
    .client_request_timeout(settings.request_head_timeout);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Serves the app on a random local port in the background; returns its base URL.
pub fn spawn(state: AppState) -> std::io::Result<String> {
    spawn_with(state, ServerSettings { workers: 2, ..Default::default() })
}

/// [`spawn`] with settings of the caller's choosing.
pub fn spawn_with(state: AppState, settings: ServerSettings) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = serve(listener, state, &settings)?;
    tokio::spawn(server);
    Ok(format!("http://127.0.0.1:{port}"))
}
