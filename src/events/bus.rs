//! Topics with a sequence number per event and a bounded ring of the newest events, which is
//! both the replay history and the live queue: a subscriber is a cursor into the ring (the
//! sequence it last took) plus a wake-up handle, not a channel of its own. An event is serialized
//! once, into the exact frame every subscriber is sent; subscribers share its bytes. A subscriber
//! that falls more than `capacity` events behind loses the oldest and is told how many, except
//! on a durable topic: its events are in the change log first, and the subscriber reads on from
//! there (see [`ChangeLog`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::WireFrame;
use super::change_log::{ChangeLog, Stored};
use crate::api::event_source::EVENTS_LOST;
use crate::api::{EventMessage, TOPICS, TopicMeta};
use crate::sync::{lock, read, write};

/// One published event.
#[derive(Debug)]
pub struct Event {
    pub topic: &'static str,
    pub sequence: u64,
    pub message_type: &'static str,
    /// The payload, for server-side filters.
    pub data: Value,
    /// The complete WebSocket frame, encoded once for every subscriber; its payload is
    /// `{"message_type", "data", "timestamp", "topic", "sequence"}`.
    pub frame: WireFrame,
}

/// The frame without its sequence: `sequence` is the last field, appended once it is known.
#[derive(Serialize)]
struct Envelope<'a> {
    message_type: &'a str,
    data: &'a Value,
    timestamp: i64,
    topic: &'a str,
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

/// Events built, logged and put in the ring at a time: a large transaction reaches subscribers
/// in steps of this size, not after all of it is written.
const PUBLISH_BATCH: usize = 1024;

/// Events a lagging subscriber reads from the change log at a time.
const LOG_READ_BATCH: usize = 1024;

pub struct Topic {
    pub meta: &'static TopicMeta,
    /// The newest events, oldest first.
    ring: RwLock<VecDeque<Arc<Event>>>,
    head: AtomicU64,
    capacity: usize,
    /// Held while publishing: orders sequence numbers, and keeps the log in sequence order.
    publishing: Mutex<()>,
    /// Where a durable topic's events are written before subscribers see them.
    log: Option<Arc<ChangeLog>>,
    /// The epoch this topic's sequences are counted in.
    epoch: Arc<str>,
    /// Whom to wake after a publish: one entry per live subscription.
    listeners: Mutex<Listeners>,
}

#[derive(Default)]
struct Listeners {
    next_key: u64,
    entries: Vec<(u64, Arc<Notify>)>,
}

impl Topic {
    fn new(
        meta: &'static TopicMeta,
        capacity: usize,
        log: Option<Arc<ChangeLog>>,
        run_epoch: &Arc<str>,
    ) -> Topic {
        let (head, epoch) = match &log {
            // Sequences go on from the last one logged; an unreadable log is refused at open.
            Some(log) => (log.head(meta.name).unwrap_or(0), Arc::from(log.epoch())),
            None => (0, Arc::clone(run_epoch)),
        };
        Topic {
            meta,
            ring: RwLock::new(VecDeque::with_capacity(capacity)),
            head: AtomicU64::new(head),
            capacity,
            publishing: Mutex::new(()),
            log,
            epoch,
            listeners: Mutex::default(),
        }
    }

    /// The epoch this topic's sequences are counted in: the change log's for a durable topic
    /// (the same across restarts), this run's otherwise.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// How many of the newest events a subscriber can still be given: the ring's capacity, or
    /// for a durable topic what the change log keeps, if more.
    pub fn retained(&self) -> u64 {
        let ring = self.capacity as u64;
        match &self.log {
            Some(log) => ring.max(log.kept(self.meta.name).events),
            None => ring,
        }
    }

