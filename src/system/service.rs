//! `SystemService`: the `system` subsystem's implementation of the generated `SystemApi`.

use super::*;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::StatusCode;

use crate::api::types::{
    EffectiveConfig, HostInfo, LogFilter, LogFilterUpdate, ResponseCounts, RuntimeStats,
    ServerInfo, VersionInfo, VersionInfoBuildProfile,
};
use crate::api::{API_VERSION, ApiError, SystemApi, runtime::RequestContext};
use crate::process::Process;
use crate::telemetry::LogControl;

pub struct SystemService {
    /// The settings in force, as the API shows them (secrets already left out).
    config: EffectiveConfig,
    process: Arc<Process>,
    log: LogControl,
    host: host::HostProbe,
}

impl SystemService {
    pub fn new(
        config: EffectiveConfig,
        process: Arc<Process>,
        log: LogControl,
        host: Arc<crate::host::Host>,
    ) -> Self {
        SystemService {
            config,
            process,
            log,
            host: host::HostProbe::new(host),
        }
    }
}

impl SystemApi for SystemService {
    async fn get_server_info(&self, _ctx: RequestContext) -> Result<ServerInfo, ApiError> {
        let (s, c) = (&self.process, &self.config);
        Ok(ServerInfo {
            name: "rustydb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION.into(),
            pid: std::process::id(),
            started_at: s.started_at,
            uptime_seconds: s.uptime_seconds(),
            data_dir: c.data_dir.clone(),
            bind_address: c.bind.clone(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        })
    }

    async fn get_version(&self, _ctx: RequestContext) -> Result<VersionInfo, ApiError> {
        Ok(VersionInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION.into(),
            sqlite_version: crate::engine::sqlite_version().into(),
            build_profile: if cfg!(debug_assertions) {
                VersionInfoBuildProfile::Debug
            } else {
                VersionInfoBuildProfile::Release
            },
        })
    }

    async fn get_config(&self, _ctx: RequestContext) -> Result<EffectiveConfig, ApiError> {
        Ok(self.config.clone())
    }

    async fn get_runtime_stats(&self, _ctx: RequestContext) -> Result<RuntimeStats, ApiError> {
        let stats = &self.process.stats;
        let process = self.host.process().await.map_err(ApiError::internal)?;
        Ok(RuntimeStats {
            uptime_seconds: self.process.uptime_seconds(),
            requests_total: stats.total.load(Ordering::Relaxed),
            requests_in_flight: stats.in_flight.load(Ordering::Relaxed),
            responses: ResponseCounts {
                informational: stats.class(0),
                success: stats.class(1),
                redirection: stats.class(2),
                client_error: stats.class(3),
                server_error: stats.class(4),
            },
            process_memory_bytes: process.process_resident_bytes,
            process_cpu_percent: process.process_cpu_percent as f32,
            worker_threads: tokio::runtime::Handle::current().metrics().num_workers() as u32,
        })
    }

    async fn get_host_info(&self, _ctx: RequestContext) -> Result<HostInfo, ApiError> {
        self.host.host().await.map_err(ApiError::internal)
    }

    async fn get_log_filter(&self, _ctx: RequestContext) -> Result<LogFilter, ApiError> {
        let (filter, updated_at) = self.log.current();
        Ok(LogFilter { filter, updated_at })
    }

    async fn set_log_filter(
        &self,
        _ctx: RequestContext,
        body: LogFilterUpdate,
    ) -> Result<LogFilter, ApiError> {
        let (filter, updated_at) = self.log.set(&body.filter).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_LOG_FILTER",
                format!("log filter does not parse: {e}"),
            )
        })?;
        tracing::info!(%filter, "log filter changed");
        Ok(LogFilter {
            filter,
            updated_at: Some(updated_at),
        })
    }
}
