//! The server's metric registry: one [`Collector`] measures everything the server can report
//! (requests, bus, WebSocket, engine, host and process, and what other layers add as a
//! [`Source`], such as the open alerts). `GET /metrics` renders it in the Prometheus text
//! format, and the alert evaluator reads the metrics named in `ALERT_METRICS` from the same
//! collection, so both always agree.

mod families;
pub mod prometheus;

pub use families::*;
