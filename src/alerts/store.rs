//! Alert rules and alerts in `system.db` (migration 0004). Enums are stored as their wire
//! strings, times as RFC 3339 text.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::types::{AlertRecord, AlertRule, AlertState};
use crate::error::{Error, Result};

/// A rule's fields as the API gives them (validated by the caller).
pub(super) struct RuleInput {
    pub name: String,
    pub metric: String,
    pub comparison: crate::api::types::AlertComparison,
    pub threshold: f64,
    pub duration_seconds: u32,
    pub severity: crate::api::types::AlertSeverity,
    pub category: String,
    pub enabled: bool,
}

/// A generated string enum as its wire string.
fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_enum<T: DeserializeOwned>(row: &Row<'_>, index: &str) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn time(row: &Row<'_>, index: &str) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn optional_time(row: &Row<'_>, index: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => time(row, index).map(Some),
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

fn unique_name(e: rusqlite::Error, name: &str) -> Error {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        Error::Conflict(format!("an alert rule named `{name}` already exists"))
    } else {
        e.into()
    }
}

fn rule_row(row: &Row<'_>) -> rusqlite::Result<AlertRule> {
    Ok(AlertRule {
        id: row.get("id")?,
        name: row.get("name")?,
        metric: row.get("metric")?,
        comparison: parse_enum(row, "comparison")?,
        threshold: row.get("threshold")?,
        duration_seconds: row.get("duration_seconds")?,
        severity: parse_enum(row, "severity")?,
        category: row.get("category")?,
        enabled: row.get("enabled")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

const RULE_COLUMNS: &str = "id, name, metric, comparison, threshold, duration_seconds, severity, \
                            category, enabled, created_at, updated_at";

pub(super) fn insert_rule(conn: &Connection, input: &RuleInput) -> Result<AlertRule> {
    let id = new_id("rul");
    let at = now();
    conn.execute(
        &format!("INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)"),
        params![
            id,
            input.name,
            input.metric,
            wire(&input.comparison),
            input.threshold,
            input.duration_seconds,
            wire(&input.severity),
            input.category,
            input.enabled,
            at
        ],
    )
    .map_err(|e| unique_name(e, &input.name))?;
    get_rule(conn, &id)
}

pub(super) fn update_rule(conn: &Connection, id: &str, input: &RuleInput) -> Result<AlertRule> {
    let changed = conn
        .execute(
            "UPDATE alert_rules SET name = ?2, metric = ?3, comparison = ?4, threshold = ?5, \
             duration_seconds = ?6, severity = ?7, category = ?8, enabled = ?9, updated_at = ?10 \
             WHERE id = ?1",
            params![
                id,
                input.name,
                input.metric,
                wire(&input.comparison),
                input.threshold,
                input.duration_seconds,
                wire(&input.severity),
                input.category,
                input.enabled,
                now()
            ],
        )
        .map_err(|e| unique_name(e, &input.name))?;
    if changed == 0 {
        return Err(no_rule(id));
    }
    get_rule(conn, id)
}

fn no_rule(id: &str) -> Error {
    Error::NotFound(format!("no alert rule `{id}`"))
}

pub(super) fn delete_rule(conn: &Connection, id: &str) -> Result<()> {
    // The rule's alert goes with it (ON DELETE CASCADE).
    match conn.execute("DELETE FROM alert_rules WHERE id = ?1", [id])? {
        0 => Err(no_rule(id)),
        _ => Ok(()),
    }
}

pub(super) fn get_rule(conn: &Connection, id: &str) -> Result<AlertRule> {
    conn.query_row(
        &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"),
        [id],
        rule_row,
    )
    .optional()?
    .ok_or_else(|| no_rule(id))
}

pub(super) fn list_rules(conn: &Connection) -> Result<Vec<AlertRule>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY created_at, id"
    ))?;
    let rules = stmt
        .query_map([], rule_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rules)
}

const ALERT_SELECT: &str = "SELECT a.id, a.rule_id, r.name, r.category, r.severity, a.state, \
     r.metric, r.comparison, r.threshold, r.duration_seconds, a.value, a.message, \
     a.triggered_at, a.first_triggered_at, a.resolved_at, a.acknowledged_at, a.acknowledged_by, \
     a.occurrence_count FROM alerts a JOIN alert_rules r ON r.id = a.rule_id";

