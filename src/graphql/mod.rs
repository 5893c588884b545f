//! GraphQL at `/graphql`: the schema generated from `schema/subscriptions/` (see
//! `crate::api::graphql`), built with `async_graphql::dynamic` at startup over [`Sources`];
//! POST runs queries, GET upgrades to graphql-ws ([`transport`]) or shows GraphiQL to a browser.
//! See docs/graphql.md.

mod cluster;
pub mod config;
mod error_path;
mod monitoring;
mod operations;
mod query_performance;
mod rest_services;
mod rows;
mod schema_and_utility;
mod sessions;
mod sources;
mod table_data;
pub mod transport;
pub use sources::Sources;
mod service;

pub use service::*;
