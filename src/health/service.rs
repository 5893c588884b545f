//! `HealthService`: the health checks behind the generated `HealthApi`.

use super::*;

use crate::api::health::{GetComponentHealthPath, GetDetailedHealthQuery};
use crate::api::types::{
    ComponentHealth, DetailedHealth, HealthStatus, HealthSummary, LivenessReport,
    LivenessReportStatus, ReadinessReport, ReadinessReportStatus, StartupReport,
    StartupReportStatus,
};
use crate::api::{ApiError, HealthApi, runtime::RequestContext};
use crate::process::Process;

use std::sync::Arc;
use std::time::Duration;

pub struct HealthService {
    checks: Arc<Checks>,
    process: Arc<Process>,
}

impl HealthService {
    pub fn new(checks: Arc<Checks>, process: Arc<Process>) -> Self {
        HealthService { checks, process }
    }
}

impl HealthApi for HealthService {
    async fn get_health(&self, _ctx: RequestContext) -> Result<HealthSummary, ApiError> {
        let components = run_checks(&self.checks, DEFAULT_CHECK_TIMEOUT).await;
        Ok(HealthSummary {
            status: checks::overall(&components),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.process.uptime_seconds(),
            checked_at: chrono::Utc::now(),
        })
    }

    async fn get_liveness(&self, _ctx: RequestContext) -> Result<LivenessReport, ApiError> {
        Ok(LivenessReport {
            status: LivenessReportStatus::Alive,
            uptime_seconds: self.process.uptime_seconds(),
        })
    }

    async fn get_readiness(&self, _ctx: RequestContext) -> Result<ReadinessReport, ApiError> {
        let components = run_checks(&self.checks, DEFAULT_CHECK_TIMEOUT).await;
        if checks::overall(&components) != HealthStatus::Healthy {
            let failing: Vec<_> = components
                .iter()
                .filter(|c| c.status != HealthStatus::Healthy)
                .collect();
            let names: Vec<_> = failing.iter().map(|c| c.name.as_str()).collect();
            return Err(
                ApiError::unavailable(format!("not ready: {} failing", names.join(", ")))
                    .with_details(serde_json::json!({ "components": failing })),
            );
        }
        Ok(ReadinessReport {
            status: ReadinessReportStatus::Ready,
            components,
        })
    }

    async fn get_startup(&self, _ctx: RequestContext) -> Result<StartupReport, ApiError> {
        Ok(StartupReport {
            status: StartupReportStatus::Started,
            started_at: self.process.started_at,
            startup_duration_ms: self.process.startup_duration.as_secs_f64() * 1000.0,
        })
    }

    async fn get_detailed_health(
        &self,
        _ctx: RequestContext,
        query: GetDetailedHealthQuery,
    ) -> Result<DetailedHealth, ApiError> {
        // The generated router has checked 10 <= timeout_ms <= 10000.
        let limit = Duration::from_millis(query.timeout_ms.unsigned_abs());
        let components = run_checks(&self.checks, limit).await;
        Ok(DetailedHealth {
            status: checks::overall(&components),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.process.uptime_seconds(),
            checked_at: chrono::Utc::now(),
            components,
        })
    }

    async fn get_component_health(
        &self,
        _ctx: RequestContext,
        path: GetComponentHealthPath,
    ) -> Result<ComponentHealth, ApiError> {
        run_check(&self.checks, &path.name, DEFAULT_CHECK_TIMEOUT)
            .await
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no component `{}`; components are: {}",
                    path.name,
                    COMPONENTS.join(", ")
                ))
            })
    }
}