fn alert_row(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: row.get("id")?,
        rule_id: row.get("rule_id")?,
        name: row.get("name")?,
        category: row.get("category")?,
        severity: parse_enum(row, "severity")?,
        state: parse_enum(row, "state")?,
        metric: row.get("metric")?,
        comparison: parse_enum(row, "comparison")?,
        threshold: row.get("threshold")?,
        duration_seconds: row.get("duration_seconds")?,
        value: row.get("value")?,
        message: row.get("message")?,
        triggered_at: time(row, "triggered_at")?,
        first_triggered_at: time(row, "first_triggered_at")?,
        resolved_at: optional_time(row, "resolved_at")?,
        acknowledged_at: optional_time(row, "acknowledged_at")?,
        acknowledged_by: row.get("acknowledged_by")?,
        occurrence_count: row.get::<_, i64>("occurrence_count")?.unsigned_abs(),
    })
}

pub(super) fn get_alert(conn: &Connection, id: &str) -> Result<AlertRecord> {
    conn.query_row(&format!("{ALERT_SELECT} WHERE a.id = ?1"), [id], alert_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no alert `{id}`")))
}

fn alert_of_rule(conn: &Connection, rule_id: &str) -> Result<AlertRecord> {
    Ok(conn.query_row(
        &format!("{ALERT_SELECT} WHERE a.rule_id = ?1"),
        [rule_id],
        alert_row,
    )?)
}

/// Alerts, newest firing first, optionally of one state and one severity.
pub(super) fn list_alerts(
    conn: &Connection,
    state: Option<&str>,
    severity: Option<&str>,
) -> Result<Vec<AlertRecord>> {
    let mut stmt = conn.prepare(&format!(
        "{ALERT_SELECT} WHERE (?1 IS NULL OR a.state = ?1) AND (?2 IS NULL OR r.severity = ?2) \
         ORDER BY a.triggered_at DESC, a.id"
    ))?;
    let alerts = stmt
        .query_map(params![state, severity], alert_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(alerts)
}

/// Alerts still holding (firing or acknowledged).
pub(super) fn open_alerts(conn: &Connection) -> Result<Vec<AlertRecord>> {
    let mut stmt = conn.prepare(&format!("{ALERT_SELECT} WHERE a.state != 'resolved'"))?;
    let alerts = stmt
        .query_map([], alert_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(alerts)
}

/// Fires the rule's alert: creates it, or re-fires a resolved one (one more occurrence).
pub(super) fn fire(
    conn: &Connection,
    rule_id: &str,
    value: f64,
    message: &str,
) -> Result<AlertRecord> {
    let at = now();
    conn.execute(
        "INSERT INTO alerts (id, rule_id, state, value, message, first_triggered_at, triggered_at, \
         occurrence_count) VALUES (?1, ?2, 'firing', ?3, ?4, ?5, ?5, 1) \
         ON CONFLICT (rule_id) DO UPDATE SET state = 'firing', value = excluded.value, \
         message = excluded.message, triggered_at = excluded.triggered_at, resolved_at = NULL, \
         acknowledged_at = NULL, acknowledged_by = NULL, occurrence_count = occurrence_count + 1",
        params![new_id("alr"), rule_id, value, message, at],
    )?;
    alert_of_rule(conn, rule_id)
}

pub(super) fn resolve(
    conn: &Connection,
    id: &str,
    value: f64,
    message: &str,
) -> Result<AlertRecord> {
    conn.execute(
        "UPDATE alerts SET state = 'resolved', value = ?2, message = ?3, resolved_at = ?4 \
         WHERE id = ?1",
        params![id, value, message, now()],
    )?;
    get_alert(conn, id)
}

/// Acknowledges a firing alert; anything else is a conflict.
pub(super) fn acknowledge(conn: &Connection, id: &str, by: &str) -> Result<AlertRecord> {
    let alert = get_alert(conn, id)?;
    if alert.state != AlertState::Firing {
        return Err(Error::Conflict(format!(
            "alert `{id}` is {}; only a firing alert can be acknowledged",
            wire(&alert.state)
        )));
    }
    conn.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?2, acknowledged_by = ?3 \
         WHERE id = ?1 AND state = 'firing'",
        params![id, now(), by],
    )?;
    get_alert(conn, id)
}

/// How many alerts are firing and acknowledged (both always present).
pub(super) fn count_open(conn: &mut Connection) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for state in ["firing", "acknowledged"] {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM alerts WHERE state = ?1",
            [state],
            |r| r.get(0),
        )?;
        out.push((state.to_string(), n.unsigned_abs()));
    }
    Ok(out)
}
