//! Publishes `STATS_CHANGED` partition events: every `partition_stats_interval`, while the
//! `partitions` topic has subscribers, counts each partition's rows and measures its size, and
//! publishes the partitions whose figures differ from their baseline. Nobody listening means no
//! counting (a count is a table scan) and no baselines; the next subscriber starts fresh ones.
//!
//! The baselines are shared with [`PartitionService`](super::PartitionService): a partition's
//! `CREATED` figures are its baseline, so its first change is reported even when it happens
//! before the watcher's next round (a round of its own would otherwise take the changed figures
//! as the starting point and the change would pass unreported).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::api::EventMessage;
use crate::api::types::{PartitionEvent, PartitionEventEventType, PartitionInfo};
use crate::engine::catalog::Engine;
use crate::events::Bus;

use super::{ddl, event};

/// The last reported `(row_count, size_bytes)` of each partition, by id.
#[derive(Default)]
pub(super) struct Baselines(Mutex<HashMap<String, (u64, u64)>>);

impl Baselines {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, u64)>> {
        // A poisoned map only holds figures; the worst a stale one does is one extra event.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn created(&self, info: &PartitionInfo) {
        self.lock()
            .insert(info.id.clone(), (info.row_count, info.size_bytes));
    }

    pub(super) fn dropped(&self, id: &str) {
        self.lock().remove(id);
    }
}

pub(super) fn spawn(
    engine: Arc<Engine>,
    bus: Arc<Bus>,
    baselines: Arc<Baselines>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = bus.topic(PartitionEvent::TOPIC) else {
                break;
            };
            let known: HashSet<String> = {
                // Checked under the lock: a subscriber that arrives after this check subscribed
                // before any CREATED it will see, and that CREATED records after the clear.
                let mut map = baselines.lock();
                if topic.subscribers() == 0 {
                    map.clear();
                    continue;
                }
                map.keys().cloned().collect()
            };
            let (now, failed) = measure(&engine).await;
            let mut changed = Vec::new();
            {
                let mut map = baselines.lock();
                for info in &now {
                    let figures = (info.row_count, info.size_bytes);
                    match map.insert(info.id.clone(), figures) {
                        Some(before) if before != figures => changed.push(info),
                        _ => {}
                    }
                }
                // Partitions gone without a DROPPED through this server (another process, a
                // dropped database); a database that failed to measure keeps its baselines,
                // and so does a partition created while this round was measuring.
                let measured: HashSet<&str> = now.iter().map(|i| i.id.as_str()).collect();
                map.retain(|id, _| {
                    measured.contains(id.as_str())
                        || !known.contains(id)
                        || failed.iter().any(|db| id.starts_with(&format!("{db}.")))
                });
            }
            for info in changed {
                bus.publish(&event(
                    PartitionEventEventType::StatsChanged,
                    info,
                    info.row_count,
                    info.size_bytes,
                ));
            }
        }
    });
}

/// Every partition's figures now, and the databases that could not be measured.
async fn measure(engine: &Engine) -> (Vec<PartitionInfo>, Vec<String>) {
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for db in engine.list() {
        let name = db.name.clone();
        let result = db
            .run(move |c| {
                ddl::load(c, None)?
                    .iter()
                    .map(|p| ddl::info(c, &name, p))
                    .collect::<crate::error::Result<Vec<_>>>()
            })
            .await;
        match result {
            Ok(infos) => out.extend(infos),
            Err(e) => {
                tracing::warn!(database = %db.name, error = %e, "partition stats failed");
                failed.push(db.name.clone());
            }
        }
    }
    (out, failed)
}
