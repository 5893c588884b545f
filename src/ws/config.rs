//! The `[websocket]` section: event bus and WebSocket limits.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[websocket]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebSocketFile {
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

impl WebSocketConfig {
    pub(crate) fn from_file(file: WebSocketFile) -> Result<WebSocketConfig> {
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
}
