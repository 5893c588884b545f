//! Authentication and authorization: users and roles in `system.db`, JWT access tokens with
//! rotating refresh tokens, API keys, the RBAC policy the generated routers consult, rate limits
//! and the audit log.

mod admin;
mod api_keys;
pub mod audit;
pub mod config;
pub mod grants;
mod jwt;
mod middleware;
mod password;
mod policy;
mod ratelimit;
mod routes;
pub mod sessions;
mod store;
pub use admin::AdminService;
pub use middleware::authenticate;
pub use policy::RbacPolicy;
pub use routes::AuthService;
mod service;

pub use service::*;
