//! `StorageService`: the `storage` subsystem's implementation of the generated `StorageApi`.

use super::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::api::EventMessage;
use crate::api::runtime::RequestContext;
use crate::api::storage::{
    DeleteTablespacePath, GetIoStatsQuery, MoveDatabasePath, UpdateTablespacePath,
};
use crate::api::types::{
    BufferPoolFlush, BufferPoolReport, DatabaseInfo, DatabaseMove, DiskList, IoStatsReport,
    StorageStatus, StorageStatusReport, Tablespace, TablespaceCreate, TablespaceList,
    TablespaceUpdate,
};
use crate::api::{ApiError, StorageApi};
use crate::engine::SystemDb;
use crate::engine::catalog::{DEFAULT_TABLESPACE, Engine};
use crate::engine::tablespaces::{Record, Tablespaces, databases_in};
use crate::error::{self, Error};
use crate::events::Bus;

/// The storage subsystem's handles; the `storage_status` producer measures with the same.
#[derive(Clone)]
pub struct StorageService {
    engine: Arc<Engine>,
    tablespaces: Arc<Tablespaces>,
    system_db: SystemDb,
    data_dir: PathBuf,
}

impl StorageService {
    pub fn new(
        engine: Arc<Engine>,
        tablespaces: Arc<Tablespaces>,
        system_db: SystemDb,
        data_dir: PathBuf,
    ) -> Self {
        StorageService {
            engine,
            tablespaces,
            system_db,
            data_dir,
        }
    }

    fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn tablespaces(&self) -> &Tablespaces {
        &self.tablespaces
    }

    fn describe(&self, record: Record) -> Tablespace {
        let databases = databases_in(self.engine(), &record.name);
        let size_bytes = self
            .engine()
            .list()
            .iter()
            .filter(|db| db.tablespace == record.name)
            .map(|db| file_size(&db.path) + file_size(&wal_path(&db.path)))
            .sum();
        Tablespace {
            built_in: record.name == DEFAULT_TABLESPACE,
            name: record.name,
            path: record.path.display().to_string(),
            description: record.description,
            databases,
            size_bytes,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", db.display()))
}

/// Bytes of the index b-trees of the database `conn` is open on, counted page by page by
/// SQLite's `dbstat` table (autoindexes of UNIQUE and PRIMARY KEY constraints included).
fn index_bytes(conn: &rusqlite::Connection) -> error::Result<u64> {
    let bytes: i64 = conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE type = 'index')",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// Filesystem space of the data directory and the sizes of every database file, `-wal` file
/// and index, as the status route and the `storage_status` stream report them.
pub async fn measure(state: &StorageService) -> Result<StorageStatusReport, ApiError> {
    let data_dir = state.data_dir.clone();
    let dir = data_dir.clone();
    // statvfs of the data directory itself: `df <data_dir>`'s figures, whatever the mounts.
    let space = tokio::task::spawn_blocking(move || host::Space::of(&dir))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| unavailable("the data directory's filesystem"))?;
    let system_db = data_dir.join("system.db");
    let mut data_bytes = file_size(&system_db);
    let mut wal_bytes = file_size(&wal_path(&system_db));
    let mut index = state.system_db.call(|c| index_bytes(c)).await?;
    let databases = state.engine.list();
    for db in &databases {
        data_bytes += file_size(&db.path);
        wal_bytes += file_size(&wal_path(&db.path));
        index += db.run(|c| index_bytes(c)).await?;
    }
    Ok(StorageStatusReport {
        data_directory: data_dir.display().to_string(),
        total_bytes: space.total,
        used_bytes: space.used,
        available_bytes: space.available,
        usage_percent: space.percent(),
        data_bytes,
        index_bytes: index,
        wal_bytes,
        databases: databases.len() as u64,
        timestamp: chrono::Utc::now(),
    })
}

/// Publishes `storage_status` every `STATUS_EVERY` while the topic has subscribers. It looks for
/// subscribers once a second, so a new one gets its first measurement within about a second.
pub fn spawn_status_producer(
    state: StorageService,
    bus: Arc<Bus>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    const STATUS_EVERY: Duration = Duration::from_secs(10);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = bus.topic(StorageStatus::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                last = None;
                continue;
            }
            if last.is_some_and(|at| at.elapsed() < STATUS_EVERY) {
                continue;
            }
            last = Some(std::time::Instant::now());
            match measure(&state).await {
                Ok(m) => {
                    bus.publish(&StorageStatus {
                        total_bytes: m.total_bytes,
                        used_bytes: m.used_bytes,
                        available_bytes: m.available_bytes,
                        usage_percent: m.usage_percent,
                        data_size: m.data_bytes,
                        index_size: m.index_bytes,
                        wal_size: m.wal_bytes,
                        timestamp: m.timestamp.timestamp(),
                    });
                }
                Err(e) => tracing::warn!(error = %e, "storage status not measured"),
            }
        }
    });
}

