//! The `[partitions]` section: how often partition row counts and sizes are measured, while someone listens.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[partitions]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionsFile {
    stats_interval_ms: Option<u64>,
}

/// How often partition row counts and sizes are measured, while someone listens.
#[derive(Debug, Clone)]
pub struct PartitionsConfig {
    pub stats_interval: Duration,
}

impl PartitionsConfig {
    pub(crate) fn from_file(file: PartitionsFile) -> Result<PartitionsConfig> {
        let ms = file.stats_interval_ms.unwrap_or(5000);
        // Below 10 ms the task would only burn the CPU it is supposed to watch.
        if ms < 10 {
            return Err(Error::Config(
                "partitions.stats_interval_ms must be at least 10".into(),
            ));
        }
        Ok(PartitionsConfig {
            stats_interval: Duration::from_millis(ms),
        })
    }
}
