//! Running statements: bound parameters only, the caller's authorizer, a deadline enforced by
//! SQLite's progress handler, and rows converted to JSON.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, Statement};
use serde_json::Value;

use super::access::SqlAccess;
use crate::api::types::{QueryPlanNode, SqlColumn};
use crate::error::{Error, Result};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_TIMEOUT_MS: i64 = 300_000;
pub const DEFAULT_MAX_ROWS: usize = 10_000;
pub const MAX_ROWS: i64 = 100_000;
/// Virtual-machine instructions between two calls of the progress handler: cheap, and a runaway
/// query stops promptly.
pub const PROGRESS_STEPS: u64 = 1000;

pub struct Rows {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

/// Installs the caller's authorizer and the deadline for the guard's lifetime.
struct Guarded<'c> {
    conn: &'c mut Connection,
    deadline: Instant,
    /// The table the last prepared statement alters (`ALTER TABLE`), as the authorizer saw it.
    altered: Arc<Mutex<Option<String>>>,
    /// What transaction control the authorizer refused (see `refused_control`), for the error.
    control: Arc<Mutex<Option<&'static str>>>,
    /// Whether the last prepared statement itself inserts rows (not a trigger of it).
    inserts: Arc<std::sync::atomic::AtomicBool>,
}

/// Transaction control the server keeps for itself: savepoints always (change capture follows
/// them through the transactions API only), and BEGIN/COMMIT/ROLLBACK inside an API
/// transaction, where they would end it behind the API's back (its record would say active, or
/// rolled back, while its rows were committed).
fn refused_control(
    action: &rusqlite::hooks::AuthAction<'_>,
    in_transaction: bool,
) -> Option<&'static str> {
    use rusqlite::hooks::AuthAction;
    match action {
        AuthAction::Savepoint { .. } => Some(
            "SAVEPOINT, RELEASE and ROLLBACK TO go through the transactions API \
             (POST /api/v1/transactions/{id}/savepoints)",
        ),
        AuthAction::Transaction { .. } if in_transaction => Some(
            "BEGIN, COMMIT and ROLLBACK cannot run inside an API transaction: end it with \
             POST /api/v1/transactions/{id}/commit or /rollback",
        ),
        _ => None,
    }
}

