//! The stream of a subscription the generator writes whole (`source: {topic, event, fields,
//! filter}` in YAML): the topic's events of one message type, kept by the declared filters and
//! decoded into the returned type. The generator has checked at build time that every property of
//! that type has a field of the event's own type, so a payload that does not decode is a producer
//! breaking its declared event: the subscriber gets an error, never a silent gap.

use futures_util::stream::{BoxStream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::graphql_runtime::SourceResult;
use crate::runtime::ApiError;

/// The message type of the notice a listener gets in place of events it lost (it fell more than
/// the topic's capacity behind); its data is `{"from_sequence", "to_sequence", "missed"}`.
pub const EVENTS_LOST: &str = "events_lost";

/// The error code of [`lost_error`], for sources that handle a loss themselves.
pub const EVENTS_LOST_CODE: &str = "EVENTS_LOST";

/// The subscriber's error for a loss notice: `EVENTS_LOST`, with the exact range and count in
/// the message and in `details`. The subscription goes on with the events that follow.
pub fn lost_error(data: &Value) -> ApiError {
    let n = |k: &str| data.get(k).and_then(Value::as_u64).unwrap_or(0);
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        EVENTS_LOST_CODE,
        format!(
            "{} events were lost (sequences {} to {}): this subscriber fell more than the topic's \
             capacity behind",
            n("missed"),
            n("from_sequence"),
            n("to_sequence")
        ),
    )
    .with_details(data.clone())
}

/// How one message type becomes the returned type.
#[derive(Debug)]
pub struct EventShape {
    pub message_type: &'static str,
    /// (event field, property) where the names differ.
    pub renames: &'static [(&'static str, &'static str)],
    /// (event field, event value, returned value) where an enum's spellings differ.
    pub values: &'static [(&'static str, &'static str, &'static str)],
    /// The returned type's `timestamp` is the delivery time: the event has none of its own.
    pub stamped: bool,
    /// The arguments applied as filters.
    pub filters: &'static [Filter],
}

/// An argument that keeps only some events; an absent (null) argument keeps every event.
#[derive(Debug)]
pub struct Filter {
    /// The argument's GraphQL name.
    pub arg: &'static str,
    /// The event field it is compared with.
    pub field: &'static str,
    pub op: Match,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The field equals the argument.
    Eq,
    /// The field is one of the argument's values.
    In,
}

/// The subscription's stream: `payload` gives an event's message type and data; `args` are the
/// subscription's arguments as a JSON object keyed by their GraphQL names.
pub fn event_source<T, E>(
    events: BoxStream<'static, E>,
    payload: fn(&E) -> (&str, &Value),
    shape: &'static EventShape,
    args: Value,
) -> SourceResult<T>
where
    T: DeserializeOwned + Send + 'static,
    E: Send + 'static,
{
    let wanted: Vec<(&'static Filter, Value)> = shape
        .filters
        .iter()
        .filter_map(|f| match args.get(f.arg) {
            None | Some(Value::Null) => None,
            Some(v) => Some((f, v.clone())),
        })
        .collect();
    Ok(events
        .filter_map(move |e| {
            let (message_type, data) = payload(&e);
            let item = if message_type == EVENTS_LOST {
                Some(Err(lost_error(data)))
            } else {
                (message_type == shape.message_type
                    && wanted.iter().all(|(f, v)| keeps(f, v, data)))
                .then(|| decode::<T>(shape, data))
            };
            async move { item }
        })
        .boxed())
}

/// A hand-written source's events (`source: {topic, receives}`): the topic's messages of `T`'s
/// type decoded into `T`, the message's generated type, so the source reads typed fields the
/// compiler checks against the event's declaration. A payload that does not decode is an error
/// item the subscriber receives, never a silent gap.
pub fn received<T, E>(
    events: BoxStream<'static, E>,
    payload: fn(&E) -> (&str, &Value),
) -> BoxStream<'static, Result<T, ApiError>>
where
    T: crate::EventMessage + DeserializeOwned + Send + 'static,
    E: Send + 'static,
{
    events
        .filter_map(move |e| {
            let (message_type, data) = payload(&e);
            std::future::ready(receive::<T>(message_type, data))
        })
        .boxed()
}

/// One event as a hand-written source receives it: its message decoded, a loss notice as the
/// `EVENTS_LOST` error, `None` for the topic's other message types.
fn receive<T>(message_type: &str, data: &Value) -> Option<Result<T, ApiError>>
where
    T: crate::EventMessage + DeserializeOwned,
{
    if message_type == EVENTS_LOST {
        return Some(Err(lost_error(data)));
    }
    (message_type == T::MESSAGE_TYPE).then(|| {
        T::deserialize(data).map_err(|why| {
            ApiError::internal(format!(
                "a `{}` event does not match its declared type: {why}",
                T::MESSAGE_TYPE
            ))
        })
    })
}

/// A message of a durable topic with its sequence, which a subscriber passes back (the resume
/// argument) to start after it. Reads as the message itself.
#[derive(Debug, Clone)]
pub struct Sequenced<T> {
    pub sequence: u64,
    pub message: T,
}

impl<T> std::ops::Deref for Sequenced<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.message
    }
}

