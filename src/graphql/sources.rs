//! What every part of the hand-written GraphQL side shares: `Sources` (the backends), the bus
//! behind the generated `GraphQlTopics`, and stream helpers. Each schema file's trait
//! (`TableDataFields`, `OperationsFields`, ...) is implemented for `Sources` in the module named
//! after that file.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Backends;
use crate::api::graphql::GraphQlTopics;
use crate::api::graphql_runtime::{Caller, QueueFill, invalid_argument};
use crate::api::runtime::ApiError;
use crate::events::Event;

/// The database a table subscription watches when none is named.
pub(super) const DEFAULT_DATABASE: &str = "default";

/// The events of the topic a subscription's YAML names, as the generated resolver hands them over.
pub(super) type Events = BoxStream<'static, Arc<Event>>;

pub struct Sources {
    pub(super) backends: Arc<Backends>,
}

impl Sources {
    pub fn new(backends: Arc<Backends>) -> Sources {
        Sources { backends }
    }
}

pub(super) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Runs `produce` in a task feeding the returned stream; the task stops when the stream is dropped.
pub(super) fn spawned<T, F, Fut>(produce: F) -> BoxStream<'static, T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let closed = tx.clone();
    let work = produce(tx);
    tokio::spawn(async move {
        tokio::select! {
            () = work => {}
            () = closed.closed() => {}
        }
    });
    ReceiverStream::new(rx).boxed()
}

/// An interval argument in seconds: `default` when absent, refused outside 1..=3600.
pub(super) fn seconds(name: &str, value: Option<i64>, default: u64) -> Result<Duration, ApiError> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(v @ 1..=3600) => Ok(Duration::from_secs(v as u64)),
        Some(v) => Err(invalid_argument(format!(
            "`{name}` must be 1 to 3600 seconds, got {v}"
        ))),
    }
}

impl GraphQlTopics for Sources {
    type Event = Arc<Event>;

    /// A subscriber that falls behind, or asks to resume after a sequence no longer held, gets
    /// one loss notice with the exact range in place of what it lost.
    fn listen(
        &self,
        caller: &Caller,
        topic: &'static str,
        after: Option<u64>,
    ) -> Result<Events, ApiError> {
        let topic = self
            .backends
            .bus
            .topic(topic)
            .ok_or_else(|| ApiError::internal(format!("no bus topic `{topic}`")))?;
        let listener = topic.listen_after(after);
        let depth = listener.depth_gauge();
        let (name, capacity, lossless) = (topic.name(), topic.capacity() as u64, topic.durable());
        caller.queues.watch(move || QueueFill {
            topic: name,
            depth: depth(),
            capacity,
            lossless,
        });
        Ok(listener.into_stream())
    }

    fn payload(event: &Arc<Event>) -> (&str, &serde_json::Value) {
        (event.message_type, &event.data)
    }

    fn sequence(event: &Arc<Event>) -> u64 {
        event.sequence
    }
}
