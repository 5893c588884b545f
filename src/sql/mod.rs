//! The `sql` subsystem: statements over the engine with the caller's SQL permissions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::runtime::RequestContext;
use crate::api::sql::{CancelQueryPath, GetRunningQueryPath};
use crate::api::types::{
    QueryCancelled, QueryPlan, RunningQuery, RunningQueryList, SqlBatch, SqlBatchResult,
    SqlExecuted, SqlQuery, SqlResult, SqlStatementResult,
};
use crate::api::{ApiError, SqlApi};
use crate::engine::access::SqlAccess;
use crate::engine::capture::Actor;
use crate::engine::catalog::{DEFAULT_DATABASE, Database, Engine};
use crate::engine::queries::{Running, RunningQueries};
use crate::engine::sessions::Transactions;
use crate::engine::sql;
use crate::error::Error;
use crate::events::Bus;

mod maintenance;

pub struct SqlService {
    engine: Arc<Engine>,
    transactions: Arc<Transactions>,
    running: RunningQueries,
    bus: Arc<Bus>,
}

impl SqlService {
    pub fn new(engine: Arc<Engine>, transactions: Arc<Transactions>, bus: Arc<Bus>) -> Self {
        SqlService {
            engine,
            transactions,
            running: RunningQueries::default(),
            bus,
        }
    }

    /// Runs `f` in the caller's open transaction `id`, or on its own on the target database,
    /// listed among the running queries (and cancellable) while it runs.
    async fn run<T, F>(
        &self,
        ctx: &RequestContext,
        database: Option<&str>,
        transaction: Option<&str>,
        sql_text: &str,
        f: F,
    ) -> Result<(String, T), ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> crate::error::Result<T> + Send + 'static,
    {
        let identity = ctx.identity()?;
        let registered = self.running.register(
            sql_text,
            database.unwrap_or(DEFAULT_DATABASE),
            &identity.user_id,
            &identity.username,
            transaction,
        );
        let query = Arc::clone(&registered.query);
        let maintenance = maintenance::Operation::of(sql_text);
        let f = move |c: &mut rusqlite::Connection| {
            let size_before = maintenance.map(|_| maintenance::database_bytes(c));
            query.attach(c.get_interrupt_handle());
            let result = f(c);
            query.detach();
            let size_after = maintenance.map(|_| maintenance::database_bytes(c));
            result.map(|r| (r, size_before.zip(size_after)))
        };
        let actor = Actor {
            user: Some(identity.username.clone()),
            statement: Some(sql_text.to_string()),
        };
        let start = Instant::now();
        let result = self.run_inner(ctx, database, transaction, actor, f).await;
        let result = result.map(|(database, (r, sizes))| {
            if let (Some(operation), Some((before, after))) = (maintenance, sizes) {
                maintenance::publish(
                    &self.bus,
                    operation,
                    &database,
                    sql_text,
                    &identity.username,
                    elapsed_ms(start),
                    (before, after),
                );
            }
            (database, r)
        });
        if registered.query.was_cancelled() && result.is_err() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "QUERY_CANCELLED",
                format!("query {} was cancelled", registered.query.id),
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
        F: FnOnce(&mut rusqlite::Connection) -> crate::error::Result<T> + Send + 'static,
    {
        match transaction {
            Some(id) => {
                let tx = crate::transactions::owned(&self.transactions, ctx.identity()?, id)?;
                let name = tx.database();
                if database.is_some_and(|d| d != name) {
                    return Err(Error::Invalid(format!(
                        "transaction `{id}` is on database `{name}`"
                    ))
                    .into());
                }
                let result = tokio::task::spawn_blocking(move || tx.run(actor, f))
                    .await
                    .map_err(ApiError::internal)??;
                Ok((name, result))
            }
            None => {
                let db = self.target(database)?;
                let result = db.run_as(actor, f).await?;
                Ok((db.name.clone(), result))
            }
        }
    }

    fn target(&self, database: Option<&str>) -> Result<Arc<Database>, ApiError> {
        Ok(self.engine.get(database.unwrap_or(DEFAULT_DATABASE))?)
    }
}

/// What the caller may do inside SQL (the generated check has ensured database:read).
pub(crate) fn access(ctx: &RequestContext) -> Result<SqlAccess, ApiError> {
    SqlAccess::of(ctx.identity()?)
        .ok_or_else(|| ApiError::forbidden("permission `database:read` required"))
}

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
        let (access, limit, rows_cap) = (
            access(&ctx)?,
            timeout(body.timeout)?,
            max_rows(body.max_rows)?,
        );
        let (statement, params) = (body.sql.to_string(), body.params.clone());
        let start = Instant::now();
        let (database, rows) = self
            .run(
                &ctx,
                body.database.as_deref(),
                body.transaction_id.as_deref(),
                &body.sql,
                move |c| sql::query(c, access, &statement, params.as_ref(), limit, rows_cap),
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
        let (access, limit) = (access(&ctx)?, timeout(body.timeout)?);
        let (statement, params) = (body.sql.to_string(), body.params.clone());
        let start = Instant::now();
        let (database, (rows_affected, last_insert_id)) = self
            .run(
                &ctx,
                body.database.as_deref(),
                body.transaction_id.as_deref(),
                &body.sql,
                move |c| sql::execute(c, access, &statement, params.as_ref(), limit),
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
        let (access, limit) = (access(&ctx)?, timeout(body.timeout)?);
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
            .run(&ctx, body.database.as_deref(), None, &text, move |c| {
                sql::batch(c, access, &statements, limit)
            })
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
        let (access, limit) = (access(&ctx)?, timeout(body.timeout)?);
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
}

/// A caller sees its own statements; database:admin sees every statement.
fn visible(query: &Running, identity: &crate::api::runtime::Identity) -> bool {
    query.user_id == identity.user_id || identity.has(crate::api::Permission::DatabaseAdmin)
}

fn view(q: &Running) -> RunningQuery {
    RunningQuery {
        query_id: q.id.clone(),
        sql: q.sql.clone(),
        database: q.database.clone(),
        user: q.username.clone(),
        transaction_id: q.transaction_id.clone(),
        started_at: q.started_at,
        elapsed_ms: elapsed_ms(q.started),
    }
}

impl SqlService {
    fn visible_query(&self, ctx: &RequestContext, id: &str) -> Result<Arc<Running>, ApiError> {
        let identity = ctx.identity()?;
        self.running
            .get(id)
            .filter(|q| visible(q, identity))
            .ok_or_else(|| ApiError::not_found(format!("no running query `{id}`")))
    }
}
