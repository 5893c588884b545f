//! The `[health]` section: how often the health checks run to detect status changes.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[health]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthFile {
    watch_interval_ms: Option<u64>,
}

/// How often the health checks run to detect status changes.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub watch_interval: Duration,
}

impl HealthConfig {
    pub(crate) fn from_file(file: HealthFile) -> Result<HealthConfig> {
        let ms = file.watch_interval_ms.unwrap_or(5000);
        // Below 10 ms the task would only burn the CPU it is supposed to watch.
        if ms < 10 {
            return Err(Error::Config(
                "health.watch_interval_ms must be at least 10".into(),
            ));
        }
        Ok(HealthConfig {
            watch_interval: Duration::from_millis(ms),
        })
    }
}
