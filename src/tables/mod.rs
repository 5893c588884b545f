//! The `tables` subsystem: tables and rows over the engine, checked by the caller's SQL
//! permissions like any statement.

use std::sync::Arc;

use crate::api::runtime::RequestContext;
use crate::api::tables::{
    CreateTablePath, DeleteRowPath, DropTablePath, GetRowPath, GetTablePath, InsertRowPath,
    ListRowsPath, ListRowsQuery, ListTablesPath, UpdateRowPath,
};
use crate::api::types::{RowPage, RowValues, RowWritten, TableCreate, TableInfo, TableList};
use crate::api::{ApiError, TablesApi};
use crate::engine::catalog::Engine;
use crate::engine::{sql, tables};
use crate::error::{Error, Result};

pub struct TableService {
    engine: Arc<Engine>,
}

impl TableService {
    pub fn new(engine: Arc<Engine>) -> Self {
        TableService { engine }
    }

    /// Runs `f` on database `name` with the caller's authorizer.
    async fn on<T, F>(
        &self,
        ctx: &RequestContext,
        name: &str,
        f: F,
    ) -> std::result::Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        let access = crate::sql::access(ctx)?;
        let db = self.engine.get(name)?;
        Ok(db
            .run(move |c| sql::guarded(c, access, sql::DEFAULT_TIMEOUT, f))
            .await?)
    }
}

fn key_of(
    path_key: &str,
    table: &tables::Table,
    conn: &rusqlite::Connection,
) -> Result<RowWritten> {
    let row = tables::get(conn, table, path_key)?
        .ok_or_else(|| Error::NotFound(format!("no row `{path_key}` in `{}`", table.name)))?;
    let row_id = match &table.key {
        Some(k) => row.get(k).cloned().unwrap_or_default(),
        None => serde_json::Value::String(path_key.to_string()),
    };
    Ok(RowWritten { row_id, row })
}

impl TablesApi for TableService {
    async fn list_tables(
        &self,
        ctx: RequestContext,
        path: ListTablesPath,
    ) -> std::result::Result<TableList, ApiError> {
        let tables = self.on(&ctx, &path.name, tables::list).await?;
        Ok(TableList {
            total: tables.len() as u64,
            tables,
        })
    }

    async fn create_table(
        &self,
        ctx: RequestContext,
        path: CreateTablePath,
        body: TableCreate,
    ) -> std::result::Result<TableInfo, ApiError> {
        let name = body.name.to_string();
        let columns = body.columns.clone();
        self.on(&ctx, &path.name, move |c| {
            tables::create(c, &name, &columns)
        })
        .await
    }

    async fn get_table(
        &self,
        ctx: RequestContext,
        path: GetTablePath,
    ) -> std::result::Result<TableInfo, ApiError> {
        let table = path.table.clone();
        self.on(&ctx, &path.name, move |c| tables::info(c, &table))
            .await
    }

    async fn drop_table(
        &self,
        ctx: RequestContext,
        path: DropTablePath,
    ) -> std::result::Result<(), ApiError> {
        let table = path.table.clone();
        self.on(&ctx, &path.name, move |c| tables::drop(c, &table))
            .await
    }

    async fn list_rows(
        &self,
        ctx: RequestContext,
        path: ListRowsPath,
        query: ListRowsQuery,
    ) -> std::result::Result<RowPage, ApiError> {
        let (table, limit, offset) = (path.table.clone(), query.limit, query.offset);
        let page = self
            .on(&ctx, &path.name, move |c| {
                tables::rows(
                    c,
                    &table,
                    query.filter.as_deref(),
                    query.order_by.as_deref(),
                    limit,
                    offset,
                )
            })
            .await?;
        Ok(RowPage {
            rows: page.rows,
            total: page.total,
            limit,
            offset,
        })
    }

    async fn insert_row(
        &self,
        ctx: RequestContext,
        path: InsertRowPath,
        body: RowValues,
    ) -> std::result::Result<RowWritten, ApiError> {
        let table = path.table.clone();
        let (row_id, row) = self
            .on(&ctx, &path.name, move |c| {
                tables::insert(c, &table, &body.values)
            })
            .await?;
        Ok(RowWritten { row_id, row })
    }

    async fn get_row(
        &self,
        ctx: RequestContext,
        path: GetRowPath,
    ) -> std::result::Result<RowWritten, ApiError> {
        let (table, key) = (path.table.clone(), path.row_id.clone());
        self.on(&ctx, &path.name, move |c| {
            let t = tables::describe(c, &table)?;
            key_of(&key, &t, c)
        })
        .await
    }

    async fn update_row(
        &self,
        ctx: RequestContext,
        path: UpdateRowPath,
        body: RowValues,
    ) -> std::result::Result<RowWritten, ApiError> {
        let (table, key) = (path.table.clone(), path.row_id.clone());
        let (row_id, row) = self
            .on(&ctx, &path.name, move |c| {
                tables::update(c, &table, &key, &body.values)
            })
            .await?;
        Ok(RowWritten { row_id, row })
    }

    async fn delete_row(
        &self,
        ctx: RequestContext,
        path: DeleteRowPath,
    ) -> std::result::Result<(), ApiError> {
        let (table, key) = (path.table.clone(), path.row_id.clone());
        self.on(&ctx, &path.name, move |c| tables::delete(c, &table, &key))
            .await
    }
}
