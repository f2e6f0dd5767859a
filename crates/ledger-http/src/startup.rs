//! Builds the actix app and runs it. Tests use [`spawn`] to serve the real app on a
//! random port, exactly as the binary does on 8083.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use ledger_store::EventStore;

use crate::auth::Authenticator;
use crate::problem::ApiError;
use crate::{routes, telemetry};

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub auth: Authenticator,
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// On SIGTERM, in-flight requests get this long to finish.
    pub shutdown_deadline: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { workers: 0, shutdown_deadline: Duration::from_secs(30) }
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
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(telemetry::observe))
            .configure(configure(state.clone()))
            .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(ApiError::NotFound) }))
    })
    .shutdown_timeout(settings.shutdown_deadline.as_secs());
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Serves the app on a random local port in the background; returns its base URL.
pub fn spawn(state: AppState) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = serve(listener, state, &ServerSettings { workers: 2, ..Default::default() })?;
    tokio::spawn(server);
    Ok(format!("http://127.0.0.1:{port}"))
}