impl<'c> Guarded<'c> {
    fn new(conn: &'c mut Connection, access: SqlAccess, timeout: Duration) -> Result<Guarded<'c>> {
        Self::watched(conn, access, timeout, || false)
    }

    /// Like `new`, and `watch` is called with the deadline check every `PROGRESS_STEPS`
    /// instructions; returning `true` interrupts the statement.
    fn watched(
        conn: &'c mut Connection,
        access: SqlAccess,
        timeout: Duration,
        mut watch: impl FnMut() -> bool + Send + 'static,
    ) -> Result<Guarded<'c>> {
        let deadline = Instant::now() + timeout;
        let altered: Arc<Mutex<Option<String>>> = Arc::default();
        let control: Arc<Mutex<Option<&'static str>>> = Arc::default();
        let seen = Arc::clone(&altered);
        let refused = Arc::clone(&control);
        let inserts: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let inserting = Arc::clone(&inserts);
        let in_transaction = !conn.is_autocommit();
        conn.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
            if let Some(why) = refused_control(&ctx.action, in_transaction) {
                *crate::sync::lock(&refused) = Some(why);
                return rusqlite::hooks::Authorization::Deny;
            }
            if matches!(ctx.action, rusqlite::hooks::AuthAction::Insert { .. })
                && ctx.accessor.is_none()
            {
                inserting.store(true, Ordering::Relaxed);
            }
            let decision = access.authorize(&ctx);
            if let rusqlite::hooks::AuthAction::AlterTable { table_name, .. } = ctx.action
                && matches!(decision, rusqlite::hooks::Authorization::Allow)
            {
                *crate::sync::lock(&seen) = Some(table_name.to_string());
            }
            decision
        }))?;
        conn.progress_handler(
            PROGRESS_STEPS as i32,
            Some(move || Instant::now() >= deadline || watch()),
        )?;
        Ok(Guarded {
            conn,
            deadline,
            altered,
            control,
            inserts,
        })
    }

    /// Prepares a statement to [`run`](Self::run).
    fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        crate::sync::lock(&self.altered).take();
        self.inserts.store(false, Ordering::Relaxed);
        Ok(self.conn.prepare(sql)?)
    }

    /// Runs a statement from [`prepare`](Self::prepare); an `ALTER TABLE` runs without the
    /// table's capture triggers, as through the tables API (see `capture`).
    fn run(&self, stmt: &mut Statement<'_>) -> Result<usize> {
        // Taken before the statement runs: a re-prepare at step calls the authorizer, which
        // locks the same cell.
        let altered = crate::sync::lock(&self.altered).take();
        let before = self.conn.total_changes();
        let changed = match altered {
            Some(table) => super::capture::alter_without_triggers(self.conn, &table, || {
                Ok(stmt.raw_execute()?)
            })?,
            None => stmt.raw_execute()?,
        };
        // sqlite3_changes() keeps counting the connection's last INSERT, UPDATE or DELETE: after
        // DDL it is stale, possibly another user's statement on this pooled connection.
        Ok(if self.conn.total_changes() == before {
            0
        } else {
            changed
        })
    }

    /// Runs a write and reports it: rows affected, and the rowid of the last row it inserted
    /// (`None` when it inserted none: the connection's last_insert_rowid outlives statements,
    /// and a new row may well get the rowid an earlier statement last inserted).
    fn run_write(&self, stmt: &mut Statement<'_>) -> Result<(u64, Option<i64>)> {
        let changed = self.run(stmt)? as u64;
        let inserted = changed > 0 && self.inserts.load(Ordering::Relaxed);
        Ok((changed, inserted.then(|| self.conn.last_insert_rowid())))
    }

    /// Maps an engine error to what the caller did wrong.
    fn error(&self, e: rusqlite::Error) -> Error {
        if let Some(why) = crate::sync::lock(&self.control).take() {
            return Error::Sql(why.into());
        }
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => Error::SqlDenied(
                format!("the statement does something your role does not permit ({e})"),
            ),
            // The same answer as beginning a transaction against the lock holder (409), after
            // the connection's busy timeout.
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Error::Conflict(format!(
                    "the database is locked by another writer (waited for the busy timeout): {e}"
                ))
            }
            Some(rusqlite::ErrorCode::OperationInterrupted) if Instant::now() >= self.deadline => {
                Error::Timeout("statement interrupted: it ran past its timeout".into())
            }
            // A refused function is reported as a plain error with this wording.
            _ if e.to_string().contains("not authorized") => Error::SqlDenied(format!(
                "the statement does something your role does not permit ({e})"
            )),
            _ => Error::Sql(e.to_string()),
        }
    }
}

impl Drop for Guarded<'_> {
    fn drop(&mut self) {
        let _ = self.conn.authorizer(
            None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>,
        );
        let _ = self.conn.progress_handler(0, None::<fn() -> bool>);
    }
}

/// Runs `f` with the caller's authorizer and deadline installed; engine errors are mapped to what
/// the caller did wrong (400, 403, 408).
pub fn guarded<T>(
    conn: &mut Connection,
    access: SqlAccess,
    timeout: Duration,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let guard = Guarded::new(conn, access, timeout)?;
    f(guard.conn).map_err(|e| match e {
        Error::Engine(e) => guard.error(e),
        other => other,
    })
}

pub(crate) fn to_sql(value: &Value, position: &str) -> Result<SqlValue> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Integer(i),
            (None, Some(f)) => SqlValue::Real(f),
            _ => {
                return Err(Error::Invalid(format!(
                    "parameter {position}: number out of range"
                )));
            }
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(Error::Invalid(format!(
                "parameter {position}: arrays and objects are not SQL values"
            )));
        }
    })
}

