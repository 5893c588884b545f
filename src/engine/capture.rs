//! Change capture: every committed row change becomes a `table_modified` event, whatever wrote it
//! (the rows API or raw SQL). See docs/decisions/0005-change-capture.md.
//!
//! Each pooled connection carries TEMP triggers on every user table that pass the old and new
//! column values to a Rust function registered on that connection. Changes collect in the
//! connection's buffer; a rollback clears it, and the commit hook hands it to the sequencer under a commit number taken while SQLite holds the write lock.
//! The sequencer publishes transactions in commit order, and only once the statement that
//! committed has returned successfully.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use serde_json::{Map, Value};

use super::sql::to_json;
use crate::error::Result;
use crate::sync::lock;

/// One row change.
#[derive(Debug, Clone)]
pub struct Change {
    pub table: String,
    pub operation: &'static str,
    /// The rowid, or for a WITHOUT ROWID table its primary key as the rows API writes it.
    pub row_id: String,
    pub old: Option<Map<String, Value>>,
    pub new: Option<Map<String, Value>>,
}

/// One schema object created, altered or dropped (see `Capture::detect_schema_changes`).
#[derive(Debug, Clone)]
pub struct SchemaChange {
    pub change_type: &'static str,
    pub object_type: String,
    pub object_name: String,
    pub table: String,
    pub definition: Option<String>,
    pub previous_name: Option<String>,
    pub statement: String,
    pub user: Option<String>,
}

/// What a transaction did, in the order it happened.
#[derive(Debug, Clone)]
pub enum Item {
    Row(Change),
    Schema(SchemaChange),
}

/// Who runs the current call, and its SQL, for the schema-change events it may cause.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user: Option<String>,
    pub statement: Option<String>,
    /// The id the call's committed changes are reported with: the API transaction's id
    /// (`txn-...`) inside one, otherwise the statement's query id (`q-...`, as in
    /// /api/v1/queries and the query events). A call without one gets a fresh `q-` id.
    pub transaction_id: Option<String>,
}

/// A committed transaction's changes (database, transaction id, changes), published in commit
/// order.
pub type Publish = Box<dyn Fn(&str, &str, Vec<Item>) + Send + Sync>;

/// Orders committed transactions of all databases and connections.
pub struct Sequencer {
    next_commit: AtomicU64,
    pending: Mutex<Pending>,
    publish: Publish,
}

/// A committed transaction: its database, id and changes; `None` when it did not commit after
/// all.
type Outcome = Option<(String, Arc<str>, Vec<Item>)>;

/// The next commit number to publish, and outcomes that arrived out of order.
struct Pending {
    next: u64,
    waiting: BTreeMap<u64, Outcome>,
}

impl Sequencer {
    pub fn new(publish: Publish) -> Sequencer {
        Sequencer {
            next_commit: AtomicU64::new(1),
            pending: Mutex::new(Pending {
                next: 1,
                waiting: BTreeMap::new(),
            }),
            publish,
        }
    }

    fn claim(&self) -> u64 {
        self.next_commit.fetch_add(1, Ordering::SeqCst)
    }

    /// Records the outcome of commit `seq` (`None`: it did not commit) and publishes every
    /// transaction whose predecessors are all resolved.
    fn resolve(&self, seq: u64, outcome: Outcome) {
        let mut pending = lock(&self.pending);
        pending.waiting.insert(seq, outcome);
        loop {
            let next = pending.next;
            let Some(outcome) = pending.waiting.remove(&next) else {
                break;
            };
            pending.next += 1;
            if let Some((database, transaction_id, changes)) = outcome
                && !changes.is_empty()
            {
                (self.publish)(&database, &transaction_id, changes);
            }
        }
    }
}

/// Changes of the open transaction, and committed transactions not yet settled. Savepoints are
/// refused by the authorizer (see `access`), so a transaction's changes only ever end all
/// committed or all rolled back.
#[derive(Default)]
struct Buffer {
    changes: Vec<Item>,
    /// Every commit gets a number, with or without row changes: a DDL statement's schema
    /// changes are known only after it committed, and are attached to its commit then.
    committed: Vec<Committed>,
    /// The id the current call's commits are reported with (see `Actor::transaction_id`).
    transaction_id: Option<Arc<str>>,
    /// Savepoints set through the transactions API, with the buffer length when each was set.
    marks: Vec<(String, usize)>,
    /// Set while the server changes its own TEMP triggers: those commits are nobody's and get
    /// no number (an unsettled number would hold back every later commit's events).
    internal: bool,
}

