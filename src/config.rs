//! Settings: defaults, then a TOML file, then `RUSTYDB_*` environment variables, then flags (clap
//! reads a flag or its variable; a value from either wins over the file).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::queries::QueriesConfig;
use crate::error::{Error, Result};
use crate::telemetry::LogFormat;

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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueriesFile {
    slow_threshold_ms: Option<u64>,
    slow_log_capacity: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionsFile {
    stats_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    max_connections: Option<usize>,
    acquire_timeout_ms: Option<u64>,
}

fn queries(file: QueriesFile) -> Result<QueriesConfig> {
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

fn pool(file: PoolFile) -> Result<crate::engine::catalog::PoolLimits> {
    let defaults = crate::engine::catalog::PoolLimits::default();
    let limits = crate::engine::catalog::PoolLimits {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    evaluation_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthFile {
    watch_interval_ms: Option<u64>,
}

/// How often the background monitors run.
#[derive(Debug, Clone)]
pub struct MonitoringConfig {
    /// Between two evaluations of the alert rules (`[alerts] evaluation_interval_ms`).
    pub alert_evaluation_interval: Duration,
    /// Between two runs of the health checks that detect status changes
    /// (`[health] watch_interval_ms`).
    pub health_watch_interval: Duration,
    /// Between two measurements of partition row counts and sizes, while someone listens
    /// (`[partitions] stats_interval_ms`).
    pub partition_stats_interval: Duration,
}

fn monitoring(file: &FileConfig) -> Result<MonitoringConfig> {
    let alert_ms = file.alerts.evaluation_interval_ms.unwrap_or(1000);
    let health_ms = file.health.watch_interval_ms.unwrap_or(5000);
    let partition_ms = file.partitions.stats_interval_ms.unwrap_or(5000);
    // Below 10 ms the monitors would only burn the CPU they are supposed to watch.
    if alert_ms < 10 || health_ms < 10 || partition_ms < 10 {
        return Err(Error::Config(
            "alerts.evaluation_interval_ms, health.watch_interval_ms and \
             partitions.stats_interval_ms must be at least 10"
                .into(),
        ));
    }
    Ok(MonitoringConfig {
        alert_evaluation_interval: Duration::from_millis(alert_ms),
        health_watch_interval: Duration::from_millis(health_ms),
        partition_stats_interval: Duration::from_millis(partition_ms),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphQlFile {
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_subscriptions_per_connection: Option<usize>,
    connection_init_timeout_secs: Option<u64>,
}

/// GraphQL limits (`[graphql]` in the config file).
#[derive(Debug, Clone)]
pub struct GraphQlConfig {
    /// Deepest selection a query may nest.
    pub max_depth: usize,
    /// Largest query complexity (one per field selected, lists included).
    pub max_complexity: usize,
    /// Operations one graphql-ws connection may run at once.
    pub max_subscriptions: usize,
    /// A connection that has not sent `connection_init` by then is closed with 4408.
    pub connection_init_timeout: Duration,
}

fn graphql(file: GraphQlFile) -> Result<GraphQlConfig> {
    let config = GraphQlConfig {
        max_depth: file.max_depth.unwrap_or(10),
        max_complexity: file.max_complexity.unwrap_or(500),
        max_subscriptions: file.max_subscriptions_per_connection.unwrap_or(100),
        connection_init_timeout: Duration::from_secs(
            file.connection_init_timeout_secs.unwrap_or(10),
        ),
    };
    if config.max_depth == 0
        || config.max_complexity == 0
        || config.max_subscriptions == 0
        || config.connection_init_timeout.is_zero()
    {
        return Err(Error::Config("graphql limits must be positive".into()));
    }
    Ok(config)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebSocketFile {
    bus_capacity: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_user: Option<usize>,
    max_subscriptions_per_connection: Option<usize>,
    max_queries_per_connection: Option<usize>,
    heartbeat_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    slow_client_timeout_secs: Option<u64>,
    max_message_bytes: Option<usize>,
}

/// Event bus and WebSocket limits (the seed's numbers are the defaults).
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    /// Events each topic holds for slow subscribers and replay.
    pub bus_capacity: usize,
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub max_subscriptions: usize,
    /// Queries one connection may stream at once (/api/v1/ws/query).
    pub max_queries: usize,
    /// Interval of server pings.
    pub heartbeat: Duration,
    /// A connection that sends nothing (not even pongs) this long is closed.
    pub idle_timeout: Duration,
    /// A client whose queue stays full, or whose socket takes no data, this long is dropped.
    pub slow_client_timeout: Duration,
    /// Largest client message.
    pub max_message_bytes: usize,
}

fn websocket(file: WebSocketFile) -> Result<WebSocketConfig> {
    let config = WebSocketConfig {
        bus_capacity: file.bus_capacity.unwrap_or(1000),
        max_connections: file.max_connections.unwrap_or(10_000),
        max_connections_per_user: file.max_connections_per_user.unwrap_or(100),
        max_subscriptions: file.max_subscriptions_per_connection.unwrap_or(100),
        max_queries: file.max_queries_per_connection.unwrap_or(4),
        heartbeat: Duration::from_secs(file.heartbeat_secs.unwrap_or(30)),
        idle_timeout: Duration::from_secs(file.idle_timeout_secs.unwrap_or(300)),
        slow_client_timeout: Duration::from_secs(file.slow_client_timeout_secs.unwrap_or(60)),
        max_message_bytes: file.max_message_bytes.unwrap_or(64 * 1024),
    };
    if config.bus_capacity == 0
        || config.max_connections == 0
        || config.max_connections_per_user == 0
        || config.max_subscriptions == 0
        || config.max_queries == 0
        || config.heartbeat.is_zero()
        || config.idle_timeout.is_zero()
        || config.slow_client_timeout.is_zero()
        || config.max_message_bytes < 1024
    {
        return Err(Error::Config(
            "websocket limits must be positive (max_message_bytes at least 1024)".into(),
        ));
    }
    Ok(config)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    admin_password: Option<Secret>,
    jwt_secret: Option<Secret>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
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
    pub login_attempts_per_minute: u32,
    pub requests_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
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
    pub pool: crate::engine::catalog::PoolLimits,
    pub monitoring: MonitoringConfig,
    pub graphql: GraphQlConfig,
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
        let monitoring = monitoring(&file)?;
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
            monitoring,
            security: security(file.security)?,
            websocket: websocket(file.websocket)?,
            queries: queries(file.queries)?,
            pool: pool(file.pool)?,
            graphql: graphql(file.graphql)?,
        })
    }

    /// Defaults for a data directory, for tests and embedding.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let mut config = Config::resolve(ServeArgs::default()).unwrap_or_else(|_| unreachable!());
        config.data_dir = data_dir.to_path_buf();
        config
    }
}

fn security(file: SecurityFile) -> Result<SecurityConfig> {
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
    Ok(security)
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
            config.monitoring.alert_evaluation_interval,
            Duration::from_millis(250)
        );
        assert_eq!(
            config.monitoring.health_watch_interval,
            Duration::from_secs(5)
        );
        assert_eq!(
            config.monitoring.partition_stats_interval,
            Duration::from_millis(700)
        );
        let err = load("[health]\nwatch_interval_ms = 0\n").unwrap_err();
        assert!(err.to_string().contains("at least 10"), "{err}");
        let err = load("[alerts]\ninterval = 5\n").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
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