pub(crate) fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// Binds an array (positional) or an object (named) of parameters; counts must match.
fn bind(stmt: &mut Statement<'_>, params: Option<&Value>) -> Result<()> {
    let expected = stmt.parameter_count();
    match params {
        None | Some(Value::Null) if expected == 0 => Ok(()),
        None | Some(Value::Null) => Err(Error::Invalid(format!(
            "the statement has {expected} parameter(s) and none were given"
        ))),
        Some(Value::Array(values)) => {
            if values.len() != expected {
                return Err(Error::Invalid(format!(
                    "the statement has {expected} parameter(s); {} given",
                    values.len()
                )));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sql(v, &(i + 1).to_string())?)?;
            }
            Ok(())
        }
        Some(Value::Object(map)) => {
            if map.len() != expected {
                return Err(Error::Invalid(format!(
                    "the statement has {expected} parameter(s); {} given",
                    map.len()
                )));
            }
            for (name, v) in map {
                let index = [":", "@", "$", ""]
                    .iter()
                    .find_map(|prefix| {
                        stmt.parameter_index(&format!("{prefix}{name}"))
                            .ok()
                            .flatten()
                    })
                    .ok_or_else(|| {
                        Error::Invalid(format!("the statement has no parameter `{name}`"))
                    })?;
                stmt.raw_bind_parameter(index, to_sql(v, &format!("`{name}`"))?)?;
            }
            Ok(())
        }
        Some(_) => Err(Error::Invalid(
            "params must be an array or an object".into(),
        )),
    }
}

fn columns_of(stmt: &Statement<'_>) -> Vec<SqlColumn> {
    stmt.columns()
        .map(|c| SqlColumn {
            name: c.name().to_string(),
            decl_type: c.decl_type().map(str::to_string),
        })
        .collect()
}

/// Receives a streamed statement's output on the thread that executes it. An error stops the
/// statement and is returned by `stream`.
pub trait RowSink {
    /// The statement is prepared; called once, before any row.
    fn started(&mut self, columns: &[SqlColumn]) -> Result<()>;
    fn row(&mut self, values: Vec<Value>) -> Result<()>;
}

/// Runs one statement and hands each row to `sink` as the engine produces it. Nothing is
/// buffered here, so a sink that blocks holds the statement where it is. `watch` is called by the
/// progress handler (see `Guarded::watched`). Returns the number of rows.
pub fn stream(
    conn: &mut Connection,
    access: SqlAccess,
    sql: &str,
    params: Option<&Value>,
    timeout: Duration,
    watch: impl FnMut() -> bool + Send + 'static,
    sink: &mut impl RowSink,
) -> Result<u64> {
    let guard = Guarded::watched(conn, access, timeout, watch)?;
    let result = (|| {
        let mut stmt = guard.conn.prepare(sql)?;
        bind(&mut stmt, params)?;
        let columns = columns_of(&stmt);
        sink.started(&columns)?;
        let width = columns.len();
        let mut count = 0;
        let mut raw = stmt.raw_query();
        while let Some(row) = raw.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(to_json(row.get_ref(i)?));
            }
            sink.row(values)?;
            count += 1;
        }
        Ok::<_, Error>(count)
    })();
    result.map_err(|e| match e {
        Error::Engine(e) => guard.error(e),
        other => other,
    })
}

pub fn query(
    conn: &mut Connection,
    access: SqlAccess,
    sql: &str,
    params: Option<&Value>,
    timeout: Duration,
    max_rows: usize,
) -> Result<Rows> {
    query_counted(
        conn,
        access,
        sql,
        params,
        timeout,
        max_rows,
        &AtomicU64::new(0),
    )
}

