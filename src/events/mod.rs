//! The event bus: one bounded topic per declared event family (see `schema/events/`).

mod bus;
mod filter;

pub use bus::{Bus, Event, Gap, Subscribed, Topic};
pub use filter::Filter;

use std::sync::Arc;

use crate::api::types::{TableModified, TableModifiedOperation};
use crate::engine::capture::{Change, Publish};

/// Turns committed transactions into `table_modified` events on the bus.
pub fn table_changes_publisher(bus: Arc<Bus>) -> Publish {
    Box::new(move |database: &str, commit: u64, changes: Vec<Change>| {
        let transaction_id = format!("tx-{commit}");
        for change in changes {
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
            bus.publish(&TableModified {
                table: change.table,
                operation,
                row_id: change.row_id,
                row_data,
                transaction_id: transaction_id.clone(),
                database: Some(database.to_string()),
                old_row_data: old_row_data.unwrap_or_default(),
            });
        }
    })
}
