//! The running server process: when it started, whether it is stopping, and what it has served.
//! Every layer may read it; only the server (the composition root) makes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub struct Process {
    /// When the process started, as wall time and as a monotonic instant.
    pub started_at: DateTime<Utc>,
    pub started: Instant,
    /// Time from process start until the server was ready to serve.
    pub startup_duration: Duration,
    /// Flips to `true` when shutdown begins; long-lived connections and tasks watch it.
    pub shutdown: watch::Receiver<bool>,
    pub stats: RequestStats,
}

impl Process {
    /// A process that started at `started` and is ready now.
    pub fn new(started: Instant, shutdown: watch::Receiver<bool>) -> Process {
        Process {
            started_at: Utc::now() - started.elapsed(),
            started,
            startup_duration: started.elapsed(),
            shutdown,
            stats: RequestStats::default(),
        }
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Resolves once shutdown has begun (at once if it already has).
pub async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Request counters, updated by the stats middleware.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub total: AtomicU64,
    pub in_flight: AtomicU64,
    /// Open GraphQL WebSocket connections (the REST streams' are in the connection registry).
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
