//! The `alerts` subsystem: rules over the metrics of `crate::monitoring`, stored in `system.db`,
//! evaluated by a background task (`evaluator`), and the alerts they raise. Every state change
//! of an alert is published as an `alert` event on the `alerts` family.

pub mod config;
mod evaluator;
mod store;
pub use evaluator::spawn as spawn_evaluator;
mod service;

pub use service::*;
