//! The audit log in `system.db`: logins, logouts, refreshes and reuse, key and user/role changes,
//! permission denials. Entries never carry secrets.

use std::net::IpAddr;

use rusqlite::{Connection, params_from_iter};
use serde_json::Value;

use super::store::{now, parse_time};
use crate::api::types::{AuditEntry, AuditOutcome};
use crate::engine::SystemDb;
use crate::error::Result;

pub struct AuditRecord {
    pub actor: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: AuditOutcome,
    pub client_ip: Option<IpAddr>,
    pub details: Option<Value>,
}

impl AuditRecord {
    pub fn new(action: &'static str, outcome: AuditOutcome) -> AuditRecord {
        AuditRecord {
            actor: None,
            action,
            target: None,
            outcome,
            client_ip: None,
            details: None,
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

fn outcome_str(o: AuditOutcome) -> &'static str {
    match o {
        AuditOutcome::Success => "success",
        AuditOutcome::Failure => "failure",
        AuditOutcome::Denied => "denied",
    }
}

/// Writes an entry. A failed write is logged, not returned: auditing must not turn a refused
/// login into a 500, and the log line keeps the event.
pub async fn record(db: &SystemDb, entry: AuditRecord) {
    let action = entry.action;
    let result = db
        .call(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, action, target, outcome, client_ip, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    now(),
                    entry.actor,
                    entry.action,
                    entry.target,
                    outcome_str(entry.outcome),
                    entry.client_ip.map(|ip| ip.to_string()),
                    entry.details.map(|d| d.to_string()),
                ],
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = result {
        tracing::error!(action, error = %e, "failed to write audit entry");
    }
}

pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub fn list(conn: &Connection, f: &AuditFilter) -> Result<(Vec<AuditEntry>, i64)> {
    let mut clauses = Vec::new();
    let mut args: Vec<String> = Vec::new();
    for (column, value) in [
        ("action", &f.action),
        ("actor", &f.actor),
        ("outcome", &f.outcome),
    ] {
        if let Some(v) = value {
            args.push(v.clone());
            clauses.push(format!("{column} = ?{}", args.len()));
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM audit_log {filter}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, at, actor, action, target, outcome, client_ip, details FROM audit_log {filter}
         ORDER BY id DESC LIMIT {} OFFSET {}",
        f.limit, f.offset
    ))?;
    let entries = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            let outcome: String = r.get(5)?;
            Ok(AuditEntry {
                id: r.get(0)?,
                at: parse_time(&r.get::<_, String>(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                outcome: match outcome.as_str() {
                    "success" => AuditOutcome::Success,
                    "denied" => AuditOutcome::Denied,
                    _ => AuditOutcome::Failure,
                },
                client_ip: r.get(6)?,
                details: r
                    .get::<_, Option<String>>(7)?
                    .and_then(|d| serde_json::from_str(&d).ok()),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((entries, total))
}
