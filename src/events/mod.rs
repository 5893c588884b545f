//! The event bus: one bounded topic per declared event family (see `schema/events/`).

mod bus;
mod filter;

pub use bus::{Bus, Event, Gap, Subscribed, Topic};
pub use filter::Filter;
