//! Query streaming on /api/v1/ws/query: each `query` message runs one statement on a pooled
//! connection and streams its rows to this connection as the engine produces them.
//!
//! Flow control: the executing thread hands each frame to a small bounded channel and waits when
//! it is full; the connection task takes from the channel only after its previous write to the
//! socket has completed. A client that stops reading therefore stops the statement inside SQLite,
//! and at most `QUEUE` frames per query (plus one drained batch) wait in memory.
//!
//! Streamed queries go through the SQL API's statement executor (`sql::Executor`): GET
//! /api/v1/sql/queries lists them, POST /api/v1/sql/queries/{id}/cancel cancels them, and their
//! end reaches the slow-query log and the sender's session count like any other statement.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::StreamMap;
use tokio_stream::wrappers::ReceiverStream;

use super::protocol::{self, QueryRequest};
use super::{WireFrame, WsHub};
use crate::api::runtime::Identity;
use crate::api::types::ErrorCode;
use crate::api::{ApiError, types};
use crate::engine::access::SqlAccess;
use crate::engine::catalog::DEFAULT_DATABASE;
use crate::engine::queries::{Outcome, Registered, Running, RunningQueries};
use crate::engine::sql::{self, RowSink};
use crate::error::{Error, Result};
use crate::sql::{Executor, Finished};

/// Frames one query may have waiting for the connection task.
const QUEUE: usize = 32;
/// How often a producer blocked on a full queue checks for a cancel or its deadline.
const BLOCKED_CHECK: Duration = Duration::from_millis(50);
pub(super) const DEFAULT_PROGRESS_INTERVAL_MS: i64 = 1000;
pub(super) const MIN_PROGRESS_INTERVAL_MS: i64 = 100;
pub(super) const MAX_PROGRESS_INTERVAL_MS: i64 = 60_000;
const MAX_QUERY_ID_CHARS: usize = 64;

/// A frame from a query's producer; `last` marks its `query_completed` or `query_error`.
pub(super) struct Output {
    frame: WireFrame,
    last: bool,
}

/// The queries one connection streams.
#[derive(Default)]
pub(super) struct Queries {
    streams: StreamMap<String, ReceiverStream<Output>>,
    running: HashMap<String, Arc<Running>>,
}

impl Queries {
    pub(super) fn streams(&mut self) -> &mut StreamMap<String, ReceiverStream<Output>> {
        &mut self.streams
    }

    /// Queues a frame taken from a query's stream; forgets the query after its last frame.
    pub(super) fn take(&mut self, id: &str, output: Output, out: &mut Vec<WireFrame>) {
        if output.last {
            self.running.remove(id);
            self.streams.remove(id);
        }
        out.push(output.frame);
    }

    /// Starts a query; a refusal is answered with a single `query_error`.
    pub(super) fn start(
        &mut self,
        hub: &WsHub,
        identity: &Identity,
        request: QueryRequest,
    ) -> Option<WireFrame> {
        let id = request
            .query_id
            .clone()
            .unwrap_or_else(RunningQueries::new_id);
        let refuse = |e: ApiError| Some(error_frame(&id, e.code, &e.message, 0, 0.0));
        let plan = match Plan::check(request, identity) {
            Ok(plan) => plan,
            Err(e) => return refuse(e),
        };
        if self.running.len() >= hub.config.max_queries {
            return refuse(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_QUERIES",
                format!(
                    "at most {} queries stream at once on one connection",
                    hub.config.max_queries
                ),
            ));
        }
        let db = match hub.engine.get(&plan.database) {
            Ok(db) => db,
            Err(e) => return refuse(e.into()),
        };
        let Some(registered) =
            hub.executor
                .register(Some(id.clone()), identity, &plan.sql, &db.name, None)
        else {
            return refuse(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "QUERY_ID_IN_USE",
                format!("a running query already has the id `{id}`"),
            ));
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        self.running
            .insert(id.clone(), Arc::clone(&registered.query));
        self.streams.insert(id, ReceiverStream::new(rx));
        tokio::spawn(produce(Arc::clone(&hub.executor), db, registered, plan, tx));
        None
    }

    /// Stops a query of this connection; its stream ends with `query_error` `QUERY_CANCELLED`.
    pub(super) fn cancel(&self, query_id: &str) -> Option<WireFrame> {
        match self.running.get(query_id) {
            Some(query) => {
                query.cancel();
                None
            }
            None => Some(protocol::error(
                ErrorCode::UnknownQuery,
                format!("no query `{query_id}` is streaming on this connection"),
            )),
        }
    }

    /// The connection is ending: stop every query it streams.
    pub(super) fn cancel_all(&self) {
        for query in self.running.values() {
            query.cancel();
        }
    }
}

