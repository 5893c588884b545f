//! The one host sampler: host and process figures from sysinfo. CPU use is a rate between two
//! refreshes, so one `System` lives as long as the server, shared by every reader (/metrics,
//! the system_metrics topic, GET /api/v1/system/stats and /host, GraphQL). Three `System`s, as
//! before, each measured CPU over its own interval and refreshed /proc three times as often.

pub mod diskstats;

use std::sync::Mutex;
use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, MINIMUM_CPU_UPDATE_INTERVAL, Pid, ProcessRefreshKind, ProcessesToUpdate, System,
};

use crate::sync::lock;

/// One measurement of the host and of this process.
#[derive(Debug, Clone, Copy)]
pub struct HostSample {
    /// Host CPU use, percent of all cores.
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// This process: CPU use since the previous refresh (percent of one core), CPU time, RSS.
    pub process_cpu_percent: f64,
    pub process_cpu_seconds: f64,
    pub process_resident_bytes: u64,
}

impl HostSample {
    pub fn memory_percent(&self) -> f64 {
        self.memory_used_bytes as f64 * 100.0 / self.memory_total_bytes.max(1) as f64
    }
}

/// Host facts that change slowly or not at all, with the current memory and swap use.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub cpu_count: u32,
    pub cpu_brand: String,
    pub total_memory_bytes: u64,
    pub used_memory_bytes: u64,
    pub available_memory_bytes: u64,
    pub total_swap_bytes: u64,
    pub used_swap_bytes: u64,
}

struct State {
    system: System,
    pid: Pid,
    refreshed: Instant,
    last: HostSample,
}

/// The shared sampler. Callers closer together than sysinfo's minimum CPU interval get the last
/// sample instead of a meaningless rate over a few microseconds.
#[derive(Default)]
pub struct Host {
    state: Mutex<Option<State>>,
}

impl Host {
    /// Samples (blocking: it reads /proc). `None` when the platform gives no figures.
    pub fn sample(&self) -> Option<HostSample> {
        let mut guard = lock(&self.state);
        let state = started(&mut guard)?;
        if state.refreshed.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
            state.last = refresh(&mut state.system, state.pid);
            state.refreshed = Instant::now();
        }
        Some(state.last)
    }

    /// CPUs, memory and swap (blocking: it reads /proc). Leaves the CPU-rate baseline alone.
    pub fn facts(&self) -> Option<HostFacts> {
        let mut guard = lock(&self.state);
        let state = started(&mut guard)?;
        let system = &mut state.system;
        system.refresh_memory();
        system.refresh_cpu_list(CpuRefreshKind::nothing());
        Some(HostFacts {
            cpu_count: system.cpus().len() as u32,
            cpu_brand: system
                .cpus()
                .first()
                .map(|c| c.brand().to_string())
                .unwrap_or_default(),
            total_memory_bytes: system.total_memory(),
            used_memory_bytes: system.used_memory(),
            available_memory_bytes: system.available_memory(),
            total_swap_bytes: system.total_swap(),
            used_swap_bytes: system.used_swap(),
        })
    }
}

/// The sampler's state, made on first use: two refreshes a CPU interval apart, so the first
/// rates are measured too. `None` when the platform gives no figures.
fn started(state: &mut Option<State>) -> Option<&mut State> {
    if state.is_none() {
        let mut system = System::new().ok()?;
        let pid = sysinfo::get_current_pid().ok()?;
        refresh(&mut system, pid);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL);
        let last = refresh(&mut system, pid);
        *state = Some(State {
            system,
            pid,
            refreshed: Instant::now(),
            last,
        });
    }
    state.as_mut()
}

fn refresh(system: &mut System, pid: Pid) -> HostSample {
    system.refresh_cpu_usage();
    system.refresh_memory();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    let process = system.process(pid);
    HostSample {
        cpu_percent: f64::from(system.global_cpu_usage()),
        memory_used_bytes: system.used_memory(),
        memory_total_bytes: system.total_memory(),
        process_cpu_percent: process.map_or(0.0, |p| f64::from(p.cpu_usage())),
        // sysinfo reports accumulated CPU time in milliseconds.
        process_cpu_seconds: process.map_or(0.0, |p| p.accumulated_cpu_time() as f64 / 1000.0),
        process_resident_bytes: process.map_or(0, |p| p.memory()),
    }
}
