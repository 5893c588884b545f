//! The embedded engine: SQLite through rusqlite. `system.db` holds the server's own tables
//! (users, roles, keys, audit); user databases are one file each (see `catalog`).

pub mod access;
pub mod capture;
pub mod catalog;
pub mod config;
pub mod locks;
pub mod page_cache;
pub mod plans;
pub mod port;
pub mod queries;
pub mod slow_log;
pub mod sql;
mod system_db;
pub mod tables;
pub mod tablespaces;
pub mod transactions;
pub mod wal;
pub mod wal_index;

pub use system_db::{SystemDb, sqlite_version};
