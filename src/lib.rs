//! RustyDB Server: an embedded database (SQLite) served over REST, WebSocket event streams and
//! GraphQL on one port. The API surface is generated from `schema/` (see `rustydb-codegen`);
//! each subsystem module implements its generated trait.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

/// The generated API surface and its runtime (crate `rustydb-api`), under its old path.
pub use rustydb_api as api;

pub mod alerts;
pub mod auth;
pub mod config;
pub mod databases;
pub mod engine;
pub mod error;
pub mod events;
pub mod graphql;
pub mod health;
pub mod host;
pub mod metrics;
pub mod monitoring;
pub mod mvcc;
pub mod partitions;
pub mod process;
pub mod server;
pub mod sessions;
pub mod sql;
pub mod storage;
pub mod sync;
pub mod system;
pub mod tables;
pub mod telemetry;
pub mod transactions;
pub mod ws;
