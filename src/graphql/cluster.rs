//! Sources of the cluster subscriptions. The server is a cluster of one node, so they report that
//! node: its id (kept in system.db, so it survives restarts), host name, role (the primary),
//! health (the health checks, and the health watcher's `health` topic for changes) and resource
//! use. The cluster work will add other nodes, replicas and their lag.

use std::sync::Arc;

use futures_util::stream::{BoxStream, StreamExt};

use super::Backends;
use super::sources::{Sources, now, seconds, spawned};
use crate::api::ApiError;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::{
    HealthStatus, HealthStatusChanged, NodeHealth, NodeRole, ReplicationState,
    ReplicationStatusSample, TopologyChange, TopologyEventKind,
};
use crate::health::{DEFAULT_CHECK_TIMEOUT, run_checks};

/// This node's id: made once (`node-` and 16 random hex digits) and kept in system.db's settings.
pub(super) async fn node_id(state: &Backends) -> Result<String, ApiError> {
    Ok(state
        .system_db
        .call(|c| {
            c.execute(
                "INSERT OR IGNORE INTO settings (key, value)
                 VALUES ('node_id', 'node-' || lower(hex(randomblob(8))))",
                [],
            )?;
            Ok(c.query_row(
                "SELECT value FROM settings WHERE key = 'node_id'",
                [],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await?)
}

/// The node id, refused when the caller named another node.
async fn this_node(state: &Backends, asked: Option<&str>) -> Result<String, ApiError> {
    let id = node_id(state).await?;
    match asked {
        Some(other) if other != id => Err(ApiError::not_found(format!(
            "no node `{other}`: this cluster has one node, `{id}`"
        ))),
        _ => Ok(id),
    }
}

fn node_name() -> String {
    sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into())
}

async fn overall_health(state: &Backends) -> HealthStatus {
    crate::health::overall(&run_checks(&state.checks, DEFAULT_CHECK_TIMEOUT).await)
}

/// The health watcher's `health_status_changed` events, decoded by the generated resolver
/// (`receives` in YAML); a broken one is an error the subscriber gets.
type HealthChanges = BoxStream<'static, Result<HealthStatusChanged, ApiError>>;

pub(super) fn replication_status(
    s: &Sources,
    args: ReplicationStatusArgs,
) -> SourceResult<ReplicationStatusSample> {
    let every = seconds("intervalSeconds", args.interval_seconds, 10)?;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let id = match this_node(&state, args.node_id.as_deref()).await {
            Ok(id) => id,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sample = ReplicationStatusSample {
                node_id: id.clone(),
                role: NodeRole::Primary,
                state: ReplicationState::Standalone,
                // No replica and no primary to receive from: nothing to measure.
                lag_bytes: None,
                lag_seconds: None,
                last_wal_received: None,
                last_wal_applied: None,
                // A degraded node still serves; only an unhealthy one does not.
                is_healthy: overall_health(&state).await != HealthStatus::Unhealthy,
                timestamp: now(),
            };
            if tx.send(Ok(sample)).await.is_err() {
                return;
            }
        }
    }))
}

pub(super) fn cluster_topology_changes(
    s: &Sources,
    events: HealthChanges,
) -> SourceResult<TopologyChange> {
    // Listening before the first check, so a change right after it is not lost.
    let mut changes = events;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let id = match node_id(&state).await {
            Ok(id) => id,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let name = node_name();
        let node = |event_type, status, previous_status| TopologyChange {
            event_type,
            node_id: id.clone(),
            node_name: name.clone(),
            role: NodeRole::Primary,
            status,
            previous_status,
            timestamp: now(),
        };
        let mut status = overall_health(&state).await;
        if tx
            .send(Ok(node(TopologyEventKind::Current, status, None)))
            .await
            .is_err()
        {
            return;
        }
        while let Some(change) = changes.next().await {
            let change = match change {
                Ok(change) => change,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            // Components changing under an unchanged overall status do not change the node.
            if change.status == status {
                continue;
            }
            let event = node(
                TopologyEventKind::StatusChanged,
                change.status,
                Some(status),
            );
            status = change.status;
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    }))
}

/// CPU and memory use of the host and use of the data directory's filesystem (blocking).
fn resources(state: &Backends) -> (Option<f64>, Option<f64>, Option<f64>) {
    let host = state.host.sample();
    let disk = crate::storage::host::disks(&state.checks.data_dir)
        .and_then(|d| d.into_iter().find(|d| d.holds_data_directory))
        .map(|d| d.usage_percent);
    (
        host.map(|h| h.cpu_percent),
        host.map(|h| h.memory_percent()),
        disk,
    )
}

pub(super) fn node_health_changes(
    s: &Sources,
    args: NodeHealthChangesArgs,
    events: HealthChanges,
) -> SourceResult<NodeHealth> {
    let mut changes = events;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let id = match this_node(&state, args.node_id.as_deref()).await {
            Ok(id) => id,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut status = Some(overall_health(&state).await);
        loop {
            let Some(health_status) = status.take() else {
                // Every change a component's health makes is a change of the node's.
                match changes.next().await {
                    Some(Ok(change)) => status = Some(change.status),
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    None => return,
                }
                continue;
            };
            let s = Arc::clone(&state);
            let Ok((cpu_usage, memory_usage, disk_usage)) =
                tokio::task::spawn_blocking(move || resources(&s)).await
            else {
                return;
            };
            let health = NodeHealth {
                node_id: id.clone(),
                cpu_usage,
                memory_usage,
                disk_usage,
                health_status,
                timestamp: now(),
            };
            if tx.send(Ok(health)).await.is_err() {
                return;
            }
        }
    }))
}

impl ClusterFields for Sources {
    fn replication_status(
        &self,
        _caller: Caller,
        args: ReplicationStatusArgs,
    ) -> SourceResult<ReplicationStatusSample> {
        replication_status(self, args)
    }

    fn cluster_topology_changes(
        &self,
        _caller: Caller,
        _args: ClusterTopologyChangesArgs,
        events: HealthChanges,
    ) -> SourceResult<TopologyChange> {
        cluster_topology_changes(self, events)
    }

    fn node_health_changes(
        &self,
        _caller: Caller,
        args: NodeHealthChangesArgs,
        events: HealthChanges,
    ) -> SourceResult<NodeHealth> {
        node_health_changes(self, args, events)
    }
}
