//! The `[security]` section: authentication and rate-limit settings.

use std::net::IpAddr;

use serde::Deserialize;

use crate::api::types::{SecuritySettings, SecuritySettingsJwtKeySource};
use crate::error::{Error, Result};

/// `[security]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecurityFile {
    admin_password: Option<Secret>,
    jwt_secret: Option<Secret>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    token_leeway_secs: Option<u64>,
    login_attempts_per_minute: Option<u32>,
    requests_per_minute: Option<u32>,
    trusted_proxies: Option<Vec<IpAddr>>,
}

/// A secret setting: never printed, logged or returned by the API.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Authentication and rate-limit settings. Secrets come from the TOML file's `[security]` table
/// or from `RUSTYDB_ADMIN_PASSWORD` / `RUSTYDB_JWT_SECRET`, never from flags (visible in `ps`).
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Password of the `admin` user created on first start; generated and printed once if unset.
    pub admin_password: Option<Secret>,
    /// HS256 signing key; if unset, a random key is generated and kept in the data directory.
    pub jwt_secret: Option<Secret>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Clock skew tolerated on `exp` and `nbf`; open connections last `exp` plus this.
    pub token_leeway_secs: u64,
    pub login_attempts_per_minute: u32,
    pub requests_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl SecurityConfig {
    /// The file's values under the secrets from the environment, with the defaults.
    pub(crate) fn from_file(file: SecurityFile) -> Result<SecurityConfig> {
        let env_secret = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret)
        };
        let jwt_secret = env_secret("RUSTYDB_JWT_SECRET").or(file.jwt_secret);
        if let Some(s) = &jwt_secret
            && s.0.len() < 32
        {
            return Err(Error::Config(
                "jwt_secret must be at least 32 characters".into(),
            ));
        }
        let security = SecurityConfig {
            admin_password: env_secret("RUSTYDB_ADMIN_PASSWORD").or(file.admin_password),
            jwt_secret,
            access_token_ttl_secs: file.access_token_ttl_secs.unwrap_or(3600),
            refresh_token_ttl_secs: file.refresh_token_ttl_secs.unwrap_or(7 * 24 * 3600),
            token_leeway_secs: file.token_leeway_secs.unwrap_or(30),
            login_attempts_per_minute: file.login_attempts_per_minute.unwrap_or(10),
            requests_per_minute: file.requests_per_minute.unwrap_or(1000),
            trusted_proxies: file.trusted_proxies.unwrap_or_default(),
        };
        if security.access_token_ttl_secs == 0
            || security.refresh_token_ttl_secs == 0
            || security.login_attempts_per_minute == 0
            || security.requests_per_minute == 0
        {
            return Err(Error::Config(
                "token lifetimes and rate limits must be at least 1".into(),
            ));
        }
        if security.token_leeway_secs > 300 {
            return Err(Error::Config("token_leeway_secs must be 0 to 300".into()));
        }
        Ok(security)
    }
}

impl SecurityConfig {
    /// What the API may show of these settings: lifetimes and limits, and only whether each
    /// secret is configured, never the secret.
    pub fn settings(&self) -> SecuritySettings {
        SecuritySettings {
            access_token_ttl_secs: self.access_token_ttl_secs,
            refresh_token_ttl_secs: self.refresh_token_ttl_secs,
            token_leeway_secs: self.token_leeway_secs,
            login_attempts_per_minute: self.login_attempts_per_minute,
            requests_per_minute: self.requests_per_minute,
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect(),
            jwt_key_source: if self.jwt_secret.is_some() {
                SecuritySettingsJwtKeySource::Configured
            } else {
                SecuritySettingsJwtKeySource::DataDir
            },
            admin_password_configured: self.admin_password.is_some(),
        }
    }
}
