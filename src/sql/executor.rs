//! One lifecycle for every statement a client sends, whichever transport carried it (REST SQL,
//! GraphQL through the SQL API, `/api/v1/ws/query`): registered among the running queries while
//! it runs (listed, cancellable), then its end is recorded once and told to every observer (the
//! slow-query log, the sender's session). Before this, the stream repeated part of the REST path
//! and its statements never reached the slow log or the session's count.

use std::sync::Arc;

use crate::api::runtime::Identity;
use crate::api::types::{SlowQuery, SlowQueryLogged, SlowQueryOutcome};
use crate::auth::sessions::SessionRegistry;
use crate::engine::queries::{Outcome, QueryMonitor, Registered, Running, RunningQueries, Sender};
use crate::events::Bus;

/// How a statement ended, as observers see it.
pub struct Finished<'a> {
    pub query: &'a Running,
    /// Where it ran (a transaction's database may differ from the one it was registered on).
    pub database: &'a str,
    pub outcome: Outcome,
    /// Rows a query returned or a write changed; for a failure, the rows produced before it.
    pub rows: u64,
    pub error: Option<&'a str>,
}

/// Told of every statement's end, after the running-query registry has recorded it.
pub trait Observer: Send + Sync {
    fn finished(&self, statement: &Finished<'_>);
}

pub struct Executor {
    running: Arc<RunningQueries>,
    observers: Vec<Box<dyn Observer>>,
}

impl Executor {
    pub fn new(running: Arc<RunningQueries>, observers: Vec<Box<dyn Observer>>) -> Executor {
        Executor { running, observers }
    }

    /// The observers every server has: the slow-query log and session activity.
    pub fn standard(
        monitor: &Arc<QueryMonitor>,
        bus: &Arc<Bus>,
        sessions: &Arc<SessionRegistry>,
    ) -> Executor {
        Executor::new(
            Arc::clone(&monitor.running),
            vec![
                Box::new(SlowLog {
                    monitor: Arc::clone(monitor),
                    bus: Arc::clone(bus),
                }),
                Box::new(SessionActivity(Arc::clone(sessions))),
            ],
        )
    }

    /// Lists a statement of `identity` among the running queries until the returned guard drops.
    /// With `id`, under that id (a streamed query's `query_id`); `None` if a running statement
    /// already has it.
    pub fn register(
        &self,
        id: Option<String>,
        identity: &Identity,
        sql: &str,
        database: &str,
        transaction: Option<&str>,
    ) -> Option<Registered> {
        let session_id = crate::auth::sessions::session_id(&identity.credential);
        let sender = Sender {
            user_id: &identity.user_id,
            username: &identity.username,
            session_id: &session_id,
        };
        match id {
            Some(id) => self
                .running
                .register_as(id, sql, database, &sender, transaction),
            None => Some(self.running.register(sql, database, &sender, transaction)),
        }
    }

    /// Records how the statement ended and tells the observers. Call it once, before the
    /// registration drops, so whoever follows the query sees its end.
    pub fn finish(&self, statement: Finished<'_>) {
        let message = statement.error.map(str::to_string);
        statement
            .query
            .finish(statement.outcome, statement.rows, message);
        for observer in &self.observers {
            observer.finished(&statement);
        }
    }
}

/// Records statements that ran past the threshold and announces each entry on the bus (GraphQL's
/// slowQueriesStream, /api/v1/ws subscribers).
struct SlowLog {
    monitor: Arc<QueryMonitor>,
    bus: Arc<Bus>,
}

impl Observer for SlowLog {
    fn finished(&self, s: &Finished<'_>) {
        let query = s.query;
        let took = query.started.elapsed();
        if !self.monitor.slow.is_slow(took) {
            return;
        }
        let entry = self.monitor.slow.record(
            &query.user_id,
            SlowQuery {
                id: 0,
                sql: query.sql.clone(),
                database: s.database.to_string(),
                user: query.username.clone(),
                session_id: query.session_id.clone(),
                duration_ms: took.as_secs_f64() * 1000.0,
                rows: s.rows,
                outcome: match s.outcome {
                    Outcome::Completed => SlowQueryOutcome::Completed,
                    Outcome::Failed => SlowQueryOutcome::Failed,
                    Outcome::Cancelled => SlowQueryOutcome::Cancelled,
                },
                error: s.error.map(str::to_string),
                started_at: query.started_at,
                ended_at: chrono::Utc::now(),
            },
        );
        self.bus.publish(&SlowQueryLogged {
            entry_id: entry.id,
            query_id: query.id.clone(),
            sql: entry.sql,
            database: entry.database,
            user: entry.user,
            user_id: query.user_id.clone(),
            session_id: entry.session_id,
            duration_ms: entry.duration_ms,
            rows: entry.rows,
            outcome: entry.outcome,
            error: entry.error,
            started_at: entry.started_at,
            ended_at: entry.ended_at,
        });
    }
}

/// Counts a completed statement in its session and remembers the session's last database.
struct SessionActivity(Arc<SessionRegistry>);

impl Observer for SessionActivity {
    fn finished(&self, s: &Finished<'_>) {
        if s.outcome == Outcome::Completed {
            self.0.count_query(&s.query.session_id, s.database);
        }
    }
}