/// A checked `query` request.
struct Plan {
    sql: String,
    params: Option<Value>,
    database: String,
    access: SqlAccess,
    timeout: Duration,
    progress_interval: Duration,
}

impl Plan {
    fn check(request: QueryRequest, identity: &Identity) -> std::result::Result<Plan, ApiError> {
        let invalid = |m: String| ApiError::from(Error::Invalid(m));
        if let Some(id) = &request.query_id {
            let ok = (1..=MAX_QUERY_ID_CHARS).contains(&id.chars().count())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
            if !ok {
                return Err(invalid(format!(
                    "query_id: 1 to {MAX_QUERY_ID_CHARS} letters, digits or `-_.:`"
                )));
            }
        }
        if request.sql.trim().is_empty() {
            return Err(invalid("sql is empty".into()));
        }
        let timeout = match request.timeout {
            None => sql::DEFAULT_TIMEOUT,
            Some(ms @ 1..=sql::MAX_TIMEOUT_MS) => Duration::from_millis(ms.unsigned_abs()),
            Some(_) => {
                return Err(invalid(format!(
                    "timeout must be 1 to {} milliseconds",
                    sql::MAX_TIMEOUT_MS
                )));
            }
        };
        let progress_interval = match request
            .progress_interval_ms
            .unwrap_or(DEFAULT_PROGRESS_INTERVAL_MS)
        {
            ms @ MIN_PROGRESS_INTERVAL_MS..=MAX_PROGRESS_INTERVAL_MS => {
                Duration::from_millis(ms.unsigned_abs())
            }
            _ => {
                return Err(invalid(format!(
                    "progress_interval_ms must be {MIN_PROGRESS_INTERVAL_MS} to {MAX_PROGRESS_INTERVAL_MS}"
                )));
            }
        };
        // Checked again here: roles can change while the connection is open.
        let access = crate::auth::grants::identity_sql_access(identity)?;
        Ok(Plan {
            sql: request.sql,
            params: request.params,
            database: request
                .database
                .unwrap_or_else(|| DEFAULT_DATABASE.to_string()),
            access,
            timeout,
            progress_interval,
        })
    }
}

/// What the executing thread and the progress handler share.
#[derive(Default)]
struct Counters {
    rows: AtomicU64,
    /// Calls of the progress handler, one per `PROGRESS_STEPS` instructions.
    calls: AtomicU64,
    started: AtomicBool,
    /// A progress sample found the queue full; the next row sends one first.
    progress_due: AtomicBool,
}

impl Counters {
    fn progress_frame(&self, query_id: &str, start: Instant) -> WireFrame {
        protocol::frame(
            "query_progress",
            &types::QueryProgress {
                query_id: query_id.to_string(),
                rows_processed: self.rows.load(Ordering::Acquire),
                vm_steps: self.calls.load(Ordering::Acquire) * sql::PROGRESS_STEPS,
                elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
            },
        )
    }
}

