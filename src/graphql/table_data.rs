//! Sources of the table-data subscriptions (`schema/subscriptions/table_data.yaml`): committed
//! row changes from change capture (`table_changes` events), and aggregates and live queries
//! computed by the engine again when the table changes.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{Map, Value};

use super::rows::{changed_columns, matches, rest_filter, row_data};
use super::sources::{DEFAULT_DATABASE, Sources, now, seconds, spawned};
use crate::api::event_source::Sequenced;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult, invalid_argument};
use crate::api::runtime::ApiError;
use crate::api::types::{
    AggregateChange, AggregateFunction, AggregateResult, ChangeType, QueryChange, RowChange,
    RowDeleted, RowInserted, RowUpdated, TableChange, TableModification, TableModified,
    TableModifiedOperation,
};
use crate::engine::tables;

/// Rows a live query returns at most (`totalCount` counts all).
const LIVE_QUERY_ROWS: i64 = 1000;

/// The received `table_modified` events, decoded by the generated resolver (`receives`).
type Received = BoxStream<'static, Result<Sequenced<TableModified>, ApiError>>;

/// Committed row changes of one database and, when given, of these tables; a broken event is
/// passed on as the subscriber's error. A database or table that does not exist is the
/// subscriber's NOT_FOUND error (and the end of the subscription), not a silent wait: the
/// database is checked now, the tables first thing on the stream (the events are already being
/// received, so nothing committed meanwhile is missed).
fn row_changes(
    sources: &Sources,
    events: Received,
    database: Option<String>,
    tables: Option<Vec<String>>,
) -> Result<BoxStream<'static, Result<Change, ApiError>>, ApiError> {
    let database = database.unwrap_or_else(|| DEFAULT_DATABASE.into());
    let db = sources.backends.engine.get(&database)?;
    let changes = matching(events, database, tables.clone());
    let Some(names) = tables.filter(|t| !t.is_empty()) else {
        return Ok(changes);
    };
    let check = async move {
        db.run(move |c| {
            names
                .iter()
                .try_for_each(|t| tables::describe(c, t).map(drop))
        })
        .await
        .map_err(ApiError::from)
    };
    let mut changes = Some(changes);
    Ok(stream::once(check)
        .flat_map(move |checked| match checked {
            Ok(()) => changes.take().unwrap_or_else(|| stream::empty().boxed()),
            Err(e) => stream::once(std::future::ready(Err(e))).boxed(),
        })
        .boxed())
}

/// The changes of `database` (and of `tables`, when given).
fn matching(
    events: Received,
    database: String,
    tables: Option<Vec<String>>,
) -> BoxStream<'static, Result<Change, ApiError>> {
    events
        .filter_map(move |event| {
            let change = match event.map(Change::from) {
                Ok(c) => (c.database == database
                    && tables.as_ref().is_none_or(|t| t.contains(&c.table)))
                .then_some(Ok(c)),
                Err(e) => Some(Err(e)),
            };
            std::future::ready(change)
        })
        .boxed()
}

/// Each change `keep` maps to an item; errors pass through.
fn each<U: Send + 'static>(
    changes: BoxStream<'static, Result<Change, ApiError>>,
    mut keep: impl FnMut(Change) -> Option<U> + Send + 'static,
) -> BoxStream<'static, Result<U, ApiError>> {
    changes
        .filter_map(move |change| std::future::ready(change.map(&mut keep).transpose()))
        .boxed()
}

/// One `table_modified` event.
#[derive(Debug, Clone)]
struct Change {
    /// In the `table_changes` topic: what a subscriber resumes after.
    sequence: u64,
    table: String,
    database: String,
    operation: ChangeType,
    row_id: String,
    /// After the change (before it, for DELETE).
    row: Map<String, Value>,
    old: Option<Map<String, Value>>,
    transaction_id: String,
}

impl From<Sequenced<TableModified>> for Change {
    fn from(event: Sequenced<TableModified>) -> Change {
        let Sequenced {
            sequence,
            message: e,
        } = event;
        Change {
            sequence,
            table: e.table,
            database: e.database.unwrap_or_else(|| DEFAULT_DATABASE.into()),
            operation: match e.operation {
                TableModifiedOperation::Insert => ChangeType::Insert,
                TableModifiedOperation::Update => ChangeType::Update,
                TableModifiedOperation::Delete => ChangeType::Delete,
            },
            row_id: e.row_id,
            row: e.row_data,
            old: Some(e.old_row_data).filter(|o| !o.is_empty()),
            transaction_id: e.transaction_id,
        }
    }
}

impl Change {
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

impl TableDataFields for Sources {
    fn table_changes(
        &self,
        _caller: Caller,
        args: TableChangesArgs,
        events: Received,
    ) -> SourceResult<TableChange> {
        let changes = row_changes(self, events, args.database, Some(vec![args.table]))?;
        Ok(each(changes, |c| {
            Some(TableChange {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                change_type: c.operation,
                row: c.row(),
                old_row: c.old.as_ref().map(|o| row_data(&c.row_id, o)),
                timestamp: now(),
            })
        }))
    }

