//! Statements running now, so they can be listed and cancelled (`sqlite3_interrupt`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::sync::lock;
use chrono::{DateTime, Utc};
use rusqlite::InterruptHandle;

pub struct Running {
    pub id: String,
    pub sql: String,
    pub database: String,
    pub user_id: String,
    pub username: String,
    /// The login or API-key session that sent it.
    pub session_id: String,
    pub transaction_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub started: Instant,
    /// Rows the statement has produced so far (counted in the row loop).
    pub rows: Arc<AtomicU64>,
    interrupt: Mutex<Option<InterruptHandle>>,
    cancelled: AtomicBool,
    /// Set once the statement has a connection.
    executing: AtomicBool,
    /// How it ended, told by its runner before it leaves the registry.
    ended: OnceLock<Ended>,
    /// Flips to `true` when it leaves the registry, so followers (GraphQL's `queryExecution`)
    /// learn the end at once instead of polling for it.
    finished: tokio::sync::watch::Sender<bool>,
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Ended {
    pub outcome: Outcome,
    /// Rows a query returned or an execute or batch changed.
    pub rows: u64,
    /// The error, unless it completed.
    pub message: Option<String>,
    pub elapsed: Duration,
}

/// Where a registered statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// Waiting for a connection (the pool is at its limit) or for the transaction's connection.
    Waiting,
    Executing,
    /// Interrupted; its request is about to answer 409.
    Cancelling,
}

impl Running {
    /// The connection now executing this statement.
    /// Lets `cancel` interrupt the statement from now on; a conflict when it was cancelled
    /// before reaching its connection, and must not start. A cancel arriving between
    /// registration and this call (the wait for a blocking thread and a pooled connection) would
    /// otherwise find no handle and be lost, and the statement would run to its timeout.
    pub fn attach(&self, handle: InterruptHandle) -> crate::error::Result<()> {
        let mut guard = lock(&self.interrupt);
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(crate::error::Error::Conflict(format!(
                "query {} was cancelled",
                self.id
            )));
        }
        *guard = Some(handle);
        self.executing.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn state(&self) -> QueryState {
        if self.was_cancelled() {
            QueryState::Cancelling
        } else if self.executing.load(Ordering::SeqCst) {
            QueryState::Executing
        } else {
            QueryState::Waiting
        }
    }

    pub fn rows_so_far(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Called before the connection is released, so no cancel reaches its next user.
    pub fn detach(&self) {
        lock(&self.interrupt).take();
    }

    /// Interrupts the statement if it is executing; one that has not reached its connection yet
    /// is refused there (`attach`). `false` only when it already finished executing.
    pub fn cancel(&self) -> bool {
        let guard = lock(&self.interrupt);
        self.cancelled.store(true, Ordering::SeqCst);
        match guard.as_ref() {
            Some(handle) => {
                handle.interrupt();
                true
            }
            None => !self.executing.load(Ordering::SeqCst),
        }
    }

    pub fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Records how the statement ended (the first report wins).
    pub fn finish(&self, outcome: Outcome, rows: u64, message: Option<String>) {
        let _ = self.ended.set(Ended {
            outcome,
            rows,
            message,
            elapsed: self.started.elapsed(),
        });
    }

    /// How it ended, once its runner has said.
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.get()
    }

    /// Resolves once the statement has left the registry (at once if it already has).
    pub fn until_finished(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.finished.subscribe();
        async move {
            let _ = rx.wait_for(|done| *done).await;
        }
    }
}

/// Who sent a statement.
pub struct Sender<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub session_id: &'a str,
}

/// Query monitoring: which statements count as slow and how many are remembered.
#[derive(Debug, Clone)]
pub struct QueriesConfig {
    /// A statement running at least this long is recorded in the slow-query log.
    pub slow_threshold: Duration,
    /// Entries the slow-query log keeps (the newest).
    pub slow_log_capacity: usize,
}

/// What the SQL subsystem watches: statements running now, the slow ones, and plans.
pub struct QueryMonitor {
    /// Shared with the query stream (/api/v1/ws/query), so both are listed and cancellable.
    pub running: Arc<RunningQueries>,
    pub slow: super::slow_log::SlowLog,
    pub plans: super::plans::PlanTracker,
}

