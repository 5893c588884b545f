//! The wire protocol of a connection: client messages in, protocol frames out. Every frame is the
//! seed's envelope `{"message_type", "data", "timestamp"}`.

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::types;

#[derive(Serialize)]
struct Envelope<'a, T> {
    message_type: &'a str,
    data: &'a T,
    timestamp: i64,
}

pub fn frame<T: Serialize>(message_type: &str, data: &T) -> Utf8Bytes {
    let text = serde_json::to_string(&Envelope {
        message_type,
        data,
        timestamp: chrono::Utc::now().timestamp(),
    })
    .unwrap_or_default();
    Utf8Bytes::from(text)
}

pub fn error(code: &str, message: impl Into<String>) -> Utf8Bytes {
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
    /// "last_sequence": 41}}`; `event` is accepted for `topic`, as in the seed's wscat example.
    Subscribe {
        topic: String,
        filter: Option<Value>,
        last_sequence: Option<u64>,
    },
    /// By `subscription_id`, or every subscription of a `topic`.
    Unsubscribe {
        subscription_id: Option<String>,
        topic: Option<String>,
    },
    Ping(Value),
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
        other => Err((
            "UNKNOWN_MESSAGE_TYPE",
            format!("unknown message_type `{other}`; expected subscribe, unsubscribe or ping"),
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