fn unavailable(what: &str) -> ApiError {
    ApiError::unavailable(format!("{what} cannot be read on this host"))
}

impl StorageApi for StorageService {
    async fn get_buffer_pool(&self, _ctx: RequestContext) -> Result<BufferPoolReport, ApiError> {
        buffer_pool::report(&self.engine).await
    }

    async fn flush_buffer_pool(&self, _ctx: RequestContext) -> Result<BufferPoolFlush, ApiError> {
        buffer_pool::flush(&self.engine).await
    }

    async fn get_storage_status(
        &self,
        _ctx: RequestContext,
    ) -> Result<StorageStatusReport, ApiError> {
        measure(self).await
    }

    async fn list_disks(&self, _ctx: RequestContext) -> Result<DiskList, ApiError> {
        let dir = self.data_dir.clone();
        let disks = tokio::task::spawn_blocking(move || host::disks(&dir))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| unavailable("the disk list"))?;
        Ok(DiskList {
            total: disks.len() as u64,
            disks,
        })
    }

    async fn get_io_stats(
        &self,
        _ctx: RequestContext,
        query: GetIoStatsQuery,
    ) -> Result<IoStatsReport, ApiError> {
        let sample_ms = u64::try_from(query.sample_ms).unwrap_or(0);
        let rates = if sample_ms > 0 {
            host::host_rates(Duration::from_millis(sample_ms)).await
        } else {
            None
        };
        let (host, process) =
            tokio::task::spawn_blocking(|| (host::host_counters(), host::process_counters()))
                .await
                .map_err(ApiError::internal)?;
        Ok(IoStatsReport {
            host,
            process,
            rates,
            sample_ms,
            timestamp: chrono::Utc::now(),
        })
    }

    async fn list_tablespaces(&self, _ctx: RequestContext) -> Result<TablespaceList, ApiError> {
        let tablespaces: Vec<Tablespace> = self
            .tablespaces()
            .all(self.engine())
            .await?
            .into_iter()
            .map(|r| self.describe(r))
            .collect();
        Ok(TablespaceList {
            total: tablespaces.len() as u64,
            tablespaces,
        })
    }

    async fn create_tablespace(
        &self,
        _ctx: RequestContext,
        body: TablespaceCreate,
    ) -> Result<Tablespace, ApiError> {
        let _guard = self.tablespaces().guard.lock().await;
        let description = body.description.as_ref().map_or("", |d| d.as_str());
        let record = self
            .tablespaces()
            .create(self.engine(), &body.name, &body.path, description)
            .await?;
        tracing::info!(tablespace = %record.name, path = %record.path.display(), "tablespace created");
        Ok(self.describe(record))
    }

    async fn update_tablespace(
        &self,
        _ctx: RequestContext,
        path: UpdateTablespacePath,
        body: TablespaceUpdate,
    ) -> Result<Tablespace, ApiError> {
        let _guard = self.tablespaces().guard.lock().await;
        let record = self
            .tablespaces()
            .update(
                self.engine(),
                &path.id,
                body.path.as_ref().map(|p| p.as_str()),
                body.description.as_ref().map(|d| d.as_str()),
            )
            .await?;
        Ok(self.describe(record))
    }

    async fn delete_tablespace(
        &self,
        _ctx: RequestContext,
        path: DeleteTablespacePath,
    ) -> Result<(), ApiError> {
        let _guard = self.tablespaces().guard.lock().await;
        self.tablespaces().delete(self.engine(), &path.id).await?;
        tracing::info!(tablespace = %path.id, "tablespace deleted");
        Ok(())
    }

    async fn move_database(
        &self,
        _ctx: RequestContext,
        path: MoveDatabasePath,
        body: DatabaseMove,
    ) -> Result<DatabaseInfo, ApiError> {
        let _guard = self.tablespaces().guard.lock().await;
        self.engine().get(&path.name)?;
        let target = self
            .tablespaces()
            .get(self.engine(), &body.tablespace)
            .await?;
        let engine = Arc::clone(self.engine());
        let name = path.name.clone();
        let db =
            tokio::task::spawn_blocking(move || engine.move_to(&name, &target.name, &target.path))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| match e {
                    // Another connection (outside the pool) kept the file busy.
                    Error::Engine(e)
                        if matches!(
                            e.sqlite_error_code(),
                            Some(
                                rusqlite::ErrorCode::DatabaseBusy
                                    | rusqlite::ErrorCode::DatabaseLocked
                            )
                        ) =>
                    {
                        Error::Conflict(format!("the database is busy: {e}"))
                    }
                    other => other,
                })?;
        tracing::info!(database = %db.name, tablespace = %db.tablespace, "database moved");
        Ok(db.info().await?)
    }
}
