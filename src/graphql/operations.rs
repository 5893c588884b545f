//! Sources of the operations subscriptions: lock events and deadlocks, alerts and partitions,
//! each a bus event (of the topic the YAML names) re-shaped into its GraphQL type; and health,
//! checked by the subscription itself every `intervalSeconds`.

use std::sync::Arc;

use futures_util::stream::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::sources::{Events, Sources, now, seconds, spawned};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::{
    AlertUpdate, DeadlockNotice, HealthStatusChange, LockEventUpdate, PartitionChange,
};
use crate::health::{DEFAULT_CHECK_TIMEOUT, run_checks};

/// A bus event's payload as a GraphQL type: keys renamed (`from` -> `to`) where the event names a
/// field differently, and the delivery time as `timestamp` when the event has none. `None` for a
/// payload that does not fit (an event of another shape on the same topic).
fn decode<T: DeserializeOwned>(data: &Value, renames: &[(&str, &str)]) -> Option<T> {
    let mut object = data.as_object()?.clone();
    for (from, to) in renames {
        if let Some(v) = object.remove(*from) {
            object.insert((*to).to_string(), v);
        }
    }
    object.entry("timestamp").or_insert_with(|| json!(now()));
    serde_json::from_value(Value::Object(object)).ok()
}

/// The events of `message_type`, decoded, that `keep` accepts (it also sees the raw payload,
/// for fields the GraphQL type does not carry).
fn decoded<T, F>(
    events: Events,
    message_type: &'static str,
    renames: &'static [(&'static str, &'static str)],
    keep: F,
) -> SourceResult<T>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(&T, &Value) -> bool + Send + 'static,
{
    Ok(events
        .filter_map(move |e| {
            let item = (e.message_type == message_type)
                .then(|| decode::<T>(&e.data, renames))
                .flatten()
                .filter(|t| keep(t, &e.data));
            async move { item.map(Ok) }
        })
        .boxed())
}

pub(super) fn lock_events(events: Events, args: LockEventsArgs) -> SourceResult<LockEventUpdate> {
    let (tables, types) = (args.table_filter, args.event_types);
    decoded(
        events,
        "lock_event",
        &[("table", "table_name")],
        move |l: &LockEventUpdate, _| {
            // A table filter keeps row locks of those tables; named locks have no table.
            tables
                .as_ref()
                .is_none_or(|t| l.table_name.as_ref().is_some_and(|n| t.contains(n)))
                && types.as_ref().is_none_or(|t| t.contains(&l.event_type))
        },
    )
}

pub(super) fn deadlock_detection(events: Events) -> SourceResult<DeadlockNotice> {
    decoded(events, "deadlock_detected", &[], |_: &DeadlockNotice, _| {
        true
    })
}

pub(super) fn alert_stream(events: Events, args: AlertStreamArgs) -> SourceResult<AlertUpdate> {
    let (severities, categories) = (args.severity_filter, args.category_filter);
    decoded(events, "alert", &[], move |a: &AlertUpdate, _| {
        severities.as_ref().is_none_or(|f| f.contains(&a.severity))
            && categories.as_ref().is_none_or(|f| f.contains(&a.category))
    })
}

pub(super) fn partition_events(
    events: Events,
    args: PartitionEventsArgs,
) -> SourceResult<PartitionChange> {
    let (table, database) = (args.table, args.database);
    decoded(
        events,
        "partition_event",
        &[],
        move |p: &PartitionChange, raw| {
            table.as_ref().is_none_or(|t| *t == p.table_name)
                && database
                    .as_ref()
                    .is_none_or(|d| raw.get("database").and_then(Value::as_str) == Some(d))
        },
    )
}

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
    fn lock_events(
        &self,
        _caller: Caller,
        args: LockEventsArgs,
        events: Events,
    ) -> SourceResult<LockEventUpdate> {
        lock_events(events, args)
    }

    fn deadlock_detection(
        &self,
        _caller: Caller,
        _args: DeadlockDetectionArgs,
        events: Events,
    ) -> SourceResult<DeadlockNotice> {
        deadlock_detection(events)
    }

    fn alert_stream(
        &self,
        _caller: Caller,
        args: AlertStreamArgs,
        events: Events,
    ) -> SourceResult<AlertUpdate> {
        alert_stream(events, args)
    }

    fn partition_events(
        &self,
        _caller: Caller,
        args: PartitionEventsArgs,
        events: Events,
    ) -> SourceResult<PartitionChange> {
        partition_events(events, args)
    }

    fn health_status_changes(
        &self,
        _caller: Caller,
        args: HealthStatusChangesArgs,
    ) -> SourceResult<HealthStatusChange> {
        health_status_changes(self, args)
    }
}
