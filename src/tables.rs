//! The `tables` subsystem: tables and rows over the engine, checked by the caller's SQL
//! permissions like any statement.

use std::sync::Arc;

use crate::api::runtime::RequestContext;
use crate::api::tables::{
    AlterTablePath, AnalyzeTablePath, CreateIndexPath, CreateTablePath, DeleteRowPath,
    DropIndexPath, DropTablePath, GetRowPath, GetTablePath, InsertRowPath, ListIndexesPath,
    ListRowsPath, ListRowsQuery, ListTablesPath, UpdateRowPath,
};
use crate::api::types::{
    IndexCreate, IndexInfo, IndexList, RowPage, RowValues, RowWritten, TableAlter, TableCreate,
    TableInfo, TableList, TableStatistics,
};
use crate::api::{ApiError, TablesApi};
use crate::engine::catalog::Engine;
use crate::engine::{sql, tables};
use crate::error::{Error, Result};
use crate::events::Bus;
use crate::events::maintenance;
use tables::Alter;

pub struct TableService {
    engine: Arc<Engine>,
    /// For the `maintenance_event` of an ANALYZE, as the SQL API publishes one.
    bus: Arc<Bus>,
}

impl TableService {
    pub fn new(engine: Arc<Engine>, bus: Arc<Bus>) -> Self {
        TableService { engine, bus }
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
        let access = crate::auth::grants::request_sql_access(ctx)?;
        let db = self.engine.get(name)?;
        Ok(db
            .run(move |c| sql::guarded(c, access, sql::DEFAULT_TIMEOUT, f))
            .await?)
    }
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
        let without_rowid = body.without_rowid == Some(true);
        self.on(&ctx, &path.name, move |c| {
            tables::create(c, &name, &body.columns, without_rowid)
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

    async fn alter_table(
        &self,
        ctx: RequestContext,
        path: AlterTablePath,
        body: TableAlter,
    ) -> std::result::Result<TableInfo, ApiError> {
        let mut changes = Vec::new();
        if let Some(new) = body.rename_to {
            changes.push(Alter::RenameTo(new.to_string()));
        }
        if let Some(spec) = body.add_column {
            changes.push(Alter::AddColumn(spec));
        }
        if let Some(r) = body.rename_column {
            changes.push(Alter::RenameColumn {
                from: r.from.to_string(),
                to: r.to.to_string(),
            });
        }
        if let Some(column) = body.drop_column {
            changes.push(Alter::DropColumn(column.to_string()));
        }
        // One statement per request: SQLite runs each ALTER on its own, and savepoints to
        // group several are reserved to the transactions API.
        let change = match (changes.pop(), changes.is_empty()) {
            (Some(change), true) => change,
            _ => {
                return Err(Error::Invalid(
                    "give exactly one of rename_to, add_column, rename_column or drop_column"
                        .into(),
                )
                .into());
            }
        };
        let table = path.table.clone();
        self.on(&ctx, &path.name, move |c| tables::alter(c, &table, change))
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
        let (row_id, row) = self
            .on(&ctx, &path.name, move |c| tables::get(c, &table, &key))
            .await?;
        Ok(RowWritten { row_id, row })
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

    async fn list_indexes(
        &self,
        ctx: RequestContext,
        path: ListIndexesPath,
    ) -> std::result::Result<IndexList, ApiError> {
        let table = path.table.clone();
        let indexes = self
            .on(&ctx, &path.name, move |c| tables::indexes(c, &table))
            .await?;
        Ok(IndexList {
            total: indexes.len() as u64,
            indexes,
        })
    }

    async fn create_index(
        &self,
        ctx: RequestContext,
        path: CreateIndexPath,
        body: IndexCreate,
    ) -> std::result::Result<IndexInfo, ApiError> {
        let table = path.table.clone();
        self.on(&ctx, &path.name, move |c| {
            tables::create_index(
                c,
                &table,
                &body.name,
                &body.columns,
                body.unique == Some(true),
            )
        })
        .await
    }

    async fn drop_index(
        &self,
        ctx: RequestContext,
        path: DropIndexPath,
    ) -> std::result::Result<(), ApiError> {
        let (table, index) = (path.table.clone(), path.index.clone());
        self.on(&ctx, &path.name, move |c| {
            tables::drop_index(c, &table, &index)
        })
        .await
    }

    async fn analyze_table(
        &self,
        ctx: RequestContext,
        path: AnalyzeTablePath,
    ) -> std::result::Result<TableStatistics, ApiError> {
        let user = ctx.identity()?.username.clone();
        let table = path.table.clone();
        let started = std::time::Instant::now();
        let (statistics, sizes) = self
            .on(&ctx, &path.name, move |c| {
                let before = maintenance::database_bytes(c);
                let statistics = tables::analyze(c, &table)?;
                Ok((statistics, (before, maintenance::database_bytes(c))))
            })
            .await?;
        // The same event as an ANALYZE statement through the SQL API.
        maintenance::publish(
            &self.bus,
            maintenance::Operation::Analyze,
            &path.name,
            &format!("ANALYZE {}", tables::quote(&statistics.table)),
            &user,
            started.elapsed().as_secs_f64() * 1000.0,
            sizes,
        );
        Ok(statistics)
    }
}
