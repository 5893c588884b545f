//! Rows: filtered pages, and reads and writes by key. Identifiers are checked against the
//! table's columns and quoted; values are always bound.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

use super::table::{Table, conflicts, describe, quote, row_object, select_list};
use crate::engine::sql::to_sql;
use crate::error::{Error, Result};

/// One condition of a row filter.
fn condition(table: &Table, c: &Value, args: &mut Vec<SqlValue>) -> Result<String> {
    let column = c["column"]
        .as_str()
        .ok_or_else(|| Error::Invalid("each filter needs a `column`".into()))?;
    let column = quote(&table.column(column)?.name);
    let op = c["op"].as_str().unwrap_or("eq");
    let value = &c["value"];
    let mut bind = |v: &Value| -> Result<()> {
        args.push(to_sql(v, "in filter")?);
        Ok(())
    };
    Ok(match op {
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "like" => {
            bind(value)?;
            let sql_op = match op {
                "eq" => "=",
                "ne" => "<>",
                "lt" => "<",
                "le" => "<=",
                "gt" => ">",
                "ge" => ">=",
                _ => "LIKE",
            };
            format!("{column} {sql_op} ?")
        }
        "in" => {
            let values = value
                .as_array()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Invalid("`in` needs a non-empty array value".into()))?;
            for v in values {
                bind(v)?;
            }
            format!("{column} IN ({})", vec!["?"; values.len()].join(", "))
        }
        "is_null" => match value.as_bool().unwrap_or(true) {
            true => format!("{column} IS NULL"),
            false => format!("{column} IS NOT NULL"),
        },
        other => {
            return Err(Error::Invalid(format!(
                "unknown filter op `{other}` (eq, ne, lt, le, gt, ge, like, in, is_null)"
            )));
        }
    })
}

pub struct Page {
    pub rows: Vec<Map<String, Value>>,
    pub total: i64,
}

pub fn rows(
    conn: &Connection,
    name: &str,
    filter: Option<&str>,
    order_by: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Page> {
    let table = describe(conn, name)?;
    let mut args = Vec::new();
    let mut clauses = Vec::new();
    if let Some(text) = filter {
        let parsed: Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("filter is not JSON: {e}")))?;
        let list = match parsed {
            Value::Array(list) => list,
            single @ Value::Object(_) => vec![single],
            _ => {
                return Err(Error::Invalid(
                    "filter is a JSON array of conditions".into(),
                ));
            }
        };
        for c in &list {
            clauses.push(condition(&table, c, &mut args)?);
        }
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let order_sql = match order_by {
        Some(o) => {
            let (column, dir) = match o.strip_prefix('-') {
                Some(c) => (c, "DESC"),
                None => (o, "ASC"),
            };
            format!(" ORDER BY {} {dir}", quote(&table.column(column)?.name))
        }
        None => format!(" ORDER BY {}", table.key_sql()),
    };
    let from = quote(&table.name);
    let total = conn.query_row(
        &format!("SELECT count(*) FROM {from}{filter_sql}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM {from}{filter_sql}{order_sql} LIMIT {limit} OFFSET {offset}",
        select_list(&table)
    ))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), |r| row_object(&table, r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Page { rows, total })
}

/// A row and its key as the rows path writes it.
pub type KeyedRow = (Value, Map<String, Value>);

fn no_row(table: &Table, key: &str) -> Error {
    Error::NotFound(format!("no row `{key}` in `{}`", table.name))
}

/// Reads one row by its key as written in the path.
pub fn get(conn: &Connection, name: &str, key: &str) -> Result<KeyedRow> {
    let table = describe(conn, name)?;
    let args = table.parse_key(key)?;
    conn.query_row(
        &format!(
            "SELECT {} FROM {} WHERE {}",
            table.keyed_select(),
            quote(&table.name),
            table.key_condition()
        ),
        params_from_iter(args.iter()),
        |r| table.keyed_row(r),
    )
    .optional()?
    .ok_or_else(|| no_row(&table, key))
}

fn values(table: &Table, values: &Map<String, Value>) -> Result<(Vec<String>, Vec<SqlValue>)> {
    if values.is_empty() {
        return Err(Error::Invalid("values is empty".into()));
    }
    let mut columns = Vec::new();
    let mut args = Vec::new();
    for (name, v) in values {
        columns.push(quote(&table.column(name)?.name));
        args.push(to_sql(v, &format!("`{name}`"))?);
    }
    Ok((columns, args))
}

/// Inserts a row; returns its key and the row as stored. `RETURNING` reads it back, which
/// also works for WITHOUT ROWID tables.
pub fn insert(conn: &Connection, name: &str, new: &Map<String, Value>) -> Result<KeyedRow> {
    let table = describe(conn, name)?;
    let (columns, args) = values(&table, new)?;
    conn.query_row(
        &format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            quote(&table.name),
            columns.join(", "),
            vec!["?"; columns.len()].join(", "),
            table.keyed_select()
        ),
        params_from_iter(args.iter()),
        |r| table.keyed_row(r),
    )
    .map_err(conflicts)
}

/// Changes columns of the row with `key`; returns its (possibly new) key and the row as stored.
pub fn update(
    conn: &Connection,
    name: &str,
    key: &str,
    new: &Map<String, Value>,
) -> Result<KeyedRow> {
    let table = describe(conn, name)?;
    let (columns, mut args) = values(&table, new)?;
    args.extend(table.parse_key(key)?);
    let set: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
    conn.query_row(
        &format!(
            "UPDATE {} SET {} WHERE {} RETURNING {}",
            quote(&table.name),
            set.join(", "),
            table.key_condition(),
            table.keyed_select()
        ),
        params_from_iter(args.iter()),
        |r| table.keyed_row(r),
    )
    .optional()
    .map_err(conflicts)?
    .ok_or_else(|| no_row(&table, key))
}

pub fn delete(conn: &Connection, name: &str, key: &str) -> Result<()> {
    let table = describe(conn, name)?;
    let args = table.parse_key(key)?;
    let changed = conn
        .execute(
            &format!(
                "DELETE FROM {} WHERE {}",
                quote(&table.name),
                table.key_condition()
            ),
            params_from_iter(args.iter()),
        )
        .map_err(conflicts)?;
    if changed == 0 {
        return Err(no_row(&table, key));
    }
    Ok(())
}
