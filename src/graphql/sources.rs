//! The hand-written side of the GraphQL API: the sources of the generated
//! [`GraphQlSources`](crate::api::GraphQlSources) trait. Table data comes from change capture on
//! the bus (`table_changes`), schema changes from `schema_changes`, aggregates and live queries
//! from the engine, re-evaluated when the table changes; queries reuse the REST services.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::rows::{changed_columns, matches, rest_filter, row_data};
use super::{Backends, activity, cluster, core_ops, monitoring, operations, queries};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult, invalid_argument};
use crate::api::runtime::{ApiError, Principal, RequestContext};
use crate::api::types::{
    ActiveQuery, AggregateChange, AggregateFunction, AggregateResult, AlertUpdate,
    BufferPoolSample, ChangeType, ConnectionPoolUpdate, DatabaseList, DeadlockNotice,
    HealthStatusChange, Heartbeat, IoStatistics, LockEventUpdate, NodeHealth, PartitionChange,
    QueryChange, QueryExecutionProgress, QueryPlanChangeNotice, ReplicationStatusSample, RowChange,
    RowDeleted, RowInserted, RowUpdated, SchemaChange, SchemaChangeType, SchemaObjectType,
    ServerInfo, SessionUpdate, SlowQueryNotice, StorageUsage, SystemMetricsSample, TableChange,
    TableModification, TopologyChange, TransactionUpdate,
};
use crate::api::{DatabasesApi, OPERATIONS, SystemApi, types};
use crate::engine::tables;
use crate::events::Event;

/// The database a table subscription watches when none is named.
const DEFAULT_DATABASE: &str = "default";
/// Rows a live query returns at most (`totalCount` counts all).
const LIVE_QUERY_ROWS: i64 = 1000;

/// The events of the topic a subscription's YAML names, as the generated resolver hands them over.
pub(super) type Events = BoxStream<'static, Arc<Event>>;

/// Committed row changes (`table_changes` events) of one database and, when given, of these
/// tables.
fn row_changes(
    events: Events,
    database: Option<String>,
    tables: Option<Vec<String>>,
) -> BoxStream<'static, Change> {
    let database = database.unwrap_or_else(|| DEFAULT_DATABASE.into());
    events
        .filter_map(move |e| {
            let change = Change::parse(&e.data).filter(|c| {
                c.database == database && tables.as_ref().is_none_or(|t| t.contains(&c.table))
            });
            async move { change }
        })
        .boxed()
}

pub struct Sources {
    pub(super) backends: Arc<Backends>,
}

impl Sources {
    pub fn new(backends: Arc<Backends>) -> Sources {
        Sources { backends }
    }

    /// The context a REST operation's implementation expects, for this caller.
    pub(super) fn context(
        &self,
        caller: &Caller,
        operation: &str,
    ) -> Result<RequestContext, ApiError> {
        let operation = OPERATIONS
            .iter()
            .find(|o| o.id == operation)
            .ok_or_else(|| ApiError::internal(format!("no operation `{operation}`")))?;
        Ok(RequestContext {
            request_id: None,
            operation,
            principal: Principal::User(Arc::clone(&caller.identity)),
            client_ip: caller.client_ip,
            peer: None,
        })
    }
}

/// One `table_modified` event, decoded.
#[derive(Debug, Clone)]
struct Change {
    table: String,
    database: String,
    operation: ChangeType,
    row_id: String,
    /// After the change (before it, for DELETE).
    row: Map<String, Value>,
    old: Option<Map<String, Value>>,
    transaction_id: String,
}

impl Change {
    fn parse(data: &Value) -> Option<Change> {
        let s = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
        let obj = |k: &str| data.get(k).and_then(Value::as_object).cloned();
        let operation = match data.get("operation")?.as_str()? {
            "INSERT" => ChangeType::Insert,
            "UPDATE" => ChangeType::Update,
            _ => ChangeType::Delete,
        };
        Some(Change {
            table: s("table")?,
            database: s("database").unwrap_or_else(|| DEFAULT_DATABASE.into()),
            operation,
            row_id: s("row_id")?,
            row: obj("row_data").unwrap_or_default(),
            old: obj("old_row_data").filter(|o| !o.is_empty()),
            transaction_id: s("transaction_id").unwrap_or_default(),
        })
    }

    fn row(&self) -> crate::api::types::RowData {
        row_data(&self.row_id, &self.row)
    }

