//! The `partitions` subsystem: partitioned tables over child tables (see `ddl`), and
//! `partition_event`s on the `partitions` family when a partition is created or dropped, or its
//! row count or size changes (`stats`).

pub mod config;
mod ddl;
mod service;
mod stats;

pub use service::*;
