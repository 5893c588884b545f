//! RustyDB's lock manager: advisory named and row locks that API transactions take through
//! `POST /api/v1/transactions/{id}/locks` and hold until they end. SQLite locks whole files; these
//! locks let applications serialize work on finer resources.
//!
//! - Compatibility: shared/shared is compatible; exclusive conflicts with everything.
//! - Fairness: each resource has a FIFO queue. A new request is granted at once only if it is
//!   compatible with the holders and nobody waits, so a stream of shared requests cannot starve an
//!   exclusive one. When a lock is released the queue is served from the front while requests are
//!   compatible: consecutive shared waiters are granted together, and serving stops at the first
//!   request that must still wait.
//! - Upgrades: a holder of a shared lock asking for exclusive waits ahead of new requests, for the
//!   other holders only; it keeps its lock id.
//! - Deadlocks: every request that starts waiting is checked for a cycle through its transaction
//!   in the wait-for graph (see `graph`). The victim is the cycle's youngest transaction; its
//!   waiting request fails with DEADLOCK and the caller rolls its transaction back.
//!
//! Waiting parks no thread: each waiter holds a oneshot receiver that the serving side completes.

mod graph;

pub use graph::{choose_victim, find_cycle};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::port::{Emit, emit};
use crate::api::types::{
    Deadlock, DeadlockDetected, DeadlockDetectedBy, LockEvent, LockEventEventType,
    LockEventLockMode, LockEventLockType, LockInfo, LockMode, LockState, LockType, WaitForEdge,
    WaitForGraph, WaitForNode,
};
use crate::error::{Error, Result};
use crate::sync::lock;

/// Deadlocks remembered for `GET /api/v1/transactions/deadlocks`.
const HISTORY: usize = 1000;

pub const RESOLUTION_STRATEGY: &str =
    "abort the youngest transaction of the cycle: its lock request fails and it is rolled back";

/// The transaction a request comes from.
#[derive(Debug, Clone)]
pub struct TxMeta {
    pub transaction_id: String,
    pub owner: String,
    pub database: String,
    pub started_at: DateTime<Utc>,
}

/// What is locked: a named resource or a row. Locks of different databases never meet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub lock_type: LockType,
    pub resource: String,
    pub table: Option<String>,
    pub row_id: Option<String>,
}

impl Target {
    pub fn named(name: &str) -> Target {
        Target {
            lock_type: LockType::Named,
            resource: name.to_string(),
            table: None,
            row_id: None,
        }
    }

    pub fn row(table: &str, row_id: &str) -> Target {
        Target {
            lock_type: LockType::Row,
            resource: format!("{table}/{row_id}"),
            table: Some(table.to_string()),
            row_id: Some(row_id.to_string()),
        }
    }
}

type Key = (String, LockType, String);

struct Grant {
    lock_id: String,
    tx: String,
    mode: LockMode,
    requested_at: DateTime<Utc>,
    granted_at: DateTime<Utc>,
    waited_ms: f64,
}

struct Waiter {
    lock_id: String,
    tx: String,
    mode: LockMode,
    requested_at: DateTime<Utc>,
    since: Instant,
    /// A holder of a shared lock asking for exclusive.
    upgrade: bool,
    wake: oneshot::Sender<Outcome>,
}

struct Resource {
    database: String,
    target: Target,
    holders: Vec<Grant>,
    queue: VecDeque<Waiter>,
}

/// How a wait ended when the serving side ended it.
#[derive(Debug)]
pub enum Outcome {
    Granted(Box<LockInfo>),
    Deadlock(Box<Deadlock>),
}

/// The answer to a lock request.
#[derive(Debug)]
pub enum Acquired {
    Granted(LockInfo),
    /// Queued: await `rx`. `resolved` are deadlocks this wait closed whose victims are other
    /// transactions; the caller rolls them back.
    Waiting {
        lock_id: String,
        rx: oneshot::Receiver<Outcome>,
        blocked_by: Vec<String>,
        resolved: Vec<Deadlock>,
    },
    /// Waiting would close a cycle and this transaction is the victim; roll it back.
    Victim(Box<Deadlock>),
}

