//! Host facts for GET /api/v1/system/host and the process figures of /stats, read from the
//! server's one host sampler (`crate::host`) plus the OS facts sysinfo reads without state.

use std::sync::Arc;

use sysinfo::System;

use crate::api::types::{HostInfo, LoadAverage};
use crate::host::{Host, HostSample};

pub(super) struct HostProbe {
    host: Arc<Host>,
}

impl HostProbe {
    pub(super) fn new(host: Arc<Host>) -> Self {
        HostProbe { host }
    }

    /// This process's resident memory and CPU use since the sampler's previous refresh.
    pub(super) async fn process(&self) -> Result<HostSample, String> {
        let host = Arc::clone(&self.host);
        tokio::task::spawn_blocking(move || host.sample())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "sysinfo gives no figures on this platform".to_string())
    }

    pub(super) async fn host(&self) -> Result<HostInfo, String> {
        let host = Arc::clone(&self.host);
        tokio::task::spawn_blocking(move || {
            let facts = host
                .facts()
                .ok_or_else(|| "sysinfo gives no figures on this platform".to_string())?;
            let load = System::load_average().map_err(|e| format!("load average: {e}"))?;
            let unknown = |r: Result<String, _>| r.unwrap_or_else(|_| "unknown".to_string());
            Ok(HostInfo {
                hostname: unknown(System::host_name()),
                os_name: unknown(System::name()),
                os_version: unknown(System::os_version()),
                kernel_version: unknown(System::kernel_version()),
                cpu_arch: System::cpu_arch(),
                cpu_count: facts.cpu_count,
                cpu_brand: facts.cpu_brand,
                total_memory_bytes: facts.total_memory_bytes,
                used_memory_bytes: facts.used_memory_bytes,
                available_memory_bytes: facts.available_memory_bytes,
                total_swap_bytes: facts.total_swap_bytes,
                used_swap_bytes: facts.used_swap_bytes,
                load_average: LoadAverage {
                    one: load.one,
                    five: load.five,
                    fifteen: load.fifteen,
                },
                host_uptime_seconds: System::uptime().map_err(|e| format!("uptime: {e}"))?,
            })
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
