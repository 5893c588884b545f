//! Integration and contract tests, one binary with modules (one link instead of many).

mod support;

mod admin;
mod alerts;
mod auth;
mod drift;
mod events;
mod graphql;
mod graphql_ops;
mod graphql_queries;
mod graphql_sessions;
mod health;
mod locks;
mod monitoring;
mod mvcc;
mod partitions;
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
