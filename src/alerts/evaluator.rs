//! The evaluator: a task that measures the registry every `evaluation_interval` and moves each
//! rule's alert. A rule fires once its condition has held for `duration_seconds` without a break,
//! resolves as soon as it stops holding (or is disabled), and every change is published.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::alerts::{AlertService, publish, store};
use crate::api::types::{AlertComparison, AlertRecord, AlertRule};
use crate::error::Result;
use crate::monitoring;

/// Since when each rule's condition has held, keyed by rule id; a rule edited since
/// (`updated_at` differs) starts over.
type Holding = HashMap<String, (chrono::DateTime<chrono::Utc>, Instant)>;

pub fn spawn(state: AlertService, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut holding = Holding::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = crate::process::shutting_down(&mut shutdown) => break,
            }
            if let Err(e) = evaluate(&state, &mut holding).await {
                tracing::warn!(error = %e, "alert evaluation failed");
            }
        }
    });
}

pub(super) fn holds(comparison: AlertComparison, value: f64, threshold: f64) -> bool {
    match comparison {
        AlertComparison::Gt => value > threshold,
        AlertComparison::Gte => value >= threshold,
        AlertComparison::Lt => value < threshold,
        AlertComparison::Lte => value <= threshold,
        AlertComparison::Eq => value == threshold,
        AlertComparison::Ne => value != threshold,
    }
}

async fn evaluate(state: &AlertService, holding: &mut Holding) -> Result<()> {
    let (rules, open) = state
        .system_db
        .call(|c| Ok((store::list_rules(c)?, store::open_alerts(c)?)))
        .await?;
    holding.retain(|id, _| rules.iter().any(|r| &r.id == id));
    if rules.is_empty() {
        // Nothing to watch: no sampling either.
        return Ok(());
    }
    let open: HashMap<String, AlertRecord> =
        open.into_iter().map(|a| (a.rule_id.clone(), a)).collect();
    let families = state.metrics.collect().await;
    let now = Instant::now();
    for rule in rules {
        let value = monitoring::alert_value(&families, &rule.metric);
        let Some(value) = value.filter(|_| rule.enabled) else {
            holding.remove(&rule.id);
            if !rule.enabled
                && let Some(alert) = open.get(&rule.id)
            {
                let message = format!("rule `{}` disabled", rule.name);
                change(
                    state,
                    Change::Resolve(alert.id.clone(), alert.value, message),
                )
                .await?;
            }
            // An unreadable source neither fires nor resolves.
            continue;
        };
        if holds(rule.comparison, value, rule.threshold) {
            let entry = holding
                .entry(rule.id.clone())
                .or_insert((rule.updated_at, now));
            if entry.0 != rule.updated_at {
                *entry = (rule.updated_at, now);
            }
            let held = now.duration_since(entry.1);
            if !open.contains_key(&rule.id)
                && held >= Duration::from_secs(u64::from(rule.duration_seconds))
            {
                change(
                    state,
                    Change::Fire(rule.id.clone(), value, fired(&rule, value)),
                )
                .await?;
            }
        } else {
            holding.remove(&rule.id);
            if let Some(alert) = open.get(&rule.id) {
                let message = format!(
                    "{} = {value} no longer {} {}",
                    rule.metric,
                    comparison_text(rule.comparison),
                    rule.threshold
                );
                change(state, Change::Resolve(alert.id.clone(), value, message)).await?;
            }
        }
    }
    Ok(())
}

fn comparison_text(c: AlertComparison) -> &'static str {
    match c {
        AlertComparison::Gt => ">",
        AlertComparison::Gte => ">=",
        AlertComparison::Lt => "<",
        AlertComparison::Lte => "<=",
        AlertComparison::Eq => "==",
        AlertComparison::Ne => "!=",
    }
}

fn fired(rule: &AlertRule, value: f64) -> String {
    format!(
        "{} = {value} {} {} for {} s",
        rule.metric,
        comparison_text(rule.comparison),
        rule.threshold,
        rule.duration_seconds
    )
}

enum Change {
    Fire(String, f64, String),
    Resolve(String, f64, String),
}

async fn change(state: &AlertService, change: Change) -> Result<()> {
    let alert = state
        .system_db
        .call(move |c| match change {
            Change::Fire(rule_id, value, message) => store::fire(c, &rule_id, value, &message),
            Change::Resolve(id, value, message) => store::resolve(c, &id, value, &message),
        })
        .await?;
    tracing::info!(alert = %alert.id, name = %alert.name, state = ?alert.state, "alert changed");
    publish(&state.bus, &alert);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(holds(AlertComparison::Gt, 2.0, 1.0));
        assert!(!holds(AlertComparison::Gt, 1.0, 1.0));
        assert!(holds(AlertComparison::Gte, 1.0, 1.0));
        assert!(holds(AlertComparison::Lt, 0.0, 1.0));
        assert!(holds(AlertComparison::Lte, 1.0, 1.0));
        assert!(holds(AlertComparison::Eq, 1.0, 1.0));
        assert!(holds(AlertComparison::Ne, 0.0, 1.0));
        assert!(!holds(AlertComparison::Ne, 1.0, 1.0));
    }
}
