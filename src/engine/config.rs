//! The engine's sections, `[queries]` and `[pool]`: what counts as a slow statement and how many
//! connections each database's pool opens.

use std::time::Duration;

use serde::Deserialize;

use super::catalog::PoolLimits;
use super::queries::QueriesConfig;
use crate::error::{Error, Result};

/// `[queries]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueriesFile {
    slow_threshold_ms: Option<u64>,
    slow_log_capacity: Option<usize>,
}

/// `[pool]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolFile {
    max_connections: Option<usize>,
    acquire_timeout_ms: Option<u64>,
}

impl QueriesConfig {
    pub(crate) fn from_file(file: QueriesFile) -> Result<QueriesConfig> {
        let capacity = file.slow_log_capacity.unwrap_or(1000);
        if !(1..=100_000).contains(&capacity) {
            return Err(Error::Config(
                "queries.slow_log_capacity must be 1 to 100000".into(),
            ));
        }
        Ok(QueriesConfig {
            slow_threshold: Duration::from_millis(file.slow_threshold_ms.unwrap_or(1000)),
            slow_log_capacity: capacity,
        })
    }
}

impl PoolLimits {
    pub(crate) fn from_file(file: PoolFile) -> Result<PoolLimits> {
        let defaults = PoolLimits::default();
        let limits = PoolLimits {
            max_connections: file.max_connections.unwrap_or(defaults.max_connections),
            acquire_timeout: file
                .acquire_timeout_ms
                .map_or(defaults.acquire_timeout, Duration::from_millis),
        };
        if limits.max_connections == 0 || limits.acquire_timeout.is_zero() {
            return Err(Error::Config(
                "pool.max_connections and pool.acquire_timeout_ms must be positive".into(),
            ));
        }
        Ok(limits)
    }
}
