//! Maintenance statements (VACUUM, ANALYZE, REINDEX) run through the SQL API become
//! `maintenance_event`s with the database size before and after.

use rusqlite::Connection;

use crate::api::types::{MaintenanceEvent, MaintenanceEventOperation};
use crate::events::Bus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Vacuum,
    Analyze,
    Reindex,
}

impl Operation {
    /// The maintenance operation a statement starts with, if any. Only the first keyword is
    /// read, after whitespace and comments: this classifies an event, it grants nothing (what a
    /// caller may run is the authorizer's decision).
    pub fn of(sql: &str) -> Option<Operation> {
        let keyword: String = skip_comments(sql)
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_ascii_uppercase();
        match keyword.as_str() {
            "VACUUM" => Some(Operation::Vacuum),
            "ANALYZE" => Some(Operation::Analyze),
            "REINDEX" => Some(Operation::Reindex),
            _ => None,
        }
    }
}

fn skip_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start();
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = sql.strip_prefix("/*") {
            sql = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return sql;
        }
    }
}

/// The database's size in pages times the page size: what VACUUM shrinks. (The file itself
/// shrinks only at the next WAL checkpoint.) A failure reads as 0 rather than failing the
/// statement it measures.
pub fn database_bytes(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

pub fn publish(
    bus: &Bus,
    operation: Operation,
    database: &str,
    statement: &str,
    user: &str,
    duration_ms: f64,
    (size_before_bytes, size_after_bytes): (i64, i64),
) {
    bus.publish(&MaintenanceEvent {
        operation: match operation {
            Operation::Vacuum => MaintenanceEventOperation::Vacuum,
            Operation::Analyze => MaintenanceEventOperation::Analyze,
            Operation::Reindex => MaintenanceEventOperation::Reindex,
        },
        database: database.to_string(),
        statement: statement.to_string(),
        user: user.to_string(),
        duration_ms,
        size_before_bytes,
        size_after_bytes,
        checkpoint_mode: None,
        busy: None,
        log_frames: None,
        checkpointed_frames: None,
        wal_bytes_before: None,
        wal_bytes_after: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_keyword_after_comments() {
        assert_eq!(Operation::of("  vacuum"), Some(Operation::Vacuum));
        assert_eq!(
            Operation::of("-- tidy\n/* now */ ANALYZE users"),
            Some(Operation::Analyze)
        );
        assert_eq!(Operation::of("REINDEX;"), Some(Operation::Reindex));
        assert_eq!(Operation::of("SELECT 'VACUUM'"), None);
        assert_eq!(Operation::of("VACUUMED"), None);
        assert_eq!(Operation::of("/* unterminated"), None);
    }
}
