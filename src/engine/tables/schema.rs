//! Creating, describing, altering and dropping tables.

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::table::{describe, quote};
use crate::api::types::{ColumnSpec, TableInfo};
use crate::error::{Error, Result};

pub fn info(conn: &Connection, name: &str) -> Result<TableInfo> {
    let table = describe(conn, name)?;
    let row_count = conn.query_row(
        &format!("SELECT count(*) FROM {}", quote(&table.name)),
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 ORDER BY name",
    )?;
    let indexes = stmt
        .query_map([&table.name], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let unique = unique_columns(conn, &table.name)?;
    let mut columns = table.columns;
    for c in &mut columns {
        c.unique = unique.contains(&c.name);
    }
    Ok(TableInfo {
        name: table.name,
        columns,
        row_count,
        indexes,
    })
}

/// Columns that a unique, non-partial index of one column covers (a UNIQUE constraint or
/// CREATE UNIQUE INDEX), primary keys left out.
fn unique_columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT ii.name FROM pragma_index_list(?1) AS il, pragma_index_info(il.name) AS ii
         WHERE il.\"unique\" = 1 AND il.partial = 0 AND il.origin != 'pk'
           AND (SELECT count(*) FROM pragma_index_info(il.name)) = 1 AND ii.name IS NOT NULL",
    )?;
    let names = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

pub fn list(conn: &Connection) -> Result<Vec<TableInfo>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names.iter().map(|n| info(conn, n)).collect()
}

fn literal(value: &Value) -> Result<String> {
    Ok(match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => i64::from(*b).to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        _ => {
            return Err(Error::Invalid(
                "a column default is a string, number, boolean or null".into(),
            ));
        }
    })
}

/// A column definition; `PRIMARY KEY` only when the column alone is the key.
fn column_def(c: &ColumnSpec, primary_key: bool) -> Result<String> {
    let ty = c.type_.as_str();
    if !ty
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || " _(),".contains(ch))
    {
        return Err(Error::Invalid(format!(
            "column `{}`: type `{ty}` is not a type name",
            c.name.as_str()
        )));
    }
    let mut def = format!("{} {ty}", quote(&c.name));
    if primary_key {
        def.push_str(" PRIMARY KEY");
    }
    if c.not_null == Some(true) {
        def.push_str(" NOT NULL");
    }
    if c.unique == Some(true) {
        def.push_str(" UNIQUE");
    }
    if let Some(d) = &c.default {
        def.push_str(&format!(" DEFAULT {}", literal(d)?));
    }
    Ok(def)
}

pub(super) fn check_new_name(name: &str) -> Result<()> {
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(Error::Invalid(
            "names starting with sqlite_ are reserved".into(),
        ));
    }
    Ok(())
}

/// Whether a table, view, index or trigger already uses `name` (SQLite names share one space).
pub(super) fn name_taken(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn create(
    conn: &Connection,
    name: &str,
    columns: &[ColumnSpec],
    without_rowid: bool,
) -> Result<TableInfo> {
    check_new_name(name)?;
    if columns.is_empty() {
        return Err(Error::Invalid("a table needs at least one column".into()));
    }
    if name_taken(conn, name)? {
        return Err(Error::Conflict(format!("table `{name}` already exists")));
    }
    let key: Vec<&ColumnSpec> = columns
        .iter()
        .filter(|c| c.primary_key == Some(true))
        .collect();
    if without_rowid && key.is_empty() {
        return Err(Error::Invalid(
            "a WITHOUT ROWID table needs a primary key".into(),
        ));
    }
    let mut defs = columns
        .iter()
        .map(|c| column_def(c, key.len() == 1 && c.primary_key == Some(true)))
        .collect::<Result<Vec<_>>>()?;
    if key.len() > 1 {
        defs.push(format!(
            "PRIMARY KEY ({})",
            key.iter()
                .map(|c| quote(&c.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    conn.execute_batch(&format!(
        "CREATE TABLE {} ({}){}",
        quote(name),
        defs.join(", "),
        if without_rowid { " WITHOUT ROWID" } else { "" }
    ))?;
    info(conn, name)
}

/// One ALTER TABLE change.
pub enum Alter {
    RenameTo(String),
    AddColumn(ColumnSpec),
    RenameColumn { from: String, to: String },
    DropColumn(String),
}

/// Applies one change; returns the table as it is afterwards. Names are checked here so that a
/// taken name is a 409 and an unknown one a 404; what SQLite itself refuses (a primary-key or
/// indexed column, NOT NULL without a default...) comes back as its message (400).
pub fn alter(conn: &Connection, name: &str, change: Alter) -> Result<TableInfo> {
    let table = describe(conn, name)?;
    let t = quote(&table.name);
    let has = |column: &str| {
        table
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(column))
    };
    let table_name = table.name.clone();
    let drops_column = matches!(change, Alter::DropColumn(_));
    let (sql, after) = match change {
        Alter::RenameTo(new) => {
            check_new_name(&new)?;
            if name_taken(conn, &new)? && !new.eq_ignore_ascii_case(&table.name) {
                return Err(Error::Conflict(format!(
                    "the name `{new}` is already taken"
                )));
            }
            (format!("ALTER TABLE {t} RENAME TO {}", quote(&new)), new)
        }
        Alter::AddColumn(spec) => {
            if has(&spec.name) {
                return Err(Error::Conflict(format!(
                    "table `{}` already has a column `{}`",
                    table.name,
                    spec.name.as_str()
                )));
            }
            let def = column_def(&spec, spec.primary_key == Some(true))?;
            (format!("ALTER TABLE {t} ADD COLUMN {def}"), table.name)
        }
        Alter::RenameColumn { from, to } => {
            let from = table
                .column(&from)
                .map_err(|e| Error::NotFound(e.to_string()))?;
            if has(&to) && !to.eq_ignore_ascii_case(&from.name) {
                return Err(Error::Conflict(format!(
                    "table `{}` already has a column `{to}`",
                    table.name
                )));
            }
            (
                format!(
                    "ALTER TABLE {t} RENAME COLUMN {} TO {}",
                    quote(&from.name),
                    quote(&to)
                ),
                table.name,
            )
        }
        Alter::DropColumn(column) => {
            let column = table
                .column(&column)
                .map_err(|e| Error::NotFound(e.to_string()))?;
            (
                format!("ALTER TABLE {t} DROP COLUMN {}", quote(&column.name)),
                table.name,
            )
        }
    };
    let run = || Ok(conn.execute_batch(&sql)?);
    if drops_column {
        // The capture triggers name every column.
        crate::engine::capture::alter_without_triggers(conn, &table_name, run)?;
    } else {
        run()?;
    }
    info(conn, &after)
}

pub fn drop(conn: &Connection, name: &str) -> Result<()> {
    // Checked first so that an unknown table is a 404, not SQLite's 400.
    let table = describe(conn, name)?;
    conn.execute_batch(&format!("DROP TABLE {}", quote(&table.name)))?;
    Ok(())
}
