//! The `[graphql]` section: query and connection limits.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// `[graphql]` as written in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GraphQlFile {
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_subscriptions_per_connection: Option<usize>,
    connection_init_timeout_secs: Option<u64>,
    legacy_keep_alive_secs: Option<u64>,
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
    /// Between two `ka` messages on the legacy `graphql-ws` subprotocol. Its standard client
    /// (subscriptions-transport-ws) drops a connection that sends no `ka` for 30 s, so the
    /// default leaves room for a late one.
    pub legacy_keep_alive: Duration,
}

impl GraphQlConfig {
    pub(crate) fn from_file(file: GraphQlFile) -> Result<GraphQlConfig> {
        let config = GraphQlConfig {
            max_depth: file.max_depth.unwrap_or(10),
            max_complexity: file.max_complexity.unwrap_or(500),
            max_subscriptions: file.max_subscriptions_per_connection.unwrap_or(100),
            connection_init_timeout: Duration::from_secs(
                file.connection_init_timeout_secs.unwrap_or(10),
            ),
            legacy_keep_alive: Duration::from_secs(file.legacy_keep_alive_secs.unwrap_or(10)),
        };
        if config.max_depth == 0
            || config.max_complexity == 0
            || config.max_subscriptions == 0
            || config.connection_init_timeout.is_zero()
            || config.legacy_keep_alive.is_zero()
        {
            return Err(Error::Config("graphql limits must be positive".into()));
        }
        Ok(config)
    }
}
