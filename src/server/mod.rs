//! Server assembly: state, the generated API router with its middleware, docs, and serving with
//! graceful shutdown.

mod docs;
mod middleware;
pub mod tls;

pub use docs::OPENAPI_JSON;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::serve::{Listener, ListenerExt};
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::alerts::AlertService;
use crate::api::{self, ApiError, runtime::AccessPolicy, runtime::BodyLimit};
use crate::auth::{self, AdminService, Auth, AuthService, RbacPolicy};
use crate::config::Config;
use crate::databases::DatabaseService;
use crate::engine::SystemDb;
use crate::error::Result;
use crate::events::Bus;
use crate::health::HealthService;
use crate::mvcc::MvccService;
use crate::partitions::PartitionService;
use crate::sessions::SessionService;
use crate::sql::SqlService;
use crate::state::{AppState, RequestStats, SharedState};
use crate::storage::StorageService;
use crate::system::SystemService;
use crate::tables::TableService;
use crate::telemetry::LogControl;
use crate::transactions::TransactionService;
use crate::ws::{WebSocketManagement, WebSocketService, WsHub};

/// A started-up server: state built, data directory open, ready to serve.
pub struct Server {
    pub state: SharedState,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Opens the data directory and builds the state. `process_start` is when the process
    /// started, so the startup probe reports the whole startup.
    pub async fn start(config: Config, log: LogControl, process_start: Instant) -> Result<Server> {
        let system_db = SystemDb::open(&config.data_dir)?;
        let bus = Arc::new(Bus::new(config.websocket.bus_capacity));
        let sequencer = Arc::new(crate::engine::capture::Sequencer::new(
            crate::events::table_changes_publisher(Arc::clone(&bus)),
        ));
        let tablespaces = Arc::new(crate::storage::tablespaces::Tablespaces::new(
            system_db.clone(),
            &config.data_dir,
        ));
        let dirs: Vec<_> = tablespaces
            .list()
            .await?
            .into_iter()
            .map(|t| (t.name, t.path))
            .collect();
        let engine = Arc::new(crate::engine::catalog::Engine::open(
            &config.data_dir,
            &dirs,
            sequencer,
            config.pool,
            Some(crate::events::pool_events_publisher(Arc::clone(&bus))),
        )?);
        let auth = Auth::start(&config, system_db.clone()).await?;
        auth.sessions.publish_to(Arc::clone(&bus));
        let (shutdown_tx, shutdown) = watch::channel(false);
        let queries = Arc::new(crate::engine::queries::QueryMonitor::new(&config.queries));
        let ws = Arc::new(WsHub {
            bus: Arc::clone(&bus),
            engine: Arc::clone(&engine),
            queries: Arc::clone(&queries),
            auth: Arc::clone(&auth),
            registry: Arc::default(),
            config: config.websocket.clone(),
            shutdown: shutdown.clone(),
            started: process_start,
        });
        let state = Arc::new(AppState {
            config,
            system_db,
            engine,
            transactions: Arc::new(crate::engine::sessions::Transactions::with_events(
                Arc::clone(&bus) as Arc<dyn crate::engine::port::Emit>,
            )),
            tablespaces,
            queries,
            stats: RequestStats::default(),
            log,
            auth,
            bus,
            ws,
            host: Arc::default(),
            started_at: chrono::Utc::now() - process_start.elapsed(),
            started: process_start,
            startup_duration: process_start.elapsed(),
            shutdown,
        });
        crate::metrics::spawn_producers(Arc::clone(&state));
        crate::alerts::spawn_evaluator(Arc::clone(&state));
        crate::health::watch::spawn(Arc::clone(&state)).await;
        crate::partitions::spawn_stats_watcher(Arc::clone(&state));
        crate::storage::spawn_status_producer(Arc::clone(&state));
        crate::transactions::spawn_reaper(
            Arc::clone(&state.transactions),
            state.config.transaction_idle_timeout,
            state.shutdown.clone(),
        );
        Ok(Server { state, shutdown_tx })
    }

