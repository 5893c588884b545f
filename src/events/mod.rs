//! The event bus: one bounded topic per declared event family (see `schema/events/`).

mod bus;
pub mod change_log;
pub mod config;
pub mod connections;
mod filter;
mod frame;
pub mod maintenance;
mod pressure;
mod publishers;

pub use bus::{Bus, Cursor, Event, Gap, Listener, Subscribed, Taken, Topic};
pub use filter::Filter;
pub use frame::WireFrame;
pub use pressure::{Pressure, Verdict};

pub use publishers::{pool_events_publisher, table_changes_publisher};