    /// Whether the topic's events are kept in the change log.
    pub fn durable(&self) -> bool {
        self.log.is_some()
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

    /// The events held for replay, oldest first.
    pub fn held(&self) -> Vec<Arc<Event>> {
        read(&self.ring).iter().cloned().collect()
    }

    /// Live subscribers.
    pub fn subscribers(&self) -> usize {
        lock(&self.listeners).entries.len()
    }

    /// Publishes a payload; returns its sequence number.
    pub fn publish_value(&self, message_type: &'static str, data: Value) -> u64 {
        self.publish_all(message_type, [data])
    }

    /// Publishes payloads in order, with consecutive sequence numbers; returns the last one.
    /// A durable topic writes each batch to the change log before any subscriber can take it,
    /// so the ring never drops an event the log does not have.
    pub fn publish_all(
        &self,
        message_type: &'static str,
        payloads: impl IntoIterator<Item = Value>,
    ) -> u64 {
        let _publishing = lock(&self.publishing);
        let mut payloads = payloads.into_iter().peekable();
        let mut last = self.head.load(Ordering::Relaxed);
        while payloads.peek().is_some() {
            let batch: Vec<Arc<Event>> = payloads
                .by_ref()
                .take(PUBLISH_BATCH)
                .zip(last + 1..)
                .map(|(data, sequence)| Arc::new(self.event(sequence, message_type, data)))
                .collect();
            if let Some(log) = &self.log
                && let Err(e) = log.append(self.meta.name, &batch)
            {
                // Live subscribers still get them; one that needs them from the log later is
                // told they are missing, with the exact range.
                tracing::error!(topic = self.meta.name, error = %e, "change log append failed");
            }
            {
                let mut ring = write(&self.ring);
                for event in batch {
                    if ring.len() == self.capacity {
                        ring.pop_front();
                    }
                    last = event.sequence;
                    ring.push_back(event);
                }
                self.head.store(last, Ordering::Release);
            }
            // Each subscriber's task reads the ring itself; a wake-up that finds it already
            // waiting or already woken costs one atomic operation.
            for (_, wake) in &lock(&self.listeners).entries {
                wake.notify_one();
            }
        }
        last
    }

    /// The event with its frame: `{"message_type", "data", "timestamp", "topic", "sequence"}`.
    fn event(&self, sequence: u64, message_type: &'static str, data: Value) -> Event {
        let mut frame = serde_json::to_string(&Envelope {
            message_type,
            data: &data,
            timestamp: chrono::Utc::now().timestamp(),
            topic: self.meta.name,
        })
        .unwrap_or_else(|_| "{}".into());
        frame.pop(); // the closing brace; the sequence goes last
        frame.push_str(if frame.ends_with('{') { "" } else { "," });
        frame.push_str("\"sequence\":");
        frame.push_str(&sequence.to_string());
        frame.push('}');
        Event {
            topic: self.meta.name,
            sequence,
            message_type,
            data,
            frame: WireFrame::text(&frame),
        }
    }

    /// The oldest sequence a subscriber resuming after `last` can still be given: the ring's,
    /// or the log's if older (asked only when the ring does not reach back to `last`).
    fn oldest_available(&self, ring: &VecDeque<Arc<Event>>, last: u64) -> u64 {
        let held = ring
            .front()
            .map_or(self.head.load(Ordering::Relaxed) + 1, |e| e.sequence);
        match &self.log {
            Some(log) if held > last + 1 => match log.oldest(self.meta.name) {
                Ok(Some(logged)) => logged.min(held),
                Ok(None) => held,
                Err(e) => {
                    tracing::error!(topic = self.meta.name, error = %e, "change log unreadable");
                    held
                }
            },
            _ => held,
        }
    }

    /// Subscribes from now on or, with `last_sequence`, from just after it: the held events after
    /// it are read first, and the range asked for but no longer held is returned as a gap. `wake`
    /// is notified after every publish.
    pub fn subscribe(
        self: &Arc<Self>,
        last_sequence: Option<u64>,
        wake: &Arc<Notify>,
    ) -> Subscribed {
        // Under the ring lock, so no event is published between reading the head and listening.
        let ring = read(&self.ring);
        let head = self.head.load(Ordering::Relaxed);
        let (last, gap) = match last_sequence {
            None => (head, None),
            Some(last) => {
                // Ahead of the newest sequence: the numbering began again (sequences live in
                // memory, so a restart resets them) and every event held is new to this client.
                let last = if last > head { 0 } else { last };
                let oldest = self.oldest_available(&ring, last);
                let gap = (oldest > last + 1).then(|| Gap {
                    from_sequence: last + 1,
                    to_sequence: oldest - 1,
                });
                (gap.map_or(last, |g| g.to_sequence), gap)
            }
        };
        let key = {
            let mut listeners = lock(&self.listeners);
            let key = listeners.next_key;
            listeners.next_key += 1;
            listeners.entries.push((key, Arc::clone(wake)));
            key
        };
        drop(ring);
        Subscribed {
            cursor: Cursor {
                topic: Arc::clone(self),
                key,
                last,
            },
            gap,
            head,
        }
    }

    /// Events of this topic from now on, for in-process consumers; one that falls more than the
    /// topic's capacity behind is told what it lost (see [`Listener`]).
    pub fn listen(self: &Arc<Self>) -> Listener {
        self.listen_after(None)
    }

    /// [`Topic::listen`] from just after `last_sequence` when given (see [`Topic::subscribe`]);
    /// the range asked for but no longer held comes first, as one loss notice.
    pub fn listen_after(self: &Arc<Self>, last_sequence: Option<u64>) -> Listener {
        let wake = Arc::new(Notify::new());
        let subscribed = self.subscribe(last_sequence, &wake);
        let ready = subscribed
            .gap
            .map(|gap| Arc::new(Event::lost(self.meta.name, gap)))
            .into_iter()
            .collect();
        Listener {
            handed: Arc::new(AtomicU64::new(subscribed.cursor.last)),
            cursor: subscribed.cursor,
            wake,
            ready,
        }
    }
}

/// A topic's events from the time [`Topic::listen`] was called. Events overwritten before the
/// listener read them are reported in their place by one [`Event::lost`] notice with the exact
/// range (GraphQL turns it into an `EVENTS_LOST` error on the stream).
pub struct Listener {
    cursor: Cursor,
    wake: Arc<Notify>,
    ready: VecDeque<Arc<Event>>,
    /// The sequence of the newest event handed over, for [`Listener::depth_gauge`].
    handed: Arc<AtomicU64>,
}

impl Event {
    /// The notice standing for events a listener lost: message type [`EVENTS_LOST`], data
    /// `{"from_sequence", "to_sequence", "missed"}`, sequence the last one lost.
    pub fn lost(topic: &'static str, gap: Gap) -> Event {
        let data = serde_json::json!({
            "from_sequence": gap.from_sequence,
            "to_sequence": gap.to_sequence,
            "missed": gap.missed(),
        });
        Event {
            topic,
            sequence: gap.to_sequence,
            message_type: EVENTS_LOST,
            frame: WireFrame::text(&data.to_string()),
            data,
        }
    }
}

impl Event {
    /// An event read back from the change log; `data` is parsed from the frame for filters.
    fn stored(meta: &'static TopicMeta, stored: Stored) -> Event {
        let data = serde_json::from_str::<Value>(&stored.frame)
            .ok()
            .and_then(|mut frame| frame.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null);
        Event {
            topic: meta.name,
            sequence: stored.sequence,
            // A type no longer declared (a log written by another version) keeps its frame;
            // only the in-process name falls back to the family's first type.
            message_type: meta
                .message_types
                .iter()
                .find(|t| **t == stored.message_type)
                .or(meta.message_types.first())
                .copied()
                .unwrap_or(meta.name),
            data,
            frame: WireFrame::text(&stored.frame),
        }
    }
}

impl Listener {
    /// The next event or loss notice; never `None` (the option mirrors a channel's `recv`).
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.handed.store(event.sequence, Ordering::Relaxed);
                return Some(event);
            }
            let ready = &mut self.ready;
            let taken = self.cursor.read(64, |e| ready.push_back(Arc::clone(e)));
            if let Some(gap) = taken.lost {
                self.ready
                    .push_front(Arc::new(Event::lost(self.cursor.topic.meta.name, gap)));
            }
            if self.ready.is_empty() {
                // A publish since the read left a permit, so this returns at once.
                self.wake.notified().await;
            }
        }
    }

    /// Events published and not yet handed over (read ahead or not), measured when called and
    /// for as long as the topic lives, also after the listener is dropped.
    pub fn depth_gauge(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let (topic, handed) = (Arc::clone(&self.cursor.topic), Arc::clone(&self.handed));
        move || topic.head().saturating_sub(handed.load(Ordering::Relaxed))
    }

    pub fn into_stream(self) -> BoxStream<'static, Arc<Event>> {
        stream::unfold(self, |mut listener| async move {
            let event = listener.recv().await?;
            Some((event, listener))
        })
        .boxed()
    }
}

