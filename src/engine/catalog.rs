//! The user databases: one SQLite file each, with a small pool of idle connections per
//! database. A file lives in a tablespace: `<data_dir>/databases/` (the `default` tablespace) or
//! a directory registered in `system.db` (see `tablespaces`). `default` exists from the
//! first start.

mod moves;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::capture::{Actor, Capture, Sequencer};
use super::page_cache::{Figures, Member, PageCache};
use crate::api::types::DatabaseInfo;
use crate::error::{Error, Result};
use crate::sync::lock;

pub const DEFAULT_DATABASE: &str = "default";
/// The tablespace of `<data_dir>/databases/`.
pub const DEFAULT_TABLESPACE: &str = "default";

/// A checkpoint run through the API, kept for the WAL status.
#[derive(Debug, Clone)]
pub struct CheckpointRecord {
    pub mode: String,
    pub busy: i64,
    pub log_frames: i64,
    pub checkpointed_frames: i64,
    pub duration_ms: f64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Interrupts the running statement when dropped while armed.
struct CancelOnDrop {
    interrupt: Arc<Mutex<Option<rusqlite::InterruptHandle>>>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed
            && let Some(handle) = lock(&self.interrupt).as_ref()
        {
            handle.interrupt();
        }
    }
}

/// Counts a call as active until the blocking work ends, whatever happens to the request.
struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection inside an explicit transaction. Dropping it without `finish` rolls back.
pub struct Held {
    db: Arc<Database>,
    pooled: Option<Pooled>,
}

impl Held {
    /// Runs `f` on the held connection (blocking); `actor` names who runs it, for the
    /// schema-change events it may cause.
    pub fn run<T>(
        &mut self,
        actor: Actor,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let pooled = self
            .pooled
            .as_mut()
            .ok_or_else(|| Error::Conflict("the transaction has ended".into()))?;
        pooled.capture.set_actor(actor);
        let result = f(&mut pooled.conn);
        pooled.detect_schema_changes(&self.db.name);
        result
    }

    /// SQLite's transaction state of the held connection on its main database.
    pub fn state(&self) -> Option<rusqlite::TransactionState> {
        let pooled = self.pooled.as_ref()?;
        pooled.conn.transaction_state(Some(rusqlite::MAIN_DB)).ok()
    }

    /// SAVEPOINT / RELEASE / ROLLBACK TO, kept in step with change capture.
    pub fn savepoint(&mut self, action: &str, name: &str) -> Result<()> {
        let pooled = self
            .pooled
            .as_mut()
            .ok_or_else(|| Error::Conflict("the transaction has ended".into()))?;
        let quoted = super::tables::quote(name);
        let sql = match action {
            "set" => format!("SAVEPOINT {quoted}"),
            "release" => format!("RELEASE {quoted}"),
            _ => format!("ROLLBACK TO {quoted}"),
        };
        pooled.conn.execute_batch(&sql)?;
        match action {
            "set" => pooled.capture.mark(name),
            "release" => pooled.capture.release(name),
            _ => pooled.capture.rollback_to(name),
        }
        Ok(())
    }

    /// Rows the transaction changed so far, as change capture saw them.
    pub fn modified_rows(&self) -> u64 {
        self.pooled.as_ref().map_or(0, |p| p.capture.pending_rows())
    }

    /// Commits or rolls back, publishes what committed, and returns the connection to the pool.
    pub fn finish(mut self, commit: bool) -> Result<()> {
        let Some(pooled) = self.pooled.take() else {
            return Ok(());
        };
        let result = pooled
            .conn
            .execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
            .map_err(Error::from);
        if !pooled.conn.is_autocommit() {
            let _ = pooled.conn.execute_batch("ROLLBACK");
        }
        pooled.capture.settle(&self.db.name, result.is_ok());
        self.db.page_cache.harvest(&pooled.cache, &pooled.conn);
        let _ = pooled.conn.pragma_update(None, "query_only", false);
        if pooled.conn.is_autocommit() {
            self.db.check_in(pooled);
        }
        result
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(pooled) = self.pooled.take() {
            // Dropping the connection rolls its transaction back; nothing was committed.
            pooled.capture.settle(&self.db.name, false);
        }
        self.db.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A pooled connection with its change-capture state.
struct Pooled {
    conn: Connection,
    capture: Capture,
    /// Its page cache's place in the database's buffer-pool figures.
    cache: Member,
    /// Counts the connection as open until it is closed.
    _slot: Slot,
}

/// Connection limits of each database's pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Connections open at once (in use or idle); callers beyond it wait.
    pub max_connections: usize,
    /// How long a caller waits for a connection before it is refused with 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            max_connections: 32,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The pool's counters: open connections (guarded, so a waiter can sleep on `freed`) and callers
/// waiting for one.
struct Gauge {
    open: Mutex<usize>,
    freed: Condvar,
    waiting: AtomicU64,
    /// Its database, to report a closed connection (gone while the database is dropped).
    db: Weak<Database>,
}

/// One open connection of a pool; dropping it (closing the connection) frees its place.
struct Slot(Arc<Gauge>);

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut open = lock(&self.0.open);
            *open = open.saturating_sub(1);
            self.0.freed.notify_one();
        }
        // Outside the gauge lock: the figures take it again.
        if let Some(db) = self.0.db.upgrade() {
            db.announce(PoolEvent::Closed);
        }
    }
}