/// `query`, adding each row produced to `produced` as it goes (for the running-queries view).
pub fn query_counted(
    conn: &mut Connection,
    access: SqlAccess,
    sql: &str,
    params: Option<&Value>,
    timeout: Duration,
    max_rows: usize,
    produced: &AtomicU64,
) -> Result<Rows> {
    let guard = Guarded::new(conn, access, timeout)?;
    let result = (|| {
        let mut stmt = guard.conn.prepare(sql)?;
        bind(&mut stmt, params)?;
        let columns = columns_of(&stmt);
        let width = columns.len();
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut raw = stmt.raw_query();
        while let Some(row) = raw.next()? {
            if rows.len() == max_rows {
                truncated = true;
                break;
            }
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(to_json(row.get_ref(i)?));
            }
            rows.push(values);
            produced.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<_, Error>(Rows {
            columns,
            rows,
            truncated,
        })
    })();
    result.map_err(|e| match e {
        Error::Engine(e) => guard.error(e),
        other => other,
    })
}

/// Runs one statement; returns rows affected and the last insert id.
pub fn execute(
    conn: &mut Connection,
    access: SqlAccess,
    sql: &str,
    params: Option<&Value>,
    timeout: Duration,
) -> Result<(u64, Option<i64>)> {
    let guard = Guarded::new(conn, access, timeout)?;
    let result = (|| {
        let mut stmt = guard.prepare(sql)?;
        bind(&mut stmt, params)?;
        guard.run_write(&mut stmt)
    })();
    result.map_err(|e| match e {
        Error::Engine(e) => guard.error(e),
        other => other,
    })
}

/// Runs statements in one transaction; on the first failure everything is rolled back and the
/// error names the statement's position.
pub fn batch(
    conn: &mut Connection,
    access: SqlAccess,
    statements: &[(String, Option<Value>)],
    timeout: Duration,
) -> Result<Vec<(u64, Option<i64>)>> {
    let guard = Guarded::new(conn, access, timeout)?;
    guard
        .conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| guard.error(e))?;
    let mut results = Vec::with_capacity(statements.len());
    for (i, (sql, params)) in statements.iter().enumerate() {
        let step = (|| {
            let mut stmt = guard.prepare(sql)?;
            bind(&mut stmt, params.as_ref())?;
            guard.run_write(&mut stmt)
        })();
        match step {
            Ok(r) => results.push(r),
            Err(e) => {
                let _ = guard.conn.execute_batch("ROLLBACK");
                let e = match e {
                    Error::Engine(e) => guard.error(e),
                    other => other,
                };
                return Err(prefix(e, &format!("statement {}: ", i + 1)));
            }
        }
    }
    if let Err(e) = guard.conn.execute_batch("COMMIT") {
        let _ = guard.conn.execute_batch("ROLLBACK");
        return Err(guard.error(e));
    }
    Ok(results)
}

fn prefix(e: Error, p: &str) -> Error {
    match e {
        Error::Sql(m) => Error::Sql(format!("{p}{m}")),
        Error::SqlDenied(m) => Error::SqlDenied(format!("{p}{m}")),
        Error::Timeout(m) => Error::Timeout(format!("{p}{m}")),
        Error::Invalid(m) => Error::Invalid(format!("{p}{m}")),
        other => other,
    }
}

/// `EXPLAIN QUERY PLAN` as a tree (rows are id, parent, unused, detail).
pub fn explain(
    conn: &mut Connection,
    access: SqlAccess,
    sql: &str,
    params: Option<&Value>,
    timeout: Duration,
) -> Result<Vec<QueryPlanNode>> {
    let rows = query(
        conn,
        access,
        &format!("EXPLAIN QUERY PLAN {sql}"),
        params,
        timeout,
        MAX_ROWS as usize,
    )?;
    let flat: Vec<(i64, i64, String)> = rows
        .rows
        .iter()
        .map(|r| {
            (
                r.first().and_then(Value::as_i64).unwrap_or(0),
                r.get(1).and_then(Value::as_i64).unwrap_or(0),
                r.get(3)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    fn children(flat: &[(i64, i64, String)], parent: i64) -> Vec<QueryPlanNode> {
        flat.iter()
            .filter(|(id, p, _)| *p == parent && *id != parent)
            .map(|(id, _, detail)| QueryPlanNode {
                id: *id,
                detail: detail.clone(),
                children: children(flat, *id),
            })
            .collect()
    }
    Ok(children(&flat, 0))
}