    fn row_inserted(
        &self,
        _caller: Caller,
        args: RowInsertedArgs,
        events: Received,
    ) -> SourceResult<RowInserted> {
        let changes = row_changes(self, events, args.database, Some(vec![args.table]))?;
        let clause = args.where_clause;
        Ok(each(changes, move |c| {
            let keep = c.operation == ChangeType::Insert
                && clause.as_ref().is_none_or(|w| matches(w, &c.row));
            keep.then(|| RowInserted {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                row: c.row(),
                timestamp: now(),
            })
        }))
    }

    fn row_updated(
        &self,
        _caller: Caller,
        args: RowUpdatedArgs,
        events: Received,
    ) -> SourceResult<RowUpdated> {
        let changes = row_changes(self, events, args.database, Some(vec![args.table]))?;
        Ok(each(changes, |c| {
            let old = c
                .old
                .clone()
                .filter(|_| c.operation == ChangeType::Update)?;
            Some(RowUpdated {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                old_row: row_data(&c.row_id, &old),
                new_row: c.row(),
                changed_fields: changed_columns(&old, &c.row),
                timestamp: now(),
            })
        }))
    }

    fn row_deleted(
        &self,
        _caller: Caller,
        args: RowDeletedArgs,
        events: Received,
    ) -> SourceResult<RowDeleted> {
        let changes = row_changes(self, events, args.database, Some(vec![args.table]))?;
        Ok(each(changes, |c| {
            (c.operation == ChangeType::Delete).then(|| RowDeleted {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                id: c.row_id.clone(),
                old_row: c.row(),
                timestamp: now(),
            })
        }))
    }

    fn row_changes(
        &self,
        _caller: Caller,
        args: RowChangesArgs,
        events: Received,
    ) -> SourceResult<RowChange> {
        let changes = row_changes(self, events, args.database, Some(vec![args.table]))?;
        let id = args.id;
        Ok(each(changes, move |c| {
            (c.row_id == id).then(|| RowChange {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                id: c.row_id.clone(),
                change_type: c.operation,
                row: c.row(),
                timestamp: now(),
            })
        }))
    }

    fn aggregate_changes(
        &self,
        _caller: Caller,
        args: AggregateChangesArgs,
        events: Received,
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
        let mut changes = matching(events, database, Some(vec![table.clone()]));
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
                if !keep_going(changes.next().await, &tx).await {
                    return;
                }
                tokio::time::sleep_until(started + interval).await;
                // A broken event among them still reaches the subscriber.
                while let Some(Some(next)) = futures_util::FutureExt::now_or_never(changes.next()) {
                    if !keep_going(Some(next), &tx).await {
                        return;
                    }
                }
            }
        }))
    }

    fn query_changes(
        &self,
        _caller: Caller,
        args: QueryChangesArgs,
        events: Received,
    ) -> SourceResult<QueryChange> {
        let poll = seconds("pollIntervalSeconds", args.poll_interval_seconds, 30)?;
        let database = args
            .database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        let db = self.backends.engine.get(&database)?;
        let table = args.table.clone();
        let filter = args.where_clause.as_ref().map(rest_filter);
        let mut changes = matching(events, database, Some(vec![table.clone()]));
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
                    next = changes.next() => if !keep_going(next, &tx).await { return },
                    () = tokio::time::sleep(poll) => {}
                }
                // A broken event among them still reaches the subscriber.
                while let Some(Some(next)) = futures_util::FutureExt::now_or_never(changes.next()) {
                    if !keep_going(Some(next), &tx).await {
                        return;
                    }
                }
            }
        }))
    }

    fn table_modifications(
        &self,
        _caller: Caller,
        args: TableModificationsArgs,
        events: Received,
    ) -> SourceResult<TableModification> {
        let changes = row_changes(self, events, args.database, args.tables)?;
        let types = args.change_types;
        Ok(each(changes, move |c| {
            let keep = types.as_ref().is_none_or(|t| t.contains(&c.operation));
            keep.then(|| TableModification {
                sequence: c.sequence as i64,
                table: c.table.clone(),
                change_type: c.operation,
                row_id: c.row_id.clone(),
                row: c.row(),
                changed_columns: c.changed(),
                transaction_id: c.transaction_id.clone(),
                timestamp: now(),
            })
        }))
    }
}

/// Whether a recomputing source goes on after waiting for a change: not when the changes ended,
/// nor when one was broken (its error is sent to the subscriber first). Lost changes are a
/// change like any other: the recomputation reads the table, so the subscriber misses nothing.
async fn keep_going<T>(
    next: Option<Result<Change, ApiError>>,
    tx: &tokio::sync::mpsc::Sender<Result<T, ApiError>>,
) -> bool {
    match next {
        Some(Ok(_)) => true,
        Some(Err(e)) if e.code == crate::api::event_source::EVENTS_LOST_CODE => true,
        Some(Err(e)) => {
            let _ = tx.send(Err(e)).await;
            false
        }
        None => false,
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
