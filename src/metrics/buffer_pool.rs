//! The `buffer_pool` topic: the engine's page-cache figures every 100 ms (the seed's interval),
//! only while someone listens.

use std::sync::Arc;
use std::time::Duration;

use crate::api::EventMessage;
use crate::api::events::BufferPoolEvent;
use crate::api::types::PoolStats;
use crate::engine::page_cache::Figures;
use crate::state::AppState;

const INTERVAL: Duration = Duration::from_millis(100);

/// The whole server's buffer pool now: the figures of every database, and their dirty pages.
pub fn measure(state: &AppState) -> (Figures, u64, Vec<(String, Figures, u64)>) {
    let mut total = Figures::default();
    let mut dirty = 0;
    let mut databases = Vec::new();
    for db in state.engine.list() {
        let (figures, db_dirty) = db.buffer_pool();
        // A WAL-index that kept changing under every read counts as none for this sample.
        let db_dirty = db_dirty.unwrap_or(0);
        total.add(&figures);
        dirty += db_dirty;
        databases.push((db.name.clone(), figures, db_dirty));
    }
    (total, dirty, databases)
}

pub fn spawn(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::state::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = state.bus.topic(BufferPoolEvent::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                continue;
            }
            let sampler = Arc::clone(&state);
            // Reading the WAL-indexes is file I/O: off the async workers.
            let Ok((total, dirty, _)) =
                tokio::task::spawn_blocking(move || measure(&sampler)).await
            else {
                continue;
            };
            state.bus.publish(&BufferPoolEvent::PoolStats(PoolStats {
                hit_rate: total.hit_rate(),
                total_pages: total.total_pages,
                used_pages: total.used_pages,
                dirty_pages: dirty,
                timestamp: chrono::Utc::now().timestamp(),
            }));
        }
    });
}
