//! `WebSocketService`: serves every declared WebSocket endpoint (`WebSocketApi::serve`).

use super::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

pub use crate::api::runtime::WebSocketUpgrade;

use super::config::WebSocketConfig;
use crate::api::runtime::{RequestContext, StreamOptions};
use crate::api::{ApiError, WebSocketApi, WebSocketMeta};
use crate::events::connections::{ConnectionInfo, LimitExceeded};
use crate::events::{Bus, Filter, Topic};
use connection::Connection;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig as ReadConfig;

/// The subprotocol the server selects when a client offers it (browsers authenticate by offering
/// `rustydb.bearer.<token>` or `rustydb.apikey.<key>` beside it; see docs/websocket.md).
pub const SUBPROTOCOL: &str = "rustydb.v1";
/// Read buffer per connection: tungstenite's 128 KiB default costs ~135 KB RSS per idle client
/// (it is zero-filled at the first read), 4 KiB left ~10 KB per idle connection, and 1 KiB was
/// still most of what a connection's first message costs. Client messages are small (a
/// subscribe is ~150 bytes); a larger one is read into a buffer grown to its size, 256 bytes per
/// read.
const READ_BUFFER_BYTES: usize = 256;

/// What every connection shares.
pub struct WsHub {
    pub bus: Arc<Bus>,
    /// Runs the statements streamed on /api/v1/ws/query.
    pub engine: Arc<crate::engine::catalog::Engine>,
    /// The SQL API's statement lifecycle: streamed queries are listed, cancellable, slow-logged
    /// and counted in their session like every other statement.
    pub executor: Arc<crate::sql::Executor>,
    /// Re-checks each connection's credentials at every heartbeat.
    pub auth: Arc<crate::auth::Auth>,
    pub registry: Arc<Registry>,
    pub config: WebSocketConfig,
    pub shutdown: watch::Receiver<bool>,
    pub started: Instant,
}

pub struct WebSocketService {
    hub: Arc<WsHub>,
}

impl WebSocketService {
    pub fn new(hub: Arc<WsHub>) -> Self {
        WebSocketService { hub }
    }

    fn connect(
        &self,
        ctx: RequestContext,
        endpoint: &'static WebSocketMeta,
        interval: Option<Duration>,
        filter: Filter,
        upgrade: WebSocketUpgrade,
        streams_queries: bool,
    ) -> Response {
        let identity = match ctx.identity() {
            Ok(i) => Arc::clone(i),
            Err(e) => return e.into_response(),
        };
        let info = ConnectionInfo {
            id: format!("conn-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            user_id: identity.user_id.clone(),
            username: identity.username.clone(),
            session_id: crate::auth::sessions::session_id(&identity.credential),
            endpoint: endpoint.operation.path,
            connected_at: chrono::Utc::now(),
            client_address: ctx.peer,
            messages_sent: Default::default(),
            messages_received: Default::default(),
            subscriptions: Default::default(),
            control: Default::default(),
        };
        let config = &self.hub.config;
        let registration = match self.hub.registry.register(
            info,
            config.max_connections,
            config.max_connections_per_user,
        ) {
            Ok(r) => r,
            Err(LimitExceeded::Server(n)) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TOO_MANY_CONNECTIONS",
                    format!("the server holds its limit of {n} WebSocket connections"),
                )
                .into_response();
            }
            Err(LimitExceeded::User(n)) => {
                let mut e = ApiError::rate_limited(1);
                e.message = format!("at most {n} WebSocket connections per user");
                return e.into_response();
            }
        };
        let now = chrono::Utc::now().timestamp();
        let expires_at = crate::auth::accepted_until(&identity.credential).map(|until| {
            Instant::now() + Duration::from_secs(until.saturating_sub(now).max(0) as u64)
        });
        let auto: Vec<(Arc<Topic>, Option<Duration>, Filter)> = endpoint
            .topics
            .iter()
            .filter_map(|t| self.hub.bus.topic(t).cloned())
            .map(|t| (t, interval, filter.clone()))
            .collect();
        let connection = Connection {
            hub: Arc::clone(&self.hub),
            registration,
            identity,
            expires_at,
            streams_queries,
        };
        let read_config = ReadConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        upgrade.on_upgrade(SUBPROTOCOL, move |socket| {
            connection.run(socket, read_config, auto)
        })
    }
}

impl WebSocketApi for WebSocketService {
    async fn serve(
        &self,
        ctx: RequestContext,
        endpoint: &'static WebSocketMeta,
        options: StreamOptions,
        upgrade: WebSocketUpgrade,
    ) -> Response {
        // The query's filters are the subscription filters a `subscribe` message could carry.
        let filter = if options.filters.is_empty() {
            Filter::default()
        } else {
            let wanted: serde_json::Map<String, serde_json::Value> = options
                .filters
                .iter()
                .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
                .collect();
            match Filter::parse(Some(&serde_json::Value::Object(wanted))) {
                Ok(f) => f,
                Err(e) => {
                    let names: Vec<&str> = options.filters.iter().map(|(k, _)| *k).collect();
                    return ApiError::invalid_parameter(&names.join(","), e).into_response();
                }
            }
        };
        self.connect(
            ctx,
            endpoint,
            options.interval,
            filter,
            upgrade,
            endpoint.queries,
        )
    }
}