/// What a pool reports: connections opened and closed, callers refused. Check-outs and check-ins
/// are not reported (one per statement); their effect shows in the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolEvent {
    Opened,
    Closed,
    Exhausted,
}

/// Receives every pool's events: the database, the event, the pool's figures right after.
pub type PoolEvents = Arc<dyn Fn(&str, PoolEvent, PoolStats) + Send + Sync>;

/// A database pool's figures at one instant.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Connections checked out: running a statement or held by an explicit transaction.
    pub active: u64,
    /// Open connections waiting in the pool for their next use.
    pub idle: u64,
    /// Callers waiting because `max_connections` are open and none is idle.
    pub waiting: u64,
    /// Open connections (active + idle).
    pub total: u64,
    pub max_connections: u64,
}

impl Pooled {
    /// Records the schema changes of the call that just ran. Failing to read the schema loses
    /// those events, not the call's result, so it is logged rather than returned.
    fn detect_schema_changes(&mut self, database: &str) {
        if let Err(e) = self.capture.detect_schema_changes(&self.conn) {
            tracing::warn!(database, error = %e, "schema change detection failed");
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // Closing a connection inside a transaction rolls it back during sqlite3_close, which
        // would call the rollback hook after rusqlite has freed it (a use-after-free, seen as
        // SIGSEGV). End the transaction and remove the hooks while the connection is whole.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let _ = self.conn.commit_hook(None::<fn() -> bool>);
        let _ = self.conn.rollback_hook(None::<fn()>);
    }
}
/// Idle connections kept per database.
const MAX_IDLE: usize = 4;

pub struct Engine {
    /// The `default` tablespace's directory.
    dir: PathBuf,
    databases: Mutex<BTreeMap<String, Arc<Database>>>,
    sequencer: Arc<Sequencer>,
    limits: PoolLimits,
    pool_events: Option<PoolEvents>,
}

pub struct Database {
    pub name: String,
    pub path: PathBuf,
    /// The tablespace whose directory holds `path`.
    pub tablespace: String,
    idle: Mutex<Vec<Pooled>>,
    sequencer: Arc<Sequencer>,
    /// Calls using the database now (running or waiting for a connection) and open transactions.
    pub active: AtomicU64,
    gauge: Arc<Gauge>,
    limits: PoolLimits,
    pool_events: Option<PoolEvents>,
    /// Set while the file is being moved, and for good once it has moved: a connection of this
    /// instance must not open the file any more.
    retired: AtomicBool,
    pub last_checkpoint: Mutex<Option<CheckpointRecord>>,
    /// The page caches of its connections (the buffer pool).
    pub page_cache: Arc<PageCache>,
}

/// 1 to 63 characters: a lowercase letter, then lowercase letters, digits or `_`. Nothing that
/// can leave the databases directory.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "database name `{name}`: 1 to 63 lowercase letters, digits or `_`, starting with a letter"
        )))
    }
}

