//! The `system` subsystem: server info, versions, effective configuration, runtime statistics and
//! host facts, all read from the running process, the engine or the OS.

mod host;
mod service;

pub use service::*;
