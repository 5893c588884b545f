//! A table as the data API sees it: its columns, its key, and how to read its rows.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::keys::{encode_key, split_key};
use crate::api::types::ColumnInfo;
use crate::engine::sql::to_json;
use crate::error::{Error, Result};

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A table as the rows API needs it.
pub struct Table {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    /// The primary-key columns in PRIMARY KEY order; empty to address rows by rowid.
    pub key: Vec<String>,
}

impl Table {
    pub(super) fn column(&self, name: &str) -> Result<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("table `{}` has no column `{name}`", self.name)))
    }

    /// The key columns as SQL, for ORDER BY.
    pub(super) fn key_sql(&self) -> String {
        if self.key.is_empty() {
            return "rowid".into();
        }
        self.key
            .iter()
            .map(|k| quote(k))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `WHERE` condition matching one row by its key, with one `?` per part.
    pub(super) fn key_condition(&self) -> String {
        if self.key.is_empty() {
            return "rowid = ?".into();
        }
        self.key
            .iter()
            .map(|k| format!("{} = ?", quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Splits a key from the path into one bound value per key column.
    pub fn parse_key(&self, text: &str) -> Result<Vec<SqlValue>> {
        let parts = split_key(text, self.key.len().max(1))?;
        Ok(parts.into_iter().map(SqlValue::Text).collect())
    }

    /// What `RETURNING` / `SELECT` lists to read a row and its key: the rowid first when rows
    /// are addressed by it.
    pub(super) fn keyed_select(&self) -> String {
        let columns = select_list(self);
        if self.key.is_empty() {
            format!("rowid, {columns}")
        } else {
            columns
        }
    }

    /// Reads a row selected with `keyed_select`: its key as the path writes it, and the row.
    pub(super) fn keyed_row(
        &self,
        row: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(Value, Map<String, Value>)> {
        if self.key.is_empty() {
            let rowid: i64 = row.get(0)?;
            return Ok((Value::from(rowid), row_object(self, row, 1)?));
        }
        let object = row_object(self, row, 0)?;
        let id = match self.key.as_slice() {
            [only] => object.get(only).cloned().unwrap_or_default(),
            parts => Value::String(encode_key(
                &parts
                    .iter()
                    .map(|k| match object.get(k) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    })
                    .collect::<Vec<_>>(),
            )),
        };
        Ok((id, object))
    }
}

pub fn describe(conn: &Connection, name: &str) -> Result<Table> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 AND name NOT LIKE 'sqlite_%'",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(name) = exists else {
        return Err(Error::NotFound(format!("no table `{name}`")));
    };
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(&name)))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut columns = Vec::new();
    let mut keys = Vec::new();
    for row in rows {
        let (column, ty, not_null, default, pk) = row?;
        if pk > 0 {
            keys.push((column.clone(), pk));
        }
        columns.push(ColumnInfo {
            name: column,
            type_: ty,
            not_null,
            primary_key: pk > 0,
            // Filled by `schema::info` only: the row paths describe a table on every call.
            unique: false,
            default,
        });
    }
    keys.sort_by_key(|(_, position)| *position);
    let key = keys.into_iter().map(|(k, _)| k).collect();
    Ok(Table { name, columns, key })
}

/// The table's columns of `row`, starting at column `from`.
pub(super) fn row_object(
    table: &Table,
    row: &rusqlite::Row<'_>,
    from: usize,
) -> rusqlite::Result<Map<String, Value>> {
    let mut object = Map::new();
    for (i, c) in table.columns.iter().enumerate() {
        object.insert(c.name.clone(), to_json(row.get_ref(from + i)?));
    }
    Ok(object)
}

pub(super) fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Constraint failures (NOT NULL, UNIQUE, CHECK, foreign keys, STRICT types) on the rows API
/// are conflicts with the table's rules or existing data (409).
pub(super) fn conflicts(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict(e.to_string()),
        _ => Error::Engine(e),
    }
}
