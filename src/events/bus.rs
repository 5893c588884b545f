//! Topics with a sequence number per event, a bounded history for replay, and a tokio broadcast
//! channel for live fan-out. An event is serialized once, into the exact frame every subscriber
//! is sent; subscribers share its bytes. The channel and the history both keep the newest
//! `capacity` events: a subscriber that falls behind loses the oldest and is told how many.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::api::{EventMessage, TOPICS, TopicMeta};
use crate::sync::lock;

/// One published event.
#[derive(Debug)]
pub struct Event {
    pub topic: &'static str,
    pub sequence: u64,
    pub message_type: &'static str,
    /// The payload, for server-side filters.
    pub data: Value,
    /// The complete wire frame: `{"message_type", "data", "timestamp", "topic", "sequence"}`.
    pub frame: Utf8Bytes,
}

#[derive(Serialize)]
struct Envelope<'a> {
    message_type: &'a str,
    data: &'a Value,
    timestamp: i64,
    topic: &'a str,
    sequence: u64,
}

/// Events a subscriber asked for that are no longer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub from_sequence: u64,
    pub to_sequence: u64,
}

impl Gap {
    pub fn missed(&self) -> u64 {
        self.to_sequence + 1 - self.from_sequence
    }
}

pub struct Topic {
    pub meta: &'static TopicMeta,
    tx: broadcast::Sender<Arc<Event>>,
    /// The newest events, oldest first; the lock also orders sequence numbers and sends.
    history: Mutex<VecDeque<Arc<Event>>>,
    head: AtomicU64,
    capacity: usize,
}

impl Topic {
    fn new(meta: &'static TopicMeta, capacity: usize) -> Topic {
        let (tx, _) = broadcast::channel(capacity);
        Topic {
            meta,
            tx,
            history: Mutex::new(VecDeque::with_capacity(capacity)),
            head: AtomicU64::new(0),
            capacity,
        }
    }

    pub fn name(&self) -> &'static str {
        self.meta.name
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sequence number of the newest event (0 before the first).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Live subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Event>>> {
        lock(&self.history)
    }

    /// Publishes a payload; returns its sequence number.
    pub fn publish_value(&self, message_type: &'static str, data: Value) -> u64 {
        let timestamp = chrono::Utc::now().timestamp();
        let mut history = self.lock();
        let sequence = self.head.load(Ordering::Relaxed) + 1;
        let frame = serde_json::to_string(&Envelope {
            message_type,
            data: &data,
            timestamp,
            topic: self.meta.name,
            sequence,
        })
        .unwrap_or_default();
        let event = Arc::new(Event {
            topic: self.meta.name,
            sequence,
            message_type,
            data,
            frame: Utf8Bytes::from(frame),
        });
        if history.len() == self.capacity {
            history.pop_front();
        }
        history.push_back(Arc::clone(&event));
        self.head.store(sequence, Ordering::Release);
        // No receivers is fine: the history keeps the event for replay.
        let _ = self.tx.send(event);
        sequence
    }

    /// Subscribes from now on, plus the held events after `last_sequence` (when given), and the
    /// range that was asked for but is no longer held. Taken under the history lock, so nothing is
    /// missed or repeated between the replayed events and the live ones.
    pub fn subscribe(&self, last_sequence: Option<u64>) -> Subscribed {
        let history = self.lock();
        let rx = self.tx.subscribe();
        let head = self.head.load(Ordering::Relaxed);
        let Some(last) = last_sequence else {
            return Subscribed {
                rx,
                replay: Vec::new(),
                gap: None,
                head,
            };
        };
        let last = last.min(head);
        let oldest_held = history.front().map_or(head + 1, |e| e.sequence);
        let gap = (oldest_held > last + 1).then(|| Gap {
            from_sequence: last + 1,
            to_sequence: oldest_held - 1,
        });
        let replay = history
            .iter()
            .filter(|e| e.sequence > last)
            .cloned()
            .collect();
        Subscribed {
            rx,
            replay,
            gap,
            head,
        }
    }
}

/// A new subscription's live channel, the events to replay first, and what could not be replayed.
pub struct Subscribed {
    pub rx: broadcast::Receiver<Arc<Event>>,
    pub replay: Vec<Arc<Event>>,
    pub gap: Option<Gap>,
    /// The topic's newest sequence when the subscription started.
    pub head: u64,
}

/// Every bus topic, by family name.
pub struct Bus {
    topics: HashMap<&'static str, Arc<Topic>>,
}

impl Bus {
    /// One topic per declared family (protocol families are not topics).
    pub fn new(capacity: usize) -> Bus {
        let capacity = capacity.max(1);
        Bus {
            topics: TOPICS
                .iter()
                .filter(|t| !t.protocol)
                .map(|t| (t.name, Arc::new(Topic::new(t, capacity))))
                .collect(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<Topic>> {
        self.topics.get(name)
    }

    /// The topic of a family name or of one of its message types (`system_metrics`).
    pub fn resolve(&self, name: &str) -> Option<&Arc<Topic>> {
        self.topic(name).or_else(|| {
            self.topics
                .values()
                .find(|t| t.meta.message_types.contains(&name))
        })
    }

    /// Publishes a typed event on its topic; `None` if the payload does not serialize.
    pub fn publish<E: EventMessage>(&self, event: &E) -> Option<u64> {
        let topic = self.topics.get(E::TOPIC)?;
        let data = serde_json::to_value(event)
            .inspect_err(
                |e| tracing::error!(topic = E::TOPIC, error = %e, "event does not serialize"),
            )
            .ok()?;
        Some(topic.publish_value(E::MESSAGE_TYPE, data))
    }
}