#[derive(Default)]
struct Table {
    resources: BTreeMap<Key, Resource>,
    txs: HashMap<String, TxMeta>,
    next_lock: u64,
    next_deadlock: u64,
}

#[derive(Default)]
pub struct LockManager {
    table: Mutex<Table>,
    history: Mutex<VecDeque<Deadlock>>,
    detected_total: AtomicU64,
    /// Where `lock_event` and `deadlock_detected` go; none in unit use.
    events: Option<Arc<dyn Emit>>,
}

fn compatible(a: LockMode, b: LockMode) -> bool {
    a == LockMode::Shared && b == LockMode::Shared
}

fn mode_name(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Shared => "shared",
        LockMode::Exclusive => "exclusive",
    }
}

fn type_name(lock_type: LockType) -> &'static str {
    match lock_type {
        LockType::Row => "row",
        LockType::Named => "named",
    }
}

fn ms_since(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl LockManager {
    pub fn with_events(sink: Arc<dyn Emit>) -> LockManager {
        LockManager {
            events: Some(sink),
            ..LockManager::default()
        }
    }

    /// Takes a lock, or queues the request (unless `wait` is false: then a lock that is not free
    /// is a LOCK_TIMEOUT at once).
    pub fn acquire(
        &self,
        tx: &TxMeta,
        target: Target,
        mode: LockMode,
        wait: bool,
    ) -> Result<Acquired> {
        let mut table = lock(&self.table);
        let id = &tx.transaction_id;
        if let Some(w) = table.waiter_of(id) {
            return Err(Error::Conflict(format!(
                "transaction `{id}` already waits for lock `{}`; one request at a time",
                w.lock_id
            )));
        }
        table.txs.entry(id.clone()).or_insert_with(|| tx.clone());
        let key: Key = (
            tx.database.clone(),
            target.lock_type,
            target.resource.clone(),
        );
        table.next_lock += 1;
        let new_id = format!("lk-{}", table.next_lock);
        let res = table
            .resources
            .entry(key.clone())
            .or_insert_with(|| Resource {
                database: tx.database.clone(),
                target,
                holders: Vec::new(),
                queue: VecDeque::new(),
            });
        let held = res.holders.iter().position(|g| &g.tx == id);
        let upgrade = match held {
            // Asking again for what it has (or less) returns the lock it holds.
            Some(i) if res.holders[i].mode == LockMode::Exclusive || mode == LockMode::Shared => {
                let info = table.info_of_grant(&key, i);
                return Ok(Acquired::Granted(info));
            }
            Some(_) => true,
            None => false,
        };
        let others_compatible = res
            .holders
            .iter()
            .filter(|g| &g.tx != id)
            .all(|g| compatible(g.mode, mode));
        let now = Utc::now();
        if others_compatible && (upgrade || res.queue.is_empty()) {
            let i = match held {
                Some(i) => {
                    res.holders[i].mode = mode;
                    i
                }
                None => {
                    res.holders.push(Grant {
                        lock_id: new_id,
                        tx: id.clone(),
                        mode,
                        requested_at: now,
                        granted_at: now,
                        waited_ms: 0.0,
                    });
                    res.holders.len() - 1
                }
            };
            let info = table.info_of_grant(&key, i);
            self.announce(LockEventEventType::Acquired, &info, None);
            return Ok(Acquired::Granted(info));
        }
        if !wait {
            let blocked_by = table.blockers(&key, id, mode, upgrade);
            drop(table);
            return Err(Error::LockTimeout(format!(
                "lock on `{}` is not free (held or awaited by {})",
                key.2,
                blocked_by.join(", ")
            )));
        }
        let (wake, rx) = oneshot::channel();
        let lock_id = match held {
            Some(i) => res.holders[i].lock_id.clone(),
            None => new_id,
        };
        let waiter = Waiter {
            lock_id: lock_id.clone(),
            tx: id.clone(),
            mode,
            requested_at: now,
            since: Instant::now(),
            upgrade,
            wake,
        };
        if upgrade {
            let at = res.queue.iter().take_while(|w| w.upgrade).count();
            res.queue.insert(at, waiter);
        } else {
            res.queue.push_back(waiter);
        }
        if let Some(info) = table.info_of_waiter(&lock_id) {
            self.announce(LockEventEventType::Waiting, &info, None);
        }
        let mut resolved = Vec::new();
        while let Some(cycle) = find_cycle(&table.edges(), Some(id)) {
            let deadlock = self.resolve(&mut table, cycle, DeadlockDetectedBy::OnWait);
            if &deadlock.victim_transaction == id {
                return Ok(Acquired::Victim(Box::new(deadlock)));
            }
            resolved.push(deadlock);
        }
        let blocked_by = table.blockers(&key, id, mode, upgrade);
        Ok(Acquired::Waiting {
            lock_id,
            rx,
            blocked_by,
            resolved,
        })
    }

    /// Breaks `cycle`: fails the victim's waiting request (with DEADLOCK on its receiver), serves
    /// what that unblocks, records the deadlock and announces it.
    fn resolve(
        &self,
        table: &mut Table,
        cycle: Vec<WaitForEdge>,
        by: DeadlockDetectedBy,
    ) -> Deadlock {
        let members: Vec<(String, DateTime<Utc>)> = cycle
            .iter()
            .map(|e| {
                let started = table
                    .txs
                    .get(&e.waiter)
                    .map_or_else(Utc::now, |t| t.started_at);
                (e.waiter.clone(), started)
            })
            .collect();
        let victim = choose_victim(&members).unwrap_or_default().to_string();
        let impacted_queries = members
            .iter()
            .filter_map(|(tx, _)| {
                let (key, i) = table.waiter_position(tx)?;
                let w = &table.resources[&key].queue[i];
                Some(format!(
                    "{tx} waits for a {} {} lock on `{}` in {}",
                    mode_name(w.mode),
                    type_name(key.1),
                    key.2,
                    key.0
                ))
            })
            .collect();
        table.next_deadlock += 1;
        let deadlock = Deadlock {
            deadlock_id: format!("dl-{}", table.next_deadlock),
            detected_at: Utc::now(),
            detected_by: by,
            transactions: members.into_iter().map(|(tx, _)| tx).collect(),
            victim_transaction: victim.clone(),
            resource_graph: cycle,
            resolution_strategy: RESOLUTION_STRATEGY.to_string(),
            impacted_queries,
        };
        if let Some((key, i)) = table.waiter_position(&victim) {
            if let Some(info) = table.info_of_waiter_at(&key, i) {
                self.announce(
                    LockEventEventType::Deadlock,
                    &info,
                    Some(deadlock.deadlock_id.clone()),
                );
            }
            let res = table.resources.get_mut(&key).expect("resource of a waiter");
            if let Some(w) = res.queue.remove(i) {
                let _ = w.wake.send(Outcome::Deadlock(Box::new(deadlock.clone())));
            }
            self.serve(table, &key);
        }
        self.detected_total.fetch_add(1, Ordering::Relaxed);
        let mut history = lock(&self.history);
        if history.len() == HISTORY {
            history.pop_back();
        }
        history.push_front(deadlock.clone());
        drop(history);
        if let Some(sink) = &self.events {
            emit(
                sink.as_ref(),
                &DeadlockDetected {
                    deadlock_id: deadlock.deadlock_id.clone(),
                    detected_at: deadlock.detected_at,
                    transactions: deadlock.transactions.clone(),
                    victim_transaction: deadlock.victim_transaction.clone(),
                    resource_graph: deadlock.resource_graph.clone(),
                    resolution_strategy: deadlock.resolution_strategy.clone(),
                    impacted_queries: deadlock.impacted_queries.clone(),
                },
            );
        }
        deadlock
    }

    /// Grants queued requests from the front of `key`'s queue while they are compatible.
    fn serve(&self, table: &mut Table, key: &Key) {
        loop {
            let Some(res) = table.resources.get_mut(key) else {
                return;
            };
            let Some(front) = res.queue.front() else {
                break;
            };
            let free = res
                .holders
                .iter()
                .filter(|g| g.tx != front.tx)
                .all(|g| compatible(g.mode, front.mode));
            if !free {
                break;
            }
            let w = res.queue.pop_front().expect("front exists");
            let waited_ms = ms_since(w.since);
            let i = match res.holders.iter().position(|g| g.tx == w.tx) {
                Some(i) => {
                    let g = &mut res.holders[i];
                    g.mode = w.mode;
                    g.waited_ms = waited_ms;
                    i
                }
                None => {
                    res.holders.push(Grant {
                        lock_id: w.lock_id,
                        tx: w.tx,
                        mode: w.mode,
                        requested_at: w.requested_at,
                        granted_at: Utc::now(),
                        waited_ms,
                    });
                    res.holders.len() - 1
                }
            };
            let info = table.info_of_grant(key, i);
            self.announce(LockEventEventType::Acquired, &info, None);
            // A requester that went away leaves the lock with its transaction until it ends.
            let _ = w.wake.send(Outcome::Granted(Box::new(info)));
        }
        let res = &table.resources[key];
        if res.holders.is_empty() && res.queue.is_empty() {
            table.resources.remove(key);
        }
    }

    /// Withdraws a waiting request (its timeout ran out, or its caller went away). False when it
    /// no longer waits: it was granted or failed meanwhile, and its receiver holds the outcome.
    pub fn cancel_wait(&self, lock_id: &str, reason: &str) -> bool {
        let mut table = lock(&self.table);
        let Some((key, i)) = table.position_of_waiter(lock_id) else {
            return false;
        };
        if let Some(info) = table.info_of_waiter_at(&key, i) {
            self.announce(LockEventEventType::Timeout, &info, Some(reason.to_string()));
        }
        if let Some(res) = table.resources.get_mut(&key) {
            res.queue.remove(i);
        }
        self.serve(&mut table, &key);
        true
    }

    /// Releases every lock of a transaction that ended and drops its waiting request.
    pub fn release_all(&self, tx: &str, reason: &str) {
        let mut table = lock(&self.table);
        let keys: Vec<Key> = table
            .resources
            .iter()
            .filter(|(_, r)| {
                r.holders.iter().any(|g| g.tx == tx) || r.queue.iter().any(|w| w.tx == tx)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let infos: Vec<LockInfo> = {
                let res = &table.resources[&key];
                (0..res.holders.len())
                    .filter(|&i| res.holders[i].tx == tx)
                    .map(|i| table.info_of_grant(&key, i))
                    .collect()
            };
            for info in infos {
                self.announce(
                    LockEventEventType::Released,
                    &info,
                    Some(reason.to_string()),
                );
            }
            if let Some(res) = table.resources.get_mut(&key) {
                res.holders.retain(|g| g.tx != tx);
                // Dropping the sender tells a waiting request that its transaction ended.
                res.queue.retain(|w| w.tx != tx);
            }
            self.serve(&mut table, &key);
        }
        table.txs.remove(tx);
    }

    /// Releases one granted lock (an administrator's decision); its transaction stays open.
    pub fn release(&self, lock_id: &str, reason: &str) -> Result<LockInfo> {
        let mut table = lock(&self.table);
        let found = table.resources.iter().find_map(|(k, r)| {
            r.holders
                .iter()
                .position(|g| g.lock_id == lock_id)
                .map(|i| (k.clone(), i))
        });
        let Some((key, i)) = found else {
            return Err(Error::NotFound(format!("no granted lock `{lock_id}`")));
        };
        let info = table.info_of_grant(&key, i);
        self.announce(
            LockEventEventType::Released,
            &info,
            Some(reason.to_string()),
        );
        if let Some(res) = table.resources.get_mut(&key) {
            let g = res.holders.remove(i);
            // An upgrade waiting on this resource no longer holds the shared lock it upgrades.
            for w in res.queue.iter_mut().filter(|w| w.tx == g.tx) {
                w.upgrade = false;
            }
        }
        self.serve(&mut table, &key);
        Ok(info)
    }

    /// Every granted lock and waiting request, of one transaction when `tx` is given.
    pub fn locks(&self, tx: Option<&str>) -> Vec<LockInfo> {
        let table = lock(&self.table);
        let mut all = Vec::new();
        for (key, res) in &table.resources {
            for (i, g) in res.holders.iter().enumerate() {
                if tx.is_none_or(|t| t == g.tx) {
                    all.push(table.info_of_grant(key, i));
                }
            }
            for (i, w) in res.queue.iter().enumerate() {
                if tx.is_none_or(|t| t == w.tx) {
                    all.extend(table.info_of_waiter_at(key, i));
                }
            }
        }
        all
    }

    pub fn waiters(&self) -> Vec<LockInfo> {
        let mut all = self.locks(None);
        all.retain(|l| l.state == LockState::Waiting);
        all.sort_by_key(|l| l.requested_at);
        all
    }

    pub fn is_waiting(&self, tx: &str) -> bool {
        lock(&self.table).waiter_of(tx).is_some()
    }

    pub fn graph(&self) -> WaitForGraph {
        let table = lock(&self.table);
        let edges = table.edges();
        let mut transactions: Vec<WaitForNode> = table
            .txs
            .values()
            .map(|t| WaitForNode {
                transaction_id: t.transaction_id.clone(),
                owner: t.owner.clone(),
                database: t.database.clone(),
                started_at: t.started_at,
                locks_held: table
                    .resources
                    .values()
                    .flat_map(|r| &r.holders)
                    .filter(|g| g.tx == t.transaction_id)
                    .count() as u64,
                waiting: table.waiter_of(&t.transaction_id).is_some(),
            })
            .filter(|n| n.locks_held > 0 || n.waiting)
            .collect();
        transactions.sort_by(|a, b| {
            (a.started_at, &a.transaction_id).cmp(&(b.started_at, &b.transaction_id))
        });
        WaitForGraph {
            transactions,
            edges,
        }
    }

    /// Searches the whole graph and resolves every cycle found, as on wait. Returns the number of
    /// transactions and edges checked, and the deadlocks (whose victims the caller rolls back).
    pub fn detect(&self) -> (u64, u64, Vec<Deadlock>) {
        let mut table = lock(&self.table);
        let edges = table.edges();
        let checked = (table.txs.len() as u64, edges.len() as u64);
        let mut found = Vec::new();
        let mut edges = edges;
        while let Some(cycle) = find_cycle(&edges, None) {
            found.push(self.resolve(&mut table, cycle, DeadlockDetectedBy::DetectRequest));
            edges = table.edges();
        }
        (checked.0, checked.1, found)
    }

    /// Detected deadlocks, newest first, and how many were detected since start.
    pub fn history(&self) -> (Vec<Deadlock>, u64) {
        let list = lock(&self.history).iter().cloned().collect();
        (list, self.detected_total.load(Ordering::Relaxed))
    }

    fn announce(&self, event_type: LockEventEventType, info: &LockInfo, reason: Option<String>) {
        let Some(sink) = &self.events else {
            return;
        };
        emit(
            sink.as_ref(),
            &LockEvent {
                event_type,
                lock_id: info.lock_id.clone(),
                transaction_id: info.transaction_id.clone(),
                database: info.database.clone(),
                lock_type: match info.lock_type {
                    LockType::Row => LockEventLockType::Row,
                    LockType::Named => LockEventLockType::Named,
                },
                lock_mode: match info.mode {
                    LockMode::Shared => LockEventLockMode::Shared,
                    LockMode::Exclusive => LockEventLockMode::Exclusive,
                },
                resource: info.resource.clone(),
                table: info.table.clone(),
                row_id: info.row_id.clone(),
                wait_time_ms: info.wait_time_ms,
                granted: event_type == LockEventEventType::Acquired,
                reason,
            },
        );
    }
}

impl Table {
    fn waiter_of(&self, tx: &str) -> Option<&Waiter> {
        self.resources
            .values()
            .flat_map(|r| &r.queue)
            .find(|w| w.tx == tx)
    }

    fn waiter_position(&self, tx: &str) -> Option<(Key, usize)> {
        self.resources.iter().find_map(|(k, r)| {
            r.queue
                .iter()
                .position(|w| w.tx == tx)
                .map(|i| (k.clone(), i))
        })
    }

    fn position_of_waiter(&self, lock_id: &str) -> Option<(Key, usize)> {
        self.resources.iter().find_map(|(k, r)| {
            r.queue
                .iter()
                .position(|w| w.lock_id == lock_id)
                .map(|i| (k.clone(), i))
        })
    }

    fn owner(&self, tx: &str) -> String {
        self.txs
            .get(tx)
            .map(|t| t.owner.clone())
            .unwrap_or_default()
    }

    fn info_of_grant(&self, key: &Key, i: usize) -> LockInfo {
        let res = &self.resources[key];
        let g = &res.holders[i];
        LockInfo {
            lock_id: g.lock_id.clone(),
            transaction_id: g.tx.clone(),
            database: res.database.clone(),
            owner: self.owner(&g.tx),
            lock_type: res.target.lock_type,
            mode: g.mode,
            resource: res.target.resource.clone(),
            table: res.target.table.clone(),
            row_id: res.target.row_id.clone(),
            state: LockState::Granted,
            requested_at: g.requested_at,
            granted_at: Some(g.granted_at),
            wait_time_ms: g.waited_ms,
            queue_position: None,
            blocked_by: Vec::new(),
        }
    }

    fn info_of_waiter(&self, lock_id: &str) -> Option<LockInfo> {
        let (key, i) = self.position_of_waiter(lock_id)?;
        self.info_of_waiter_at(&key, i)
    }

    fn info_of_waiter_at(&self, key: &Key, i: usize) -> Option<LockInfo> {
        let res = self.resources.get(key)?;
        let w = res.queue.get(i)?;
        Some(LockInfo {
            lock_id: w.lock_id.clone(),
            transaction_id: w.tx.clone(),
            database: res.database.clone(),
            owner: self.owner(&w.tx),
            lock_type: res.target.lock_type,
            mode: w.mode,
            resource: res.target.resource.clone(),
            table: res.target.table.clone(),
            row_id: res.target.row_id.clone(),
            state: LockState::Waiting,
            requested_at: w.requested_at,
            granted_at: None,
            wait_time_ms: ms_since(w.since),
            queue_position: Some(i as u64),
            blocked_by: self.blockers(key, &w.tx, w.mode, w.upgrade),
        })
    }

    /// The transactions a request of `tx` for `mode` on `key` waits for.
    fn blockers(&self, key: &Key, tx: &str, mode: LockMode, upgrade: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .edges_of(key, tx, mode, upgrade)
            .into_iter()
            .map(|(holder, _, _)| holder)
            .collect();
        out.dedup();
        out
    }

    /// (holder, its mode, granted or waiting) for a request of `tx` on `key`: incompatible
    /// holders, and incompatible requests ahead of it in the queue (FIFO).
    fn edges_of(
        &self,
        key: &Key,
        tx: &str,
        mode: LockMode,
        upgrade: bool,
    ) -> Vec<(String, LockMode, LockState)> {
        let Some(res) = self.resources.get(key) else {
            return Vec::new();
        };
        let mut out: Vec<_> = res
            .holders
            .iter()
            .filter(|g| g.tx != tx && !compatible(g.mode, mode))
            .map(|g| (g.tx.clone(), g.mode, LockState::Granted))
            .collect();
        let ahead = res.queue.iter().take_while(|w| w.tx != tx);
        out.extend(
            ahead
                .filter(|w| !compatible(w.mode, mode) && (!upgrade || w.upgrade))
                .map(|w| (w.tx.clone(), w.mode, LockState::Waiting)),
        );
        out
    }

    fn edges(&self) -> Vec<WaitForEdge> {
        let mut edges = Vec::new();
        for (key, res) in &self.resources {
            for w in &res.queue {
                for (holder, holder_mode, holder_state) in
                    self.edges_of(key, &w.tx, w.mode, w.upgrade)
                {
                    edges.push(WaitForEdge {
                        waiter: w.tx.clone(),
                        holder,
                        database: res.database.clone(),
                        lock_type: res.target.lock_type,
                        resource: res.target.resource.clone(),
                        waiter_mode: w.mode,
                        holder_mode,
                        holder_state,
                    });
                }
            }
        }
        edges
    }
}

#[cfg(test)]
mod tests;
