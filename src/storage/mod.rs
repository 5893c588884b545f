//! The `storage` subsystem: the data directory's filesystem and the server's data, index and
//! WAL sizes, the host's disks and I/O counters, and tablespaces with database moves.

mod buffer_pool;
pub(crate) mod host;
mod service;

pub use service::*;