    /// The complete HTTP application.
    pub fn app(&self) -> Router {
        app(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `signal` resolves, then stops accepting, tells long-lived
    /// connections to close, and gives in-flight requests the configured grace period.
    pub async fn serve<L>(
        self,
        listener: L,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()>
    where
        L: Listener<Addr = SocketAddr>,
        L::Io: Send,
    {
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        let app = self.app();
        let shutdown_tx = self.shutdown_tx;
        let (stopped_tx, mut stopped_rx) = watch::channel(false);
        // Limiter state of idle callers is dropped once a minute, so memory stays bounded.
        let auth = Arc::clone(&self.state.auth);
        let mut pruning_stop = stopped_tx.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => auth.prune_limiters(),
                    _ = pruning_stop.changed() => break,
                }
            }
        });
        let graceful = async move {
            signal.await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            let _ = shutdown_tx.send(true);
            let _ = stopped_tx.send(true);
        };
        // `tap_io` makes axum hand the peer address of any listener to `ConnectInfo`.
        let server = axum::serve(
            listener.tap_io(|_io| {}),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful);
        let deadline = async move {
            let _ = stopped_rx.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result?,
            () = deadline => tracing::warn!(?grace, "grace period over; dropping remaining connections"),
        }
        Ok(())
    }
}

pub fn app(state: SharedState) -> Router {
    let policy: Arc<dyn AccessPolicy> = Arc::new(RbacPolicy {
        auth: Arc::clone(&state.auth),
    });
    let api = api::api_router(
        Arc::new(AdminService::new(Arc::clone(&state.auth))),
        Arc::new(AlertService::new(Arc::clone(&state))),
        Arc::new(AuthService::new(Arc::clone(&state.auth))),
        Arc::new(DatabaseService::new(
            Arc::clone(&state.engine),
            Arc::clone(&state.tablespaces),
        )),
        Arc::new(HealthService::new(Arc::clone(&state))),
        Arc::new(MvccService::new(Arc::clone(&state))),
        Arc::new(PartitionService::new(
            Arc::clone(&state.engine),
            Arc::clone(&state.bus),
        )),
        Arc::new(SessionService::new(Arc::clone(&state))),
        Arc::new(SqlService::new(
            Arc::clone(&state.engine),
            Arc::clone(&state.transactions),
            Arc::clone(&state.queries),
            Arc::clone(&state.auth.sessions),
            Arc::clone(&state.bus),
        )),
        Arc::new(StorageService::new(Arc::clone(&state))),
        Arc::new(SystemService::new(Arc::clone(&state))),
        Arc::new(TableService::new(
            Arc::clone(&state.engine),
            Arc::clone(&state.bus),
        )),
        Arc::new(TransactionService::new(
            Arc::clone(&state.engine),
            Arc::clone(&state.transactions),
        )),
        Arc::new(WebSocketManagement::new(Arc::clone(&state.ws))),
        Arc::new(WebSocketService::new(Arc::clone(&state.ws))),
    );
    // The GraphQL schema is generated and checked by tests, so building it does not fail in
    // practice; if it ever did, /graphql answers 500 and says why instead of the server not starting.
    let graphql = crate::graphql::router(&state).unwrap_or_else(|e| {
        tracing::error!(error = %e, "GraphQL schema failed to build");
        Router::new().route(
            "/graphql",
            axum::routing::any(move || {
                let e = e.clone();
                async move { ApiError::internal(format!("GraphQL schema failed to build: {e}")) }
            }),
        )
    });
    let config = &state.config;
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .merge(graphql)
        .merge(docs::router())
        .merge(crate::monitoring::prometheus::router(Arc::clone(&state)))
        .fallback(|| async { ApiError::not_found("no route for this path") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed for this path",
            )
        })
        .layer(axum::Extension(policy))
        .layer(axum::Extension(BodyLimit(
            usize::try_from(config.body_limit_bytes).unwrap_or(usize::MAX),
        )))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.auth),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(config.request_timeout_secs),
            middleware::timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(cors(&config.cors_allowed_origins))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::count,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(middleware::request_span))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers(Any);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}
