//! The `[alerts]` section: how often the evaluator runs every rule.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[alerts]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsFile {
    evaluation_interval_ms: Option<u64>,
}

/// How often the evaluator runs every rule.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub evaluation_interval: Duration,
}

impl AlertsConfig {
    pub(crate) fn from_file(file: AlertsFile) -> Result<AlertsConfig> {
        let ms = file.evaluation_interval_ms.unwrap_or(1000);
        // Below 10 ms the task would only burn the CPU it is supposed to watch.
        if ms < 10 {
            return Err(Error::Config(
                "alerts.evaluation_interval_ms must be at least 10".into(),
            ));
        }
        Ok(AlertsConfig {
            evaluation_interval: Duration::from_millis(ms),
        })
    }
}
