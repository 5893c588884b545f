//! Host and process figures from sysinfo, kept between samples: CPU use is a rate between two
//! refreshes, so one `System` lives as long as the server.

use std::sync::Mutex;
use std::time::Instant;

use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

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
        if let Some(state) = guard.as_mut() {
            if state.refreshed.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
                state.last = refresh(&mut state.system, state.pid);
                state.refreshed = Instant::now();
            }
            return Some(state.last);
        }
        // First use: two refreshes a CPU interval apart, so the first rates are measured too.
        let mut system = System::new().ok()?;
        let pid = sysinfo::get_current_pid().ok()?;
        refresh(&mut system, pid);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL);
        let last = refresh(&mut system, pid);
        *guard = Some(State {
            system,
            pid,
            refreshed: Instant::now(),
            last,
        });
        Some(last)
    }
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
