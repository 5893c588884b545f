//! The `/graphql` router: the backends the fields use, the schema with its limits, GraphiQL and the POST handler.

use super::*;

use std::sync::Arc;

use async_graphql::dynamic::Schema;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::config::GraphQlConfig;
use crate::api::ApiError;
use crate::api::graphql_runtime::Caller;
use crate::api::runtime::{ClientIp, Principal};
use crate::auth::{AdminService, Auth};
use crate::databases::DatabaseService;
use crate::engine::SystemDb;
use crate::engine::catalog::Engine;
use crate::engine::queries::QueryMonitor;
use crate::events::Bus;
use crate::health::Checks;
use crate::host::Host;
use crate::process::Process;
use crate::sessions::SessionService;
use crate::sql::SqlService;
use crate::storage::StorageService;
use crate::system::SystemService;
use crate::tables::TableService;
use crate::transactions::TransactionService;

/// What GraphQL resolves with: the subsystems' services (the instances the REST router
/// serves, so both answer alike) and the handles its subscriptions read.
pub struct Backends {
    pub config: GraphQlConfig,
    /// A subscription whose queue stays full this long closes its connection (`[websocket]`'s
    /// `slow_client_timeout_secs`, the same rule on both transports).
    pub slow_client_timeout: std::time::Duration,
    /// Shutdown, and the count of open GraphQL sockets (`system_metrics.active_connections`).
    pub process: Arc<Process>,
    pub auth: Arc<Auth>,
    pub bus: Arc<Bus>,
    pub engine: Arc<Engine>,
    pub queries: Arc<QueryMonitor>,
    pub system_db: SystemDb,
    pub host: Arc<Host>,
    pub checks: Arc<Checks>,
    pub admin: Arc<AdminService>,
    pub databases: Arc<DatabaseService>,
    pub sessions: Arc<SessionService>,
    pub sql: Arc<SqlService>,
    pub storage: Arc<StorageService>,
    pub system: Arc<SystemService>,
    pub tables: Arc<TableService>,
    pub transactions: Arc<TransactionService>,
}

pub struct GraphQl {
    pub schema: Schema,
    pub backends: Arc<Backends>,
}

impl GraphQl {
    pub fn config(&self) -> &GraphQlConfig {
        &self.backends.config
    }
}

/// Builds the schema with the configured depth and complexity limits.
pub fn schema(backends: &Arc<Backends>) -> Result<Schema, String> {
    let config = &backends.config;
    crate::api::graphql::schema(Arc::new(Sources::new(Arc::clone(backends))))
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .extension(error_path::ErrorPath)
        .finish()
        .map_err(|e| e.to_string())
}

/// The `/graphql` route.
pub fn router(backends: Arc<Backends>) -> Result<Router, String> {
    let gql = Arc::new(GraphQl {
        schema: schema(&backends)?,
        backends,
    });
    Ok(Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .with_state(gql))
}

fn caller(request: &Request) -> Result<Caller, ApiError> {
    match request.extensions().get::<Principal>() {
        Some(Principal::User(identity)) => Ok(Caller {
            identity: Arc::clone(identity),
            client_ip: request.extensions().get::<ClientIp>().map(|c| c.0),
            // Over HTTP there are no subscriptions, so nothing to watch.
            queues: Default::default(),
        }),
        Some(Principal::Rejected(reason)) => Err(ApiError::unauthorized(reason.clone())),
        _ => Err(ApiError::unauthorized(
            "credentials required: `Authorization: Bearer <token>` or `X-API-Key`",
        )),
    }
}

/// POST: one query or mutation (`{"query", "variables", "operationName"}`), credentials as for REST.
async fn post_graphql(State(gql): State<Arc<GraphQl>>, request: Request) -> Response {
    let caller = match caller(&request) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (parts, body) = request.into_parts();
    let request: async_graphql::Request = match crate::api::runtime::json_body(&parts, body).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let response = gql.schema.execute(request.data(caller)).await;
    axum::Json(response).into_response()
}

/// GET: a WebSocket upgrade speaking graphql-ws, or GraphiQL for a browser.
async fn get_graphql(State(gql): State<Arc<GraphQl>>, request: Request) -> Response {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_default();
    let client_ip = request.extensions().get::<ClientIp>().map(|c| c.0);
    let (mut parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        // axum's upgrade: GraphQL frames are written per subscriber, so the REST streams'
        // shared-frame writer (crate::ws) would not save a copy here.
        use axum::extract::FromRequestParts as _;
        let upgrade =
            match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(u) => u.protocols(transport::PROTOCOLS),
                Err(e) => {
                    return crate::api::runtime::upgrade_required(e.body_text()).into_response();
                }
            };
        let protocol = transport::Protocol::from_header(upgrade.selected_protocol());
        return upgrade.on_upgrade(move |socket| {
            transport::serve(socket, protocol, gql, principal, client_ip)
        });
    }
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "GET /graphql is a WebSocket upgrade (graphql-transport-ws) or GraphiQL for a browser; POST runs a query",
        )
        .into_response();
    }
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .finish(),
    )
    .into_response()
}
