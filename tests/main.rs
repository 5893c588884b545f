//! Integration and contract tests, one binary with modules (one link instead of many).

mod support;

mod admin;
mod auth;
mod drift;
mod events;
mod graphql;
mod health;
mod rbac;
mod serve;
mod sql;
mod surface;
mod system;
mod tables;
mod tls;
mod transactions;
mod ws;