/// A commit of this connection, numbered in commit order, not yet settled.
struct Committed {
    seq: u64,
    transaction_id: Arc<str>,
    items: Vec<Item>,
}

/// Runs `alter`, an `ALTER TABLE` of `table`, without this connection's capture triggers on that
/// table. SQLite refuses `DROP COLUMN` while any trigger, TEMP ones included, names the column.
/// Outside a transaction the triggers are dropped in one with the ALTER: `ensure_triggers` makes
/// them again after the call (the schema version changed), and a refused ALTER's rollback brings
/// them back. Inside a client's transaction they stay, and SQLite's refusal names the trigger.
pub fn alter_without_triggers<T>(
    conn: &Connection,
    table: &str,
    alter: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if !conn.is_autocommit() {
        return alter();
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = drop_table_triggers(conn, table).and_then(|()| alter());
    conn.execute_batch(if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    })?;
    outcome
}

fn drop_table_triggers(conn: &Connection, table: &str) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_temp_schema WHERE type = 'trigger' AND tbl_name = ?1
         AND name LIKE 'rustydb_cc_%'",
    )?;
    let names: Vec<String> = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        conn.execute_batch(&format!(
            "DROP TRIGGER temp.{}",
            super::tables::quote(&name)
        ))?;
    }
    Ok(())
}

/// The capture state of one connection.
pub struct Capture {
    buffer: Arc<Mutex<Buffer>>,
    columns: Arc<Mutex<HashMap<String, Vec<String>>>>,
    installed_schema: Option<i64>,
    /// `sqlite_schema` as of `installed_schema`.
    schema: Vec<SchemaObject>,
    actor: Actor,
    sequencer: Arc<Sequencer>,
    function: String,
}

// Keep in step with `access::CAPTURE_PREFIX`.
/// Name of the capture function. The authorizer lets only the capture triggers call it.
fn function_name() -> &'static str {
    "rustydb_capture_v1"
}

