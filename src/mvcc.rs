//! The `mvcc` subsystem: what SQLite's WAL-based concurrency holds per database (snapshots, WAL
//! frames, free pages), vacuum, and WAL checkpoints. Nothing here is estimated: figures come
//! from pragmas, `sqlite3_txn_state` of the connections held by API transactions, the `-wal`
//! file header and the `-shm` WAL-index header (see `engine::wal`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use rusqlite::{Connection, TransactionState};

use crate::api::runtime::RequestContext;
use crate::api::types::{
    CheckpointRecord, CheckpointRequest, CheckpointRequestMode, CheckpointResult, MaintenanceEvent,
    MaintenanceEventOperation, MvccDatabaseStatus, MvccStatus, TransactionHolds, VacuumRequest,
    VacuumRequestMode, VacuumResult, WalDatabaseStatus, WalStatus,
};
use crate::api::{ApiError, MvccApi};
use crate::engine::catalog::Engine;
use crate::engine::catalog::{self, DEFAULT_DATABASE, Database};
use crate::engine::transactions::Transactions;
use crate::engine::wal;
use crate::error::{self, Error};
use crate::events::Bus;
use crate::sync::lock;

pub struct MvccService {
    engine: Arc<Engine>,
    transactions: Arc<Transactions>,
    bus: Arc<Bus>,
}

impl MvccService {
    pub fn new(engine: Arc<Engine>, transactions: Arc<Transactions>, bus: Arc<Bus>) -> Self {
        MvccService {
            engine,
            transactions,
            bus,
        }
    }

