//! `SqlService`: the `sql` subsystem's implementation of the generated `SqlApi`.

use super::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::runtime::RequestContext;
use crate::api::sql::{
    CancelQueryPath, GetRunningQueryPath, ListPlanChangesQuery, ListSlowQueriesQuery,
};
use crate::api::types::{
    PlanChange, PlanChangeList, QueryCancelled, QueryPlan, QueryPlanChanged, RunningQuery,
    RunningQueryList, RunningQueryState, SlowQueryList, SqlBatch, SqlBatchResult, SqlExecuted,
    SqlQuery, SqlResult, SqlStatementResult, TrackedQueryList,
};
use crate::api::{ApiError, SqlApi};
use crate::auth::grants::{owned_transaction, request_sql_access};
use crate::engine::access::SqlAccess;
use crate::engine::capture::Actor;
use crate::engine::catalog::{DEFAULT_DATABASE, Database, Engine};
use crate::engine::plans;
use crate::engine::queries::{Outcome, QueryMonitor, QueryState, Running};
use crate::engine::sql;
use crate::engine::transactions::Transactions;
use crate::error::Error;
use crate::events::Bus;
use crate::events::maintenance;

pub struct SqlService {
    engine: Arc<Engine>,
    transactions: Arc<Transactions>,
    monitor: Arc<QueryMonitor>,
    executor: Arc<Executor>,
    bus: Arc<Bus>,
}

/// Rows a statement returned or changed, for the slow-query log.
trait RowCount {
    fn row_count(&self) -> u64;
}

impl RowCount for sql::Rows {
    fn row_count(&self) -> u64 {
        self.rows.len() as u64
    }
}

impl RowCount for (u64, Option<i64>) {
    fn row_count(&self) -> u64 {
        self.0
    }
}

impl RowCount for Vec<(u64, Option<i64>)> {
    fn row_count(&self) -> u64 {
        self.iter().map(|r| r.0).sum()
    }
}

impl SqlService {
    pub fn new(
        engine: Arc<Engine>,
        transactions: Arc<Transactions>,
        monitor: Arc<QueryMonitor>,
        executor: Arc<Executor>,
        bus: Arc<Bus>,
    ) -> Self {
        SqlService {
            engine,
            transactions,
            monitor,
            executor,
            bus,
        }
    }

