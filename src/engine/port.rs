//! The one way out of the engine: what happened inside it (a transaction began, a lock was
//! granted, a deadlock was broken) is handed to an [`Emit`] the server plugs in. The engine never
//! names the event bus, so it can be tested, moved to its own crate or run in a cluster node
//! without it.

use crate::api::EventMessage;

/// Receives the engine's events as declared in `schema/events/`; the event bus implements it.
pub trait Emit: Send + Sync {
    /// One event of `topic`, already serialized.
    fn emit(&self, topic: &'static str, message_type: &'static str, data: serde_json::Value);
}

/// Serializes a typed event and hands it to `sink`. A type that does not serialize is a bug in
/// the schema's types: logged, not published.
pub fn emit<E: EventMessage>(sink: &dyn Emit, event: &E) {
    match serde_json::to_value(event) {
        Ok(data) => sink.emit(E::TOPIC, E::MESSAGE_TYPE, data),
        Err(e) => tracing::error!(topic = E::TOPIC, error = %e, "event does not serialize"),
    }
}