    fn database(&self, name: Option<&str>) -> error::Result<Arc<Database>> {
        self.engine.get(name.unwrap_or(DEFAULT_DATABASE))
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn pragma(conn: &Connection, name: &str) -> error::Result<i64> {
    Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
}

fn journal_mode(conn: &Connection) -> error::Result<String> {
    Ok(conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?)
}

/// Page figures of the database `conn` is open on.
struct Pages {
    page_size: i64,
    page_count: i64,
    freelist: i64,
}

impl Pages {
    fn read(conn: &Connection) -> error::Result<Pages> {
        Ok(Pages {
            page_size: pragma(conn, "page_size")?,
            page_count: pragma(conn, "page_count")?,
            freelist: pragma(conn, "freelist_count")?,
        })
    }

    fn bytes(&self) -> i64 {
        self.page_size * self.page_count
    }
}

/// SQLITE_BUSY/LOCKED (another writer, or readers a checkpoint waited for) is a conflict to
/// retry, not a server failure.
fn busy_is_conflict(e: Error, database: &str) -> Error {
    match &e {
        Error::Engine(inner)
            if matches!(
                inner.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ) =>
        {
            Error::Conflict(format!("database `{database}` is busy: {inner}"))
        }
        _ => e,
    }
}

fn no_holds() -> TransactionHolds {
    TransactionHolds {
        open: 0,
        none: 0,
        read_snapshot: 0,
        write_lock: 0,
        running: 0,
    }
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

impl MvccApi for MvccService {
    async fn get_mvcc_status(&self, _ctx: RequestContext) -> Result<MvccStatus, ApiError> {
        let mut holds: HashMap<String, TransactionHolds> = HashMap::new();
        let holdings = self.transactions.holdings();
        for (database, state) in &holdings {
            let h = holds.entry(database.clone()).or_insert(no_holds());
            h.open += 1;
            match state {
                Some(TransactionState::Read) => h.read_snapshot += 1,
                Some(TransactionState::Write) => h.write_lock += 1,
                Some(_) => h.none += 1,
                None => h.running += 1,
            }
        }
        let mut databases = Vec::new();
        for db in self.engine.list() {
            let transactions = holds.remove(&db.name).unwrap_or(no_holds());
            let (name, shm) = (db.name.clone(), sibling(&db.path, "-shm"));
            let status = db
                .run(move |c| {
                    let pages = Pages::read(c)?;
                    // Read while this connection is open, so the WAL-index exists.
                    let index = wal::read_index(&shm);
                    Ok(MvccDatabaseStatus {
                        database: name,
                        journal_mode: journal_mode(c)?,
                        page_size: pages.page_size,
                        page_count: pages.page_count,
                        freelist_count: pages.freelist,
                        freelist_bytes: pages.freelist * pages.page_size,
                        auto_vacuum: match pragma(c, "auto_vacuum")? {
                            1 => "full",
                            2 => "incremental",
                            _ => "none",
                        }
                        .into(),
                        wal_frames: index.as_ref().map(|i| i.max_frame),
                        wal_frames_backfilled: index.as_ref().map(|i| i.backfilled),
                        transactions,
                    })
                })
                .await?;
            databases.push(status);
        }
        Ok(MvccStatus {
            databases,
            open_transactions: holdings.len() as u64,
            timestamp: Utc::now(),
        })
    }

    async fn vacuum_database(
        &self,
        ctx: RequestContext,
        body: VacuumRequest,
    ) -> Result<VacuumResult, ApiError> {
        let user = ctx.identity()?.username.clone();
        let db = self.database(body.database.as_deref())?;
        let incremental = matches!(body.mode, Some(VacuumRequestMode::Incremental));
        let statement = match (incremental, body.pages.unwrap_or(0)) {
            (false, _) => "VACUUM".to_string(),
            (true, 0) => "PRAGMA incremental_vacuum".to_string(),
            (true, pages) => format!("PRAGMA incremental_vacuum({pages})"),
        };
        let (name, sql) = (db.name.clone(), statement.clone());
        let (before, after, duration_ms) = db
            .run(move |c| {
                if incremental && pragma(c, "auto_vacuum")? != 2 {
                    return Err(Error::Conflict(format!(
                        "database `{name}` has auto_vacuum = {}; incremental vacuum frees pages only with auto_vacuum = INCREMENTAL (use mode `full`)",
                        pragma(c, "auto_vacuum")?
                    )));
                }
                let before = Pages::read(c)?;
                let start = Instant::now();
                // Stepped to the end: incremental_vacuum frees one page per step.
                let mut stmt = c.prepare(&sql)?;
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok((before, Pages::read(c)?, millis(start)))
            })
            .await
            .map_err(|e| busy_is_conflict(e, &db.name))?;
        self.bus.publish(&MaintenanceEvent {
            operation: MaintenanceEventOperation::Vacuum,
            database: db.name.clone(),
            statement: statement.clone(),
            user,
            duration_ms,
            size_before_bytes: before.bytes(),
            size_after_bytes: after.bytes(),
            checkpoint_mode: None,
            busy: None,
            log_frames: None,
            checkpointed_frames: None,
            wal_bytes_before: None,
            wal_bytes_after: None,
        });
        Ok(VacuumResult {
            database: db.name.clone(),
            mode: if incremental { "incremental" } else { "full" }.into(),
            statement,
            size_before_bytes: before.bytes(),
            size_after_bytes: after.bytes(),
            bytes_reclaimed: before.bytes() - after.bytes(),
            freelist_before: before.freelist,
            freelist_after: after.freelist,
            duration_ms,
        })
    }

    async fn get_wal_status(&self, _ctx: RequestContext) -> Result<WalStatus, ApiError> {
        let mut databases = Vec::new();
        let mut wal_bytes_total = 0;
        for db in self.engine.list() {
            let last_checkpoint = lock(&db.last_checkpoint).clone().map(|r| CheckpointRecord {
                mode: r.mode,
                busy: r.busy,
                log_frames: r.log_frames,
                checkpointed_frames: r.checkpointed_frames,
                duration_ms: r.duration_ms,
                at: r.at,
            });
            let name = db.name.clone();
            let (wal_file, shm) = (sibling(&db.path, "-wal"), sibling(&db.path, "-shm"));
            let status = db
                .run(move |c| {
                    let journal_mode = journal_mode(c)?;
                    // Read while this connection is open, so the WAL-index exists.
                    let header = wal::read_header(&wal_file);
                    let index = wal::read_index(&shm);
                    Ok(WalDatabaseStatus {
                        database: name,
                        journal_mode,
                        wal_bytes: file_size(&wal_file),
                        wal_page_size: header.map(|h| h.page_size),
                        checkpoint_sequence: header.map(|h| h.checkpoint_sequence),
                        frames: index.as_ref().map(|i| i.max_frame),
                        frames_backfilled: index.as_ref().map(|i| i.backfilled),
                        database_pages: index.as_ref().map(|i| i.database_pages),
                        read_marks: index.map(|i| i.read_marks).unwrap_or_default(),
                        last_checkpoint,
                    })
                })
                .await?;
            wal_bytes_total += status.wal_bytes;
            databases.push(status);
        }
        Ok(WalStatus {
            databases,
            wal_bytes_total,
            timestamp: Utc::now(),
        })
    }

    async fn checkpoint_wal(
        &self,
        ctx: RequestContext,
        body: CheckpointRequest,
    ) -> Result<CheckpointResult, ApiError> {
        let user = ctx.identity()?.username.clone();
        let db = self.database(body.database.as_deref())?;
        let mode = match body.mode {
            Some(CheckpointRequestMode::Full) => "FULL",
            Some(CheckpointRequestMode::Restart) => "RESTART",
            Some(CheckpointRequestMode::Truncate) => "TRUNCATE",
            _ => "PASSIVE",
        };
        let statement = format!("PRAGMA wal_checkpoint({mode})");
        let wal_file = sibling(&db.path, "-wal");
        let wal_bytes_before = file_size(&wal_file);
        let sql = statement.clone();
        let (busy, log_frames, checkpointed_frames, size, duration_ms) = db
            .run(move |c| {
                let size = Pages::read(c)?.bytes();
                let start = Instant::now();
                let (busy, log, done): (i64, i64, i64) =
                    c.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok((busy, log, done, size, millis(start)))
            })
            .await
            .map_err(|e| busy_is_conflict(e, &db.name))?;
        let wal_bytes_after = file_size(&wal_file);
        let at = Utc::now();
        *lock(&db.last_checkpoint) = Some(catalog::CheckpointRecord {
            mode: mode.to_string(),
            busy,
            log_frames,
            checkpointed_frames,
            duration_ms,
            at,
        });
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.bus.publish(&MaintenanceEvent {
            operation: MaintenanceEventOperation::Checkpoint,
            database: db.name.clone(),
            statement,
            user,
            duration_ms,
            size_before_bytes: size,
            size_after_bytes: size,
            checkpoint_mode: Some(mode.to_string()),
            busy: Some(busy),
            log_frames: Some(log_frames),
            checkpointed_frames: Some(checkpointed_frames),
            wal_bytes_before: Some(signed(wal_bytes_before)),
            wal_bytes_after: Some(signed(wal_bytes_after)),
        });
        Ok(CheckpointResult {
            database: db.name.clone(),
            mode: mode.to_string(),
            busy,
            log_frames,
            checkpointed_frames,
            wal_bytes_before,
            wal_bytes_after,
            duration_ms,
            at,
        })
    }
}
