//! `PartitionService`: the `partitions` subsystem's implementation of the generated `PartitionsApi`.

use super::*;

use std::sync::Arc;

use crate::api::partitions::{DeletePartitionPath, ListPartitionsQuery};
use crate::api::runtime::RequestContext;
use crate::api::types::{
    PartitionCreate, PartitionEvent, PartitionEventEventType, PartitionInfo, PartitionList,
};
use crate::api::{ApiError, PartitionsApi};
use crate::engine::capture::Actor;
use crate::engine::catalog::Engine;
use crate::error::Error;
use crate::events::Bus;

pub struct PartitionService {
    engine: Arc<Engine>,
    bus: Arc<Bus>,
    baselines: Arc<stats::Baselines>,
}

impl PartitionService {
    pub fn new(engine: Arc<Engine>, bus: Arc<Bus>) -> Self {
        let baselines = Arc::default();
        PartitionService {
            engine,
            bus,
            baselines,
        }
    }

    /// Starts the `STATS_CHANGED` watcher over this service's partitions (see `stats`).
    pub fn spawn_stats_watcher(
        &self,
        interval: std::time::Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        stats::spawn(
            Arc::clone(&self.engine),
            Arc::clone(&self.bus),
            Arc::clone(&self.baselines),
            interval,
            shutdown,
        );
    }
}

pub(super) fn event(
    event_type: PartitionEventEventType,
    info: &PartitionInfo,
    row_count: u64,
    size_bytes: u64,
) -> PartitionEvent {
    PartitionEvent {
        event_type,
        partition_id: info.id.clone(),
        partition_name: info.name.clone(),
        table_name: info.table.clone(),
        database: info.database.clone(),
        partition_type: info.partition_type,
        row_count,
        size_bytes,
        timestamp: chrono::Utc::now(),
    }
}

fn actor(ctx: &RequestContext, what: String) -> Actor {
    Actor {
        user: ctx.identity().ok().map(|i| i.username.clone()),
        statement: Some(what),
        transaction_id: None,
    }
}

impl PartitionsApi for PartitionService {
    async fn list_partitions(
        &self,
        _ctx: RequestContext,
        query: ListPartitionsQuery,
    ) -> Result<PartitionList, ApiError> {
        let db = self.engine.get(&query.database)?;
        let name = db.name.clone();
        let partitions = db
            .run(move |c| {
                ddl::load(c, query.table.as_deref())?
                    .iter()
                    .map(|p| ddl::info(c, &name, p))
                    .collect()
            })
            .await?;
        Ok(PartitionList { partitions })
    }

    async fn create_partition(
        &self,
        ctx: RequestContext,
        body: PartitionCreate,
    ) -> Result<PartitionInfo, ApiError> {
        let db = self.engine.get(&body.database)?;
        let new = ddl::NewPartition {
            table: String::from(body.table),
            name: String::from(body.name),
            kind: body.partition_type,
            column: String::from(body.column),
            columns: body.columns,
            from: body.from,
            to: body.to,
            values: body.values,
        };
        let what = format!("create partition {} of {}", new.name, new.table);
        let name = db.name.clone();
        let info = db
            .run_as(actor(&ctx, what), move |c| {
                let p = ddl::create(c, &new)?;
                ddl::info(c, &name, &p)
            })
            .await?;
        let (rows, size) = (info.row_count, info.size_bytes);
        self.baselines.created(&info);
        self.bus
            .publish(&event(PartitionEventEventType::Created, &info, rows, size));
        Ok(info)
    }

    async fn delete_partition(
        &self,
        ctx: RequestContext,
        path: DeletePartitionPath,
    ) -> Result<(), ApiError> {
        let not_found = || {
            ApiError::from(Error::NotFound(format!(
                "no partition `{}` (ids are `<database>.<table>.<name>`)",
                path.id
            )))
        };
        let mut parts = path.id.splitn(3, '.');
        let (Some(database), Some(table), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(not_found());
        };
        let db = self.engine.get(database).map_err(|_| not_found())?;
        let (table, name) = (table.to_string(), name.to_string());
        let what = format!("drop partition {name} of {table}");
        let database = db.name.clone();
        let (info, rows) = db
            .run_as(actor(&ctx, what), move |c| {
                let (p, rows) = ddl::drop(c, &table, &name)?;
                // Measured before the drop; the partition's table is gone now.
                let info = PartitionInfo {
                    id: format!("{database}.{}.{}", p.table, p.name),
                    database,
                    table: p.table.clone(),
                    name: p.name.clone(),
                    partition_type: p.kind,
                    column: p.column.clone(),
                    child_table: p.child(),
                    from: p.from,
                    to: p.to,
                    values: p.values,
                    row_count: rows,
                    size_bytes: 0,
                    created_at: p.created_at,
                };
                Ok((info, rows))
            })
            .await?;
        self.baselines.dropped(&info.id);
        self.bus
            .publish(&event(PartitionEventEventType::Dropped, &info, rows, 0));
        Ok(())
    }
}