    /// Runs `f` in the caller's open transaction `id`, or on its own on the target database,
    /// through the statement executor: listed among the running queries (and cancellable) while
    /// it runs, then counted in the caller's session and logged if slow. `f` gets the database
    /// name and the statement's row counter.
    async fn run<T, F>(
        &self,
        ctx: &RequestContext,
        database: Option<&str>,
        transaction: Option<&str>,
        sql_text: &str,
        f: F,
    ) -> Result<(String, T), ApiError>
    where
        T: RowCount + Send + 'static,
        F: FnOnce(
                &mut rusqlite::Connection,
                &str,
                &std::sync::atomic::AtomicU64,
            ) -> crate::error::Result<T>
            + Send
            + 'static,
    {
        let identity = ctx.identity()?;
        let registered = self
            .executor
            .register(
                None,
                identity,
                sql_text,
                database.unwrap_or(DEFAULT_DATABASE),
                transaction,
            )
            .unwrap_or_else(|| unreachable!("a fresh id is unique"));
        let query = Arc::clone(&registered.query);
        let maintenance = maintenance::Operation::of(sql_text);
        let f = move |c: &mut rusqlite::Connection, name: &str| {
            let size_before = maintenance.map(|_| maintenance::database_bytes(c));
            query.attach(c.get_interrupt_handle())?;
            let result = f(c, name, &query.rows);
            query.detach();
            let size_after = maintenance.map(|_| maintenance::database_bytes(c));
            result.map(|r| (r, size_before.zip(size_after)))
        };
        let actor = Actor {
            user: Some(identity.username.clone()),
            statement: Some(sql_text.to_string()),
            // Outside a transaction, the statement's changes carry its query id.
            transaction_id: Some(registered.query.id.clone()),
        };
        let result = self.run_inner(ctx, database, transaction, actor, f).await;
        let query = &registered.query;
        let result = result.map(|(database, (r, sizes))| {
            if let (Some(operation), Some((before, after))) = (maintenance, sizes) {
                maintenance::publish(
                    &self.bus,
                    operation,
                    &database,
                    sql_text,
                    &identity.username,
                    elapsed_ms(query.started),
                    (before, after),
                );
            }
            (database, r)
        });
        // The same message as the 409 the statement's own request answers.
        let cancel_message = format!("query {} was cancelled", query.id);
        let cancelled = query.was_cancelled() && result.is_err();
        let (database, outcome, rows, error) = match &result {
            Ok((name, value)) => (name.as_str(), Outcome::Completed, value.row_count(), None),
            Err(_) if cancelled => (
                query.database.as_str(),
                Outcome::Cancelled,
                query.rows_so_far(),
                Some(cancel_message.as_str()),
            ),
            Err(e) => (
                query.database.as_str(),
                Outcome::Failed,
                query.rows_so_far(),
                Some(e.message.as_str()),
            ),
        };
        self.executor.finish(Finished {
            query,
            database,
            outcome,
            rows,
            error,
        });
        if cancelled {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "QUERY_CANCELLED",
                cancel_message,
            ));
        }
        result
    }

    async fn run_inner<T, F>(
        &self,
        ctx: &RequestContext,
        database: Option<&str>,
        transaction: Option<&str>,
        actor: Actor,
        f: F,
    ) -> Result<(String, T), ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection, &str) -> crate::error::Result<T> + Send + 'static,
    {
        match transaction {
            Some(id) => {
                let tx = owned_transaction(&self.transactions, ctx.identity()?, id)?;
                let name = tx.database();
                if database.is_some_and(|d| d != name) {
                    return Err(Error::Invalid(format!(
                        "transaction `{id}` is on database `{name}`"
                    ))
                    .into());
                }
                let db_name = name.clone();
                let result = tokio::task::spawn_blocking(move || tx.run(actor, |c| f(c, &db_name)))
                    .await
                    .map_err(ApiError::internal)??;
                Ok((name, result))
            }
            None => {
                let db = self.target(database)?;
                let db_name = db.name.clone();
                let result = db.run_as(actor, move |c| f(c, &db_name)).await?;
                Ok((db.name.clone(), result))
            }
        }
    }

    fn target(&self, database: Option<&str>) -> Result<Arc<Database>, ApiError> {
        Ok(self.engine.get(database.unwrap_or(DEFAULT_DATABASE))?)
    }
}

/// What the caller may do inside SQL (the generated check has ensured database:read).
fn timeout(ms: Option<i64>) -> Result<Duration, ApiError> {
    match ms {
        None => Ok(sql::DEFAULT_TIMEOUT),
        Some(ms @ 1..=sql::MAX_TIMEOUT_MS) => Ok(Duration::from_millis(ms.unsigned_abs())),
        Some(_) => Err(Error::Invalid(format!(
            "timeout must be 1 to {} milliseconds",
            sql::MAX_TIMEOUT_MS
        ))
        .into()),
    }
}

