//! Publishes `STATS_CHANGED` partition events: every `partition_stats_interval`, while the
//! `partitions` topic has subscribers, counts each partition's rows and measures its size, and
//! publishes the partitions whose figures differ from the previous measurement. Nobody
//! listening means no counting (a count is a table scan); the next subscriber starts a fresh
//! baseline.

use std::collections::HashMap;

use crate::api::EventMessage;
use crate::api::types::{PartitionEvent, PartitionEventEventType, PartitionInfo};
use crate::state::SharedState;

use super::{ddl, event};

pub fn spawn(state: SharedState) {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(state.config.monitoring.partition_stats_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<HashMap<String, (u64, u64)>> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::state::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = state.bus.topic(PartitionEvent::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                last = None;
                continue;
            }
            let now = measure(&state).await;
            if let Some(prev) = &last {
                for info in &now {
                    let figures = (info.row_count, info.size_bytes);
                    // A partition new since the last round was announced as CREATED already.
                    if prev.get(&info.id).is_some_and(|p| *p != figures) {
                        state.bus.publish(&event(
                            PartitionEventEventType::StatsChanged,
                            info,
                            info.row_count,
                            info.size_bytes,
                        ));
                    }
                }
            }
            last = Some(
                now.into_iter()
                    .map(|i| (i.id, (i.row_count, i.size_bytes)))
                    .collect(),
            );
        }
    });
}

async fn measure(state: &SharedState) -> Vec<PartitionInfo> {
    let mut out = Vec::new();
    for db in state.engine.list() {
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
            Err(e) => tracing::warn!(database = %db.name, error = %e, "partition stats failed"),
        }
    }
    out
}