/// Runs the query and sends its frames; the registration ends before the last frame, so the
/// client may reuse the id as soon as it reads it.
async fn produce(
    executor: Arc<Executor>,
    db: Arc<crate::engine::catalog::Database>,
    registered: Registered,
    plan: Plan,
    tx: mpsc::Sender<Output>,
) {
    let query = Arc::clone(&registered.query);
    let start = Instant::now();
    let counters = Arc::new(Counters::default());
    let watch = progress_watch(&query, &tx, &counters, start, plan.progress_interval);
    let mut sink = ChannelSink {
        query: Arc::clone(&query),
        tx: tx.clone(),
        database: db.name.clone(),
        start,
        deadline: start + plan.timeout,
        counters: Arc::clone(&counters),
        runtime: tokio::runtime::Handle::current(),
        keys: Vec::new(),
        columns: Vec::new(),
    };
    let running = Arc::clone(&query);
    let actor = crate::engine::capture::Actor {
        user: Some(query.username.clone()),
        statement: Some(plan.sql.clone()),
        // A write's changes carry the statement's query id.
        transaction_id: Some(query.id.clone()),
    };
    let result = db
        .run_as(actor, move |c| {
            running.attach(c.get_interrupt_handle())?;
            let result = sql::stream(
                c,
                plan.access,
                &plan.sql,
                plan.params.as_ref(),
                plan.timeout,
                watch,
                &mut sink,
            );
            running.detach();
            result.map(|count| (count, sink.columns))
        })
        .await;
    let cancelled = query.was_cancelled();
    let rows = counters.rows.load(Ordering::Acquire);
    let cancel_message = format!("query {} was cancelled", query.id);
    let result = result.map_err(ApiError::from);
    let (outcome, rows, error) = match &result {
        Ok((row_count, _)) => (Outcome::Completed, *row_count, None),
        Err(_) if cancelled => (Outcome::Cancelled, rows, Some(cancel_message.as_str())),
        Err(e) => (Outcome::Failed, rows, Some(e.message.as_str())),
    };
    executor.finish(Finished {
        query: &query,
        database: &db.name,
        outcome,
        rows,
        error,
    });
    drop(registered);
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let frame = match result {
        Ok((row_count, columns)) => protocol::frame(
            "query_completed",
            &types::QueryCompleted {
                query_id: query.id.clone(),
                row_count,
                elapsed_ms,
                columns,
            },
        ),
        Err(_) if cancelled => error_frame(
            &query.id,
            "QUERY_CANCELLED",
            &cancel_message,
            rows,
            elapsed_ms,
        ),
        Err(e) => error_frame(&query.id, e.code, &e.message, rows, elapsed_ms),
    };
    // Fails only when the connection is gone; then nobody is waiting for the answer.
    let _ = tx.send(Output { frame, last: true }).await;
}

/// The progress handler's check: stop when cancelled or when the connection is gone, and send a
/// `query_progress` at most once per `interval`. The handler never waits for room in the queue:
/// when it is full, the sample is left to the next row, which waits like rows do.
fn progress_watch(
    query: &Arc<Running>,
    tx: &mpsc::Sender<Output>,
    counters: &Arc<Counters>,
    start: Instant,
    interval: Duration,
) -> impl FnMut() -> bool + Send + 'static {
    let (query, tx, counters) = (Arc::clone(query), tx.clone(), Arc::clone(counters));
    let mut last = start;
    move || {
        counters.calls.fetch_add(1, Ordering::AcqRel);
        if tx.is_closed() || query.was_cancelled() {
            return true;
        }
        let now = Instant::now();
        if counters.started.load(Ordering::Acquire) && now.duration_since(last) >= interval {
            last = now;
            let frame = counters.progress_frame(&query.id, start);
            if let Err(TrySendError::Full(_)) = tx.try_send(Output { frame, last: false }) {
                counters.progress_due.store(true, Ordering::Release);
            }
        }
        false
    }
}

/// Hands frames to the connection task from the executing thread.
struct ChannelSink {
    query: Arc<Running>,
    tx: mpsc::Sender<Output>,
    database: String,
    start: Instant,
    deadline: Instant,
    counters: Arc<Counters>,
    runtime: tokio::runtime::Handle,
    /// The keys of `row_data`: column names, repeated ones suffixed.
    keys: Vec<String>,
    columns: Vec<types::SqlColumn>,
}