impl Capture {
    /// Registers the capture function and the transaction hooks on a new connection.
    pub fn attach(conn: &mut Connection, sequencer: Arc<Sequencer>) -> Result<Capture> {
        let buffer: Arc<Mutex<Buffer>> = Arc::default();
        let columns: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let function = function_name().to_string();
        {
            let (buffer, columns) = (Arc::clone(&buffer), Arc::clone(&columns));
            // Arguments: table, operation, row id (rowid, or the key of a WITHOUT ROWID table),
            // number of old values, old values..., new values...
            conn.create_scalar_function(
                function.as_str(),
                -1,
                FunctionFlags::SQLITE_UTF8,
                move |ctx| {
                    let table: String = ctx.get(0)?;
                    let operation: String = ctx.get(1)?;
                    let row_id = match to_json(ctx.get_raw(2)) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let n_old: usize = ctx.get::<i64>(3)?.try_into().unwrap_or(0);
                    let names = lock(&columns).get(&table).cloned().unwrap_or_default();
                    let row = |from: usize| -> Map<String, Value> {
                        names
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (n.clone(), to_json(ctx.get_raw(from + i))))
                            .collect()
                    };
                    let (old, new) = match operation.as_str() {
                        "INSERT" => (None, Some(row(4))),
                        "DELETE" => (Some(row(4)), None),
                        _ => (Some(row(4)), Some(row(4 + n_old))),
                    };
                    let operation = match operation.as_str() {
                        "INSERT" => "INSERT",
                        "DELETE" => "DELETE",
                        _ => "UPDATE",
                    };
                    lock(&buffer).changes.push(Item::Row(Change {
                        table,
                        operation,
                        row_id,
                        old,
                        new,
                    }));
                    Ok(rusqlite::types::Value::Null)
                },
            )?;
        }
        {
            let (buffer, sequencer) = (Arc::clone(&buffer), Arc::clone(&sequencer));
            conn.commit_hook(Some(move || {
                let mut b = lock(&buffer);
                if b.internal && b.changes.is_empty() {
                    return false;
                }
                let changes = std::mem::take(&mut b.changes);
                b.marks.clear();
                // Taken while SQLite holds the write lock: commit numbers follow commit order.
                let seq = sequencer.claim();
                let transaction_id = b
                    .transaction_id
                    .clone()
                    .unwrap_or_else(|| super::queries::RunningQueries::new_id().into());
                b.committed.push(Committed {
                    seq,
                    transaction_id,
                    items: changes,
                });
                false
            }))?;
        }
        {
            let buffer = Arc::clone(&buffer);
            conn.rollback_hook(Some(move || {
                let mut b = lock(&buffer);
                b.changes.clear();
                b.marks.clear();
            }))?;
        }
        Ok(Capture {
            buffer,
            columns,
            installed_schema: None,
            schema: Vec::new(),
            actor: Actor::default(),
            sequencer,
            function,
        })
    }

    /// (Re)creates the TEMP triggers when the schema changed since they were made.
    pub fn ensure_triggers(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        if self.installed_schema == Some(version) {
            return Ok(());
        }
        self.schema = SchemaObject::load(conn)?;
        lock(&self.buffer).internal = true;
        let result = self.install_triggers(conn, version);
        lock(&self.buffer).internal = false;
        result
    }

    fn install_triggers(&mut self, conn: &Connection, version: i64) -> Result<()> {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_temp_schema WHERE type = 'trigger' AND name LIKE 'rustydb_cc_%'",
        )?;
        let old: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        for name in old {
            conn.execute_batch(&format!(
                "DROP TRIGGER IF EXISTS temp.{}",
                super::tables::quote(&name)
            ))?;
        }
        // `type = 'table'` leaves out views, virtual tables and their shadow tables, which
        // cannot carry triggers; `wr` marks WITHOUT ROWID tables.
        let mut stmt = conn.prepare(
            "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table'
             AND name NOT LIKE 'sqlite_%'",
        )?;
        let tables: Vec<(String, bool)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let mut columns = HashMap::new();
        for (i, (table, without_rowid)) in tables.iter().enumerate() {
            let mut stmt = conn.prepare(&format!(
                "PRAGMA table_info({})",
                super::tables::quote(table)
            ))?;
            let described: Vec<(String, i64)> = stmt
                .query_map([], |r| Ok((r.get(1)?, r.get(5)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let names: Vec<String> = described.iter().map(|(n, _)| n.clone()).collect();
            let t = super::tables::quote(table);
            // The row id: the rowid, or for a WITHOUT ROWID table its primary key written as
            // the rows API addresses it (`tables::encode_key`).
            let row_id = |alias: &str| {
                if !without_rowid {
                    return format!("{alias}.rowid");
                }
                let mut key: Vec<&(String, i64)> =
                    described.iter().filter(|(_, pk)| *pk > 0).collect();
                key.sort_by_key(|(_, pk)| *pk);
                match key.as_slice() {
                    [(only, _)] => format!("{alias}.{}", super::tables::quote(only)),
                    parts => parts
                        .iter()
                        .map(|(n, _)| {
                            format!(
                                "replace(replace(coalesce(CAST({alias}.{} AS TEXT), ''), '\\', '\\\\'), ',', '\\,')",
                                super::tables::quote(n)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" || ',' || "),
                }
            };
            let lit = format!("'{}'", table.replace('\'', "''"));
            let vals = |alias: &str| {
                names
                    .iter()
                    .map(|n| format!("{alias}.{}", super::tables::quote(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let n = names.len();
            let f = &self.function;
            conn.execute_batch(&format!(
                "CREATE TEMP TRIGGER rustydb_cc_{i}_i AFTER INSERT ON main.{t} BEGIN \
                   SELECT {f}({lit}, 'INSERT', {new_id}, 0, {new}); END;
                 CREATE TEMP TRIGGER rustydb_cc_{i}_u AFTER UPDATE ON main.{t} BEGIN \
                   SELECT {f}({lit}, 'UPDATE', {new_id}, {n}, {old}, {new}); END;
                 CREATE TEMP TRIGGER rustydb_cc_{i}_d AFTER DELETE ON main.{t} BEGIN \
                   SELECT {f}({lit}, 'DELETE', {old_id}, {n}, {old}); END;",
                new = vals("NEW"),
                old = vals("OLD"),
                new_id = row_id("NEW"),
                old_id = row_id("OLD"),
            ))?;
            columns.insert(table.clone(), names);
        }
        *lock(&self.columns) = columns;
        self.installed_schema = Some(version);
        Ok(())
    }

    /// Who runs the next call on this connection, for the schema-change events it may cause.
    pub fn set_actor(&mut self, actor: Actor) {
        lock(&self.buffer).transaction_id = actor.transaction_id.as_deref().map(Arc::from);
        self.actor = actor;
    }

    /// After a call: if it changed the schema, compares `sqlite_schema` with the copy taken
    /// before, and records each created, altered or dropped object. The changes join the open
    /// transaction, or, when the call committed, the commit that made them, so they are
    /// published after it and in commit order with row changes. A rolled-back DDL statement
    /// leaves the schema version as it was and records nothing.
    pub fn detect_schema_changes(&mut self, conn: &Connection) -> Result<()> {
        if self.installed_schema.is_none() {
            return self.ensure_triggers(conn);
        }
        let before = self.schema.clone();
        self.ensure_triggers(conn)?;
        let actor = std::mem::take(&mut self.actor);
        let items: Vec<Item> = diff(&before, &self.schema)
            .into_iter()
            .map(|(change_type, object, previous_name)| {
                Item::Schema(SchemaChange {
                    change_type,
                    object_type: object.kind.to_ascii_uppercase(),
                    object_name: object.name.clone(),
                    table: object.table.clone(),
                    definition: object.sql.clone(),
                    previous_name,
                    statement: actor.statement.clone().unwrap_or_default(),
                    user: actor.user.clone(),
                })
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        // The schema version also moves when another connection changes the schema while this
        // call runs (a long SELECT overlapping DDL): the changes are this call's only if it
        // holds the write lock or committed. The connection that made them announces them.
        let mut b = lock(&self.buffer);
        if !conn.is_autocommit() {
            if conn.transaction_state(Some(rusqlite::MAIN_DB))? == rusqlite::TransactionState::Write
            {
                b.changes.extend(items);
            }
        } else if let Some(committed) = b.committed.last_mut() {
            committed.items.extend(items);
        }
        Ok(())
    }

    /// Distinct rows the open transaction changed so far (changes undone by ROLLBACK TO
    /// excluded; a row inserted then updated counts once): what its COMMIT would publish, or its
    /// ROLLBACK discard.
    pub fn pending_rows(&self) -> u64 {
        let b = lock(&self.buffer);
        let rows: std::collections::HashSet<(&str, &str)> = b
            .changes
            .iter()
            .filter_map(|i| match i {
                Item::Row(c) => Some((c.table.as_str(), c.row_id.as_str())),
                Item::Schema(_) => None,
            })
            .collect();
        rows.len() as u64
    }

    pub fn mark(&self, name: &str) {
        let mut b = lock(&self.buffer);
        let at = b.changes.len();
        b.marks.push((name.to_string(), at));
    }

    /// ROLLBACK TO `name`: its changes since are dropped; it stays, later ones go.
    pub fn rollback_to(&self, name: &str) {
        let mut b = lock(&self.buffer);
        if let Some(pos) = b.marks.iter().rposition(|(n, _)| n == name) {
            let at = b.marks[pos].1;
            b.changes.truncate(at);
            b.marks.truncate(pos + 1);
        }
    }

    /// RELEASE `name`: it and later savepoints go; their changes stay.
    pub fn release(&self, name: &str) {
        let mut b = lock(&self.buffer);
        if let Some(pos) = b.marks.iter().rposition(|(n, _)| n == name) {
            b.marks.truncate(pos);
        }
    }

    /// After a call on this connection: publish what it committed if the call succeeded,
    /// otherwise release its commit numbers without publishing.
    pub fn settle(&self, database: &str, succeeded: bool) {
        let committed = {
            let mut b = lock(&self.buffer);
            b.transaction_id = None;
            std::mem::take(&mut b.committed)
        };
        for c in committed {
            let outcome = succeeded.then(|| (database.to_string(), c.transaction_id, c.items));
            self.sequencer.resolve(c.seq, outcome);
        }
    }
}

/// A row of `main.sqlite_schema`; SQLite's internal objects (`sqlite_%`) are left out.
#[derive(Debug, Clone, PartialEq)]
struct SchemaObject {
    kind: String,
    name: String,
    table: String,
    rootpage: i64,
    sql: Option<String>,
}

impl SchemaObject {
    fn load(conn: &Connection) -> Result<Vec<SchemaObject>> {
        let mut stmt = conn.prepare(
            "SELECT type, name, tbl_name, coalesce(rootpage, 0), sql FROM main.sqlite_schema
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )?;
        let objects = stmt
            .query_map([], |r| {
                Ok(SchemaObject {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    table: r.get(2)?,
                    rootpage: r.get(3)?,
                    sql: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(objects)
    }

    fn same(&self, other: &SchemaObject) -> bool {
        self.kind == other.kind && self.name == other.name
    }
}

/// What changed from `before` to `after`: an object of the same type and name with another
/// definition was altered; a table or index that vanished while one of the same type appeared
/// on the same root page was renamed (root pages survive a rename, not a drop and create).
fn diff<'a>(
    before: &'a [SchemaObject],
    after: &'a [SchemaObject],
) -> Vec<(&'static str, &'a SchemaObject, Option<String>)> {
    let mut changes = Vec::new();
    let gone: Vec<&SchemaObject> = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.same(b)))
        .collect();
    let mut renamed_from = Vec::new();
    for a in after {
        match before.iter().find(|b| b.same(a)) {
            Some(b) if b.sql != a.sql => changes.push(("ALTER", a, None)),
            Some(_) => {}
            None => {
                let old = gone
                    .iter()
                    .find(|g| g.kind == a.kind && g.rootpage != 0 && g.rootpage == a.rootpage);
                match old {
                    Some(old) => {
                        renamed_from.push(old.name.clone());
                        changes.push(("ALTER", a, Some(old.name.clone())));
                    }
                    None => changes.push(("CREATE", a, None)),
                }
            }
        }
    }
    for g in gone {
        if !renamed_from.contains(&g.name) {
            changes.push(("DROP", g, None));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, rootpage: i64, sql: &str) -> SchemaObject {
        SchemaObject {
            kind: kind.into(),
            name: name.into(),
            table: name.into(),
            rootpage,
            sql: Some(sql.into()),
        }
    }

    fn summary(changes: &[(&'static str, &SchemaObject, Option<String>)]) -> Vec<String> {
        changes
            .iter()
            .map(|(t, o, p)| {
                format!(
                    "{t} {} {}{}",
                    o.kind,
                    o.name,
                    p.as_deref()
                        .map(|p| format!(" from {p}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn diff_finds_create_alter_rename_and_drop() {
        let before = vec![
            object("table", "a", 2, "CREATE TABLE a(x)"),
            object("table", "b", 3, "CREATE TABLE b(x)"),
            object("table", "c", 4, "CREATE TABLE c(x)"),
            object("view", "v", 0, "CREATE VIEW v AS SELECT 1"),
        ];
        let after = vec![
            object("table", "a", 2, "CREATE TABLE a(x, y)"),
            object("table", "b2", 3, "CREATE TABLE \"b2\"(x)"),
            object("index", "i", 5, "CREATE INDEX i ON a(x)"),
            object("view", "v", 0, "CREATE VIEW v AS SELECT 1"),
        ];
        assert_eq!(
            summary(&diff(&before, &after)),
            [
                "ALTER table a",
                "ALTER table b2 from b",
                "CREATE index i",
                "DROP table c"
            ]
        );
    }

    #[test]
    fn vacuum_moving_root_pages_is_no_change() {
        let before = vec![object("table", "a", 2, "CREATE TABLE a(x)")];
        let after = vec![object("table", "a", 7, "CREATE TABLE a(x)")];
        assert!(diff(&before, &after).is_empty());
    }
}
