//! Component checks. Each is timed; a check that fails or takes too long marks its component
//! unhealthy with the reason.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::api::types::{ComponentHealth, HealthStatus};
use crate::engine::SystemDb;

/// What the checks probe.
pub struct Checks {
    pub system_db: SystemDb,
    pub data_dir: PathBuf,
}

/// A check slower than this counts as failed, so a wedged engine cannot hang the probes.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The checked components, by the names the API uses.
pub const COMPONENTS: &[&str] = &["engine", "data_directory"];

pub async fn run_checks(state: &Checks, limit: Duration) -> Vec<ComponentHealth> {
    let (engine, data_dir) = tokio::join!(
        run_check(state, "engine", limit),
        run_check(state, "data_directory", limit)
    );
    engine.into_iter().chain(data_dir).collect()
}

/// Runs the named component's check; `None` for an unknown name.
pub async fn run_check(state: &Checks, name: &str, limit: Duration) -> Option<ComponentHealth> {
    Some(match name {
        "engine" => {
            timed("engine", limit, async {
                state.system_db.check().await.map_err(|e| e.to_string())
            })
            .await
        }
        "data_directory" => {
            timed(
                "data_directory",
                limit,
                probe_data_dir(state.data_dir.clone()),
            )
            .await
        }
        _ => return None,
    })
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

async fn timed(
    name: &str,
    limit: Duration,
    check: impl Future<Output = Result<(), String>>,
) -> ComponentHealth {
    let start = Instant::now();
    let result = match tokio::time::timeout(limit, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("check took longer than {} ms", limit.as_millis())),
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
async fn probe_data_dir(dir: PathBuf) -> Result<(), String> {
    // One file per probe: probes overlap (the health watcher, a `/health` request and a
    // subscription's sampler), and a shared name let one remove the file another was checking,
    // which reported a healthy directory as unhealthy.
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let probe = PROBES.fetch_add(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let path = dir.join(format!(".health-probe-{}-{probe}", std::process::id()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_probes_of_one_directory_all_pass() {
        let dir = tempfile::tempdir().expect("dir");
        let probes = (0..64).map(|_| probe_data_dir(dir.path().to_path_buf()));
        for result in futures_util::future::join_all(probes).await {
            assert_eq!(result, Ok(()));
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }
}
