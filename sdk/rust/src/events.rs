//! WebSocket messages as on the wire (`generated/events.schema.json`): the envelope
//! `{"message_type", "data", "timestamp", "topic"?, "sequence"?}`. The messages an SDK user acts on
//! are typed; every other message type arrives as [`Event::Other`] with its raw `data`, so a
//! server newer than the SDK never breaks the stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One server frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Unix seconds: publication time of a bus event, build time of a protocol message.
    pub timestamp: i64,
    /// Set on bus events only.
    pub topic: Option<String>,
    /// The event's number within its topic (bus events only).
    pub sequence: Option<u64>,
    pub event: Event,
}

/// The typed part of a frame, tagged by `message_type` with the body in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "message_type", content = "data", rename_all = "snake_case")]
pub enum Event {
    TableModified(TableModified),
    SubscriptionAck(SubscriptionAck),
    Error(ProtocolError),
    Gap(Gap),
    Pong {
        echo: Value,
    },
    /// Any other message type (`schema_changed`, `system_metrics`, ...), untyped.
    #[serde(skip)]
    Other {
        message_type: String,
        data: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableModified {
    pub table: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub operation: String,
    pub row_id: String,
    pub row_data: Value,
    pub transaction_id: Value,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionAck {
    pub topic: String,
    pub subscription_id: String,
    pub subscribed: bool,
    pub last_sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub topic: String,
    pub from_sequence: u64,
    pub to_sequence: u64,
    pub missed: u64,
}

impl Message {
    /// Parses one text frame; `None` when it is not a JSON object with a `message_type`.
    pub fn parse(text: &str) -> Option<Self> {
        let Value::Object(mut frame) = serde_json::from_str::<Value>(text).ok()? else {
            return None;
        };
        let timestamp = frame
            .get("timestamp")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let topic = frame
            .get("topic")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let sequence = frame.get("sequence").and_then(Value::as_u64);
        let message_type = frame.get("message_type")?.as_str()?.to_owned();
        let data = frame.remove("data").unwrap_or(Value::Null);
        let tagged = serde_json::json!({ "message_type": message_type, "data": data.clone() });
        let event = serde_json::from_value(tagged).unwrap_or(Event::Other { message_type, data });
        Some(Self {
            timestamp,
            topic,
            sequence,
            event,
        })
    }
}
