//! Host and process facts from sysinfo. One `System` is kept so CPU usage is measured between
//! consecutive samples, as sysinfo requires.

use std::sync::{Arc, Mutex};

use sysinfo::{CpuRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::api::types::{HostInfo, LoadAverage};
use crate::sync::lock;

pub struct ProcessSample {
    pub memory_bytes: u64,
    pub cpu_percent: f32,
}

pub struct HostProbe {
    system: Arc<Mutex<Option<System>>>,
}

impl HostProbe {
    pub fn new() -> Self {
        HostProbe {
            system: Arc::new(Mutex::new(None)),
        }
    }

    async fn with_system<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut System) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let system = Arc::clone(&self.system);
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&system);
            if guard.is_none() {
                *guard = Some(System::new().map_err(|e| format!("sysinfo: {e}"))?);
            }
            match guard.as_mut() {
                Some(system) => f(system),
                None => Err("sysinfo unavailable".into()),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// This process's resident memory and CPU use since the previous sample.
    pub async fn process(&self) -> Result<ProcessSample, String> {
        self.with_system(|system| {
            let pid = Pid::from_u32(std::process::id());
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_memory().with_cpu(),
            );
            let process = system
                .process(pid)
                .ok_or_else(|| "own process not found".to_string())?;
            Ok(ProcessSample {
                memory_bytes: process.memory(),
                cpu_percent: process.cpu_usage(),
            })
        })
        .await
    }

    pub async fn host(&self) -> Result<HostInfo, String> {
        self.with_system(|system| {
            system.refresh_memory();
            system.refresh_cpu_list(CpuRefreshKind::nothing());
            let load = System::load_average().map_err(|e| format!("load average: {e}"))?;
            let unknown = |r: Result<String, _>| r.unwrap_or_else(|_| "unknown".to_string());
            Ok(HostInfo {
                hostname: unknown(System::host_name()),
                os_name: unknown(System::name()),
                os_version: unknown(System::os_version()),
                kernel_version: unknown(System::kernel_version()),
                cpu_arch: System::cpu_arch(),
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
                load_average: LoadAverage {
                    one: load.one,
                    five: load.five,
                    fifteen: load.fifteen,
                },
                host_uptime_seconds: System::uptime().map_err(|e| format!("uptime: {e}"))?,
            })
        })
        .await
    }
}
