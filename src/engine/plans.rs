//! Query plan tracking: SELECTs are normalized (literals to `?`, comments dropped, whitespace
//! collapsed) and hashed; the plan of each is taken with EXPLAIN QUERY PLAN when first seen and
//! again only when the database's `PRAGMA schema_version` moved, so a plan change (say after
//! CREATE INDEX) is recorded at the next execution at the cost of one pragma per execution.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::Utc;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::api::types::{PlanChange, QueryPlanNode, TrackedQuery};
use crate::sync::lock;

/// Queries tracked at once; the least recently executed goes first.
const MAX_TRACKED: usize = 1000;
/// Plan changes remembered (the newest).
const MAX_CHANGES: usize = 1000;

/// The statement with literals replaced by `?`, comments dropped and whitespace collapsed;
/// identifiers (quoted or not) and keywords are kept as written.
pub fn normalize(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    let mut i = 0;
    let push = |out: &mut String, space: &mut bool, text: &str| {
        if *space && !out.is_empty() {
            out.push(' ');
        }
        *space = false;
        out.push_str(text);
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            space = true;
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            space = true;
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            space = true;
        } else if c == '\'' || ((c == 'x' || c == 'X') && next == Some('\'')) {
            // A string or blob literal; '' inside is an escaped quote.
            i += if c == '\'' { 1 } else { 2 };
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            push(&mut out, &mut space, "?");
        } else if c == '"' || c == '`' || c == '[' {
            let close = if c == '[' { ']' } else { c };
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i = (i + 1).min(chars.len());
            let ident: String = chars[start..i].iter().collect();
            push(&mut out, &mut space, &ident);
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            push(&mut out, &mut space, "?");
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            push(&mut out, &mut space, &word);
        } else {
            let mut buf = [0u8; 4];
            push(&mut out, &mut space, c.encode_utf8(&mut buf));
            i += 1;
        }
    }
    out.trim_end_matches(';').trim_end().to_string()
}

/// The first 16 hex digits of the normalized text's SHA-256.
pub fn hash(normalized: &str) -> String {
    hex::encode(&Sha256::digest(normalized.as_bytes())[..8])
}

/// Only statements that read: their plan is what an index changes.
pub fn is_tracked(normalized: &str) -> bool {
    let head = normalized
        .trim_start_matches('(')
        .split(' ')
        .next()
        .unwrap_or_default();
    head.eq_ignore_ascii_case("SELECT") || head.eq_ignore_ascii_case("WITH")
}

/// A plan tree as lines, children indented by two spaces.
pub fn lines(plan: &[QueryPlanNode]) -> Vec<String> {
    fn walk(nodes: &[QueryPlanNode], depth: usize, out: &mut Vec<String>) {
        for n in nodes {
            out.push(format!("{}{}", "  ".repeat(depth), n.detail));
            walk(&n.children, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(plan, 0, &mut out);
    out
}

#[derive(Default)]
pub struct PlanTracker {
    tracked: Mutex<HashMap<(String, String), TrackedQuery>>,
    changes: Mutex<VecDeque<PlanChange>>,
}

/// A query's identity in the tracker.
pub struct Key {
    pub database: String,
    pub normalized: String,
    pub hash: String,
}

impl Key {
    /// `None` for statements that are not tracked.
    pub fn of(database: &str, sql: &str) -> Option<Key> {
        let normalized = normalize(sql);
        is_tracked(&normalized).then(|| Key {
            database: database.to_string(),
            hash: hash(&normalized),
            normalized,
        })
    }
}

impl PlanTracker {
    /// Counts an execution of `key` on `conn` (blocking, after the statement succeeded).
    /// `explain` yields the plan lines; it is called only when the plan must be (re)taken.
    /// Returns the plan change it recorded, if any, for the caller to announce.
    pub fn observe(
        &self,
        conn: &mut Connection,
        key: Key,
        explain: impl FnOnce(&mut Connection) -> crate::error::Result<Vec<String>>,
    ) -> Option<PlanChange> {
        let Ok(version) = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
        else {
            return None;
        };
        let id = (key.database.clone(), key.hash.clone());
        let now = Utc::now();
        {
            let mut tracked = lock(&self.tracked);
            if let Some(t) = tracked.get_mut(&id)
                && t.schema_version == version
            {
                t.executions += 1;
                t.last_executed_at = now;
                return None;
            }
        }
        // Taken outside the lock: EXPLAIN prepares the statement.
        let Ok(plan) = explain(conn) else {
            return None;
        };
        let mut tracked = lock(&self.tracked);
        let mut recorded = None;
        match tracked.get_mut(&id) {
            Some(t) => {
                if t.plan != plan {
                    recorded = Some(self.record_change(PlanChange {
                        query_hash: key.hash,
                        database: key.database,
                        normalized_sql: key.normalized,
                        old_plan: std::mem::replace(&mut t.plan, plan.clone()),
                        new_plan: plan,
                        reason: format!(
                            "schema changed (version {} -> {version})",
                            t.schema_version
                        ),
                        changed_at: now,
                    }));
                    t.plan_changes += 1;
                }
                t.schema_version = version;
                t.executions += 1;
                t.last_executed_at = now;
            }
            None => {
                if tracked.len() >= MAX_TRACKED
                    && let Some(oldest) = tracked
                        .iter()
                        .min_by_key(|(_, t)| t.last_executed_at)
                        .map(|(k, _)| k.clone())
                {
                    tracked.remove(&oldest);
                }
                tracked.insert(
                    id,
                    TrackedQuery {
                        query_hash: key.hash,
                        database: key.database,
                        normalized_sql: key.normalized,
                        plan,
                        schema_version: version,
                        executions: 1,
                        plan_changes: 0,
                        first_seen_at: now,
                        last_executed_at: now,
                    },
                );
            }
        }
        recorded
    }

    fn record_change(&self, change: PlanChange) -> PlanChange {
        tracing::info!(
            query_hash = %change.query_hash,
            database = %change.database,
            reason = %change.reason,
            "query plan changed"
        );
        let mut changes = lock(&self.changes);
        if changes.len() == MAX_CHANGES {
            changes.pop_front();
        }
        changes.push_back(change.clone());
        change
    }

    /// Most recently executed first.
    pub fn list(&self) -> Vec<TrackedQuery> {
        let mut all: Vec<_> = lock(&self.tracked).values().cloned().collect();
        all.sort_by_key(|q| std::cmp::Reverse(q.last_executed_at));
        all
    }

    /// Newest first, optionally of one query.
    pub fn changes(&self, query_hash: Option<&str>) -> Vec<PlanChange> {
        lock(&self.changes)
            .iter()
            .rev()
            .filter(|c| query_hash.is_none_or(|h| c.query_hash == h))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_comments_and_whitespace_are_normalized() {
        assert_eq!(
            normalize(
                "SELECT  *\n FROM \"My Table\" -- note\n WHERE a = 'it''s' AND b > 3.5e2 /* x */ AND c = x'00';"
            ),
            "SELECT * FROM \"My Table\" WHERE a = ? AND b > ? AND c = ?"
        );
        assert_eq!(normalize("select t1.a from t1"), "select t1.a from t1");
        assert_eq!(hash(&normalize("SELECT 1")), hash(&normalize("SELECT   2")));
        assert!(is_tracked("WITH x AS (SELECT ?) SELECT * FROM x"));
        assert!(!is_tracked("INSERT INTO t VALUES (?)"));
    }
}
