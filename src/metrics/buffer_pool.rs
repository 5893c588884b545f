//! The `buffer_pool` topic: the engine's page-cache figures every 100 ms (the seed's interval),
//! only while someone listens.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::EventMessage;
use crate::api::events::BufferPoolEvent;
use crate::api::types::PoolStats;
use crate::engine::catalog::Engine;
use crate::engine::page_cache;
use crate::events::Bus;

const INTERVAL: Duration = Duration::from_millis(100);

pub fn spawn(engine: Arc<Engine>, bus: Arc<Bus>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = bus.topic(BufferPoolEvent::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                continue;
            }
            let sampler = Arc::clone(&engine);
            // Reading the WAL-indexes is file I/O: off the async workers.
            let Ok((total, dirty, _)) =
                tokio::task::spawn_blocking(move || page_cache::measure(&sampler)).await
            else {
                continue;
            };
            bus.publish(&BufferPoolEvent::PoolStats(PoolStats {
                hit_rate: total.hit_rate(),
                total_pages: total.total_pages,
                used_pages: total.used_pages,
                dirty_pages: dirty,
                timestamp: chrono::Utc::now().timestamp(),
            }));
        }
    });
}
