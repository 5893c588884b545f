//! Tables and rows without SQL from the client: identifiers are checked against the table's
//! real columns and quoted, values are always bound.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

use super::sql::{to_json, to_sql};
use crate::api::types::{
    ColumnInfo, ColumnSpec, IndexInfo, IndexInfoOrigin, IndexStatistics, TableInfo, TableStatistics,
};
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
    fn column(&self, name: &str) -> Result<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("table `{}` has no column `{name}`", self.name)))
    }

    /// The key columns as SQL, for ORDER BY.
    fn key_sql(&self) -> String {
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
    fn key_condition(&self) -> String {
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
    fn keyed_select(&self) -> String {
        let columns = select_list(self);
        if self.key.is_empty() {
            format!("rowid, {columns}")
        } else {
            columns
        }
    }

    /// Reads a row selected with `keyed_select`: its key as the path writes it, and the row.
    fn keyed_row(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<(Value, Map<String, Value>)> {
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

/// Writes a key as the rows path takes it: one part as is; several joined with `,`, each part's
/// `\` and `,` escaped with a backslash.
pub fn encode_key(parts: &[String]) -> String {
    match parts {
        [only] => only.clone(),
        parts => parts
            .iter()
            .map(|p| p.replace('\\', "\\\\").replace(',', "\\,"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Reads a key written by `encode_key` for a key of `expected` columns.
pub fn split_key(text: &str, expected: usize) -> Result<Vec<String>> {
    if expected == 1 {
        return Ok(vec![text.to_string()]);
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',')) => current.push(escaped),
                _ => {
                    return Err(Error::BadRowKey(
                        "a backslash in a composite key escapes only `,` or `\\`".into(),
                    ));
                }
            },
            ',' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    if parts.len() != expected {
        return Err(Error::BadRowKey(format!(
            "the table's primary key has {expected} columns; the key has {} parts (separate them with `,`, escape `,` and `\\` inside a value with `\\`)",
            parts.len()
        )));
    }
    Ok(parts)
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
            default,
        });
    }
    keys.sort_by_key(|(_, position)| *position);
    let key = keys.into_iter().map(|(k, _)| k).collect();
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

fn check_new_name(name: &str) -> Result<()> {
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(Error::Invalid(
            "names starting with sqlite_ are reserved".into(),
        ));
    }
    Ok(())
}

/// Whether a table, view, index or trigger already uses `name` (SQLite names share one space).
fn name_taken(conn: &Connection, name: &str) -> Result<bool> {
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
    if !drops_column {
        conn.execute_batch(&sql)?;
        return info(conn, &after);
    }
    // The capture triggers name every column; they go in the same transaction as the ALTER,
    // so a refused drop brings them back.
    // Inside someone else's transaction they stay, and SQLite reports the trigger instead.
    if !conn.is_autocommit() {
        conn.execute_batch(&sql)?;
        return info(conn, &after);
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let outcome = super::capture::drop_table_triggers(conn, &table_name)
        .and_then(|()| Ok(conn.execute_batch(&sql)?));
    conn.execute_batch(if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    })?;
    outcome?;
    info(conn, &after)
}

pub fn drop(conn: &Connection, name: &str) -> Result<()> {
    // Checked first so that an unknown table is a 404, not SQLite's 400.
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

/// The table's columns of `row`, starting at column `from`.
fn row_object(
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

/// Constraint failures (NOT NULL, UNIQUE, CHECK, foreign keys, STRICT types) on the rows API
/// are conflicts with the table's rules or existing data (409).
fn conflicts(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict(e.to_string()),
        _ => Error::Engine(e),
    }
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

/// The indexes of a table, in name order.
pub fn indexes(conn: &Connection, name: &str) -> Result<Vec<IndexInfo>> {
    let table = describe(conn, name)?;
    let mut stmt = conn.prepare(&format!("PRAGMA index_list({})", quote(&table.name)))?;
    let mut listed: Vec<(String, bool, String, bool)> = stmt
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    listed
        .into_iter()
        .map(|(index, unique, origin, partial)| {
            let mut stmt = conn.prepare(&format!("PRAGMA index_info({})", quote(&index)))?;
            let columns = stmt
                .query_map([], |r| r.get::<_, Option<String>>(2))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(IndexInfo {
                name: index,
                table: table.name.clone(),
                unique,
                columns,
                origin: match origin.as_str() {
                    "pk" => IndexInfoOrigin::PrimaryKey,
                    "u" => IndexInfoOrigin::Unique,
                    _ => IndexInfoOrigin::Create,
                },
                partial,
            })
        })
        .collect()
}

fn index_of(conn: &Connection, table: &str, index: &str) -> Result<IndexInfo> {
    indexes(conn, table)?
        .into_iter()
        .find(|i| i.name == index)
        .ok_or_else(|| Error::NotFound(format!("table `{table}` has no index `{index}`")))
}

/// Creates an index over existing columns. Duplicates in the data under a unique index are a
/// conflict (409).
pub fn create_index(
    conn: &Connection,
    name: &str,
    index: &str,
    columns: &[String],
    unique: bool,
) -> Result<IndexInfo> {
    let table = describe(conn, name)?;
    check_new_name(index)?;
    if columns.is_empty() {
        return Err(Error::Invalid("an index needs at least one column".into()));
    }
    let columns = columns
        .iter()
        .map(|c| table.column(c).map(|c| quote(&c.name)))
        .collect::<Result<Vec<_>>>()?;
    if name_taken(conn, index)? {
        return Err(Error::Conflict(format!(
            "the name `{index}` is already taken"
        )));
    }
    conn.execute_batch(&format!(
        "CREATE {}INDEX {} ON {} ({})",
        if unique { "UNIQUE " } else { "" },
        quote(index),
        quote(&table.name),
        columns.join(", ")
    ))
    .map_err(conflicts)?;
    index_of(conn, &table.name, index)
}

/// Drops an index made by CREATE INDEX; those behind a constraint belong to the table (409).
pub fn drop_index(conn: &Connection, name: &str, index: &str) -> Result<()> {
    let found = index_of(conn, name, index)?;
    if found.origin != IndexInfoOrigin::Create {
        return Err(Error::Conflict(format!(
            "index `{index}` backs a {} constraint of `{}`; alter the table instead",
            found.origin, found.table
        )));
    }
    conn.execute_batch(&format!("DROP INDEX {}", quote(&found.name)))?;
    Ok(())
}

/// Runs ANALYZE on a table and returns what SQLite stored for it in `sqlite_stat1`.
pub fn analyze(conn: &Connection, name: &str) -> Result<TableStatistics> {
    let table = describe(conn, name)?;
    conn.execute_batch(&format!("ANALYZE {}", quote(&table.name)))?;
    // sqlite_stat1 exists once any ANALYZE has run, which the statement above just did.
    let mut stmt =
        conn.prepare("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = ?1 ORDER BY idx")?;
    let statistics = stmt
        .query_map([&table.name], |r| {
            Ok(IndexStatistics {
                index: r.get(0)?,
                stat: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(TableStatistics {
        table: table.name,
        statistics,
    })
}

#[cfg(test)]
mod tests {
    use super::{encode_key, split_key};

    #[test]
    fn composite_keys_round_trip_through_their_encoding() {
        let cases: [&[&str]; 5] = [
            &["a", "1"],
            &["a,b", "1"],
            &["back\\slash", ",", ""],
            &["\\,", "\\\\,,"],
            &["", ""],
        ];
        for parts in cases {
            let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            let encoded = encode_key(&parts);
            assert_eq!(split_key(&encoded, parts.len()).expect("splits"), parts);
        }
        assert_eq!(encode_key(&["a,b".into(), "1".into()]), "a\\,b,1");
        // One key column: the text as is.
        assert_eq!(split_key("a,b\\", 1).expect("one part"), ["a,b\\"]);
        assert!(split_key("a,b,c", 2).is_err());
        assert!(split_key("a", 2).is_err());
        assert!(split_key("a\\b,c", 2).is_err());
        assert!(split_key("a,c\\", 2).is_err());
    }
}