/// A subscriber's place in a topic: the sequence it last took. Dropping it stops the wake-ups.
pub struct Cursor {
    topic: Arc<Topic>,
    key: u64,
    last: u64,
}

/// What one [`Cursor::read`] took.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Events overwritten before this subscriber read them (skipped; the cursor moved past).
    pub lost: Option<Gap>,
    /// Events passed to the callback.
    pub events: usize,
}

impl Cursor {
    pub fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    /// The sequence of the newest event taken (read or skipped).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Events published and not yet taken, lost ones included.
    pub fn pending(&self) -> u64 {
        self.topic.head().saturating_sub(self.last)
    }

    /// Takes up to `max` events after the cursor, oldest first, passing each to `each`. Events
    /// that were overwritten before being read are skipped and reported; on a durable topic
    /// they are read from the change log instead, and only what it no longer holds is lost.
    pub fn read(&mut self, max: usize, mut each: impl FnMut(&Arc<Event>)) -> Taken {
        let mut taken = Taken::default();
        if self.pending() == 0 {
            return taken;
        }
        let mut ring = read(&self.topic.ring);
        let behind = ring.front().is_none_or(|e| e.sequence > self.last + 1);
        if behind && let Some(log) = self.topic.log.clone() {
            drop(ring);
            if let Some(taken) = self.read_log(&log, max, &mut each) {
                return taken;
            }
            ring = read(&self.topic.ring);
        }
        let Some(oldest) = ring.front().map(|e| e.sequence) else {
            return taken;
        };
        if oldest > self.last + 1 {
            taken.lost = Some(Gap {
                from_sequence: self.last + 1,
                to_sequence: oldest - 1,
            });
            self.last = oldest - 1;
        }
        let start = (self.last + 1 - oldest) as usize;
        for event in ring.range(start.min(ring.len())..).take(max) {
            each(event);
            self.last = event.sequence;
            taken.events += 1;
        }
        taken
    }
}

