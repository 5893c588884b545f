//! Sources of `schema/subscriptions/schema_and_utility.yaml`: schema changes (DDL captured by
//! the engine) and the heartbeat.

use futures_util::stream::{BoxStream, StreamExt};

use super::sources::{DEFAULT_DATABASE, Sources, now, seconds, spawned};
use crate::api::event_source::Sequenced;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::runtime::ApiError;
use crate::api::types::{
    Heartbeat, SchemaChange, SchemaChangeType, SchemaChanged, SchemaChangedChangeType,
    SchemaChangedObjectType, SchemaObjectType,
};

impl SchemaAndUtilityFields for Sources {
    fn schema_changes(
        &self,
        _caller: Caller,
        args: SchemaChangesArgs,
        events: BoxStream<'static, Result<Sequenced<SchemaChanged>, ApiError>>,
    ) -> SourceResult<SchemaChange> {
        // `public` (PostgreSQL's default schema, as the seed writes it) and `main` (SQLite's name
        // for a connection's own database) both mean the default database.
        let schema = args.schema_name.map(|name| match name.as_str() {
            "public" | "main" => DEFAULT_DATABASE.to_string(),
            _ => name,
        });
        let kinds = args.object_types;
        Ok(events
            .filter_map(move |event| {
                let item = match event {
                    Ok(e) => {
                        let in_schema = schema.as_ref().is_none_or(|n| *n == e.database);
                        let change = schema_change(e);
                        let wanted = in_schema
                            && kinds
                                .as_ref()
                                .is_none_or(|k| k.contains(&change.object_type));
                        wanted.then_some(Ok(change))
                    }
                    Err(e) => Some(Err(e)),
                };
                async move { item }
            })
            .boxed())
    }

    fn heartbeat(&self, _caller: Caller, args: HeartbeatArgs) -> SourceResult<Heartbeat> {
        let every = seconds("intervalSeconds", args.interval_seconds, 30)?;
        Ok(spawned(move |tx| async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            for sequence in 1.. {
                tick.tick().await;
                let beat = Heartbeat {
                    sequence,
                    timestamp: now(),
                };
                if tx.send(Ok(beat)).await.is_err() {
                    return;
                }
            }
        }))
    }
}

/// The GraphQL shape of a `schema_changed` event; the matches are exhaustive, so a new kind of
/// change or object is a compile error here.
fn schema_change(event: Sequenced<SchemaChanged>) -> SchemaChange {
    let Sequenced {
        sequence,
        message: e,
    } = event;
    SchemaChange {
        sequence: sequence as i64,
        change_type: match e.change_type {
            SchemaChangedChangeType::Create => SchemaChangeType::Create,
            SchemaChangedChangeType::Alter => SchemaChangeType::Alter,
            SchemaChangedChangeType::Drop => SchemaChangeType::Drop,
        },
        object_type: match e.object_type {
            SchemaChangedObjectType::Table => SchemaObjectType::Table,
            SchemaChangedObjectType::Index => SchemaObjectType::Index,
            SchemaChangedObjectType::View => SchemaObjectType::View,
            SchemaChangedObjectType::Trigger => SchemaObjectType::Trigger,
        },
        object_name: e.object_name,
        statement: e.statement,
        user: e.user,
        timestamp: now(),
    }
}
