//! The producers of the metric topics (`system_metrics`, `buffer_pool`, `disk_io`, ...) and what they sample.

use super::*;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sysinfo::{Disks, Networks};

use crate::api::EventMessage;
use crate::api::types::SystemMetrics;
use tokio::sync::watch;

use crate::engine::catalog::Engine;
use crate::engine::queries::RunningQueries;
use crate::events::Bus;
use crate::events::connections::Registry;
use crate::host::diskstats;
use crate::process::Process;

/// A source sampled once a second on a blocking thread.
trait Producer: Sized + Send + 'static {
    type Event: EventMessage;
    fn start(sources: &Sources) -> Option<Self>;
    /// `None` when there is nothing to report yet (the first call only primes counters).
    fn sample(&mut self) -> Option<Self::Event>;
}

/// What the producers read besides the host.
pub struct Sources {
    pub bus: Arc<Bus>,
    pub engine: Arc<Engine>,
    /// User statements running now (REST SQL, `/api/v1/ws/query`, GraphQL), registered by the
    /// statement executor; the server's own system.db calls are not in it.
    pub queries: Arc<RunningQueries>,
    pub connections: Arc<Registry>,
    pub process: Arc<Process>,
    /// The server's one host sampler (CPU and memory).
    pub host: Arc<crate::host::Host>,
}

/// Starts the monitoring producers; each samples only while its topic has subscribers.
pub fn spawn_producers(sources: Sources) {
    let sources = Arc::new(sources);
    let shutdown = || sources.process.shutdown.clone();
    spawn::<Sampler>(Arc::clone(&sources), shutdown(), |mut m, s| {
        let stats = &s.process.stats;
        m.active_connections = s.connections.len() as u64
            + stats.graphql_sockets.load(Ordering::Relaxed)
            + stats.in_flight.load(Ordering::Relaxed);
        m.active_queries = s.queries.count() as u64;
        m
    });
    buffer_pool::spawn(
        Arc::clone(&sources.engine),
        Arc::clone(&sources.bus),
        shutdown(),
    );
    spawn::<diskstats::DiskSampler>(Arc::clone(&sources), shutdown(), |e, _| e);
}

fn spawn<P: Producer>(
    state: Arc<Sources>,
    mut shutdown: watch::Receiver<bool>,
    complete: fn(P::Event, &Sources) -> P::Event,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut producer: Option<P> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            let Some(topic) = state.bus.topic(P::Event::TOPIC) else {
                break;
            };
            if topic.subscribers() == 0 {
                // Nobody listens: stop sampling, and start from a fresh baseline next time.
                producer = None;
                continue;
            }
            let previous = producer.take();
            let sources = Arc::clone(&state);
            let result = tokio::task::spawn_blocking(move || {
                let mut p = previous.or_else(|| P::start(&sources))?;
                let event = p.sample();
                Some((p, event))
            })
            .await;
            let Ok(Some((p, event))) = result else {
                tracing::warn!(topic = P::Event::TOPIC, "source unavailable");
                continue;
            };
            producer = Some(p);
            if let Some(event) = event {
                state.bus.publish(&complete(event, &state));
            }
        }
    });
}

impl Producer for diskstats::DiskSampler {
    type Event = crate::api::events::DiskIoEvent;

    fn start(_: &Sources) -> Option<Self> {
        diskstats::DiskSampler::new()
    }

    fn sample(&mut self) -> Option<Self::Event> {
        diskstats::DiskSampler::sample(self)
    }
}

impl Producer for Sampler {
    type Event = SystemMetrics;

    fn start(sources: &Sources) -> Option<Self> {
        Sampler::new(Arc::clone(&sources.host))
    }

    fn sample(&mut self) -> Option<Self::Event> {
        Sampler::sample(self)
    }
}

/// Host counters between two refreshes, for `system_metrics`.
struct Sampler {
    host: Arc<crate::host::Host>,
    disks: Disks,
    networks: Networks,
    at: Instant,
    primed: bool,
}

impl Sampler {
    fn new(host: Arc<crate::host::Host>) -> Option<Sampler> {
        let sampler = Sampler {
            host,
            disks: Disks::new_with_refreshed_list().ok()?,
            networks: Networks::new_with_refreshed_list().ok()?,
            at: Instant::now(),
            primed: false,
        };
        Some(sampler)
    }

    /// Rates since the previous call; `None` on the first call (no interval to measure yet).
    fn sample(&mut self) -> Option<SystemMetrics> {
        let host = self.host.sample()?;
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
        let (rx, tx) = self
            .networks
            .iter()
            .filter(|(name, _)| !name.to_str().is_some_and(is_loopback))
            .fold((0u64, 0u64), |(r, t), (_, n)| {
                (r + n.received(), t + n.transmitted())
            });
        let per_sec = |bytes: u64| (bytes as f64 / elapsed).round() as u64;
        Some(SystemMetrics {
            cpu_usage: host.cpu_percent,
            memory_usage: host.memory_used_bytes,
            memory_total: Some(host.memory_total_bytes),
            memory_percent: host.memory_percent(),
            disk_read_bps: per_sec(read),
            disk_write_bps: per_sec(written),
            network_rx_bps: per_sec(rx),
            network_tx_bps: per_sec(tx),
            active_connections: 0,
            active_queries: 0,
        })
    }
}

/// `lo` (Linux) or `lo0` (BSD, macOS): traffic between local processes, such as a client on the
/// same host, which the host's network rates would double-count and never carried.
fn is_loopback(interface: &str) -> bool {
    interface
        .strip_prefix("lo")
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod loopback_tests {
    #[test]
    fn loopback_interfaces_are_recognised_by_name() {
        for name in ["lo", "lo0", "lo1"] {
            assert!(super::is_loopback(name), "{name}");
        }
        for name in ["eth0", "enp3s0", "wlo1", "lowpan0", "docker0"] {
            assert!(!super::is_loopback(name), "{name}");
        }
    }
}
