//! The wire protocol of a connection: client messages in, protocol frames out. Every frame is the
//! seed's envelope `{"message_type", "data", "timestamp"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WireFrame;
use crate::api::types::{self, ErrorCode};
use crate::api::websocket_endpoints::{CLIENT_MESSAGES, ClientMessage as Declared};

#[derive(Serialize)]
struct Envelope<'a, T> {
    message_type: &'a str,
    data: &'a T,
    timestamp: i64,
}

pub(super) fn frame<T: Serialize>(message_type: &str, data: &T) -> WireFrame {
    let text = serde_json::to_string(&Envelope {
        message_type,
        data,
        timestamp: chrono::Utc::now().timestamp(),
    })
    .unwrap_or_default();
    WireFrame::text(&text)
}

pub(super) fn error(code: ErrorCode, message: impl Into<String>) -> WireFrame {
    frame(
        "error",
        &types::Error {
            code,
            message: message.into(),
        },
    )
}

/// What a client may send.
#[derive(Debug)]
pub(super) enum ClientMessage {
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

/// `{"message_type": "query", "data": {...}}` (declared as `WsQueryRequest`); checked further by
/// `query::Queries::start`.
pub(super) type QueryRequest = types::WsQueryRequest;

#[derive(Deserialize)]
struct Incoming {
    message_type: String,
    #[serde(default)]
    data: Value,
}

/// Parses a text frame into a declared client message (`client_messages` in
/// `schema/websockets.yaml`); the error is `(code, message)` for an `error` reply.
pub(super) fn parse(text: &str) -> Result<ClientMessage, (ErrorCode, String)> {
    let incoming: Incoming = serde_json::from_str(text).map_err(|e| {
        (
            ErrorCode::MalformedMessage,
            format!("expected {{\"message_type\": ..., \"data\": ...}}: {e}"),
        )
    })?;
    let kind = incoming.message_type;
    let declared = Declared::decode(&kind, incoming.data)
        .ok_or_else(|| {
            let known: Vec<&str> = CLIENT_MESSAGES.iter().map(|m| m.message_type).collect();
            (
                ErrorCode::UnknownMessageType,
                format!(
                    "unknown message_type `{kind}`; expected one of {} (query and cancel only \
                     where statements stream)",
                    known.join(", ")
                ),
            )
        })?
        .map_err(|e| (ErrorCode::MalformedMessage, format!("{kind}: {e}")))?;
    match declared {
        Declared::Subscribe(d) => {
            let topic = d.topic.or(d.event).ok_or((
                ErrorCode::MalformedMessage,
                "subscribe needs data.topic".to_string(),
            ))?;
            Ok(ClientMessage::Subscribe {
                topic,
                filter: d.filter,
                last_sequence: d.last_sequence,
                epoch: d.epoch,
            })
        }
        Declared::Unsubscribe(d) => {
            let topic = d.topic.or(d.event);
            if d.subscription_id.is_none() && topic.is_none() {
                return Err((
                    ErrorCode::MalformedMessage,
                    "unsubscribe needs data.subscription_id or data.topic".into(),
                ));
            }
            Ok(ClientMessage::Unsubscribe {
                subscription_id: d.subscription_id,
                topic,
            })
        }
        Declared::Ping(data) => Ok(ClientMessage::Ping(data)),
        Declared::Query(request) => Ok(ClientMessage::Query(request)),
        Declared::Cancel(d) => Ok(ClientMessage::Cancel {
            query_id: d.query_id,
        }),
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
        assert_eq!(parse("{").unwrap_err().0, ErrorCode::MalformedMessage);
        assert!(matches!(
            parse(r#"{"message_type": "query", "data": {"sql": "SELECT 1", "query_id": "a"}}"#),
            Ok(ClientMessage::Query(QueryRequest { sql, query_id: Some(id), .. })) if sql == "SELECT 1" && id == "a"
        ));
        assert_eq!(
            parse(r#"{"message_type": "query", "data": {"sql": "SELECT 1", "limit": 5}}"#)
                .unwrap_err()
                .0,
            ErrorCode::MalformedMessage
        );
        assert_eq!(
            parse(r#"{"message_type": "cancel", "data": {}}"#)
                .unwrap_err()
                .0,
            ErrorCode::MalformedMessage
        );
        assert_eq!(
            parse(r#"{"message_type": "dance"}"#).unwrap_err().0,
            ErrorCode::UnknownMessageType
        );
        assert_eq!(
            parse(r#"{"message_type": "subscribe", "data": {}}"#)
                .unwrap_err()
                .0,
            ErrorCode::MalformedMessage
        );
        assert_eq!(
            parse(r#"{"message_type": "subscribe", "data": {"topic": "x", "last_sequence": -1}}"#)
                .unwrap_err()
                .0,
            ErrorCode::MalformedMessage
        );
    }
}
