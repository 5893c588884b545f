//! Open transactions: each holds a connection across requests until commit, rollback or the idle
//! timeout. Ended ones are remembered (the newest 1,000) so a client can learn why its
//! transaction is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::capture::Actor;
use super::catalog::{Database, Held};
use super::locks::{LockManager, TxMeta};
use super::port::{Emit, emit};
use crate::api::types::{
    TransactionEvent, TransactionEventEventType, TransactionEventMode, TransactionInfo,
    TransactionState,
};
use crate::error::{Error, Result};
use crate::sync::lock;

const REMEMBERED: usize = 1000;

pub struct Transaction {
    pub owner_id: String,
    /// The login or API-key session that began it.
    pub session_id: String,
    info: Mutex<TransactionInfo>,
    held: Mutex<Option<Held>>,
    last_used: Mutex<Instant>,
}

impl Transaction {
    pub fn info(&self) -> TransactionInfo {
        lock(&self.info).clone()
    }

    /// Who this transaction is, for the lock manager.
    pub fn lock_meta(&self) -> TxMeta {
        let info = lock(&self.info);
        TxMeta {
            transaction_id: info.transaction_id.clone(),
            owner: info.owner.clone(),
            database: info.database.clone(),
            started_at: info.started_at,
        }
    }

    /// Counts a lock request as activity, so the idle reaper leaves the transaction alone.
    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    pub fn database(&self) -> String {
        lock(&self.info).database.clone()
    }

    /// Runs `f` on the held connection (blocking); counts the statement and the activity.
    pub fn run<T>(
        &self,
        mut actor: Actor,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        // The transaction's changes carry its id, whoever runs its statements.
        actor.transaction_id = Some(lock(&self.info).transaction_id.clone());
        let mut held = lock(&self.held);
        let held = held
            .as_mut()
            .ok_or_else(|| Error::Conflict("the transaction has ended".into()))?;
        let result = held.run(actor, f);
        lock(&self.info).statements += 1;
        *lock(&self.last_used) = Instant::now();
        result
    }

    /// What SQLite says the held connection holds (no snapshot yet, a read snapshot, the write
    /// lock); `None` while a statement runs on it.
    pub fn holds(&self) -> Option<rusqlite::TransactionState> {
        self.held.try_lock().ok()?.as_ref()?.state()
    }

    pub fn savepoint(&self, action: &str, name: &str) -> Result<TransactionInfo> {
        let mut held = lock(&self.held);
        let held = held
            .as_mut()
            .ok_or_else(|| Error::Conflict("the transaction has ended".into()))?;
        let mut info = lock(&self.info);
        let known = info.savepoints.iter().rposition(|s| s == name);
        match (action, known) {
            ("set", _) => {}
            (_, None) => return Err(Error::NotFound(format!("no savepoint `{name}`"))),
            _ => {}
        }
        held.savepoint(action, name).map_err(|e| match e {
            Error::Engine(e) => Error::Sql(e.to_string()),
            other => other,
        })?;
        match (action, known) {
            ("set", _) => info.savepoints.push(name.to_string()),
            ("release", Some(pos)) => info.savepoints.truncate(pos),
            (_, Some(pos)) => info.savepoints.truncate(pos + 1),
            _ => {}
        }
        *lock(&self.last_used) = Instant::now();
        Ok(info.clone())
    }
}

/// Who begins a transaction.
pub struct Owner<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub session_id: &'a str,
}

#[derive(Default)]
pub struct Transactions {
    open: Mutex<HashMap<String, Arc<Transaction>>>,
    ended: Mutex<VecDeque<TransactionInfo>>,
    /// Where `transaction_event`s go; none in unit use.
    events: Option<Arc<dyn Emit>>,
    /// Locks taken through the API; released when their transaction ends.
    locks: Arc<LockManager>,
}

pub fn validate_savepoint(name: &str) -> Result<()> {
    if (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(Error::Invalid(
            "a savepoint name is 1 to 64 letters, digits or `_`".into(),
        ))
    }
}

impl Transactions {
    /// Transactions that announce BEGIN, COMMIT and ROLLBACK to `sink`.
    pub fn with_events(sink: Arc<dyn Emit>) -> Transactions {
        Transactions {
            locks: Arc::new(LockManager::with_events(Arc::clone(&sink))),
            events: Some(sink),
            ..Transactions::default()
        }
    }

    pub fn locks(&self) -> &Arc<LockManager> {
        &self.locks
    }

    fn announce(
        &self,
        event_type: TransactionEventEventType,
        info: &TransactionInfo,
        owner_id: &str,
        session_id: &str,
        modified_rows: u64,
    ) {
        let Some(sink) = &self.events else {
            return;
        };
        let mode = match info.mode.as_str() {
            "immediate" => TransactionEventMode::Immediate,
            "exclusive" => TransactionEventMode::Exclusive,
            _ => TransactionEventMode::Deferred,
        };
        let end = info.ended_at.unwrap_or_else(Utc::now);
        let reason = match event_type {
            // The client's own commit or rollback needs no explanation; anything else does.
            TransactionEventEventType::Begin => None,
            _ => info
                .end_reason
                .clone()
                .filter(|r| r != "commit" && r != "rollback"),
        };
        emit(
            sink.as_ref(),
            &TransactionEvent {
                event_type,
                transaction_id: info.transaction_id.clone(),
                database: info.database.clone(),
                user_id: owner_id.to_string(),
                session_id: Some(session_id.to_string()).filter(|s| !s.is_empty()),
                username: info.owner.clone(),
                mode,
                read_only: info.read_only,
                duration_ms: (end - info.started_at).num_microseconds().unwrap_or(0) as f64
                    / 1000.0,
                statements: i64::try_from(info.statements).unwrap_or(i64::MAX),
                modified_rows: i64::try_from(modified_rows).unwrap_or(i64::MAX),
                reason,
            },
        );
    }