impl ChannelSink {
    /// Sends a frame, waiting while the queue is full: this is where a slow client holds the
    /// statement. Gives up when the query is cancelled, its deadline passes or the client is gone.
    fn push(&self, frame: WireFrame) -> Result<()> {
        let gone = || Error::Conflict("the client closed the connection".into());
        let item = Output { frame, last: false };
        let item = match self.tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(gone()),
            Err(TrySendError::Full(item)) => item,
        };
        self.runtime.block_on(async {
            loop {
                if self.query.was_cancelled() {
                    return Err(Error::Conflict("cancelled".into()));
                }
                let remaining = self.deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(Error::Timeout(
                        "statement stopped: it ran past its timeout (waiting for the client to read)"
                            .into(),
                    ));
                }
                match tokio::time::timeout(remaining.min(BLOCKED_CHECK), self.tx.reserve()).await {
                    Ok(Ok(permit)) => {
                        permit.send(item);
                        return Ok(());
                    }
                    Ok(Err(_)) => return Err(gone()),
                    Err(_) => continue,
                }
            }
        })
    }
}

impl RowSink for ChannelSink {
    fn started(&mut self, columns: &[types::SqlColumn]) -> Result<()> {
        self.keys = row_keys(columns);
        self.columns = columns.to_vec();
        self.push(protocol::frame(
            "query_started",
            &types::QueryStarted {
                query_id: self.query.id.clone(),
                sql: self.query.sql.clone(),
                database: self.database.clone(),
                columns: self.columns.clone(),
            },
        ))?;
        self.counters.started.store(true, Ordering::Release);
        Ok(())
    }

    fn row(&mut self, values: Vec<Value>) -> Result<()> {
        if self.query.was_cancelled() {
            return Err(Error::Conflict("cancelled".into()));
        }
        if self.counters.progress_due.swap(false, Ordering::AcqRel) {
            self.push(self.counters.progress_frame(&self.query.id, self.start))?;
        }
        let row_index = self.counters.rows.load(Ordering::Acquire);
        let row_data: Map<String, Value> = self.keys.iter().cloned().zip(values).collect();
        self.push(protocol::frame(
            "query_row",
            &types::QueryRow {
                query_id: self.query.id.clone(),
                row_index,
                row_data,
            },
        ))?;
        self.counters.rows.store(row_index + 1, Ordering::Release);
        Ok(())
    }
}

/// Column names as object keys: a repeated name gets `:2`, `:3`, ... so no value is lost.
fn row_keys(columns: &[types::SqlColumn]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    for c in columns {
        let n = seen.entry(c.name.as_str()).or_insert(0);
        *n += 1;
        let mut key = if *n == 1 {
            c.name.clone()
        } else {
            format!("{}:{n}", c.name)
        };
        // `a:2` might itself be a column name; keep counting until the key is free.
        while keys.contains(&key) {
            *n += 1;
            key = format!("{}:{n}", c.name);
        }
        keys.push(key);
    }
    keys
}

fn error_frame(
    query_id: &str,
    code: &str,
    message: &str,
    row_count: u64,
    elapsed_ms: f64,
) -> WireFrame {
    protocol::frame(
        "query_error",
        &types::QueryError {
            query_id: query_id.to_string(),
            code: code.to_string(),
            message: message.to_string(),
            row_count,
            elapsed_ms,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_column_names_become_distinct_keys() {
        let col = |n: &str| types::SqlColumn {
            name: n.into(),
            decl_type: None,
        };
        assert_eq!(
            row_keys(&[col("a"), col("b"), col("a"), col("a:2")]),
            ["a", "b", "a:2", "a:2:2"]
        );
        assert_eq!(
            row_keys(&[col("a:2"), col("a"), col("a")]),
            ["a:2", "a", "a:3"]
        );
    }
}
