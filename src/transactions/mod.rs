//! The `transactions` subsystem: explicit transactions with savepoints. A transaction belongs to
//! the caller that began it; others (without database:admin) are told it does not exist.
//! Transactions take advisory locks here too (see `locks`).

mod locks;
mod service;

pub use service::*;
