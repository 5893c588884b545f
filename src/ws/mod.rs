//! WebSocket event streams: the endpoints of `schema/websockets.yaml` (the generated router has
//! checked credentials and the endpoint's permission before these methods run), the connection
//! registry, and the protocol. See docs/websocket.md.

pub mod config;
mod connection;
mod management;
mod protocol;
mod query;
mod wire;
pub use crate::events::WireFrame;
pub use crate::events::connections::Registry;
pub use management::WebSocketManagement;
mod service;

pub use service::*;
