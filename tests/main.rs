//! Integration and contract tests, one binary with modules (one link instead of many).

mod support;

mod admin;
mod auth;
mod drift;
mod events;
mod health;
mod locks;
mod mvcc;
mod rbac;
mod serve;
mod sessions;
mod sql;
mod storage;
mod surface;
mod system;
mod tables;
mod tls;
mod transactions;
mod ws;
mod ws_query;
