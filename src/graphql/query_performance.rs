//! Sources of the statement subscriptions: the running statements (the REST listing, repeated
//! at the subscriber's interval), one statement followed by id until it ends, and the slow-query
//! log and plan changes as the `queries` topic announces them. Visibility is the REST routes':
//! a caller sees their own statements, database:admin everyone's.

use futures_util::stream::{BoxStream, StreamExt};

use super::sources::{Sources, now, seconds, spawned};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult, invalid_argument};
use crate::api::runtime::RequestContext;
use crate::api::types::{
    ActiveQuery, ActiveQueryState, QueryExecutionProgress, QueryExecutionStatus,
    QueryPlanChangeNotice, QueryPlanChanged, RunningQueryState, SlowQueryLogged, SlowQueryNotice,
};
use crate::api::{ApiError, Permission, SqlApi};
use crate::engine::queries::{Outcome, QueryState, Running};

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn elapsed_ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) fn active_queries_stream(
    s: &Sources,
    args: ActiveQueriesStreamArgs,
    ctx: RequestContext,
) -> SourceResult<ActiveQuery> {
    let every = seconds("refreshIntervalSeconds", args.refresh_interval_seconds, 5)?;
    // The REST listing itself, so the same statements are visible to the same callers.
    let sql = std::sync::Arc::clone(&s.backends.sql);
    let user = args.user_filter;
    Ok(spawned(move |tx| async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let list = match sql.list_running_queries(ctx.clone()).await {
                Ok(list) => list,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let at = now();
            for q in list.queries {
                if user.as_ref().is_some_and(|u| *u != q.user) {
                    continue;
                }
                let state = match q.state {
                    RunningQueryState::Waiting => ActiveQueryState::Waiting,
                    RunningQueryState::Executing => ActiveQueryState::Executing,
                    RunningQueryState::Cancelling => ActiveQueryState::Cancelling,
                };
                let active = ActiveQuery {
                    query_id: q.query_id,
                    session_id: q.session_id,
                    username: q.user,
                    database: Some(q.database),
                    sql_text: q.sql,
                    wait_event: (state == ActiveQueryState::Waiting).then(|| "connection".into()),
                    state,
                    duration_ms: q.elapsed_ms,
                    rows_processed: int(q.rows_so_far),
                    timestamp: at,
                };
                if tx.send(Ok(active)).await.is_err() {
                    return;
                }
            }
        }
    }))
}

pub(super) fn query_execution(
    s: &Sources,
    caller: &Caller,
    args: QueryExecutionArgs,
) -> SourceResult<QueryExecutionProgress> {
    let every = seconds("intervalSeconds", args.interval_seconds, 1)?;
    let id = args.query_id;
    // As GET /api/v1/sql/queries/{query_id}: another user's statement is as unknown as none.
    let query = s
        .backends
        .queries
        .running
        .get(&id)
        .filter(|q| crate::sql::visible(q, &caller.identity))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no running query `{id}` (it may have finished, or not be yours)"
            ))
        })?;
    Ok(spawned(move |tx| async move {
        let finished = query.until_finished();
        tokio::pin!(finished);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut finished => {
                    let _ = tx.send(Ok(ended(&query))).await;
                    return;
                }
                _ = tick.tick() => {
                    if tx.send(Ok(running(&query))).await.is_err() {
                        return;
                    }
                }
            }
        }
    }))
}

fn running(q: &Running) -> QueryExecutionProgress {
    QueryExecutionProgress {
        query_id: q.id.clone(),
        status: match q.state() {
            QueryState::Waiting => QueryExecutionStatus::Waiting,
            QueryState::Executing => QueryExecutionStatus::Executing,
            QueryState::Cancelling => QueryExecutionStatus::Cancelling,
        },
        progress_percent: None,
        rows_affected: int(q.rows_so_far()),
        elapsed_ms: elapsed_ms(q.started.elapsed()),
        message: None,
        timestamp: now(),
    }
}

fn ended(q: &Running) -> QueryExecutionProgress {
    let Some(end) = q.ended() else {
        // Every runner reports its end before leaving the registry; should one not, say so
        // rather than guess.
        return QueryExecutionProgress {
            status: QueryExecutionStatus::Failed,
            message: Some("the statement ended without reporting its outcome".into()),
            ..running(q)
        };
    };
    let (status, progress_percent) = match end.outcome {
        Outcome::Completed => (QueryExecutionStatus::Completed, Some(100.0)),
        Outcome::Failed => (QueryExecutionStatus::Failed, None),
        Outcome::Cancelled => (QueryExecutionStatus::Cancelled, None),
    };
    QueryExecutionProgress {
        query_id: q.id.clone(),
        status,
        progress_percent,
        rows_affected: int(end.rows),
        elapsed_ms: elapsed_ms(end.elapsed),
        message: end.message.clone(),
        timestamp: now(),
    }
}

