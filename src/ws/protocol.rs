//! The wire protocol of a connection: client messages in, protocol frames out. Every frame is the
//! seed's envelope `{"message_type", "data", "timestamp"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WireFrame;
use crate::api::types;

#[derive(Serialize)]
struct Envelope<'a, T> {
    message_type: &'a str,
    data: &'a T,
    timestamp: i64,
}

pub fn frame<T: Serialize>(message_type: &str, data: &T) -> WireFrame {
    let text = serde_json::to_string(&Envelope {
        message_type,
        data,
        timestamp: chrono::Utc::now().timestamp(),
    })
    .unwrap_or_default();
    WireFrame::text(&text)
}

pub fn error(code: &str, message: impl Into<String>) -> WireFrame {
    frame(
        "error",
        &types::Error {
            code: code.to_string(),
            message: message.into(),
        },
    )
}

/// What a client may send.
#[derive(Debug)]
pub enum ClientMessage {
    /// `{"message_type": "subscribe", "data": {"topic": "system_metrics", "filter": {...},
    /// "last_sequence": 41, "epoch": "..."}}`; `event` is accepted for `topic`, as in the seed's
    /// wscat example.
    Subscribe {
        topic: String,
        filter: Option<Value>,
        last_sequence: Option<u64>,
        /// The epoch of the server run `last_sequence` was counted in.
        epoch: Option<String>,
    },
    /// By `subscription_id`, or every subscription of a `topic`.
    Unsubscribe {
        subscription_id: Option<String>,
        topic: Option<String>,
    },
    Ping(Value),
    /// Start streaming a query (/api/v1/ws/query only).
    Query(QueryRequest),
    /// Stop a query this connection streams.
    Cancel {
        query_id: String,
    },
}

/// `{"message_type": "query", "data": {...}}`; checked further by `query::Queries::start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub sql: String,
    /// An array for `?`/`?N`, an object for `:name`.
    #[serde(default)]
    pub params: Option<Value>,
    /// `default` when absent.
    #[serde(default)]
    pub database: Option<String>,
    /// Chosen by the client to match replies; the server chooses one when absent.
    #[serde(default)]
    pub query_id: Option<String>,
    /// Milliseconds the query may take, waiting for the client included.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Least time between two `query_progress` messages.
    #[serde(default)]
    pub progress_interval_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelData {
    query_id: String,
}

#[derive(Deserialize)]
struct Incoming {
    message_type: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeData {
    topic: Option<String>,
    event: Option<String>,
    filter: Option<Value>,
    last_sequence: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeData {
    subscription_id: Option<String>,
    topic: Option<String>,
    event: Option<String>,
}

/// Parses a text frame; the error is `(code, message)` for an `error` reply.
pub fn parse(text: &str) -> Result<ClientMessage, (&'static str, String)> {
    let incoming: Incoming = serde_json::from_str(text).map_err(|e| {
        (
            "MALFORMED_MESSAGE",
            format!("expected {{\"message_type\": ..., \"data\": ...}}: {e}"),
        )
    })?;
    let invalid = |e: serde_json::Error| {
        (
            "MALFORMED_MESSAGE",
            format!("{}: {e}", incoming.message_type),
        )
    };
    match incoming.message_type.as_str() {
        "subscribe" => {
            let d: SubscribeData =
                serde_json::from_value(incoming.data.clone()).map_err(invalid)?;
            let topic = d.topic.or(d.event).ok_or((
                "MALFORMED_MESSAGE",
                "subscribe needs data.topic".to_string(),
            ))?;
            Ok(ClientMessage::Subscribe {
                topic,
                filter: d.filter,
                last_sequence: d.last_sequence,
                epoch: d.epoch,
            })
        }
        "unsubscribe" => {
            let d: UnsubscribeData =
                serde_json::from_value(incoming.data.clone()).map_err(invalid)?;
            let topic = d.topic.or(d.event);
            if d.subscription_id.is_none() && topic.is_none() {
                return Err((
                    "MALFORMED_MESSAGE",
                    "unsubscribe needs data.subscription_id or data.topic".into(),
                ));
            }
            Ok(ClientMessage::Unsubscribe {
                subscription_id: d.subscription_id,
                topic,
            })
        }
        "ping" => Ok(ClientMessage::Ping(incoming.data)),
        "query" => Ok(ClientMessage::Query(
            serde_json::from_value(incoming.data.clone()).map_err(invalid)?,
        )),
        "cancel" => {
            let d: CancelData = serde_json::from_value(incoming.data.clone()).map_err(invalid)?;
            Ok(ClientMessage::Cancel {
                query_id: d.query_id,
            })
        }
        other => Err((
            "UNKNOWN_MESSAGE_TYPE",
            format!(
                "unknown message_type `{other}`; expected subscribe, unsubscribe or ping (and query or cancel on /api/v1/ws/query)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_messages_and_refuses_bad_ones() {
        assert!(matches!(
            parse(r#"{"message_type": "subscribe", "data": {"event": "system_metrics"}}"#),
            Ok(ClientMessage::Subscribe { topic, .. }) if topic == "system_metrics"
        ));
        assert!(matches!(
            parse(r#"{"message_type": "ping"}"#),
            Ok(ClientMessage::Ping(Value::Null))
        ));
        assert_eq!(parse("{").unwrap_err().0, "MALFORMED_MESSAGE");
        assert!(matches!(
            parse(r#"{"message_type": "query", "data": {"sql": "SELECT 1", "query_id": "a"}}"#),
            Ok(ClientMessage::Query(QueryRequest { sql, query_id: Some(id), .. })) if sql == "SELECT 1" && id == "a"
        ));
        assert_eq!(
            parse(r#"{"message_type": "query", "data": {"sql": "SELECT 1", "limit": 5}}"#)
                .unwrap_err()
                .0,
            "MALFORMED_MESSAGE"
        );
        assert_eq!(
            parse(r#"{"message_type": "cancel", "data": {}}"#)
                .unwrap_err()
                .0,
            "MALFORMED_MESSAGE"
        );
        assert_eq!(
            parse(r#"{"message_type": "dance"}"#).unwrap_err().0,
            "UNKNOWN_MESSAGE_TYPE"
        );
        assert_eq!(
            parse(r#"{"message_type": "subscribe", "data": {}}"#)
                .unwrap_err()
                .0,
            "MALFORMED_MESSAGE"
        );
        assert_eq!(
            parse(r#"{"message_type": "subscribe", "data": {"topic": "x", "last_sequence": -1}}"#)
                .unwrap_err()
                .0,
            "MALFORMED_MESSAGE"
        );
    }
}
