//! Partitioned tables inside a user database. A partitioned table `t` is:
//! - one child table per partition, `t__p_<name>`, all with the same columns;
//! - a VIEW `t` that is the UNION ALL of the children, so reads see every row;
//! - an INSTEAD OF INSERT trigger `t__route` on the view that inserts each row into the child
//!   whose range or list takes its key, and aborts the INSERT when none does (or the key is NULL);
//! - its partitions' definitions in `rustydb_partitions`, in the same database, so the DDL and
//!   the metadata change in one transaction.
//!
//! Bounds are rendered into the trigger as SQL literals: only numbers and strings are accepted,
//! and all bounds of one table are of one kind, so Rust's ordering here matches SQLite's.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::api::types::{ColumnSpec, PartitionInfo, PartitionType};
use crate::engine::tables::{self, quote};
use crate::error::{Error, Result};

const META: &str = "rustydb_partitions";

/// A partition as `rustydb_partitions` holds it.
#[derive(Debug, Clone)]
pub(super) struct Partition {
    pub table: String,
    pub name: String,
    pub kind: PartitionType,
    pub column: String,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub values: Vec<Value>,
    pub created_at: DateTime<Utc>,
}

impl Partition {
    pub(super) fn child(&self) -> String {
        child_name(&self.table, &self.name)
    }
}

fn child_name(table: &str, name: &str) -> String {
    format!("{table}__p_{name}")
}

/// What the API asks for, before checks.
pub(super) struct NewPartition {
    pub table: String,
    pub name: String,
    pub kind: PartitionType,
    pub column: String,
    pub columns: Vec<ColumnSpec>,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub values: Vec<Value>,
}

/// Table and partition names become parts of identifiers and of the partition id.
pub(super) fn check_ident(what: &str, s: &str) -> Result<()> {
    let ok = (1..=48).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__");
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} `{s}`: 1 to 48 lowercase letters, digits or single `_`, starting with a letter"
        )))
    }
}

fn ensure_meta(conn: &Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {META} (
            parent TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            key_column TEXT NOT NULL,
            range_from TEXT,
            range_to TEXT,
            list_values TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (parent, name)
        ) STRICT"
    ))?;
    Ok(())
}

fn meta_exists(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [META],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Partitions of one table, or of all tables, in creation order.
pub(super) fn load(conn: &Connection, table: Option<&str>) -> Result<Vec<Partition>> {
    if !meta_exists(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT parent, name, kind, key_column, range_from, range_to, list_values, created_at
         FROM {META} WHERE ?1 IS NULL OR parent = ?1 ORDER BY parent, created_at, name"
    ))?;
    let rows = stmt.query_map([table], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let json = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| Error::Sql(e.to_string()));
    let mut out = Vec::new();
    for row in rows {
        let (table, name, kind, column, from, to, values, created_at) = row?;
        out.push(Partition {
            table,
            name,
            kind: if kind == "list" {
                PartitionType::List
            } else {
                PartitionType::Range
            },
            column,
            from: from.as_deref().map(json).transpose()?,
            to: to.as_deref().map(json).transpose()?,
            values: match json(&values)? {
                Value::Array(v) => v,
                _ => Vec::new(),
            },
            created_at: DateTime::parse_from_rfc3339(&created_at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::Sql(e.to_string()))?,
        });
    }
    Ok(out)
}

/// A bound or list value: a number or a string.
fn check_key(value: &Value) -> Result<()> {
    match value {
        Value::Number(_) | Value::String(_) => Ok(()),
        other => Err(Error::Invalid(format!(
            "a partition bound or value is a number or a string, not {other}"
        ))),
    }
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// Orders two keys of one kind (numbers numerically, strings bytewise as SQLite's BINARY).
fn compare(a: &Value, b: &Value) -> Result<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        _ => Err(Error::Invalid(
            "all bounds and values of a partitioned table are numbers, or all are strings".into(),
        )),
    }
}

/// `a` < `b` where `None` is minus infinity for a lower bound and plus infinity for an upper.
fn below(lower: Option<&Value>, upper: Option<&Value>) -> Result<bool> {
    match (lower, upper) {
        (Some(l), Some(u)) => Ok(compare(l, u)? == Ordering::Less),
        _ => Ok(true),
    }
}

