//! The `[changes]` section: how much of the change log (row and schema changes on disk) is kept.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[changes]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangesFile {
    enabled: Option<bool>,
    retention_events: Option<u64>,
    retention_bytes: Option<u64>,
    retention_secs: Option<u64>,
}

/// Retention of the change log, per durable topic: the oldest events go once any limit is
/// passed. A subscriber resuming from before what is kept is told exactly how many it missed.
#[derive(Debug, Clone, Copy)]
pub struct ChangesConfig {
    /// `false` keeps the change topics in memory only, like every other topic.
    pub enabled: bool,
    pub retention_events: u64,
    pub retention_bytes: u64,
    pub retention_age: Duration,
}

impl ChangesConfig {
    pub(crate) fn from_file(file: ChangesFile) -> Result<ChangesConfig> {
        let config = ChangesConfig {
            enabled: file.enabled.unwrap_or(true),
            retention_events: file.retention_events.unwrap_or(1_000_000),
            retention_bytes: file.retention_bytes.unwrap_or(1 << 30),
            retention_age: Duration::from_secs(file.retention_secs.unwrap_or(7 * 24 * 3600)),
        };
        if config.retention_events == 0
            || config.retention_bytes < 1024
            || config.retention_age.is_zero()
        {
            return Err(Error::Config(
                "changes retention must be positive (retention_bytes at least 1024)".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<ChangesConfig> {
        ChangesConfig::from_file(toml::from_str(toml).expect("toml"))
    }

    #[test]
    fn defaults_apply_and_zero_limits_are_refused() {
        let config = parse("").expect("defaults");
        assert!(config.enabled);
        assert_eq!(config.retention_events, 1_000_000);
        assert_eq!(config.retention_age, Duration::from_secs(604_800));
        assert!(!parse("enabled = false").expect("off").enabled);
        for bad in [
            "retention_events = 0",
            "retention_bytes = 10",
            "retention_secs = 0",
        ] {
            assert!(matches!(parse(bad), Err(Error::Config(_))), "{bad}");
        }
        assert!(toml::from_str::<ChangesFile>("retention = 5").is_err());
    }
}