fn max_rows(n: Option<i64>) -> Result<usize, ApiError> {
    match n {
        None => Ok(sql::DEFAULT_MAX_ROWS),
        Some(n @ 1..=sql::MAX_ROWS) => Ok(n.unsigned_abs() as usize),
        Some(_) => Err(Error::Invalid(format!("max_rows must be 1 to {}", sql::MAX_ROWS)).into()),
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

impl SqlApi for SqlService {
    async fn query_sql(&self, ctx: RequestContext, body: SqlQuery) -> Result<SqlResult, ApiError> {
        // The route is database:read: it runs reads only, whatever else the caller's role may
        // do (writes go to /sql/execute, which database:write guards).
        let may_write = request_sql_access(&ctx)? != SqlAccess::Read;
        let (access, limit, rows_cap) = (
            SqlAccess::Read,
            timeout(body.timeout)?,
            max_rows(body.max_rows)?,
        );
        let (statement, params) = (body.sql.to_string(), body.params.clone());
        let start = Instant::now();
        let monitor = Arc::clone(&self.monitor);
        let bus = Arc::clone(&self.bus);
        let (database, rows) = self
            .run(
                &ctx,
                body.database.as_deref(),
                body.transaction_id.as_deref(),
                &body.sql,
                move |c, name, produced| {
                    let rows = sql::query_counted(
                        c,
                        access,
                        &statement,
                        params.as_ref(),
                        limit,
                        rows_cap,
                        produced,
                    )
                    .map_err(|e| match e {
                        // Refused as a write (not for what nobody may do): say where it goes.
                        crate::error::Error::SqlDenied(_)
                            if may_write && c.prepare(&statement).is_ok_and(|s| !s.readonly()) =>
                        {
                            crate::error::Error::Sql(
                                "POST /api/v1/sql/query runs reads only: send writes and schema \
                                 changes to POST /api/v1/sql/execute"
                                    .into(),
                            )
                        }
                        e => e,
                    })?;
                    if let Some(key) = plans::Key::of(name, &statement) {
                        let changed = monitor.plans.observe(c, key, |c| {
                            sql::explain(c, access, &statement, params.as_ref(), limit)
                                .map(|plan| plans::lines(&plan))
                        });
                        if let Some(change) = changed {
                            publish_plan_change(&bus, change);
                        }
                    }
                    Ok(rows)
                },
            )
            .await?;
        Ok(SqlResult {
            database,
            row_count: rows.rows.len() as u64,
            columns: rows.columns,
            rows: rows.rows,
            truncated: rows.truncated,
            elapsed_ms: elapsed_ms(start),
        })
    }

    async fn execute_sql(
        &self,
        ctx: RequestContext,
        body: SqlQuery,
    ) -> Result<SqlExecuted, ApiError> {
        let (access, limit) = (request_sql_access(&ctx)?, timeout(body.timeout)?);
        let (statement, params) = (body.sql.to_string(), body.params.clone());
        let start = Instant::now();
        let (database, (rows_affected, last_insert_id)) = self
            .run(
                &ctx,
                body.database.as_deref(),
                body.transaction_id.as_deref(),
                &body.sql,
                move |c, _, _| sql::execute(c, access, &statement, params.as_ref(), limit),
            )
            .await?;
        Ok(SqlExecuted {
            database,
            rows_affected,
            last_insert_id,
            elapsed_ms: elapsed_ms(start),
        })
    }

    async fn execute_sql_batch(
        &self,
        ctx: RequestContext,
        body: SqlBatch,
    ) -> Result<SqlBatchResult, ApiError> {
        let (access, limit) = (request_sql_access(&ctx)?, timeout(body.timeout)?);
        // The schema's minItems/maxItems: typify does not enforce array bounds.
        if !(1..=1000).contains(&body.statements.len()) {
            return Err(Error::Invalid("a batch has 1 to 1000 statements".into()).into());
        }
        let statements: Vec<(String, Option<Value>)> = body
            .statements
            .iter()
            .map(|s| (s.sql.to_string(), s.params.clone()))
            .collect();
        let start = Instant::now();
        let text = body
            .statements
            .iter()
            .map(|s| s.sql.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let (database, results) = self
            .run(
                &ctx,
                body.database.as_deref(),
                None,
                &text,
                move |c, _, _| sql::batch(c, access, &statements, limit),
            )
            .await?;
        Ok(SqlBatchResult {
            database,
            results: results
                .into_iter()
                .map(|(rows_affected, last_insert_id)| SqlStatementResult {
                    rows_affected,
                    last_insert_id,
                })
                .collect(),
            elapsed_ms: elapsed_ms(start),
        })
    }

    async fn explain_sql(
        &self,
        ctx: RequestContext,
        body: SqlQuery,
    ) -> Result<QueryPlan, ApiError> {
        let (access, limit) = (request_sql_access(&ctx)?, timeout(body.timeout)?);
        let db = self.target(body.database.as_deref())?;
        let (statement, params) = (body.sql.to_string(), body.params.clone());
        let text = statement.clone();
        let plan = db
            .run(move |c| sql::explain(c, access, &statement, params.as_ref(), limit))
            .await?;
        Ok(QueryPlan {
            database: db.name.clone(),
            sql: text,
            plan,
        })
    }

    async fn list_running_queries(
        &self,
        ctx: RequestContext,
    ) -> Result<RunningQueryList, ApiError> {
        let identity = ctx.identity()?;
        let queries: Vec<_> = self
            .monitor
            .running
            .list()
            .iter()
            .filter(|q| visible(q, identity))
            .map(|q| view(q))
            .collect();
        Ok(RunningQueryList {
            total: queries.len() as u64,
            queries,
        })
    }

    async fn get_running_query(
        &self,
        ctx: RequestContext,
        path: GetRunningQueryPath,
    ) -> Result<RunningQuery, ApiError> {
        let query = self.visible_query(&ctx, &path.query_id)?;
        Ok(view(&query))
    }

    async fn cancel_query(
        &self,
        ctx: RequestContext,
        path: CancelQueryPath,
    ) -> Result<QueryCancelled, ApiError> {
        let query = self.visible_query(&ctx, &path.query_id)?;
        Ok(QueryCancelled {
            query_id: query.id.clone(),
            cancelled: query.cancel(),
        })
    }

    async fn list_slow_queries(
        &self,
        ctx: RequestContext,
        query: ListSlowQueriesQuery,
    ) -> Result<SlowQueryList, ApiError> {
        let identity = ctx.identity()?;
        // The generated extractor has enforced 1..=1000.
        let limit = query.limit.clamp(1, 1000).unsigned_abs() as usize;
        let all = identity.has(crate::api::Permission::DatabaseAdmin);
        let (queries, total) = self
            .monitor
            .slow
            .newest(limit, |user_id| all || user_id == identity.user_id);
        Ok(SlowQueryList {
            total,
            queries,
            threshold_ms: u64::try_from(self.monitor.slow.threshold.as_millis())
                .unwrap_or(u64::MAX),
        })
    }

    async fn list_query_plans(&self, _ctx: RequestContext) -> Result<TrackedQueryList, ApiError> {
        let queries = self.monitor.plans.list();
        Ok(TrackedQueryList {
            total: queries.len() as u64,
            queries,
        })
    }

    async fn list_plan_changes(
        &self,
        _ctx: RequestContext,
        query: ListPlanChangesQuery,
    ) -> Result<PlanChangeList, ApiError> {
        let changes = self.monitor.plans.changes(query.query_hash.as_deref());
        Ok(PlanChangeList {
            total: changes.len() as u64,
            changes,
        })
    }
}

/// For GraphQL's queryPlanChanges and /api/v1/ws subscribers.
fn publish_plan_change(bus: &Bus, c: PlanChange) {
    bus.publish(&QueryPlanChanged {
        query_hash: c.query_hash,
        database: c.database,
        normalized_sql: c.normalized_sql,
        old_plan: c.old_plan,
        new_plan: c.new_plan,
        reason: c.reason,
        changed_at: c.changed_at,
    });
}

/// A caller sees its own statements; database:admin sees every statement.
pub(crate) fn visible(query: &Running, identity: &crate::api::runtime::Identity) -> bool {
    query.user_id == identity.user_id || identity.has(crate::api::Permission::DatabaseAdmin)
}

fn view(q: &Running) -> RunningQuery {
    RunningQuery {
        query_id: q.id.clone(),
        sql: q.sql.clone(),
        database: q.database.clone(),
        user: q.username.clone(),
        session_id: q.session_id.clone(),
        state: match q.state() {
            QueryState::Waiting => RunningQueryState::Waiting,
            QueryState::Executing => RunningQueryState::Executing,
            QueryState::Cancelling => RunningQueryState::Cancelling,
        },
        rows_so_far: q.rows_so_far(),
        transaction_id: q.transaction_id.clone(),
        started_at: q.started_at,
        elapsed_ms: elapsed_ms(q.started),
    }
}

impl SqlService {
    fn visible_query(&self, ctx: &RequestContext, id: &str) -> Result<Arc<Running>, ApiError> {
        let identity = ctx.identity()?;
        self.monitor
            .running
            .get(id)
            .filter(|q| visible(q, identity))
            .ok_or_else(|| ApiError::not_found(format!("no running query `{id}`")))
    }
}
