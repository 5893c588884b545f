//! The buffer-pool routes: the engine's page-cache figures, and a flush that checkpoints the
//! WAL and empties the idle caches.

use crate::api::ApiError;
use crate::api::types::{
    BufferPoolFigures, BufferPoolFlush, BufferPoolReport, DatabaseBufferPool, DatabaseFlush,
};
use std::sync::Arc;

use crate::engine::catalog::Engine;
use crate::engine::page_cache::{self, Figures};

fn figures(f: &Figures, dirty_pages: u64) -> BufferPoolFigures {
    BufferPoolFigures {
        hit_rate: f.hit_rate(),
        hits: f.hits,
        misses: f.misses,
        writes: f.writes,
        spills: f.spills,
        total_pages: f.total_pages,
        used_pages: f.used_pages,
        used_bytes: f.used_bytes,
        dirty_pages,
        connections: f.connections,
    }
}

pub(super) async fn report(engine: &Arc<Engine>) -> Result<BufferPoolReport, ApiError> {
    let engine = Arc::clone(engine);
    let (total, dirty, databases) =
        tokio::task::spawn_blocking(move || page_cache::measure(&engine))
            .await
            .map_err(ApiError::internal)?;
    Ok(BufferPoolReport {
        total: figures(&total, dirty),
        databases: databases
            .iter()
            .map(|(database, f, dirty)| DatabaseBufferPool {
                database: database.clone(),
                figures: figures(f, *dirty),
            })
            .collect(),
    })
}

pub(super) async fn flush(engine: &Arc<Engine>) -> Result<BufferPoolFlush, ApiError> {
    let mut flushed = Vec::new();
    for db in engine.list() {
        let (busy, wal_frames, checkpointed_frames) = db
            .run(|c| {
                Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
                })?)
            })
            .await?;
        let shrinking = Arc::clone(&db);
        let released_bytes = tokio::task::spawn_blocking(move || shrinking.shrink_idle_caches())
            .await
            .map_err(ApiError::internal)?;
        flushed.push(DatabaseFlush {
            database: db.name.clone(),
            busy,
            wal_frames,
            checkpointed_frames,
            released_bytes,
        });
    }
    Ok(BufferPoolFlush {
        databases: flushed,
        after: report(engine).await?,
    })
}
