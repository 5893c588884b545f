//! The hand-written source of `schema/subscriptions/operations.yaml`: health, checked by the
//! subscription itself every `intervalSeconds`. Lock, deadlock, alert and partition events are
//! generated sources (their YAML's `source.event`).

use std::sync::Arc;

use super::sources::{Sources, seconds, spawned};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::HealthStatusChange;
use crate::health::{DEFAULT_CHECK_TIMEOUT, run_checks};

/// Runs the health checks every interval and sends what changed since the previous run. The
/// first run compares with "all healthy", so a subscriber learns at once of a component that is
/// already failing.
pub(super) fn health_status_changes(
    s: &Sources,
    args: HealthStatusChangesArgs,
) -> SourceResult<HealthStatusChange> {
    let every = seconds("intervalSeconds", args.interval_seconds, 30)?;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let mut last = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let checked = run_checks(&state.checks, DEFAULT_CHECK_TIMEOUT).await;
            if let Some(c) = crate::health::watch::changes(&last, &checked) {
                let change = HealthStatusChange {
                    status: c.status,
                    changed_components: c.changed_components,
                    errors: c.errors,
                    warnings: c.warnings,
                    timestamp: c.timestamp,
                };
                if tx.send(Ok(change)).await.is_err() {
                    return;
                }
            }
            last = checked;
        }
    }))
}

impl OperationsFields for Sources {
    fn health_status_changes(
        &self,
        _caller: Caller,
        args: HealthStatusChangesArgs,
    ) -> SourceResult<HealthStatusChange> {
        health_status_changes(self, args)
    }
}
