//! Settings: defaults, then a TOML file, then `RUSTYDB_*` environment variables, then flags (clap
//! reads a flag or its variable; a value from either wins over the file). Each section's settings,
//! its file form and its checks live beside the layer it configures (`auth::config`,
//! `ws::config`, ...); this module only composes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod effective;

use crate::alerts::config::{AlertsConfig, AlertsFile};
use crate::engine::catalog::PoolLimits;
use crate::engine::config::{PoolFile, QueriesFile};
use crate::engine::queries::QueriesConfig;
use crate::error::{Error, Result};
use crate::events::config::{ChangesConfig, ChangesFile};
use crate::graphql::config::{GraphQlConfig, GraphQlFile};
use crate::health::config::{HealthConfig, HealthFile};
use crate::partitions::config::{PartitionsConfig, PartitionsFile};
use crate::telemetry::LogFormat;
use crate::ws::config::{WebSocketConfig, WebSocketFile};

use crate::auth::config::SecurityFile;
pub use crate::auth::config::{Secret, SecurityConfig};

/// `rustydb serve` flags; each can also come from its `RUSTYDB_*` variable.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "RUSTYDB_BIND")]
    pub bind: Option<String>,
    /// Data directory (system.db and one file per database) [default: ./rustydb-data].
    #[arg(long, env = "RUSTYDB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "RUSTYDB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: human].
    #[arg(long, env = "RUSTYDB_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Seconds a request may take before it is answered 408 [default: 30].
    #[arg(long, env = "RUSTYDB_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Largest request body in bytes [default: 2097152].
    #[arg(long, env = "RUSTYDB_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<u64>,
    /// Origins allowed by CORS, comma separated; `*` for any [default: *].
    #[arg(long, env = "RUSTYDB_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C [default: 10].
    #[arg(long, env = "RUSTYDB_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// PEM certificate chain; with --tls-key, serves https:// and wss:// only.
    #[arg(long, env = "RUSTYDB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "RUSTYDB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The TOML file: the same settings, all optional, plus the security settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    request_timeout_secs: Option<u64>,
    body_limit_bytes: Option<u64>,
    cors_allowed_origins: Option<Vec<String>>,
    shutdown_grace_secs: Option<u64>,
    transaction_idle_timeout_secs: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    security: SecurityFile,
    #[serde(default)]
    websocket: WebSocketFile,
    #[serde(default)]
    queries: QueriesFile,
    #[serde(default)]
    pool: PoolFile,
    #[serde(default)]
    alerts: AlertsFile,
    #[serde(default)]
    health: HealthFile,
    #[serde(default)]
    partitions: PartitionsFile,
    #[serde(default)]
    graphql: GraphQlFile,
    #[serde(default)]
    changes: ChangesFile,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub request_timeout_secs: u64,
    pub body_limit_bytes: u64,
    pub cors_allowed_origins: Vec<String>,
    pub shutdown_grace_secs: u64,
    /// An explicit transaction idle this long is rolled back.
    pub transaction_idle_timeout: Duration,
    pub config_file: Option<PathBuf>,
    /// Certificate chain and key files; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    pub security: SecurityConfig,
    pub websocket: WebSocketConfig,
    pub queries: QueriesConfig,
    /// Connection limits of every database's pool.
    pub pool: PoolLimits,
    pub alerts: AlertsConfig,
    pub health: HealthConfig,
    pub partitions: PartitionsConfig,
    pub graphql: GraphQlConfig,
    /// Retention of the change log.
    pub changes: ChangesConfig,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Merges flags/variables over the file (if any) over the defaults.
    pub fn resolve(args: ServeArgs) -> Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let bind = args
            .bind
            .or(file.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind
            .parse()
            .map_err(|e| Error::Config(format!("bind address `{bind}`: {e}")))?;
        let request_timeout_secs = args
            .request_timeout_secs
            .or(file.request_timeout_secs)
            .unwrap_or(30);
        if request_timeout_secs == 0 {
            return Err(Error::Config(
                "request_timeout_secs must be at least 1".into(),
            ));
        }
        let body_limit_bytes = args
            .body_limit_bytes
            .or(file.body_limit_bytes)
            .unwrap_or(2 * 1024 * 1024);
        if body_limit_bytes == 0 {
            return Err(Error::Config("body_limit_bytes must be at least 1".into()));
        }
        Ok(Config {
            bind,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "rustydb-data".into()),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            request_timeout_secs,
            body_limit_bytes,
            cors_allowed_origins: args
                .cors_allowed_origins
                .or(file.cors_allowed_origins)
                .unwrap_or_else(|| vec!["*".into()]),
            shutdown_grace_secs: args
                .shutdown_grace_secs
                .or(file.shutdown_grace_secs)
                .unwrap_or(10),
            transaction_idle_timeout: Duration::from_secs(
                file.transaction_idle_timeout_secs.unwrap_or(60).max(1),
            ),
            config_file: args.config,
            tls: match (
                args.tls_cert.or(file.tls_cert),
                args.tls_key.or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                _ => {
                    return Err(Error::Config(
                        "TLS needs both a certificate (tls_cert) and a key (tls_key)".into(),
                    ));
                }
            },
            security: SecurityConfig::from_file(file.security)?,
            websocket: WebSocketConfig::from_file(file.websocket)?,
            queries: QueriesConfig::from_file(file.queries)?,
            pool: PoolLimits::from_file(file.pool)?,
            alerts: AlertsConfig::from_file(file.alerts)?,
            health: HealthConfig::from_file(file.health)?,
            partitions: PartitionsConfig::from_file(file.partitions)?,
            graphql: GraphQlConfig::from_file(file.graphql)?,
            changes: ChangesConfig::from_file(file.changes)?,
        })
    }

    /// Defaults for a data directory, for tests and embedding.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let mut config = Config::resolve(ServeArgs::default()).unwrap_or_else(|_| unreachable!());
        config.data_dir = data_dir.to_path_buf();
        config
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("failed to read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rustydb.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9000\"\nrequest_timeout_secs = 5\n",
        )
        .unwrap();
        let config = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            request_timeout_secs: Some(7),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.request_timeout_secs, 7);
        assert_eq!(config.body_limit_bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rustydb.toml");
        std::fs::write(&file, "bnid = \"x\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
        let err = Config::resolve(ServeArgs {
            bind: Some("not-an-address".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("not-an-address"), "{err}");
    }

    #[test]
    fn monitor_intervals_come_from_their_sections_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rustydb.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::resolve(ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            })
        };
        let config =
            load("[alerts]\nevaluation_interval_ms = 250\n[partitions]\nstats_interval_ms = 700\n")
                .unwrap();
        assert_eq!(
            config.alerts.evaluation_interval,
            Duration::from_millis(250)
        );
        assert_eq!(config.health.watch_interval, Duration::from_secs(5));
        assert_eq!(config.partitions.stats_interval, Duration::from_millis(700));
        let err = load("[health]\nwatch_interval_ms = 0\n").unwrap_err();
        assert!(err.to_string().contains("at least 10"), "{err}");
        let err = load("[alerts]\ninterval = 5\n").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
    }

    #[test]
    fn every_section_checks_its_bounds_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rustydb.toml");
        for (text, named) in [
            (
                "[websocket]\nmax_message_bytes = 100\n",
                "max_message_bytes",
            ),
            ("[graphql]\nmax_depth = 0\n", "graphql"),
            ("[pool]\nmax_connections = 0\n", "pool.max_connections"),
            ("[queries]\nslow_log_capacity = 0\n", "slow_log_capacity"),
            ("[security]\nrequests_per_minute = 0\n", "rate limits"),
            ("[security]\ntoken_leeway_secs = 301\n", "token_leeway_secs"),
            (
                "[partitions]\nstats_interval_ms = 1\n",
                "partitions.stats_interval_ms",
            ),
            ("[websocket]\nbus_capacty = 5\n", "bus_capacty"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = Config::resolve(ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn tls_needs_both_files_and_secrets_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rustydb.toml");
        std::fs::write(&file, "tls_cert = \"cert.pem\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("tls_key"), "{err}");
        std::fs::write(&file, "[security]\njwt_secret = \"short\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("32"), "{err}");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }
}