    fn changed(&self) -> Vec<String> {
        match (&self.operation, &self.old) {
            (ChangeType::Update, Some(old)) => changed_columns(old, &self.row),
            _ => self.row.keys().cloned().collect(),
        }
    }
}

pub(super) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Runs `produce` in a task feeding the returned stream; the task stops when the stream is dropped.
pub(super) fn spawned<T, F, Fut>(produce: F) -> BoxStream<'static, T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let closed = tx.clone();
    let work = produce(tx);
    tokio::spawn(async move {
        tokio::select! {
            () = work => {}
            () = closed.closed() => {}
        }
    });
    ReceiverStream::new(rx).boxed()
}

/// An interval argument in seconds: `default` when absent, refused outside 1..=3600.
pub(super) fn seconds(name: &str, value: Option<i64>, default: u64) -> Result<Duration, ApiError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v @ 1..=3600) => Ok(Duration::from_secs(v as u64)),
        Some(v) => Err(invalid_argument(format!(
            "`{name}` must be 1 to 3600 seconds, got {v}"
        ))),
    }
}

impl GraphQlSources for Sources {
    type Event = Arc<Event>;

    /// A subscriber that falls behind skips what it lost.
    fn listen(&self, topic: &'static str) -> Result<Events, ApiError> {
        let topic = self
            .backends
            .bus
            .topic(topic)
            .ok_or_else(|| ApiError::internal(format!("no bus topic `{topic}`")))?;
        Ok(topic.listen().into_stream())
    }

    async fn server_info(
        &self,
        caller: Caller,
        _args: ServerInfoArgs,
    ) -> Result<ServerInfo, ApiError> {
        let ctx = self.context(&caller, "get_server_info")?;
        self.backends.system.get_server_info(ctx).await
    }

    async fn databases(
        &self,
        caller: Caller,
        _args: DatabasesArgs,
    ) -> Result<DatabaseList, ApiError> {
        let ctx = self.context(&caller, "list_databases")?;
        self.backends.databases.list_databases(ctx).await
    }

    // Queries and mutations over the core: see `core_ops`.
    async fn tables(&self, caller: Caller, args: TablesArgs) -> Result<types::TableList, ApiError> {
        core_ops::tables(self, caller, args).await
    }

    async fn table(&self, caller: Caller, args: TableArgs) -> Result<types::TableInfo, ApiError> {
        core_ops::table(self, caller, args).await
    }

    async fn rows(&self, caller: Caller, args: RowsArgs) -> Result<types::RowPage, ApiError> {
        core_ops::rows(self, caller, args).await
    }

    async fn row(&self, caller: Caller, args: RowArgs) -> Result<types::RowWritten, ApiError> {
        core_ops::row(self, caller, args).await
    }

    async fn query_sql(
        &self,
        caller: Caller,
        args: QuerySqlArgs,
    ) -> Result<types::SqlResult, ApiError> {
        core_ops::query_sql(self, caller, args).await
    }

    async fn server_status(
        &self,
        caller: Caller,
        _args: ServerStatusArgs,
    ) -> Result<types::RuntimeStats, ApiError> {
        core_ops::server_status(self, caller).await
    }

    async fn transactions(
        &self,
        caller: Caller,
        _args: TransactionsArgs,
    ) -> Result<types::TransactionList, ApiError> {
        core_ops::transactions(self, caller).await
    }

    async fn sessions(
        &self,
        caller: Caller,
        _args: SessionsArgs,
    ) -> Result<types::SessionList, ApiError> {
        core_ops::sessions(self, caller).await
    }

    async fn users(&self, caller: Caller, args: UsersArgs) -> Result<types::UserList, ApiError> {
        core_ops::users(self, caller, args).await
    }

    async fn roles(&self, caller: Caller, _args: RolesArgs) -> Result<types::RoleList, ApiError> {
        core_ops::roles(self, caller).await
    }

    async fn create_database(
        &self,
        caller: Caller,
        args: CreateDatabaseArgs,
    ) -> Result<types::DatabaseInfo, ApiError> {
        core_ops::create_database(self, caller, args).await
    }

    async fn drop_database(
        &self,
        caller: Caller,
        args: DropDatabaseArgs,
    ) -> Result<bool, ApiError> {
        core_ops::drop_database(self, caller, args).await
    }

