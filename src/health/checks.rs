//! Component checks. Each is timed; a check that fails or takes too long marks its component
//! unhealthy with the reason.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::api::types::{ComponentHealth, HealthStatus};
use crate::state::AppState;

/// A check slower than this counts as failed, so a wedged engine cannot hang the probes.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run_checks(state: &AppState) -> Vec<ComponentHealth> {
    let engine = timed("engine", async {
        state.system_db.check().await.map_err(|e| e.to_string())
    });
    let data_dir = timed("data_directory", probe_data_dir(state));
    let (engine, data_dir) = tokio::join!(engine, data_dir);
    vec![engine, data_dir]
}

pub fn overall(components: &[ComponentHealth]) -> HealthStatus {
    components
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| match s {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded => 1,
            HealthStatus::Unhealthy => 2,
        })
        .unwrap_or(HealthStatus::Healthy)
}

async fn timed(name: &str, check: impl Future<Output = Result<(), String>>) -> ComponentHealth {
    let start = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("check took longer than {CHECK_TIMEOUT:?}")),
    };
    let response_time_ms = start.elapsed().as_secs_f64() * 1000.0;
    let (status, message) = match result {
        Ok(()) => (HealthStatus::Healthy, None),
        Err(m) => (HealthStatus::Unhealthy, Some(m)),
    };
    ComponentHealth {
        name: name.to_string(),
        status,
        response_time_ms,
        message,
    }
}

/// Writes, syncs and removes a probe file: the data directory must take writes.
async fn probe_data_dir(state: &AppState) -> Result<(), String> {
    let dir = state.config.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let path = dir.join(format!(".health-probe-{}", std::process::id()));
        let mut file = std::fs::File::create(&path)
            .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        file.write_all(b"ok")
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        std::fs::remove_file(&path).map_err(|e| format!("cannot remove probe file: {e}"))
    })
    .await
    .map_err(|e| e.to_string())?
}
