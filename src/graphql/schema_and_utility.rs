//! Sources of `schema/subscriptions/schema_and_utility.yaml`: schema changes (DDL captured by
//! the engine) and the heartbeat.

use futures_util::stream::StreamExt;
use serde_json::Value;

use super::sources::{DEFAULT_DATABASE, Events, Sources, now, seconds, spawned};
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::{Heartbeat, SchemaChange, SchemaChangeType, SchemaObjectType};

impl SchemaAndUtilityFields for Sources {
    fn schema_changes(
        &self,
        _caller: Caller,
        args: SchemaChangesArgs,
        events: Events,
    ) -> SourceResult<SchemaChange> {
        // `public` (PostgreSQL's default schema, as the seed writes it) and `main` (SQLite's name
        // for a connection's own database) both mean the default database.
        let schema = args.schema_name.map(|name| match name.as_str() {
            "public" | "main" => DEFAULT_DATABASE.to_string(),
            _ => name,
        });
        let kinds = args.object_types;
        Ok(events
            .filter_map(move |e| {
                let d = &e.data;
                let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                let object_type = match s("object_type").as_deref() {
                    Some("TABLE") => SchemaObjectType::Table,
                    Some("INDEX") => SchemaObjectType::Index,
                    Some("VIEW") => SchemaObjectType::View,
                    _ => SchemaObjectType::Trigger,
                };
                let change_type = match s("change_type").as_deref() {
                    Some("CREATE") => SchemaChangeType::Create,
                    Some("DROP") => SchemaChangeType::Drop,
                    _ => SchemaChangeType::Alter,
                };
                let wanted = schema
                    .as_ref()
                    .is_none_or(|n| s("database").as_ref() == Some(n))
                    && kinds.as_ref().is_none_or(|k| k.contains(&object_type));
                let change = wanted.then(|| SchemaChange {
                    change_type,
                    object_type,
                    object_name: s("object_name").unwrap_or_default(),
                    statement: s("statement"),
                    user: s("user"),
                    timestamp: now(),
                });
                async move { change }
            })
            .map(Ok)
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