    async fn create_table(
        &self,
        caller: Caller,
        args: CreateTableArgs,
    ) -> Result<types::TableInfo, ApiError> {
        core_ops::create_table(self, caller, args).await
    }

    async fn drop_table(&self, caller: Caller, args: DropTableArgs) -> Result<bool, ApiError> {
        core_ops::drop_table(self, caller, args).await
    }

    async fn insert_row(
        &self,
        caller: Caller,
        args: InsertRowArgs,
    ) -> Result<types::RowWritten, ApiError> {
        core_ops::insert_row(self, caller, args).await
    }

    async fn update_row(
        &self,
        caller: Caller,
        args: UpdateRowArgs,
    ) -> Result<types::RowWritten, ApiError> {
        core_ops::update_row(self, caller, args).await
    }

    async fn delete_row(&self, caller: Caller, args: DeleteRowArgs) -> Result<bool, ApiError> {
        core_ops::delete_row(self, caller, args).await
    }

    async fn execute_sql(
        &self,
        caller: Caller,
        args: ExecuteSqlArgs,
    ) -> Result<types::SqlExecuted, ApiError> {
        core_ops::execute_sql(self, caller, args).await
    }

    async fn begin_transaction(
        &self,
        caller: Caller,
        args: BeginTransactionArgs,
    ) -> Result<types::TransactionInfo, ApiError> {
        core_ops::begin_transaction(self, caller, args).await
    }

    async fn commit_transaction(
        &self,
        caller: Caller,
        args: CommitTransactionArgs,
    ) -> Result<types::TransactionInfo, ApiError> {
        core_ops::commit_transaction(self, caller, args).await
    }

    async fn rollback_transaction(
        &self,
        caller: Caller,
        args: RollbackTransactionArgs,
    ) -> Result<types::TransactionInfo, ApiError> {
        core_ops::rollback_transaction(self, caller, args).await
    }

    async fn create_user(
        &self,
        caller: Caller,
        args: CreateUserArgs,
    ) -> Result<types::User, ApiError> {
        core_ops::create_user(self, caller, args).await
    }

    async fn delete_user(&self, caller: Caller, args: DeleteUserArgs) -> Result<bool, ApiError> {
        core_ops::delete_user(self, caller, args).await
    }

    fn table_changes(
        &self,
        _caller: Caller,
        args: TableChangesArgs,
        events: Events,
    ) -> SourceResult<TableChange> {
        let changes = row_changes(events, args.database, Some(vec![args.table]));
        Ok(changes
            .map(|c| TableChange {
                table: c.table.clone(),
                change_type: c.operation,
                row: c.row(),
                old_row: c.old.as_ref().map(|o| row_data(&c.row_id, o)),
                timestamp: now(),
            })
            .map(Ok)
            .boxed())
    }

    fn row_inserted(
        &self,
        _caller: Caller,
        args: RowInsertedArgs,
        events: Events,
    ) -> SourceResult<RowInserted> {
        let changes = row_changes(events, args.database, Some(vec![args.table]));
        let clause = args.where_clause;
        Ok(changes
            .filter(move |c| {
                let keep = c.operation == ChangeType::Insert
                    && clause.as_ref().is_none_or(|w| matches(w, &c.row));
                async move { keep }
            })
            .map(|c| RowInserted {
                table: c.table.clone(),
                row: c.row(),
                timestamp: now(),
            })
            .map(Ok)
            .boxed())
    }

    fn row_updated(
        &self,
        _caller: Caller,
        args: RowUpdatedArgs,
        events: Events,
    ) -> SourceResult<RowUpdated> {
        let changes = row_changes(events, args.database, Some(vec![args.table]));
        Ok(changes
            .filter_map(|c| async move {
                let old = c
                    .old
                    .clone()
                    .filter(|_| c.operation == ChangeType::Update)?;
                Some(RowUpdated {
                    table: c.table.clone(),
                    old_row: row_data(&c.row_id, &old),
                    new_row: c.row(),
                    changed_fields: changed_columns(&old, &c.row),
                    timestamp: now(),
                })
            })
            .map(Ok)
            .boxed())
    }

    fn row_deleted(
        &self,
        _caller: Caller,
        args: RowDeletedArgs,
        events: Events,
    ) -> SourceResult<RowDeleted> {
        let changes = row_changes(events, args.database, Some(vec![args.table]));
        Ok(changes
            .filter(|c| std::future::ready(c.operation == ChangeType::Delete))
            .map(|c| RowDeleted {
                table: c.table.clone(),
                id: c.row_id.clone(),
                old_row: c.row(),
                timestamp: now(),
            })
            .map(Ok)
            .boxed())
    }

