//! The `health` subsystem: probes backed by real checks of the engine and the data directory.

mod checks;

use crate::api::types::{
    DetailedHealth, HealthStatus, HealthSummary, LivenessReport, LivenessReportStatus,
    ReadinessReport, ReadinessReportStatus, StartupReport, StartupReportStatus,
};
use crate::api::{ApiError, HealthApi, runtime::RequestContext};
use crate::state::SharedState;

pub use checks::run_checks;

pub struct HealthService {
    state: SharedState,
}

impl HealthService {
    pub fn new(state: SharedState) -> Self {
        HealthService { state }
    }
}

impl HealthApi for HealthService {
    async fn get_health(&self, _ctx: RequestContext) -> Result<HealthSummary, ApiError> {
        let components = run_checks(&self.state).await;
        Ok(HealthSummary {
            status: checks::overall(&components),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.state.uptime_seconds(),
            checked_at: chrono::Utc::now(),
        })
    }

    async fn get_liveness(&self, _ctx: RequestContext) -> Result<LivenessReport, ApiError> {
        Ok(LivenessReport {
            status: LivenessReportStatus::Alive,
            uptime_seconds: self.state.uptime_seconds(),
        })
    }

    async fn get_readiness(&self, _ctx: RequestContext) -> Result<ReadinessReport, ApiError> {
        let components = run_checks(&self.state).await;
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
            started_at: self.state.started_at,
            startup_duration_ms: self.state.startup_duration.as_secs_f64() * 1000.0,
        })
    }

    async fn get_detailed_health(&self, _ctx: RequestContext) -> Result<DetailedHealth, ApiError> {
        let components = run_checks(&self.state).await;
        Ok(DetailedHealth {
            status: checks::overall(&components),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.state.uptime_seconds(),
            checked_at: chrono::Utc::now(),
            components,
        })
    }
}
