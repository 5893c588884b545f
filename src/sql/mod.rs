//! The `sql` subsystem: statements over the engine with the caller's SQL permissions.

pub mod executor;
pub use executor::{Executor, Finished};
mod service;

pub use service::*;