fn check_new(new: &NewPartition, existing: &[Partition]) -> Result<()> {
    if existing.iter().any(|p| p.name == new.name) {
        return Err(Error::Conflict(format!(
            "table `{}` already has a partition `{}`",
            new.table, new.name
        )));
    }
    if let Some(first) = existing.first()
        && (first.kind != new.kind || first.column != new.column)
    {
        return Err(Error::Invalid(format!(
            "table `{}` is partitioned by {} on `{}`",
            new.table,
            kind_str(first.kind),
            first.column
        )));
    }
    // One kind of key across the table, so the bounds compare as SQLite compares them.
    let mut keys: Vec<&Value> = new.from.iter().chain(&new.to).chain(&new.values).collect();
    for p in existing {
        keys.extend(p.from.iter().chain(&p.to).chain(&p.values));
    }
    for k in &keys {
        check_key(k)?;
        compare(keys[0], k)?;
    }
    match new.kind {
        PartitionType::Range => {
            if !new.values.is_empty() {
                return Err(Error::Invalid(
                    "a range partition takes `from`/`to`, not `values`".into(),
                ));
            }
            if !below(new.from.as_ref(), new.to.as_ref())? {
                return Err(Error::Invalid("`from` must be below `to`".into()));
            }
            for p in existing {
                // [a, b) and [c, d) overlap when a < d and c < b.
                if below(new.from.as_ref(), p.to.as_ref())?
                    && below(p.from.as_ref(), new.to.as_ref())?
                {
                    return Err(Error::Conflict(format!(
                        "the range overlaps partition `{}`",
                        p.name
                    )));
                }
            }
        }
        PartitionType::List => {
            if new.from.is_some() || new.to.is_some() {
                return Err(Error::Invalid(
                    "a list partition takes `values`, not `from`/`to`".into(),
                ));
            }
            if new.values.is_empty() {
                return Err(Error::Invalid(
                    "a list partition needs at least one value".into(),
                ));
            }
            for (i, v) in new.values.iter().enumerate() {
                if new.values[..i]
                    .iter()
                    .any(|w| compare(v, w).ok() == Some(Ordering::Equal))
                {
                    return Err(Error::Invalid(format!("value {v} is listed twice")));
                }
                for p in existing {
                    if p.values
                        .iter()
                        .any(|w| compare(v, w).ok() == Some(Ordering::Equal))
                    {
                        return Err(Error::Conflict(format!(
                            "value {v} already belongs to partition `{}`",
                            p.name
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

pub(super) fn kind_str(kind: PartitionType) -> &'static str {
    match kind {
        PartitionType::Range => "range",
        PartitionType::List => "list",
    }
}

/// Creates a partition (and the partitioned table with its first one), in one transaction.
pub(super) fn create(conn: &mut Connection, new: &NewPartition) -> Result<Partition> {
    check_ident("table name", &new.table)?;
    check_ident("partition name", &new.name)?;
    let tx = conn.transaction()?;
    ensure_meta(&tx)?;
    let existing = load(&tx, Some(&new.table))?;
    check_new(new, &existing)?;
    let child = child_name(&new.table, &new.name);
    match existing.first() {
        None => {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT type FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE",
                    [&new.table],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(kind) = taken {
                return Err(Error::Conflict(format!(
                    "a {kind} named `{}` exists and is not a partitioned table",
                    new.table
                )));
            }
            if new.columns.is_empty() {
                return Err(Error::Invalid(format!(
                    "`columns` are required to create the partitioned table `{}`",
                    new.table
                )));
            }
            if !new.columns.iter().any(|c| c.name.as_str() == new.column) {
                return Err(Error::Invalid(format!(
                    "the key column `{}` is not among the columns",
                    new.column
                )));
            }
            tables::create(&tx, &child, &new.columns, false)?;
        }
        Some(first) => {
            let template = first.child();
            if !new.columns.is_empty() {
                let have = column_names(&tx, &template)?;
                let given: Vec<&str> = new.columns.iter().map(|c| c.name.as_str()).collect();
                if have != given {
                    return Err(Error::Invalid(format!(
                        "table `{}` has the columns {have:?}; leave `columns` out or repeat them",
                        new.table
                    )));
                }
            }
            // The new child copies the first one's definition, constraints included.
            let sql: String = tx.query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [&template],
                |r| r.get(0),
            )?;
            let sql = sql.replacen(&quote(&template), &quote(&child), 1);
            tx.execute_batch(&sql)?;
        }
    }
    let created_at = Utc::now();
    tx.execute(
        &format!(
            "INSERT INTO {META} (parent, name, kind, key_column, range_from, range_to, list_values, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            new.table,
            new.name,
            kind_str(new.kind),
            new.column,
            new.from.as_ref().map(Value::to_string),
            new.to.as_ref().map(Value::to_string),
            Value::Array(new.values.clone()).to_string(),
            created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ],
    )?;
    rebuild(&tx, &new.table)?;
    tx.commit()?;
    Ok(Partition {
        table: new.table.clone(),
        name: new.name.clone(),
        kind: new.kind,
        column: new.column.clone(),
        from: new.from.clone(),
        to: new.to.clone(),
        values: new.values.clone(),
        created_at,
    })
}

fn column_names(conn: &Connection, table: &str) -> Result<Vec<String>> {
    Ok(tables::describe(conn, table)?
        .columns
        .into_iter()
        .map(|c| c.name)
        .collect())
}

/// Drops partition `name` of `table` with its rows; returns it with the rows it held. The last
/// partition takes the partitioned table with it.
pub(super) fn drop(conn: &mut Connection, table: &str, name: &str) -> Result<(Partition, u64)> {
    let tx = conn.transaction()?;
    let partition = load(&tx, Some(table))?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::NotFound(format!("no partition `{name}` of table `{table}`")))?;
    let rows = row_count(&tx, &partition.child())?;
    tx.execute(
        &format!("DELETE FROM {META} WHERE parent = ?1 AND name = ?2"),
        [table, name],
    )?;
    // The view refers to the child: it goes first, and comes back without it.
    tx.execute_batch(&format!(
        "DROP VIEW IF EXISTS {}; DROP TABLE {};",
        quote(table),
        quote(&partition.child())
    ))?;
    rebuild(&tx, table)?;
    tx.commit()?;
    Ok((partition, rows))
}

/// Recreates the view and its routing trigger from the table's partitions (drops both when
/// none is left).
fn rebuild(conn: &Connection, table: &str) -> Result<()> {
    conn.execute_batch(&format!("DROP VIEW IF EXISTS {};", quote(table)))?;
    let partitions = load(conn, Some(table))?;
    let Some(first) = partitions.first() else {
        return Ok(());
    };
    let columns = column_names(conn, &first.child())?;
    let selects: Vec<String> = partitions
        .iter()
        .map(|p| format!("SELECT * FROM {}", quote(&p.child())))
        .collect();
    let key = format!("NEW.{}", quote(&first.column));
    let condition = |p: &Partition| match p.kind {
        PartitionType::Range => {
            let mut parts = Vec::new();
            if let Some(from) = &p.from {
                parts.push(format!("{key} >= {}", literal(from)));
            }
            if let Some(to) = &p.to {
                parts.push(format!("{key} < {}", literal(to)));
            }
            if parts.is_empty() {
                "1".to_string()
            } else {
                parts.join(" AND ")
            }
        }
        PartitionType::List => {
            let values: Vec<String> = p.values.iter().map(literal).collect();
            format!("{key} IN ({})", values.join(", "))
        }
    };
    let column_list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let new_values = columns
        .iter()
        .map(|c| format!("NEW.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let any = partitions
        .iter()
        .map(|p| format!("({})", condition(p)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let message = format!(
        "no partition of {table} takes this {} (or it is NULL)",
        first.column
    )
    .replace('\'', "''");
    let mut body =
        format!("SELECT RAISE(ABORT, '{message}') WHERE {key} IS NULL OR NOT ({any});\n");
    for p in &partitions {
        body.push_str(&format!(
            "INSERT INTO {} ({column_list}) SELECT {new_values} WHERE {};\n",
            quote(&p.child()),
            condition(p)
        ));
    }
    conn.execute_batch(&format!(
        "CREATE VIEW {view} AS {union};
         CREATE TRIGGER {trigger} INSTEAD OF INSERT ON {view} BEGIN\n{body}END;",
        view = quote(table),
        union = selects.join(" UNION ALL "),
        trigger = quote(&format!("{table}__route")),
    ))?;
    Ok(())
}

pub(super) fn row_count(conn: &Connection, child: &str) -> Result<u64> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(child)), [], |r| {
        r.get(0)
    })?;
    Ok(n.unsigned_abs())
}

/// Bytes of the pages of a child table and its indexes, from SQLite's `dbstat`.
pub(super) fn size_bytes(conn: &Connection, child: &str) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1
         OR name IN (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1)",
        [child],
        |r| r.get(0),
    )?;
    Ok(n.unsigned_abs())
}

/// The API view of a partition, with its rows and size measured now.
pub(super) fn info(conn: &Connection, database: &str, p: &Partition) -> Result<PartitionInfo> {
    let child = p.child();
    Ok(PartitionInfo {
        id: format!("{database}.{}.{}", p.table, p.name),
        database: database.to_string(),
        table: p.table.clone(),
        name: p.name.clone(),
        partition_type: p.kind,
        column: p.column.clone(),
        row_count: row_count(conn, &child)?,
        size_bytes: size_bytes(conn, &child)?,
        child_table: child,
        from: p.from.clone(),
        to: p.to.clone(),
        values: p.values.clone(),
        created_at: p.created_at,
    })
}