pub(super) fn slow_queries_stream(
    s: &Sources,
    caller: &Caller,
    args: SlowQueriesStreamArgs,
    events: BoxStream<'static, Result<SlowQueryLogged, ApiError>>,
) -> SourceResult<SlowQueryNotice> {
    let logged_from = s.backends.queries.slow.threshold.as_millis();
    let threshold = match args.threshold_ms {
        None => 0.0,
        Some(ms) if ms < 0 => {
            return Err(invalid_argument(format!(
                "`thresholdMs` must be at least 0, got {ms}"
            )));
        }
        Some(ms) if (ms as u128) < logged_from => {
            return Err(invalid_argument(format!(
                "`thresholdMs` {ms} is below the slow-query log's threshold \
                 (queries.slow_threshold_ms = {logged_from}): faster statements are not recorded"
            )));
        }
        Some(ms) => ms as f64,
    };
    // As GET /api/v1/sql/slow-queries: database:admin sees everyone's, others their own.
    let all = caller.has(Permission::DatabaseAdmin);
    let me = caller.identity.user_id.clone();
    Ok(events
        .filter_map(move |event| {
            let notice = match event {
                Ok(q) => ((all || q.user_id == me) && q.duration_ms >= threshold).then_some(q),
                Err(e) => return std::future::ready(Some(Err(e))),
            }
            .map(|q| SlowQueryNotice {
                query_id: q.query_id,
                sql_text: q.sql,
                execution_time_ms: q.duration_ms,
                username: q.user,
                database: q.database,
                rows_returned: int(q.rows),
                outcome: Some(q.outcome.to_string()),
                error: q.error,
                start_time: q.started_at,
                end_time: q.ended_at,
            });
            std::future::ready(notice.map(Ok))
        })
        .boxed())
}

pub(super) fn query_plan_changes(
    events: BoxStream<'static, Result<QueryPlanChanged, ApiError>>,
    args: QueryPlanChangesArgs,
) -> SourceResult<QueryPlanChangeNotice> {
    let table = args.table;
    if table.as_deref().is_some_and(str::is_empty) {
        return Err(invalid_argument("`table` must not be empty"));
    }
    Ok(events
        .filter_map(move |event| {
            let notice = match event {
                Ok(c) => Some(c),
                Err(e) => return std::future::ready(Some(Err(e))),
            }
            .filter(|c| {
                table
                    .as_ref()
                    .is_none_or(|t| names_table(&c.normalized_sql, t))
            })
            .map(|c| QueryPlanChangeNotice {
                query_hash: c.query_hash,
                database: c.database,
                normalized_sql: c.normalized_sql,
                old_plan: c.old_plan,
                new_plan: c.new_plan,
                estimated_cost_change: None,
                reason: c.reason,
                timestamp: c.changed_at,
            });
            std::future::ready(notice.map(Ok))
        })
        .boxed())
}

/// Whether a (normalized) statement names `table` as an identifier, quoted or not, in any case.
/// Plans are no help here: EXPLAIN QUERY PLAN shows a table's alias when it has one.
fn names_table(sql: &str, table: &str) -> bool {
    identifiers(sql).any(|i| i.eq_ignore_ascii_case(table))
}

fn identifiers(sql: &str) -> impl Iterator<Item = String> + '_ {
    let mut chars = sql.chars().peekable();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            let close = match c {
                '"' | '`' => Some(c),
                '[' => Some(']'),
                _ => None,
            };
            if let Some(close) = close {
                return Some(chars.by_ref().take_while(|&n| n != close).collect());
            }
            if c.is_alphanumeric() || c == '_' || c == '$' {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if !(n.is_alphanumeric() || n == '_' || n == '$') {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                return Some(word);
            }
        }
    })
}

impl QueryPerformanceFields for Sources {
    fn active_queries_stream(
        &self,
        _caller: Caller,
        args: ActiveQueriesStreamArgs,
        rest: RequestContext,
    ) -> SourceResult<ActiveQuery> {
        active_queries_stream(self, args, rest)
    }

    fn query_execution(
        &self,
        caller: Caller,
        args: QueryExecutionArgs,
    ) -> SourceResult<QueryExecutionProgress> {
        query_execution(self, &caller, args)
    }

    fn slow_queries_stream(
        &self,
        caller: Caller,
        args: SlowQueriesStreamArgs,
        events: BoxStream<'static, Result<SlowQueryLogged, ApiError>>,
    ) -> SourceResult<SlowQueryNotice> {
        slow_queries_stream(self, &caller, args, events)
    }

    fn query_plan_changes(
        &self,
        _caller: Caller,
        args: QueryPlanChangesArgs,
        events: BoxStream<'static, Result<QueryPlanChanged, ApiError>>,
    ) -> SourceResult<QueryPlanChangeNotice> {
        query_plan_changes(events, args)
    }
}

#[cfg(test)]
mod tests {
    use super::names_table;

    #[test]
    fn a_table_is_named_quoted_or_not_but_not_as_part_of_a_word() {
        assert!(names_table("SELECT * FROM users u WHERE u.id = ?", "users"));
        assert!(names_table("SELECT * FROM \"Users\" WHERE id = ?", "users"));
        assert!(names_table("SELECT a FROM [my table]", "my table"));
        assert!(!names_table("SELECT * FROM users_archive", "users"));
        assert!(!names_table("SELECT * FROM orders", "users"));
    }
}