impl Cursor {
    /// Reads on from the change log; `None` when it has nothing after the cursor (then the
    /// ring's loss is reported as usual).
    fn read_log(
        &mut self,
        log: &ChangeLog,
        max: usize,
        each: &mut impl FnMut(&Arc<Event>),
    ) -> Option<Taken> {
        let meta = self.topic.meta;
        let stored = log
            .read_after(meta.name, self.last, max.min(LOG_READ_BATCH))
            .inspect_err(
                |e| tracing::error!(topic = meta.name, error = %e, "change log unreadable"),
            )
            .ok()?;
        // Not past the head: the log is written before the ring, and the head moves last.
        let head = self.topic.head();
        let first = stored.first().filter(|s| s.sequence <= head)?.sequence;
        let mut taken = Taken::default();
        if first > self.last + 1 {
            taken.lost = Some(Gap {
                from_sequence: self.last + 1,
                to_sequence: first - 1,
            });
        }
        for stored in stored.into_iter().take_while(|s| s.sequence <= head) {
            let event = Arc::new(Event::stored(meta, stored));
            each(&event);
            self.last = event.sequence;
            taken.events += 1;
        }
        Some(taken)
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let mut listeners = lock(&self.topic.listeners);
        if let Some(i) = listeners.entries.iter().position(|(k, _)| *k == self.key) {
            listeners.entries.swap_remove(i);
        }
    }
}

/// A new subscription's cursor, and what it asked for that could not be replayed.
pub struct Subscribed {
    pub cursor: Cursor,
    pub gap: Option<Gap>,
    /// The topic's newest sequence when the subscription started.
    pub head: u64,
}

/// Every bus topic, by family name.
pub struct Bus {
    topics: HashMap<&'static str, Arc<Topic>>,
}

impl Bus {
    /// One topic per declared family (protocol families are not topics), all in memory.
    pub fn new(capacity: usize) -> Bus {
        Bus::with_log(capacity, None)
    }

    /// One topic per declared family; the durable ones keep their events in `log`.
    pub fn with_log(capacity: usize, log: Option<Arc<ChangeLog>>) -> Bus {
        let capacity = capacity.max(1);
        // Sequences of in-memory topics are counted from 1 at every start, so they mean
        // something only with the run they were counted in.
        let run_epoch: Arc<str> = Arc::from(&uuid::Uuid::new_v4().simple().to_string()[..16]);
        Bus {
            topics: TOPICS
                .iter()
                .filter(|t| !t.protocol)
                .map(|t| {
                    let log = log.clone().filter(|_| t.durable);
                    (t.name, Arc::new(Topic::new(t, capacity, log, &run_epoch)))
                })
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

/// The engine's events reach their topics through its port.
impl crate::engine::port::Emit for Bus {
    fn emit(&self, topic: &'static str, message_type: &'static str, data: Value) {
        match self.topics.get(topic) {
            Some(topic) => {
                topic.publish_value(message_type, data);
            }
            None => tracing::error!(topic, "the engine emitted to a topic that is not declared"),
        }
    }
}
