//! The settings in force as `GET /api/v1/system/config` shows them.

use super::Config;
use crate::api::types::{EffectiveConfig, EffectiveConfigLogFormat};
use crate::telemetry::LogFormat;

impl Config {
    /// Built field by field (not serialized from `Config`) so a secret added to `Config` later is
    /// never exposed by accident.
    pub fn effective(&self) -> EffectiveConfig {
        EffectiveConfig {
            bind: self.bind.to_string(),
            data_dir: self.data_dir.display().to_string(),
            log_format: match self.log_format {
                LogFormat::Human => EffectiveConfigLogFormat::Human,
                LogFormat::Json => EffectiveConfigLogFormat::Json,
            },
            request_timeout_secs: self.request_timeout_secs,
            body_limit_bytes: self.body_limit_bytes,
            cors_allowed_origins: self.cors_allowed_origins.clone(),
            shutdown_grace_secs: self.shutdown_grace_secs,
            config_file: self.config_file.as_ref().map(|p| p.display().to_string()),
            tls_enabled: self.tls.is_some(),
            security: self.security.settings(),
        }
    }
}
