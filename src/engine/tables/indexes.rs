//! Indexes of a table, and the planner statistics ANALYZE gathers.

use rusqlite::Connection;

use super::schema::{check_new_name, name_taken};
use super::table::{conflicts, describe, quote};
use crate::api::types::{IndexInfo, IndexInfoOrigin, IndexStatistics, TableStatistics};
use crate::error::{Error, Result};

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
