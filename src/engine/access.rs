//! What a statement may do, decided by SQLite's authorizer (not by parsing SQL text) from the
//! caller's permissions. ATTACH and DETACH are refused for everyone: databases live in the data
//! directory and are managed through the API, and ATTACH would open arbitrary files. The one
//! exception is VACUUM's own `ATTACH ''` (a private temporary database), for admins.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Prefix of the change-capture function's name (see `capture`).
pub const CAPTURE_PREFIX: &str = "rustydb_capture_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlAccess {
    /// Reads only (database:read).
    Read,
    /// Reads, writes and schema changes (database:write).
    Write,
    /// Everything but ATTACH/DETACH, including setting pragmas (database:admin).
    Admin,
}

impl SqlAccess {
    pub fn authorize(self, ctx: &AuthContext<'_>) -> Authorization {
        use AuthAction::*;
        let allowed = match ctx.action {
            // VACUUM works through a private temporary database: `ATTACH ''`, which opens no
            // file of anyone's choosing. Only admins may VACUUM.
            Attach { filename: "" } | Detach { .. } if self == SqlAccess::Admin => true,
            Attach { .. } | Detach { .. } => false,
            // The change-capture function may only run inside the server's capture triggers;
            // called from a client's SQL it would forge change events.
            Function { function_name } if function_name.starts_with(CAPTURE_PREFIX) => ctx
                .accessor
                .is_some_and(|trigger| trigger.starts_with("rustydb_cc_")),
            Select | Read { .. } | Function { .. } | Recursive => true,
            Transaction { .. } => true,
            // Change capture cannot see a partial rollback made in SQL; savepoints go through
            // the transactions API, which keeps capture in step.
            Savepoint { .. } => false,
            Pragma {
                pragma_name,
                pragma_value,
            } => self == SqlAccess::Admin || introspection_pragma(pragma_name, pragma_value),
            _ => self != SqlAccess::Read,
        };
        if allowed {
            Authorization::Allow
        } else {
            Authorization::Deny
        }
    }
}

/// Pragmas that only report: allowed to every reader. A value turns most pragmas into a write,
/// except those whose argument names what to describe.
fn introspection_pragma(name: &str, value: Option<&str>) -> bool {
    const DESCRIBE: &[&str] = &[
        "table_info",
        "table_xinfo",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "table_list",
    ];
    const READ_ONLY: &[&str] = &[
        "page_count",
        "page_size",
        "freelist_count",
        "journal_mode",
        "user_version",
        "schema_version",
        "encoding",
        "foreign_keys",
        "collation_list",
        "pragma_list",
        "compile_options",
        "integrity_check",
        "quick_check",
        "foreign_key_check",
    ];
    let name = name.to_ascii_lowercase();
    DESCRIBE.contains(&name.as_str()) || (value.is_none() && READ_ONLY.contains(&name.as_str()))
}
