//! Producers of the monitoring topics. `system_metrics` is sampled once a second, and only while
//! someone is subscribed: sampling costs a sysinfo refresh.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sysinfo::{Disks, Networks, System};

use crate::api::EventMessage;
use crate::api::types::SystemMetrics;
use crate::state::AppState;

/// Samples host and server metrics while `system_metrics` has subscribers; ends at shutdown.
pub fn spawn_system_metrics(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler: Option<Sampler> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::state::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = state.bus.topic(SystemMetrics::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                // Nobody listens: stop sampling, and start from a fresh baseline next time.
                sampler = None;
                continue;
            }
            let previous = sampler.take();
            let result = tokio::task::spawn_blocking(move || {
                let mut s = previous.or_else(Sampler::new)?;
                let sample = s.sample();
                Some((s, sample))
            })
            .await;
            let Ok(Some((s, sample))) = result else {
                tracing::warn!("system metrics unavailable (sysinfo)");
                continue;
            };
            sampler = Some(s);
            let Some(sample) = sample else { continue };
            let metrics = SystemMetrics {
                active_connections: state.ws.registry.len() as u64
                    + state.stats.in_flight.load(Ordering::Relaxed),
                active_queries: state.system_db.in_flight(),
                ..sample
            };
            state.bus.publish(&metrics);
        }
    });
}

/// Host counters between two refreshes.
struct Sampler {
    system: System,
    disks: Disks,
    networks: Networks,
    at: Instant,
    primed: bool,
}

impl Sampler {
    fn new() -> Option<Sampler> {
        let sampler = Sampler {
            system: System::new().ok()?,
            disks: Disks::new_with_refreshed_list().ok()?,
            networks: Networks::new_with_refreshed_list().ok()?,
            at: Instant::now(),
            primed: false,
        };
        Some(sampler)
    }

    /// Rates since the previous call; `None` on the first call (no interval to measure yet).
    fn sample(&mut self) -> Option<SystemMetrics> {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        self.networks.refresh(true);
        let elapsed = self.at.elapsed().as_secs_f64().max(0.001);
        self.at = Instant::now();
        if !self.primed {
            self.primed = true;
            return None;
        }
        let mut seen = HashSet::new();
        let (mut read, mut written) = (0u64, 0u64);
        for disk in self.disks.iter() {
            // One device can be mounted several times; count it once.
            if seen.insert(disk.name().to_os_string()) {
                let usage = disk.usage();
                read += usage.read_bytes;
                written += usage.written_bytes;
            }
        }
        let (rx, tx) = self.networks.values().fold((0u64, 0u64), |(r, t), n| {
            (r + n.received(), t + n.transmitted())
        });
        let total = self.system.total_memory().max(1);
        let used = self.system.used_memory();
        let per_sec = |bytes: u64| (bytes as f64 / elapsed).round() as u64;
        Some(SystemMetrics {
            cpu_usage: f64::from(self.system.global_cpu_usage()),
            memory_usage: used,
            memory_percent: used as f64 * 100.0 / total as f64,
            disk_read_bps: per_sec(read),
            disk_write_bps: per_sec(written),
            network_rx_bps: per_sec(rx),
            network_tx_bps: per_sec(tx),
            active_connections: 0,
            active_queries: 0,
        })
    }
}
