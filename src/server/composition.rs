//! The composition root: `Server` builds every layer once, wires the handles into the services and mounts the routers.

use super::*;

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

use crate::alerts::{AlertService, OpenAlerts};
use crate::api::{self, ApiError, runtime::AccessPolicy, runtime::BodyLimit};
use crate::auth::{self, AdminService, Auth, AuthService, RbacPolicy};
use crate::config::Config;
use crate::databases::DatabaseService;
use crate::engine::SystemDb;
use crate::engine::port::Emit;
use crate::error::Result;
use crate::events::Bus;
use crate::events::connections::Registry;
use crate::graphql::Backends;
use crate::health::{Checks, HealthService};
use crate::monitoring::Collector;
use crate::monitoring::prometheus::MetricsExposition;
use crate::mvcc::MvccService;
use crate::partitions::PartitionService;
use crate::process::Process;
use crate::sessions::SessionService;
use crate::sql::SqlService;
use crate::storage::StorageService;
use crate::system::SystemService;
use crate::tables::TableService;
use crate::telemetry::LogControl;
use crate::transactions::TransactionService;
use crate::ws::{WebSocketManagement, WebSocketService, WsHub};

/// A started-up server: every layer built and wired, data directory open, ready to serve. This
/// is the composition root: the only place that knows every subsystem, handing each the
/// handles it needs.
pub struct Server {
    app: Router,
    config: Arc<Config>,
    auth: Arc<Auth>,
    bus: Arc<Bus>,
    connections: Arc<Registry>,
    system_db: SystemDb,
    graphql: Arc<Backends>,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Opens the data directory and builds every layer. `process_start` is when the process
    /// started, so the startup probe reports the whole startup.
    pub async fn start(config: Config, log: LogControl, process_start: Instant) -> Result<Server> {
        let config = Arc::new(config);
        let system_db = SystemDb::open(&config.data_dir)?;
        let change_log = match config.changes.enabled {
            true => Some(Arc::new(crate::events::change_log::ChangeLog::open(
                &config.data_dir,
                config.changes,
            )?)),
            false => None,
        };
        let bus = Arc::new(Bus::with_log(
            config.websocket.bus_capacity,
            change_log.clone(),
        ));
        let sequencer = Arc::new(crate::engine::capture::Sequencer::new(
            crate::events::table_changes_publisher(Arc::clone(&bus)),
        ));
        let tablespaces = Arc::new(crate::engine::tablespaces::Tablespaces::new(
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
        let auth = Auth::start(&config.security, &config.data_dir, system_db.clone()).await?;
        auth.sessions.publish_to(Arc::clone(&bus));
        let (shutdown_tx, shutdown) = watch::channel(false);
        let queries = Arc::new(crate::engine::queries::QueryMonitor::new(&config.queries));
        let transactions = Arc::new(crate::engine::transactions::Transactions::with_events(
            Arc::clone(&bus) as Arc<dyn Emit>,
        ));
        let connections: Arc<Registry> = Arc::default();
        let executor = Arc::new(crate::sql::Executor::standard(
            &queries,
            &bus,
            &auth.sessions,
        ));
        let ws = Arc::new(WsHub {
            bus: Arc::clone(&bus),
            engine: Arc::clone(&engine),
            executor: Arc::clone(&executor),
            auth: Arc::clone(&auth),
            registry: Arc::clone(&connections),
            config: config.websocket.clone(),
            shutdown: shutdown.clone(),
            started: process_start,
        });
        let process = Arc::new(Process::new(process_start, shutdown.clone()));
        let host: Arc<crate::host::Host> = Arc::default();
        let metrics = Arc::new(Collector {
            process: Arc::clone(&process),
            bus: Arc::clone(&bus),
            connections: Arc::clone(&connections),
            engine: Arc::clone(&engine),
            system_db: system_db.clone(),
            transactions: Arc::clone(&transactions),
            host: Arc::clone(&host),
            sources: vec![Arc::new(OpenAlerts(system_db.clone()))],
        });
        let checks = Arc::new(Checks {
            system_db: system_db.clone(),
            data_dir: config.data_dir.clone(),
        });
        let alerts = AlertService::new(system_db.clone(), Arc::clone(&bus), Arc::clone(&metrics));
        let storage = Arc::new(StorageService::new(
            Arc::clone(&engine),
            Arc::clone(&tablespaces),
            system_db.clone(),
            config.data_dir.clone(),
        ));
        let sql = Arc::new(SqlService::new(
            Arc::clone(&engine),
            Arc::clone(&transactions),
            Arc::clone(&queries),
            executor,
            Arc::clone(&bus),
        ));
        let graphql = Arc::new(Backends {
            config: config.graphql.clone(),
            slow_client_timeout: config.websocket.slow_client_timeout,
            process: Arc::clone(&process),
            auth: Arc::clone(&auth),
            bus: Arc::clone(&bus),
            engine: Arc::clone(&engine),
            queries: Arc::clone(&queries),
            system_db: system_db.clone(),
            host: Arc::clone(&host),
            checks: Arc::clone(&checks),
            admin: Arc::new(AdminService::new(Arc::clone(&auth))),
            databases: Arc::new(DatabaseService::new(
                Arc::clone(&engine),
                Arc::clone(&tablespaces),
            )),
            sessions: Arc::new(SessionService::new(
                Arc::clone(&auth),
                Arc::clone(&queries),
                Arc::clone(&transactions),
                Arc::clone(&connections),
            )),
            sql,
            storage: Arc::clone(&storage),
            system: Arc::new(SystemService::new(
                config.effective(),
                Arc::clone(&process),
                log,
                Arc::clone(&host),
            )),
            tables: Arc::new(TableService::new(Arc::clone(&engine), Arc::clone(&bus))),
            transactions: Arc::new(TransactionService::new(
                Arc::clone(&engine),
                Arc::clone(&transactions),
            )),
        });

        crate::metrics::spawn_producers(crate::metrics::Sources {
            bus: Arc::clone(&bus),
            engine: Arc::clone(&engine),
            queries: Arc::clone(&queries.running),
            connections: Arc::clone(&connections),
            process: Arc::clone(&process),
            host: Arc::clone(&host),
        });
        crate::alerts::spawn_evaluator(
            alerts.clone(),
            config.alerts.evaluation_interval,
            shutdown.clone(),
        );
        crate::health::watch::spawn(
            Arc::clone(&checks),
            Arc::clone(&bus),
            config.health.watch_interval,
            shutdown.clone(),
        )
        .await;
        let partitions = PartitionService::new(Arc::clone(&engine), Arc::clone(&bus));
        partitions.spawn_stats_watcher(config.partitions.stats_interval, shutdown.clone());
        crate::storage::spawn_status_producer(
            (*storage).clone(),
            Arc::clone(&bus),
            shutdown.clone(),
        );
        if let Some(log) = &change_log {
            log.spawn_pruner(shutdown.clone());
        }
        crate::transactions::spawn_reaper(
            Arc::clone(&transactions),
            config.transaction_idle_timeout,
            shutdown.clone(),
        );

        let api = api::api_router(
            Arc::clone(&graphql.admin),
            Arc::new(alerts),
            Arc::new(AuthService::new(Arc::clone(&auth))),
            Arc::clone(&graphql.databases),
            Arc::new(HealthService::new(checks, Arc::clone(&process))),
            Arc::new(MetricsExposition::new(metrics)),
            Arc::new(MvccService::new(
                Arc::clone(&engine),
                Arc::clone(&transactions),
                Arc::clone(&bus),
            )),
            Arc::new(partitions),
            Arc::clone(&graphql.sessions),
            Arc::clone(&graphql.sql),
            storage,
            Arc::clone(&graphql.system),
            Arc::clone(&graphql.tables),
            Arc::clone(&graphql.transactions),
            Arc::new(WebSocketManagement::new(Arc::clone(&ws))),
            Arc::new(WebSocketService::new(ws)),
        );
        let app = app(api, &graphql, &config, &auth, process);
        Ok(Server {
            app,
            config,
            auth,
            bus,
            connections,
            system_db,
            graphql,
            shutdown_tx,
        })
    }

    /// The complete HTTP application.
    pub fn app(&self) -> Router {
        self.app.clone()
    }

    /// The event bus (for tests and embedders that listen in process).
    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// The open WebSocket connections.
    pub fn connections(&self) -> &Arc<Registry> {
        &self.connections
    }

    pub fn system_db(&self) -> &SystemDb {
        &self.system_db
    }

    /// What GraphQL resolves with (to build its schema outside the router).
    pub fn graphql(&self) -> &Arc<Backends> {
        &self.graphql
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
        let grace = Duration::from_secs(self.config.shutdown_grace_secs);
        let app = self.app();
        let shutdown_tx = self.shutdown_tx;
        let (stopped_tx, mut stopped_rx) = watch::channel(false);
        // Limiter state of idle callers is dropped once a minute, so memory stays bounded.
        let auth = Arc::clone(&self.auth);
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

/// The routers (REST with `/metrics`, GraphQL, docs) under the server's middleware.
fn app(
    api: Router,
    graphql: &Arc<Backends>,
    config: &Config,
    auth: &Arc<Auth>,
    process: Arc<Process>,
) -> Router {
    let policy: Arc<dyn AccessPolicy> = Arc::new(RbacPolicy {
        auth: Arc::clone(auth),
    });
    // The GraphQL schema is generated and checked by tests, so building it does not fail in
    // practice; if it ever did, /graphql answers 500 and says why instead of the server not starting.
    let graphql = crate::graphql::router(Arc::clone(graphql)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "GraphQL schema failed to build");
        Router::new().route(
            "/graphql",
            axum::routing::any(move || {
                let e = e.clone();
                async move { ApiError::internal(format!("GraphQL schema failed to build: {e}")) }
            }),
        )
    });
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(api)
        .merge(graphql)
        .merge(docs::router())
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
            Arc::clone(auth),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(config.request_timeout_secs),
            middleware::timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(cors(&config.cors_allowed_origins))
        .layer(axum::middleware::from_fn_with_state(
            process,
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
