//! State shared by every subsystem.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::SystemDb;
use crate::telemetry::LogControl;

pub struct AppState {
    pub config: Config,
    pub system_db: SystemDb,
    pub engine: Arc<crate::engine::catalog::Engine>,
    pub transactions: Arc<crate::engine::sessions::Transactions>,
    pub tablespaces: Arc<crate::storage::tablespaces::Tablespaces>,
    /// Running statements, the slow-query log and plan tracking.
    pub queries: Arc<crate::engine::queries::QueryMonitor>,
    pub stats: RequestStats,
    pub log: LogControl,
    pub auth: Arc<crate::auth::Auth>,
    pub bus: Arc<crate::events::Bus>,
    pub ws: Arc<crate::ws::WsHub>,
    /// Host and process sampler shared by `/metrics` and the alert evaluator.
    pub host: Arc<crate::monitoring::host::Host>,
    /// When the process started, as wall time and as a monotonic instant.
    pub started_at: DateTime<Utc>,
    pub started: Instant,
    /// Time from process start until the server was ready to serve.
    pub startup_duration: Duration,
    /// Flips to `true` when shutdown begins; long-lived connections watch it.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

pub type SharedState = Arc<AppState>;

/// Resolves once shutdown has begun (at once if it already has).
pub async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Request counters, updated by the stats middleware.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub total: AtomicU64,
    pub in_flight: AtomicU64,
    /// Open GraphQL WebSocket connections (the REST streams' are in the WebSocket registry).
    pub graphql_sockets: AtomicU64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub by_class: [AtomicU64; 5],
}

impl RequestStats {
    pub fn record_status(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn class(&self, index: usize) -> u64 {
        self.by_class[index].load(Ordering::Relaxed)
    }
}
