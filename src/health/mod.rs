//! The `health` subsystem: probes backed by real checks of the engine and the data directory.

mod checks;
pub mod config;
pub mod watch;
pub use checks::{COMPONENTS, Checks, DEFAULT_CHECK_TIMEOUT, overall, run_check, run_checks};
mod service;

pub use service::*;