impl QueryMonitor {
    pub fn new(config: &QueriesConfig) -> QueryMonitor {
        QueryMonitor {
            running: Arc::default(),
            slow: super::slow_log::SlowLog::new(config.slow_threshold, config.slow_log_capacity),
            plans: super::plans::PlanTracker::default(),
        }
    }
}

#[derive(Default)]
pub struct RunningQueries {
    running: Mutex<HashMap<String, Arc<Running>>>,
}

/// Removes the statement from the registry when the call ends, however it ends.
pub struct Registered {
    registry: Arc<RunningQueries>,
    pub query: Arc<Running>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.registry.running).remove(&self.query.id);
        self.query.finished.send_replace(true);
    }
}

impl RunningQueries {
    /// A fresh id for a statement: `q-` and 16 hex digits.
    pub fn new_id() -> String {
        format!("q-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
    }

    pub fn register(
        self: &Arc<Self>,
        sql: &str,
        database: &str,
        sender: &Sender<'_>,
        transaction_id: Option<&str>,
    ) -> Registered {
        let id = Self::new_id();
        self.register_as(id, sql, database, sender, transaction_id)
            .unwrap_or_else(|| unreachable!("a fresh uuid-based id is unique"))
    }

    /// Registers under a caller-chosen id (a streamed query's `query_id`); `None` if a running
    /// statement already has it.
    pub fn register_as(
        self: &Arc<Self>,
        id: String,
        sql: &str,
        database: &str,
        sender: &Sender<'_>,
        transaction_id: Option<&str>,
    ) -> Option<Registered> {
        let mut running = lock(&self.running);
        if running.contains_key(&id) {
            return None;
        }
        let query = Arc::new(Running {
            id,
            sql: sql.to_string(),
            database: database.to_string(),
            user_id: sender.user_id.to_string(),
            username: sender.username.to_string(),
            session_id: sender.session_id.to_string(),
            transaction_id: transaction_id.map(str::to_string),
            started_at: Utc::now(),
            started: Instant::now(),
            rows: Arc::default(),
            interrupt: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            executing: AtomicBool::new(false),
            ended: OnceLock::new(),
            finished: tokio::sync::watch::channel(false).0,
        });
        running.insert(query.id.clone(), Arc::clone(&query));
        Some(Registered {
            registry: Arc::clone(self),
            query,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Running>> {
        lock(&self.running).get(id).cloned()
    }

    /// Interrupts every statement of a session; returns how many were executing.
    pub fn cancel_session(&self, session_id: &str) -> usize {
        self.list()
            .iter()
            .filter(|q| q.session_id == session_id)
            .filter(|q| q.cancel())
            .count()
    }

    /// How many statements are running now.
    pub fn count(&self) -> usize {
        lock(&self.running).len()
    }

    /// Oldest first.
    pub fn list(&self) -> Vec<Arc<Running>> {
        let mut all: Vec<_> = lock(&self.running).values().cloned().collect();
        all.sort_by_key(|q| q.started);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(running: &Arc<RunningQueries>) -> Registered {
        let sender = Sender {
            user_id: "u",
            username: "alice",
            session_id: "s",
        };
        running.register("SELECT 1", "default", &sender, None)
    }

    #[test]
    fn a_cancel_before_the_statement_reaches_its_connection_is_not_lost() {
        let running = Arc::new(RunningQueries::default());
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let early = registered(&running);
        assert!(early.query.cancel(), "it will be stopped");
        assert!(
            early.query.attach(conn.get_interrupt_handle()).is_err(),
            "refused at its connection"
        );

        let executing = registered(&running);
        assert!(executing.query.attach(conn.get_interrupt_handle()).is_ok());
        assert!(executing.query.cancel(), "interrupted");
        let done = registered(&running);
        assert!(done.query.attach(conn.get_interrupt_handle()).is_ok());
        done.query.detach();
        assert!(!done.query.cancel(), "it already finished executing");
    }
}
