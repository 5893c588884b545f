//! `AlertService`: rules, their state and the generated `AlertsApi`.

use super::*;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::api::alerts::{
    AcknowledgeAlertPath, DeleteAlertRulePath, GetAlertPath, GetAlertRulePath, ListAlertsQuery,
    UpdateAlertRulePath,
};
use crate::api::types::{
    Alert, AlertList, AlertMetric, AlertMetricList, AlertRecord, AlertRule, AlertRuleCreate,
    AlertRuleList,
};
use crate::api::{AlertsApi, ApiError, runtime::RequestContext};
use crate::engine::SystemDb;
use crate::events::Bus;
use crate::monitoring::{self, ALERT_METRICS, Collector, Family, Kind};

/// The alerts subsystem's handles; the evaluator task works with the same.
#[derive(Clone)]
pub struct AlertService {
    pub(super) system_db: SystemDb,
    pub(super) bus: Arc<Bus>,
    pub(super) metrics: Arc<Collector>,
}

impl AlertService {
    pub fn new(system_db: SystemDb, bus: Arc<Bus>, metrics: Arc<Collector>) -> Self {
        AlertService {
            system_db,
            bus,
            metrics,
        }
    }

    async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> crate::error::Result<T> + Send + 'static,
    {
        Ok(self.system_db.call(f).await?)
    }
}

/// The `rustydb_alerts_open` family, added to the metric registry by the server.
pub struct OpenAlerts(pub SystemDb);

impl monitoring::Source for OpenAlerts {
    fn collect(&self) -> BoxFuture<'_, Vec<Family>> {
        Box::pin(async move {
            // Bounded, so a wedged system.db cannot stall a scrape.
            let counts = self.0.call(store::count_open);
            let Ok(Ok(counts)) = tokio::time::timeout(Duration::from_secs(2), counts).await else {
                return Vec::new();
            };
            let mut family = Family::new(
                "rustydb_alerts_open",
                Kind::Gauge,
                "Alerts firing or acknowledged (still holding), by state",
            );
            for (state, n) in counts {
                family = family.with(vec![("state", state)], n as f64);
            }
            vec![family]
        })
    }
}

/// Publishes an alert's current state on the `alerts` family.
pub fn publish(bus: &Bus, alert: &AlertRecord) {
    bus.publish(&Alert {
        alert_id: alert.id.clone(),
        rule_id: alert.rule_id.clone(),
        name: alert.name.clone(),
        category: alert.category.clone(),
        severity: alert.severity,
        state: alert.state,
        message: alert.message.clone(),
        details: serde_json::json!({
            "metric": alert.metric,
            "value": alert.value,
            "comparison": alert.comparison,
            "threshold": alert.threshold,
            "duration_seconds": alert.duration_seconds,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        triggered_at: alert.triggered_at,
        occurrence_count: alert.occurrence_count,
    });
}

/// Checks a rule body beyond what its type enforces: the metric must exist.
fn rule_input(body: AlertRuleCreate) -> Result<store::RuleInput, ApiError> {
    let metric = String::from(body.metric);
    if monitoring::alert_metric(&metric).is_none() {
        let known: Vec<_> = ALERT_METRICS.iter().map(|m| m.name).collect();
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_METRIC",
            format!("no metric `{metric}`; metrics are: {}", known.join(", ")),
        ));
    }
    Ok(store::RuleInput {
        name: String::from(body.name),
        metric,
        comparison: body.comparison,
        threshold: body.threshold,
        duration_seconds: body.duration_seconds,
        severity: body.severity,
        category: String::from(body.category),
        enabled: body.enabled,
    })
}

impl AlertsApi for AlertService {
    async fn list_alert_metrics(&self, _ctx: RequestContext) -> Result<AlertMetricList, ApiError> {
        let families = self.metrics.collect().await;
        Ok(AlertMetricList {
            metrics: ALERT_METRICS
                .iter()
                .map(|m| AlertMetric {
                    name: m.name.into(),
                    description: m.description.into(),
                    unit: m.unit.into(),
                    value: monitoring::alert_value(&families, m.name),
                })
                .collect(),
        })
    }

    async fn list_alert_rules(&self, _ctx: RequestContext) -> Result<AlertRuleList, ApiError> {
        let rules = self.db(|c| store::list_rules(c)).await?;
        Ok(AlertRuleList { rules })
    }

    async fn create_alert_rule(
        &self,
        _ctx: RequestContext,
        body: AlertRuleCreate,
    ) -> Result<AlertRule, ApiError> {
        let input = rule_input(body)?;
        self.db(move |c| store::insert_rule(c, &input)).await
    }

    async fn get_alert_rule(
        &self,
        _ctx: RequestContext,
        path: GetAlertRulePath,
    ) -> Result<AlertRule, ApiError> {
        self.db(move |c| store::get_rule(c, &path.rule_id)).await
    }

    async fn update_alert_rule(
        &self,
        _ctx: RequestContext,
        path: UpdateAlertRulePath,
        body: AlertRuleCreate,
    ) -> Result<AlertRule, ApiError> {
        let input = rule_input(body)?;
        self.db(move |c| store::update_rule(c, &path.rule_id, &input))
            .await
    }

    async fn delete_alert_rule(
        &self,
        _ctx: RequestContext,
        path: DeleteAlertRulePath,
    ) -> Result<(), ApiError> {
        self.db(move |c| store::delete_rule(c, &path.rule_id)).await
    }

    async fn list_alerts(
        &self,
        _ctx: RequestContext,
        query: ListAlertsQuery,
    ) -> Result<AlertList, ApiError> {
        let alerts = self
            .db(move |c| store::list_alerts(c, query.state.as_deref(), query.severity.as_deref()))
            .await?;
        Ok(AlertList { alerts })
    }

    async fn get_alert(
        &self,
        _ctx: RequestContext,
        path: GetAlertPath,
    ) -> Result<AlertRecord, ApiError> {
        self.db(move |c| store::get_alert(c, &path.alert_id)).await
    }

    async fn acknowledge_alert(
        &self,
        ctx: RequestContext,
        path: AcknowledgeAlertPath,
    ) -> Result<AlertRecord, ApiError> {
        let by = ctx.identity()?.username.clone();
        let alert = self
            .db(move |c| store::acknowledge(c, &path.alert_id, &by))
            .await?;
        publish(&self.bus, &alert);
        Ok(alert)
    }
}