    fn row_changes(
        &self,
        _caller: Caller,
        args: RowChangesArgs,
        events: Events,
    ) -> SourceResult<RowChange> {
        let changes = row_changes(events, args.database, Some(vec![args.table]));
        let id = args.id;
        Ok(changes
            .filter(move |c| std::future::ready(c.row_id == id))
            .map(|c| RowChange {
                table: c.table.clone(),
                id: c.row_id.clone(),
                change_type: c.operation,
                row: c.row(),
                timestamp: now(),
            })
            .map(Ok)
            .boxed())
    }

    fn aggregate_changes(
        &self,
        _caller: Caller,
        args: AggregateChangesArgs,
        events: Events,
    ) -> SourceResult<AggregateChange> {
        let interval = seconds("intervalSeconds", args.interval_seconds, 1)?;
        if args.aggregates.is_empty() {
            return Err(invalid_argument(
                "`aggregates` needs at least one aggregate",
            ));
        }
        for a in &args.aggregates {
            if a.field == "*" && a.function != AggregateFunction::Count {
                return Err(invalid_argument(format!(
                    "`*` is only for COUNT, not {}",
                    a.function
                )));
            }
        }
        let database = args
            .database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let db = self.backends.engine.get(&database)?;
        let table = args.table.clone();
        let mut changes = row_changes(events, Some(database), Some(vec![table.clone()]));
        let aggregates = args.aggregates;
        let compute = move || {
            let (db, table, aggregates) = (Arc::clone(&db), table.clone(), aggregates.clone());
            async move {
                let t = table.clone();
                let results = db.run(move |c| aggregate(c, &t, &aggregates)).await?;
                Ok::<_, ApiError>(AggregateChange {
                    table,
                    results,
                    timestamp: now(),
                })
            }
        };
        Ok(spawned(move |tx| async move {
            loop {
                match compute().await {
                    Ok(result) => {
                        if tx.send(Ok(result)).await.is_err() {
                            return;
                        }
                    }
                    // A bad table or column: the client gets the error, the subscription ends.
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                // At most one recomputation per interval: wait for a change, then for the rest of
                // the interval, swallowing the changes that arrive meanwhile.
                let started = tokio::time::Instant::now();
                if changes.next().await.is_none() {
                    return;
                }
                tokio::time::sleep_until(started + interval).await;
                while let Some(Some(_)) = futures_util::FutureExt::now_or_never(changes.next()) {}
            }
        }))
    }

    fn query_changes(
        &self,
        _caller: Caller,
        args: QueryChangesArgs,
        events: Events,
    ) -> SourceResult<QueryChange> {
        let poll = seconds("pollIntervalSeconds", args.poll_interval_seconds, 30)?;
        let database = args
            .database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let db = self.backends.engine.get(&database)?;
        let table = args.table.clone();
        let filter = args.where_clause.as_ref().map(rest_filter);
        let mut changes = row_changes(events, Some(database), Some(vec![table.clone()]));
        Ok(spawned(move |tx| async move {
            // The last result sent, as JSON: a new one is sent only when it differs.
            let mut last: Option<String> = None;
            loop {
                let (t, f) = (table.clone(), filter.clone());
                match db.run(move |c| live_query(c, &t, f.as_deref())).await {
                    Ok((rows, total_count))
                        if last.as_deref()
                            != Some(
                                &*serde_json::to_string(&(&rows, total_count)).unwrap_or_default(),
                            ) =>
                    {
                        last = serde_json::to_string(&(&rows, total_count)).ok();
                        let change = QueryChange {
                            table: table.clone(),
                            rows,
                            total_count,
                            timestamp: now(),
                        };
                        if tx.send(Ok(change)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
                tokio::select! {
                    next = changes.next() => if next.is_none() { return },
                    () = tokio::time::sleep(poll) => {}
                }
                while let Some(Some(_)) = futures_util::FutureExt::now_or_never(changes.next()) {}
            }
        }))
    }

    fn table_modifications(
        &self,
        _caller: Caller,
        args: TableModificationsArgs,
        events: Events,
    ) -> SourceResult<TableModification> {
        let changes = row_changes(events, args.database, args.tables);
        let types = args.change_types;
        Ok(changes
            .filter(move |c| {
                std::future::ready(types.as_ref().is_none_or(|t| t.contains(&c.operation)))
            })
            .map(|c| TableModification {
                table: c.table.clone(),
                change_type: c.operation,
                row_id: c.row_id.clone(),
                row: c.row(),
                changed_columns: c.changed(),
                transaction_id: c.transaction_id.clone(),
                timestamp: now(),
            })
            .map(Ok)
            .boxed())
    }

    fn schema_changes(
        &self,
        _caller: Caller,
        args: SchemaChangesArgs,
        events: Events,
    ) -> SourceResult<SchemaChange> {
        // `public` (PostgreSQL's default schema, as the seed writes it) and `main` (SQLite's name
        // for a connection's own database) both mean the default database.
        let schema = args.schema_name.map(|name| match name.as_str() {
            "public" | "main" => DEFAULT_DATABASE.to_string(),
            _ => name,
        });
        let kinds = args.object_types;
        Ok(events
            .filter_map(move |e| {
                let d = &e.data;
                let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                let object_type = match s("object_type").as_deref() {
                    Some("TABLE") => SchemaObjectType::Table,
                    Some("INDEX") => SchemaObjectType::Index,
                    Some("VIEW") => SchemaObjectType::View,
                    _ => SchemaObjectType::Trigger,
                };
                let change_type = match s("change_type").as_deref() {
                    Some("CREATE") => SchemaChangeType::Create,
                    Some("DROP") => SchemaChangeType::Drop,
                    _ => SchemaChangeType::Alter,
                };
                let wanted = schema
                    .as_ref()
                    .is_none_or(|n| s("database").as_ref() == Some(n))
                    && kinds.as_ref().is_none_or(|k| k.contains(&object_type));
                let change = wanted.then(|| SchemaChange {
                    change_type,
                    object_type,
                    object_name: s("object_name").unwrap_or_default(),
                    statement: s("statement"),
                    user: s("user"),
                    timestamp: now(),
                });
                async move { change }
            })
            .map(Ok)
            .boxed())
    }

    fn lock_events(
        &self,
        _caller: Caller,
        args: LockEventsArgs,
        events: Events,
    ) -> SourceResult<LockEventUpdate> {
        operations::lock_events(events, args)
    }

    fn deadlock_detection(
        &self,
        _caller: Caller,
        _args: DeadlockDetectionArgs,
        events: Events,
    ) -> SourceResult<DeadlockNotice> {
        operations::deadlock_detection(events)
    }

    fn alert_stream(
        &self,
        _caller: Caller,
        args: AlertStreamArgs,
        events: Events,
    ) -> SourceResult<AlertUpdate> {
        operations::alert_stream(events, args)
    }

    fn partition_events(
        &self,
        _caller: Caller,
        args: PartitionEventsArgs,
        events: Events,
    ) -> SourceResult<PartitionChange> {
        operations::partition_events(events, args)
    }

    fn health_status_changes(
        &self,
        _caller: Caller,
        args: HealthStatusChangesArgs,
    ) -> SourceResult<HealthStatusChange> {
        operations::health_status_changes(self, args)
    }

    fn system_metrics(
        &self,
        _caller: Caller,
        args: SystemMetricsArgs,
        events: Events,
    ) -> SourceResult<SystemMetricsSample> {
        monitoring::system_metrics(events, args)
    }

    fn io_statistics_stream(
        &self,
        _caller: Caller,
        args: IoStatisticsStreamArgs,
    ) -> SourceResult<IoStatistics> {
        monitoring::io_statistics_stream(self, args)
    }

    fn storage_status_changes(
        &self,
        _caller: Caller,
        args: StorageStatusChangesArgs,
    ) -> SourceResult<StorageUsage> {
        monitoring::storage_status_changes(self, args)
    }

    fn buffer_pool_metrics(
        &self,
        _caller: Caller,
        args: BufferPoolMetricsArgs,
    ) -> SourceResult<BufferPoolSample> {
        monitoring::buffer_pool_metrics(self, args)
    }

    fn active_queries_stream(
        &self,
        caller: Caller,
        args: ActiveQueriesStreamArgs,
    ) -> SourceResult<ActiveQuery> {
        queries::active_queries_stream(self, &caller, args)
    }

    fn query_execution(
        &self,
        caller: Caller,
        args: QueryExecutionArgs,
    ) -> SourceResult<QueryExecutionProgress> {
        queries::query_execution(self, &caller, args)
    }

    fn slow_queries_stream(
        &self,
        caller: Caller,
        args: SlowQueriesStreamArgs,
        events: Events,
    ) -> SourceResult<SlowQueryNotice> {
        queries::slow_queries_stream(self, &caller, args, events)
    }

    fn query_plan_changes(
        &self,
        _caller: Caller,
        args: QueryPlanChangesArgs,
        events: Events,
    ) -> SourceResult<QueryPlanChangeNotice> {
        queries::query_plan_changes(events, args)
    }

    fn transaction_events(
        &self,
        _caller: Caller,
        args: TransactionEventsArgs,
        events: Events,
    ) -> SourceResult<TransactionUpdate> {
        activity::transaction_events(events, args)
    }

    fn session_events(
        &self,
        caller: Caller,
        args: SessionEventsArgs,
        events: Events,
    ) -> SourceResult<SessionUpdate> {
        activity::session_events(events, &caller, args)
    }

    fn connection_pool_events(
        &self,
        _caller: Caller,
        args: ConnectionPoolEventsArgs,
        events: Events,
    ) -> SourceResult<ConnectionPoolUpdate> {
        activity::connection_pool_events(events, args)
    }

    fn replication_status(
        &self,
        _caller: Caller,
        args: ReplicationStatusArgs,
    ) -> SourceResult<ReplicationStatusSample> {
        cluster::replication_status(self, args)
    }

    fn cluster_topology_changes(
        &self,
        _caller: Caller,
        _args: ClusterTopologyChangesArgs,
        events: Events,
    ) -> SourceResult<TopologyChange> {
        cluster::cluster_topology_changes(self, events)
    }

    fn node_health_changes(
        &self,
        _caller: Caller,
        args: NodeHealthChangesArgs,
        events: Events,
    ) -> SourceResult<NodeHealth> {
        cluster::node_health_changes(self, args, events)
    }

    fn heartbeat(&self, _caller: Caller, args: HeartbeatArgs) -> SourceResult<Heartbeat> {
        let every = seconds("intervalSeconds", args.interval_seconds, 30)?;
        Ok(spawned(move |tx| async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            for sequence in 1.. {
                tick.tick().await;
                let beat = Heartbeat {
                    sequence,
                    timestamp: now(),
                };
                if tx.send(Ok(beat)).await.is_err() {
                    return;
                }
            }
        }))
    }
}

/// Computes the aggregates over a table; columns are checked against the table.
fn aggregate(
    conn: &mut rusqlite::Connection,
    table: &str,
    aggregates: &[crate::api::types::AggregateInput],
) -> crate::error::Result<Vec<AggregateResult>> {
    let t = tables::describe(conn, table)?;
    let mut exprs = Vec::new();
    for a in aggregates {
        let column = if a.field == "*" {
            "*".to_string()
        } else if t.columns.iter().any(|c| c.name == a.field) {
            tables::quote(&a.field)
        } else {
            return Err(crate::error::Error::Invalid(format!(
                "table `{table}` has no column `{}`",
                a.field
            )));
        };
        exprs.push(format!("{}({column})", a.function));
    }
    let sql = format!(
        "SELECT {} FROM {}",
        exprs.join(", "),
        tables::quote(&t.name)
    );
    let values: Vec<Option<f64>> = conn.query_row(&sql, [], |r| {
        (0..aggregates.len())
            .map(|i| r.get::<_, Option<f64>>(i))
            .collect()
    })?;
    Ok(aggregates
        .iter()
        .zip(values)
        .map(|(a, value)| AggregateResult {
            function: a.function,
            field: a.field.clone(),
            value,
        })
        .collect())
}

/// The live query's rows (keyed by the table's primary key) and the count of all matches.
fn live_query(
    conn: &mut rusqlite::Connection,
    table: &str,
    filter: Option<&str>,
) -> crate::error::Result<(Vec<crate::api::types::RowData>, i64)> {
    let t = tables::describe(conn, table)?;
    let [key] = t.key.as_slice() else {
        return Err(crate::error::Error::Invalid(format!(
            "queryChanges needs a table with a single-column primary key; `{table}` has none"
        )));
    };
    let page = tables::rows(conn, table, filter, None, LIVE_QUERY_ROWS, 0)?;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            let id = match r.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            row_data(&id, r)
        })
        .collect();
    Ok((rows, page.total))
}
