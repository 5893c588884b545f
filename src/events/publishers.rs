//! The engine's ports, implemented over the bus: committed changes and pool events become events.

use std::sync::Arc;

use super::Bus;

use crate::api::EventMessage;
use crate::api::types::{
    SchemaChanged, SchemaChangedChangeType, SchemaChangedObjectType, TableModified,
    TableModifiedOperation,
};
use crate::engine::capture::{Change, Item, Publish, SchemaChange};

/// Turns committed transactions into `table_modified` and `schema_changed` events on the bus,
/// in the order the transaction made them. Consecutive changes of one kind go to their topic
/// as one batch: on the durable topics that is one change-log write per batch, not per row.
pub fn table_changes_publisher(bus: Arc<Bus>) -> Publish {
    Box::new(
        move |database: &str, transaction_id: &str, items: Vec<Item>| {
            let mut items = items.into_iter().peekable();
            while let Some(first) = items.next() {
                match first {
                    Item::Schema(change) => {
                        publish_schema_change(&bus, database, transaction_id, change);
                    }
                    Item::Row(change) => {
                        let mut rows = vec![change];
                        while let Some(Item::Row(_)) = items.peek() {
                            if let Some(Item::Row(change)) = items.next() {
                                rows.push(change);
                            }
                        }
                        publish_rows(&bus, database, transaction_id, rows);
                    }
                }
            }
        },
    )
}

fn publish_rows(bus: &Bus, database: &str, transaction_id: &str, rows: Vec<Change>) {
    let Some(topic) = bus.topic(TableModified::TOPIC) else {
        return;
    };
    let payloads = rows.into_iter().filter_map(|change| {
        let operation = match change.operation {
            "INSERT" => TableModifiedOperation::Insert,
            "DELETE" => TableModifiedOperation::Delete,
            _ => TableModifiedOperation::Update,
        };
        let (row_data, old_row_data) = match change.operation {
            "UPDATE" => (change.new.unwrap_or_default(), change.old),
            "DELETE" => (change.old.unwrap_or_default(), None),
            _ => (change.new.unwrap_or_default(), None),
        };
        let event = TableModified {
            table: change.table,
            operation,
            row_id: change.row_id,
            row_data,
            transaction_id: transaction_id.to_string(),
            database: Some(database.to_string()),
            old_row_data: old_row_data.unwrap_or_default(),
        };
        serde_json::to_value(&event)
            .inspect_err(|e| tracing::error!(error = %e, "a row change does not serialize"))
            .ok()
    });
    topic.publish_all(TableModified::MESSAGE_TYPE, payloads);
}

fn publish_schema_change(bus: &Bus, database: &str, transaction_id: &str, change: SchemaChange) {
    let object_type = match change.object_type.as_str() {
        "TABLE" => SchemaChangedObjectType::Table,
        "INDEX" => SchemaChangedObjectType::Index,
        "VIEW" => SchemaChangedObjectType::View,
        _ => SchemaChangedObjectType::Trigger,
    };
    let change_type = match change.change_type {
        "CREATE" => SchemaChangedChangeType::Create,
        "DROP" => SchemaChangedChangeType::Drop,
        _ => SchemaChangedChangeType::Alter,
    };
    bus.publish(&SchemaChanged {
        change_type,
        object_type,
        object_name: change.object_name,
        table: change.table,
        database: database.to_string(),
        statement: Some(change.statement).filter(|s| !s.is_empty()),
        definition: change.definition,
        previous_name: change.previous_name,
        user: change.user,
        transaction_id: transaction_id.to_string(),
    });
}

/// Publishes the connection pools' events on the `connection_pool` topic.
pub fn pool_events_publisher(bus: Arc<Bus>) -> crate::engine::catalog::PoolEvents {
    use crate::api::types::{ConnectionPoolEvent, PoolEventKind};
    use crate::engine::catalog::PoolEvent;
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Arc::new(move |database, event, stats| {
        bus.publish(&ConnectionPoolEvent {
            database: database.to_string(),
            event_type: match event {
                PoolEvent::Opened => PoolEventKind::Opened,
                PoolEvent::Closed => PoolEventKind::Closed,
                PoolEvent::Exhausted => PoolEventKind::Exhausted,
            },
            active_connections: int(stats.active),
            idle_connections: int(stats.idle),
            waiting_requests: int(stats.waiting),
            total_connections: int(stats.total),
            max_connections: int(stats.max_connections),
            timestamp: chrono::Utc::now(),
        });
    })
}
