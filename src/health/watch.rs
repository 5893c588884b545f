//! The health watcher: runs the component checks every `health_watch_interval` and publishes a
//! `health_status_changed` event when any component's status differs from the previous run.
//! The baseline is taken before the server starts serving, so a change right after startup is
//! seen too.

use crate::api::types::{
    ComponentHealth, HealthComponentChange, HealthStatus, HealthStatusChanged,
};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::Bus;

use super::checks::{self, Checks, DEFAULT_CHECK_TIMEOUT, run_checks};

pub async fn spawn(
    state: Arc<Checks>,
    bus: Arc<Bus>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = run_checks(&state, DEFAULT_CHECK_TIMEOUT).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the baseline already covers it.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let now = run_checks(&state, DEFAULT_CHECK_TIMEOUT).await;
            if let Some(event) = changes(&last, &now) {
                tracing::info!(status = ?event.status, "health status changed");
                bus.publish(&event);
            }
            last = now;
        }
    });
}

/// The event for going from `prev` to `now`; `None` when no component changed status.
pub fn changes(prev: &[ComponentHealth], now: &[ComponentHealth]) -> Option<HealthStatusChanged> {
    let changed: Vec<HealthComponentChange> = now
        .iter()
        .filter_map(|c| {
            // A component that was not checked before counts as having been healthy.
            let before = prev
                .iter()
                .find(|p| p.name == c.name)
                .map_or(HealthStatus::Healthy, |p| p.status);
            (before != c.status).then(|| HealthComponentChange {
                name: c.name.clone(),
                status: c.status,
                previous_status: before,
                response_time_ms: c.response_time_ms,
                details: c.message.clone(),
            })
        })
        .collect();
    if changed.is_empty() {
        return None;
    }
    let messages = |status: HealthStatus| -> Vec<String> {
        now.iter()
            .filter(|c| c.status == status)
            .map(|c| match &c.message {
                Some(m) => format!("{}: {m}", c.name),
                None => c.name.clone(),
            })
            .collect()
    };
    Some(HealthStatusChanged {
        status: checks::overall(now),
        previous_status: checks::overall(prev),
        changed_components: changed,
        errors: messages(HealthStatus::Unhealthy),
        warnings: messages(HealthStatus::Degraded),
        timestamp: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(name: &str, status: HealthStatus, message: Option<&str>) -> ComponentHealth {
        ComponentHealth {
            name: name.into(),
            status,
            response_time_ms: 1.0,
            message: message.map(Into::into),
        }
    }

    #[test]
    fn only_status_changes_make_an_event_naming_the_changed_components() {
        let healthy = vec![
            component("engine", HealthStatus::Healthy, None),
            component("data_directory", HealthStatus::Healthy, None),
        ];
        assert!(changes(&healthy, &healthy).is_none());
        let broken = vec![
            component("engine", HealthStatus::Healthy, None),
            component(
                "data_directory",
                HealthStatus::Unhealthy,
                Some("cannot write"),
            ),
        ];
        let event = changes(&healthy, &broken).expect("a change");
        assert_eq!(event.status, HealthStatus::Unhealthy);
        assert_eq!(event.previous_status, HealthStatus::Healthy);
        assert_eq!(event.changed_components.len(), 1);
        assert_eq!(event.changed_components[0].name, "data_directory");
        assert_eq!(event.errors, ["data_directory: cannot write"]);
        let back = changes(&broken, &healthy).expect("recovery");
        assert_eq!(back.status, HealthStatus::Healthy);
        assert_eq!(
            back.changed_components[0].previous_status,
            HealthStatus::Unhealthy
        );
        assert!(back.errors.is_empty());
    }
}
