//! Tables and rows without SQL from the client: identifiers are checked against the table's
//! real columns and quoted, values are always bound.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

use super::sql::{to_json, to_sql};
use crate::api::types::{ColumnInfo, ColumnSpec, TableInfo};
use crate::error::{Error, Result};

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A table as the rows API needs it.
pub struct Table {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    /// The single primary-key column, or `None` to address rows by rowid.
    pub key: Option<String>,
}

impl Table {
    fn column(&self, name: &str) -> Result<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("table `{}` has no column `{name}`", self.name)))
    }

    fn key_sql(&self) -> String {
        self.key
            .as_deref()
            .map_or_else(|| "rowid".to_string(), quote)
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
            keys.push(column.clone());
        }
        columns.push(ColumnInfo {
            name: column,
            type_: ty,
            not_null,
            primary_key: pk > 0,
            default,
        });
    }
    let key = match keys.len() {
        1 => keys.pop(),
        0 => None,
        _ => {
            return Err(Error::Invalid(format!(
                "table `{name}` has a composite primary key; use the SQL API"
            )));
        }
    };
    Ok(Table { name, columns, key })
}

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
    Ok(TableInfo {
        name: table.name,
        columns: table.columns,
        row_count,
        indexes,
    })
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

pub fn create(conn: &Connection, name: &str, columns: &[ColumnSpec]) -> Result<TableInfo> {
    if name.starts_with("sqlite_") {
        return Err(Error::Invalid(
            "table names starting with sqlite_ are reserved".into(),
        ));
    }
    if columns.is_empty() {
        return Err(Error::Invalid("a table needs at least one column".into()));
    }
    if describe(conn, name).is_ok() {
        return Err(Error::Conflict(format!("table `{name}` already exists")));
    }
    let mut defs = Vec::new();
    for c in columns {
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
        if c.primary_key == Some(true) {
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
        defs.push(def);
    }
    conn.execute_batch(&format!(
        "CREATE TABLE {} ({})",
        quote(name),
        defs.join(", ")
    ))?;
    info(conn, name)
}

pub fn drop(conn: &Connection, name: &str) -> Result<()> {
    let table = describe(conn, name)?;
    conn.execute_batch(&format!("DROP TABLE {}", quote(&table.name)))?;
    Ok(())
}

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

fn row_object(table: &Table, row: &rusqlite::Row<'_>) -> rusqlite::Result<Map<String, Value>> {
    let mut object = Map::new();
    for (i, c) in table.columns.iter().enumerate() {
        object.insert(c.name.clone(), to_json(row.get_ref(i)?));
    }
    Ok(object)
}

fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
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
        .query_map(params_from_iter(args.iter()), |r| row_object(&table, r))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Page { rows, total })
}

/// Reads one row; `None` when no row has that key.
pub fn get(conn: &Connection, table: &Table, key: &str) -> Result<Option<Map<String, Value>>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {} FROM {} WHERE {} = ?1",
                select_list(table),
                quote(&table.name),
                table.key_sql()
            ),
            [key],
            |r| row_object(table, r),
        )
        .optional()?)
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

/// Constraint failures on the rows API are conflicts with existing data (409).
fn conflicts(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict(e.to_string()),
        _ => Error::Engine(e),
    }
}

/// Inserts a row; returns its key and the row as stored.
pub fn insert(
    conn: &Connection,
    name: &str,
    new: &Map<String, Value>,
) -> Result<(Value, Map<String, Value>)> {
    let table = describe(conn, name)?;
    let (columns, args) = values(&table, new)?;
    conn.execute(
        &format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&table.name),
            columns.join(", "),
            vec!["?"; columns.len()].join(", ")
        ),
        params_from_iter(args.iter()),
    )
    .map_err(conflicts)?;
    let rowid = conn.last_insert_rowid();
    let row: Map<String, Value> = conn.query_row(
        &format!(
            "SELECT {} FROM {} WHERE rowid = ?1",
            select_list(&table),
            quote(&table.name)
        ),
        [rowid],
        |r| row_object(&table, r),
    )?;
    let key = match &table.key {
        Some(k) => row.get(k).cloned().unwrap_or(Value::Null),
        None => Value::from(rowid),
    };
    Ok((key, row))
}

pub fn update(
    conn: &Connection,
    name: &str,
    key: &str,
    new: &Map<String, Value>,
) -> Result<(Value, Map<String, Value>)> {
    let table = describe(conn, name)?;
    let (columns, mut args) = values(&table, new)?;
    let set: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
    args.push(SqlValue::Text(key.to_string()));
    let changed = conn
        .execute(
            &format!(
                "UPDATE {} SET {} WHERE {} = ?",
                quote(&table.name),
                set.join(", "),
                table.key_sql()
            ),
            params_from_iter(args.iter()),
        )
        .map_err(conflicts)?;
    if changed == 0 {
        return Err(Error::NotFound(format!(
            "no row `{key}` in `{}`",
            table.name
        )));
    }
    // The key itself may have changed.
    let new_key = table
        .key
        .as_ref()
        .and_then(|k| new.get(k))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| key.to_string());
    let row = get(conn, &table, &new_key)?
        .ok_or_else(|| Error::NotFound(format!("no row `{new_key}` in `{}`", table.name)))?;
    let key = table
        .key
        .as_ref()
        .and_then(|k| row.get(k).cloned())
        .unwrap_or(Value::String(new_key));
    Ok((key, row))
}

pub fn delete(conn: &Connection, name: &str, key: &str) -> Result<()> {
    let table = describe(conn, name)?;
    let changed = conn
        .execute(
            &format!(
                "DELETE FROM {} WHERE {} = ?1",
                quote(&table.name),
                table.key_sql()
            ),
            [key],
        )
        .map_err(conflicts)?;
    if changed == 0 {
        return Err(Error::NotFound(format!(
            "no row `{key}` in `{}`",
            table.name
        )));
    }
    Ok(())
}