/// [`received`] for a durable topic: each message with its sequence.
pub fn sequenced<T, E>(
    events: BoxStream<'static, E>,
    payload: fn(&E) -> (&str, &Value),
    sequence: fn(&E) -> u64,
) -> BoxStream<'static, Result<Sequenced<T>, ApiError>>
where
    T: crate::EventMessage + DeserializeOwned + Send + 'static,
    E: Send + 'static,
{
    events
        .filter_map(move |e| {
            let (message_type, data) = payload(&e);
            let item = receive::<T>(message_type, data).map(|m| {
                m.map(|message| Sequenced {
                    sequence: sequence(&e),
                    message,
                })
            });
            std::future::ready(item)
        })
        .boxed()
}

fn keeps(filter: &Filter, arg: &Value, data: &Value) -> bool {
    let Some(field) = data.get(filter.field) else {
        // An event without the field (a named lock has no table) matches no value.
        return false;
    };
    match filter.op {
        Match::Eq => field == arg,
        Match::In => arg.as_array().is_some_and(|values| values.contains(field)),
    }
}

fn decode<T: DeserializeOwned>(shape: &EventShape, data: &Value) -> Result<T, ApiError> {
    let broken = |why: String| {
        ApiError::internal(format!(
            "a `{}` event does not match its declared type: {why}",
            shape.message_type
        ))
    };
    let Some(fields) = data.as_object() else {
        return Err(broken("its data is not an object".into()));
    };
    let mut object = Map::with_capacity(fields.len() + 1);
    for (key, value) in fields {
        let mut value = value.clone();
        if let Some(s) = value.as_str()
            && let Some((_, _, to)) = shape
                .values
                .iter()
                .find(|(field, from, _)| field == key && from == &s)
        {
            value = Value::String((*to).to_string());
        }
        let name = shape
            .renames
            .iter()
            .find(|(from, _)| from == key)
            .map_or(key.as_str(), |(_, to)| to);
        object.insert(name.to_string(), value);
    }
    if shape.stamped {
        object.insert(
            "timestamp".into(),
            serde_json::to_value(chrono::Utc::now()).map_err(|e| broken(e.to_string()))?,
        );
    }
    serde_json::from_value(Value::Object(object)).map_err(|e| broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Lock {
        table_name: Option<String>,
        mode: String,
        timestamp: String,
    }

    static SHAPE: EventShape = EventShape {
        message_type: "lock_event",
        renames: &[("table", "table_name")],
        values: &[("mode", "shared", "SHARED")],
        stamped: true,
        filters: &[
            Filter {
                arg: "tables",
                field: "table",
                op: Match::In,
            },
            Filter {
                arg: "mode",
                field: "mode",
                op: Match::Eq,
            },
        ],
    };

    async fn run(events: Vec<(&'static str, Value)>, args: Value) -> Vec<Result<Lock, ApiError>> {
        let stream = futures_util::stream::iter(events).boxed();
        let out = event_source::<Lock, _>(stream, |(t, d)| (t, d), &SHAPE, args).expect("start");
        out.collect().await
    }

    #[tokio::test]
    async fn keeps_the_message_type_and_the_filters_then_renames_maps_values_and_stamps() {
        let events = vec![
            ("lock_event", json!({"table": "a", "mode": "shared"})),
            ("lock_event", json!({"table": "b", "mode": "shared"})),
            // A named lock has no table: a table filter drops it.
            ("lock_event", json!({"mode": "shared"})),
            ("deadlock_detected", json!({"table": "a", "mode": "shared"})),
            ("lock_event", json!({"table": "a", "mode": "exclusive"})),
        ];
        let got = run(events, json!({"tables": ["a"], "mode": "shared"})).await;
        assert_eq!(got.len(), 1);
        let lock = got[0].as_ref().expect("decoded");
        assert_eq!(lock.table_name.as_deref(), Some("a"));
        assert_eq!(lock.mode, "SHARED");
        assert!(!lock.timestamp.is_empty());
    }

    #[tokio::test]
    async fn a_loss_notice_is_an_events_lost_error_with_the_exact_range() {
        let lost = json!({"from_sequence": 4, "to_sequence": 9, "missed": 6});
        let events = vec![
            ("lock_event", json!({"table": "a", "mode": "shared"})),
            (EVENTS_LOST, lost.clone()),
        ];
        let got = run(events, json!({"tables": ["a"]})).await;
        assert_eq!(got.len(), 2, "the notice passes whatever the filters");
        let err = got[1].as_ref().expect_err("the notice is an error");
        assert_eq!(err.code, "EVENTS_LOST");
        assert!(
            err.message
                .contains("6 events were lost (sequences 4 to 9)"),
            "{}",
            err.message
        );
        assert_eq!(err.details.as_deref(), Some(&lost));
    }

    #[tokio::test]
    async fn null_arguments_keep_every_event_of_the_type() {
        let events = vec![
            ("lock_event", json!({"mode": "shared"})),
            ("lock_event", json!({"table": "b", "mode": "exclusive"})),
        ];
        let got = run(events, json!({"tables": null})).await;
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(Result::is_ok));
    }

    #[derive(Debug, Deserialize, serde::Serialize)]
    struct Noticed {
        table: String,
    }

    impl crate::EventMessage for Noticed {
        const MESSAGE_TYPE: &'static str = "noticed";
        const TOPIC: &'static str = "notices";
    }

    #[tokio::test]
    async fn a_hand_written_source_receives_its_message_typed_and_broken_payloads_as_errors() {
        let events = vec![
            ("noticed", json!({"table": "a"})),
            ("other", json!({"table": "b"})),
            ("noticed", json!({"table": 7})),
        ];
        let stream = futures_util::stream::iter(events).boxed();
        let got: Vec<Result<Noticed, ApiError>> = received::<Noticed, _>(stream, |(t, d)| (t, d))
            .collect()
            .await;
        assert_eq!(got.len(), 2, "the other message type is not this source's");
        assert_eq!(got[0].as_ref().expect("decoded").table, "a");
        let err = got[1]
            .as_ref()
            .expect_err("a broken payload is an error item");
        assert_eq!(err.code, "INTERNAL_ERROR");
    }

    #[tokio::test]
    async fn a_payload_that_breaks_its_declared_type_is_an_error_not_a_gap() {
        let got = run(vec![("lock_event", json!({"mode": 3}))], json!({})).await;
        let err = got
            .into_iter()
            .next()
            .expect("one item")
            .expect_err("error");
        // The cause is logged; the subscriber learns that its stream broke.
        assert_eq!(err.code, "INTERNAL_ERROR");
    }
}