impl Engine {
    /// Opens the databases directory and the `tablespaces` (name, directory), registers every
    /// `*.db` in them, and creates `default`. Committed row changes go to `sequencer`, pool events
    /// to `pool_events`. A
    /// tablespace directory that cannot be read is logged and skipped: its databases are missing
    /// until it is back, the others are served.
    pub fn open(
        data_dir: &Path,
        tablespaces: &[(String, PathBuf)],
        sequencer: Arc<Sequencer>,
        limits: PoolLimits,
        pool_events: Option<PoolEvents>,
    ) -> Result<Engine> {
        let dir = data_dir.join("databases");
        std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
            path: dir.clone(),
            source,
        })?;
        let engine = Engine {
            dir,
            databases: Mutex::new(BTreeMap::new()),
            sequencer,
            limits,
            pool_events,
        };
        engine.scan(DEFAULT_TABLESPACE, &engine.dir.clone())?;
        for (tablespace, dir) in tablespaces {
            if let Err(e) = engine.scan(tablespace, dir) {
                tracing::warn!(tablespace, error = %e, "tablespace not readable; its databases are unavailable");
            }
        }
        if engine.get(DEFAULT_DATABASE).is_err() {
            engine.create(DEFAULT_DATABASE)?;
        }
        Ok(engine)
    }

    /// Registers the `*.db` files of one tablespace directory. A name already registered (the
    /// same database in two tablespaces, e.g. after a copy by hand) keeps the first one found.
    fn scan(&self, tablespace: &str, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if path.extension().is_none_or(|e| e != "db") || validate_name(name).is_err() {
                continue;
            }
            let mut databases = self.lock();
            if let Some(known) = databases.get(name) {
                tracing::warn!(database = name, kept = %known.path.display(), ignored = %path.display(), "database found in two tablespaces");
                continue;
            }
            databases.insert(name.to_string(), self.new_database(name, tablespace, dir));
        }
        Ok(())
    }

    /// The `default` tablespace's directory.
    pub fn default_dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Database>>> {
        lock(&self.databases)
    }

    fn new_database(&self, name: &str, tablespace: &str, dir: &Path) -> Arc<Database> {
        Arc::new_cyclic(|db| Database {
            name: name.to_string(),
            path: dir.join(format!("{name}.db")),
            tablespace: tablespace.to_string(),
            idle: Mutex::new(Vec::new()),
            sequencer: Arc::clone(&self.sequencer),
            active: AtomicU64::new(0),
            gauge: Arc::new(Gauge {
                open: Mutex::new(0),
                freed: Condvar::new(),
                waiting: AtomicU64::new(0),
                db: db.clone(),
            }),
            limits: self.limits,
            pool_events: self.pool_events.clone(),
            retired: AtomicBool::new(false),
            last_checkpoint: Mutex::new(None),
            page_cache: Arc::default(),
        })
    }

    /// Creates a database in the `default` tablespace.
    pub fn create(&self, name: &str) -> Result<Arc<Database>> {
        let dir = self.dir.clone();
        self.create_in(name, DEFAULT_TABLESPACE, &dir)
    }

    /// Creates a database in the tablespace `tablespace` whose directory is `dir`.
    pub fn create_in(&self, name: &str, tablespace: &str, dir: &Path) -> Result<Arc<Database>> {
        validate_name(name)?;
        let mut databases = self.lock();
        if databases.contains_key(name) {
            return Err(Error::Conflict(format!("database `{name}` already exists")));
        }
        let db = self.new_database(name, tablespace, dir);
        if db.path.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists",
                db.path.display()
            )));
        }
        // Creating the file now makes a bad data directory fail here, not at the first query.
        let conn = db.check_out()?;
        db.check_in(conn);
        databases.insert(name.to_string(), Arc::clone(&db));
        Ok(db)
    }

    /// The named database, or `default` when no name is given.
    pub fn get(&self, name: &str) -> Result<Arc<Database>> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no database `{name}`")))
    }

    pub fn list(&self) -> Vec<Arc<Database>> {
        self.lock().values().cloned().collect()
    }

    /// Removes a database and its files; refused while it executes a statement unless `force`.
    pub fn delete(&self, name: &str, force: bool) -> Result<()> {
        if name == DEFAULT_DATABASE {
            return Err(Error::Conflict(
                "the `default` database cannot be deleted".into(),
            ));
        }
        let db = {
            let mut databases = self.lock();
            let db = databases
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("no database `{name}`")))?;
            // Its file may be half copied; deleting now could bring it back at the move's end.
            if db.retired.load(Ordering::SeqCst) {
                return Err(Error::Conflict(format!(
                    "database `{name}` is being moved; retry"
                )));
            }
            let active = db.active.load(Ordering::Acquire);
            if active > 0 && !force {
                return Err(Error::Conflict(format!(
                    "database `{name}` is in use by {active} statement(s); retry, or delete with force=true"
                )));
            }
            databases.remove(name);
            db
        };
        db.retired.store(true, Ordering::SeqCst);
        // Closed outside the idle lock: closing takes the gauge lock (see `check_out`).
        let idle = std::mem::take(&mut *lock(&db.idle));
        drop(idle);
        for suffix in ["", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", db.path.display()));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::DataDir { path, source }),
            }
        }
        Ok(())
    }
}