    /// Begins a transaction (blocking).
    pub fn begin(
        &self,
        db: &Arc<Database>,
        owner: &Owner<'_>,
        mode: &str,
        read_only: bool,
    ) -> Result<TransactionInfo> {
        let held = db.begin(mode, read_only)?;
        let info = TransactionInfo {
            transaction_id: format!("txn-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            database: db.name.clone(),
            mode: mode.to_string(),
            read_only,
            state: TransactionState::Active,
            owner: owner.username.to_string(),
            started_at: Utc::now(),
            ended_at: None,
            end_reason: None,
            statements: 0,
            savepoints: Vec::new(),
        };
        let tx = Arc::new(Transaction {
            owner_id: owner.user_id.to_string(),
            session_id: owner.session_id.to_string(),
            info: Mutex::new(info.clone()),
            held: Mutex::new(Some(held)),
            last_used: Mutex::new(Instant::now()),
        });
        lock(&self.open).insert(info.transaction_id.clone(), tx);
        self.announce(
            TransactionEventEventType::Begin,
            &info,
            owner.user_id,
            owner.session_id,
            0,
        );
        Ok(info)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Transaction>> {
        lock(&self.open).get(id).cloned()
    }

    /// Ids of the open transactions of a session.
    pub fn of_session(&self, session_id: &str) -> Vec<String> {
        lock(&self.open)
            .iter()
            .filter(|(_, t)| t.session_id == session_id)
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn ended(&self, id: &str) -> Option<TransactionInfo> {
        lock(&self.ended)
            .iter()
            .find(|i| i.transaction_id == id)
            .cloned()
    }

    pub fn list(&self) -> Vec<(String, TransactionInfo)> {
        let mut all: Vec<_> = lock(&self.open)
            .values()
            .map(|t| (t.owner_id.clone(), t.info()))
            .collect();
        all.sort_by_key(|(_, info)| info.started_at);
        all
    }

    /// Every open transaction's database and what its connection holds (see `Transaction::holds`).
    pub fn holdings(&self) -> Vec<(String, Option<rusqlite::TransactionState>)> {
        let open: Vec<Arc<Transaction>> = lock(&self.open).values().cloned().collect();
        open.iter().map(|t| (t.database(), t.holds())).collect()
    }

    /// Commits or rolls back (blocking) and remembers how it ended.
    pub fn finish(&self, id: &str, commit: bool, reason: &str) -> Result<TransactionInfo> {
        let tx = lock(&self.open)
            .remove(id)
            .ok_or_else(|| Error::NotFound(format!("no open transaction `{id}`")))?;
        let held = lock(&tx.held).take();
        // Counted before COMMIT/ROLLBACK, which hand the changes on or clear them.
        let modified_rows = held.as_ref().map_or(0, Held::modified_rows);
        let result = match held {
            Some(h) => h.finish(commit),
            None => Ok(()),
        };
        let mut info = tx.info();
        info.state = match (&result, commit) {
            (Ok(()), true) => TransactionState::Committed,
            _ => TransactionState::RolledBack,
        };
        info.ended_at = Some(Utc::now());
        info.end_reason = Some(match &result {
            Ok(()) => reason.to_string(),
            Err(e) => format!("commit failed, rolled back: {e}"),
        });
        info.savepoints.clear();
        // Only now, with SQLite's transaction over, may others have what it locked.
        self.locks.release_all(id, reason);
        let mut ended = lock(&self.ended);
        if ended.len() == REMEMBERED {
            ended.pop_front();
        }
        ended.push_back(info.clone());
        drop(ended);
        let event_type = match info.state {
            TransactionState::Committed => TransactionEventEventType::Commit,
            _ => TransactionEventEventType::Rollback,
        };
        // A failed COMMIT rolled back: the same rows were discarded instead.
        self.announce(
            event_type,
            &info,
            &tx.owner_id,
            &tx.session_id,
            modified_rows,
        );
        result.map(|()| info).map_err(|e| match e {
            Error::Engine(e) => Error::Sql(e.to_string()),
            other => other,
        })
    }

    /// Rolls back transactions idle longer than `limit` that are not running a statement nor
    /// waiting for a lock (a wait is bounded by its own timeout).
    pub fn reap(&self, limit: Duration) {
        let idle: Vec<String> = lock(&self.open)
            .iter()
            .filter(|(id, t)| {
                lock(&t.last_used).elapsed() >= limit
                    && t.held.try_lock().is_ok()
                    && !self.locks.is_waiting(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            let reason = format!("rolled back after {} s idle", limit.as_secs());
            let _ = self.finish(&id, false, &reason);
        }
    }
}
