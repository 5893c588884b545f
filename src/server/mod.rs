//! Server assembly: every layer built and wired, the generated API router with its middleware, docs, and serving with
//! graceful shutdown.

mod docs;
mod middleware;
pub mod tls;
pub use docs::OPENAPI_JSON;
mod composition;

pub use composition::*;