impl Database {
    /// WAL with `synchronous = FULL`: a committed transaction is on disk when the call returns.
    fn open_connection(&self, slot: Slot) -> Result<Pooled> {
        let mut conn = Connection::open(&self.path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Defensive mode: no writable_schema tricks or other ways to corrupt the file from SQL.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        let capture = Capture::attach(&mut conn, Arc::clone(&self.sequencer))?;
        let cache = self.page_cache.join(&conn);
        Ok(Pooled {
            conn,
            capture,
            cache,
            _slot: slot,
        })
    }

    /// An idle connection, a new one while fewer than `max_connections` are open, or else the
    /// next one freed, waiting up to `acquire_timeout` (blocking). Lock order: gauge, then idle;
    /// a connection is never closed while the idle lock is held.
    fn check_out(&self) -> Result<Pooled> {
        if self.retired.load(Ordering::SeqCst) {
            return Err(Error::Conflict(format!(
                "database `{}` is being moved or was deleted; retry",
                self.name
            )));
        }
        let deadline = Instant::now() + self.limits.acquire_timeout;
        let mut open = lock(&self.gauge.open);
        loop {
            if let Some(conn) = lock(&self.idle).pop() {
                return Ok(conn);
            }
            if *open < self.limits.max_connections {
                *open += 1;
                drop(open);
                let conn = self.open_connection(Slot(Arc::clone(&self.gauge)))?;
                self.announce(PoolEvent::Opened);
                return Ok(conn);
            }
            let now = Instant::now();
            if now >= deadline {
                drop(open);
                self.announce(PoolEvent::Exhausted);
                return Err(Error::PoolExhausted(format!(
                    "database `{}`: all {} connections stayed in use for {} ms",
                    self.name,
                    self.limits.max_connections,
                    self.limits.acquire_timeout.as_millis()
                )));
            }
            self.gauge.waiting.fetch_add(1, Ordering::AcqRel);
            let (guard, _) = self
                .gauge
                .freed
                .wait_timeout(open, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.gauge.waiting.fetch_sub(1, Ordering::AcqRel);
            open = guard;
        }
    }

    fn check_in(&self, conn: Pooled) {
        let surplus = {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE && !self.retired.load(Ordering::SeqCst) {
                idle.push(conn);
                None
            } else {
                Some(conn)
            }
        };
        match surplus {
            // Closing frees a place and wakes a waiter (Slot::drop).
            Some(conn) => drop(conn),
            None => {
                // Notified under the gauge lock, so a waiter between its idle check and its
                // wait cannot miss the connection.
                let _open = lock(&self.gauge.open);
                self.gauge.freed.notify_one();
            }
        }
    }

    /// The buffer pool's figures now, and the pages committed to the WAL that a checkpoint
    /// has not yet written back to the database file (its dirty pages; `None` when the
    /// WAL-index was being rewritten as it was read).
    pub fn buffer_pool(&self) -> (Figures, Option<u64>) {
        let shm = PathBuf::from(format!("{}-shm", self.path.display()));
        (
            self.page_cache.figures(),
            super::wal_index::uncheckpointed_pages(&shm),
        )
    }

    /// Frees what the idle connections' caches hold (`PRAGMA shrink_memory`); returns the bytes
    /// released. Connections in use keep their caches.
    pub fn shrink_idle_caches(&self) -> u64 {
        let idle = lock(&self.idle);
        let mut released = 0u64;
        for pooled in idle.iter() {
            let before = self.page_cache.figures().used_bytes;
            let _ = pooled.conn.execute_batch("PRAGMA shrink_memory");
            self.page_cache.harvest(&pooled.cache, &pooled.conn);
            released += before.saturating_sub(self.page_cache.figures().used_bytes);
        }
        released
    }

    /// Tells the pool's listener (if any) what happened, with the figures now. Called with no
    /// pool lock held.
    fn announce(&self, event: PoolEvent) {
        if let Some(listener) = &self.pool_events {
            listener(&self.name, event, self.pool_stats());
        }
    }

    /// The pool's figures now.
    pub fn pool_stats(&self) -> PoolStats {
        let total = *lock(&self.gauge.open) as u64;
        let idle = lock(&self.idle).len() as u64;
        PoolStats {
            active: total.saturating_sub(idle),
            idle,
            waiting: self.gauge.waiting.load(Ordering::Acquire),
            total,
            max_connections: self.limits.max_connections as u64,
        }
    }

    /// Runs `f` on a pooled connection, off the async runtime.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.run_as(Actor::default(), f).await
    }

    /// `run`, naming who runs `f` and its SQL for the schema-change events it may cause.
    pub async fn run_as<T, F>(self: &Arc<Self>, actor: Actor, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        let interrupt: Arc<Mutex<Option<rusqlite::InterruptHandle>>> = Arc::default();
        // If the request goes away (client gone, request timeout), stop its statement.
        let mut cancel = CancelOnDrop {
            interrupt: Arc::clone(&interrupt),
            armed: true,
        };
        // Counted before the check-out checks `retired` (see `Engine::move_to`).
        db.active.fetch_add(1, Ordering::SeqCst);
        let result = tokio::task::spawn_blocking(move || {
            let _active = ActiveGuard(&db.active);
            let mut pooled = db.check_out()?;
            pooled.capture.ensure_triggers(&pooled.conn)?;
            *lock(&interrupt) = Some(pooled.conn.get_interrupt_handle());
            pooled.capture.set_actor(actor);
            let result = f(&mut pooled.conn);
            // No interrupt may reach the connection once it serves someone else.
            lock(&interrupt).take();
            pooled.detect_schema_changes(&db.name);
            db.page_cache.harvest(&pooled.cache, &pooled.conn);
            // A connection left inside a transaction (a BEGIN without COMMIT) is not reused;
            // dropping it rolls the transaction back.
            let reusable = pooled.conn.is_autocommit();
            pooled.capture.settle(&db.name, result.is_ok());
            if reusable {
                db.check_in(pooled);
            }
            result
        })
        .await;
        cancel.armed = false;
        result?
    }

    /// Begins a transaction on a connection of its own, held until `Held::finish` (blocking).
    pub fn begin(self: &Arc<Self>, mode: &str, read_only: bool) -> Result<Held> {
        // Counted before the check-out checks `retired` (see `Engine::move_to`); `Held` gives it
        // back when dropped.
        self.active.fetch_add(1, Ordering::SeqCst);
        let uncount = |e| {
            self.active.fetch_sub(1, Ordering::SeqCst);
            e
        };
        let mut pooled = self.check_out().map_err(uncount)?;
        pooled
            .capture
            .ensure_triggers(&pooled.conn)
            .map_err(uncount)?;
        if read_only {
            pooled
                .conn
                .pragma_update(None, "query_only", true)
                .map_err(|e| uncount(e.into()))?;
        }
        let begin = match mode {
            "immediate" => "BEGIN IMMEDIATE",
            "exclusive" => "BEGIN EXCLUSIVE",
            _ => "BEGIN DEFERRED",
        };
        if let Err(e) = pooled.conn.execute_batch(begin) {
            let _ = pooled.conn.pragma_update(None, "query_only", false);
            self.active.fetch_sub(1, Ordering::SeqCst);
            return Err(match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy) => Error::Conflict(format!(
                    "database `{}` is locked by another writer",
                    self.name
                )),
                _ => e.into(),
            });
        }
        Ok(Held {
            db: Arc::clone(self),
            pooled: Some(pooled),
        })
    }

    pub async fn info(self: &Arc<Self>) -> Result<DatabaseInfo> {
        let name = self.name.clone();
        let (tablespace, path) = (self.tablespace.clone(), self.path.display().to_string());
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let size_bytes = size(&self.path);
        let wal_bytes = size(Path::new(&format!("{}-wal", self.path.display())));
        let active = self.active.load(Ordering::Acquire);
        self.run(move |c| {
            let pragma = |p: &str| -> rusqlite::Result<i64> { c.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0)) };
            let mut stmt = c.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?;
            let tables = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(DatabaseInfo {
                name,
                tablespace,
                path,
                size_bytes,
                wal_bytes,
                page_size: pragma("page_size")?,
                page_count: pragma("page_count")?,
                freelist_count: pragma("freelist_count")?,
                tables,
                journal_mode: c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                active_connections: active,
            })
        })
        .await
    }
}
