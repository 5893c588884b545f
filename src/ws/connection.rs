//! One connection's task: reads client messages, fans in its subscriptions, and writes. Events
//! that are ready are drained together and flushed once (per-message flushing is an order of
//! magnitude slower). Close codes are documented in docs/websocket.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::WsHub;
use super::protocol::{self, ClientMessage};
use super::query::Queries;
use super::registry::{Control, Registration, SubscriptionInfo};
use crate::api::runtime::Identity;
use crate::api::{Access, types};
use crate::events::{Event, Filter, Gap, Subscribed, Topic};

/// Close codes (see docs/websocket.md).
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_IDLE: u16 = 4000;
pub const CLOSE_CREDENTIALS_EXPIRED: u16 = 4001;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_BY_ADMIN: u16 = 4009;

/// Most events taken from the subscriptions before one flush.
const DRAIN_BATCH: usize = 512;

struct Subscription {
    topic: Arc<Topic>,
    filter: Filter,
    /// Deliver at most one event per this interval (metrics sampling); `None` delivers all.
    min_interval: Option<Duration>,
    last_delivered_at: Option<Instant>,
    /// The newest sequence this subscription has taken (delivered or filtered out).
    last_sequence: u64,
    warned: bool,
    full_since: Option<Instant>,
    info: Arc<SubscriptionInfo>,
}

pub struct Connection {
    pub hub: Arc<WsHub>,
    pub registration: Registration,
    pub control: mpsc::Receiver<Control>,
    pub identity: Arc<Identity>,
    /// When the credentials stop being valid (access token expiry).
    pub expires_at: Option<Instant>,
    /// Accepts `query` and `cancel` (/api/v1/ws/query).
    pub streams_queries: bool,
}

enum Exit {
    ClientGone,
    Close(u16, String),
    /// The socket stopped accepting writes; no close frame can be sent.
    Stuck,
}

impl Connection {
    /// Runs until the client leaves or the server closes the connection. `auto` subscriptions
    /// (topic, sampling interval) are made on connect.
    pub async fn run(
        mut self,
        socket: WebSocket,
        auto: Vec<(Arc<Topic>, Option<Duration>, Filter)>,
    ) {
        let (mut sink, mut stream) = socket.split();
        let mut streams: StreamMap<String, BroadcastStream<Arc<Event>>> = StreamMap::new();
        let mut subs: HashMap<String, Subscription> = HashMap::new();
        let mut out: Vec<Utf8Bytes> = Vec::new();
        let mut queries = Queries::default();
        let config = self.hub.config.clone();
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        heartbeat.tick().await;
        let mut last_activity = Instant::now();
        let mut shutdown = self.hub.shutdown.clone();
        let expiry = self.expires_at;

        for (topic, interval, filter) in auto {
            self.subscribe(
                &mut streams,
                &mut subs,
                &mut out,
                topic,
                filter,
                None,
                interval,
            );
        }

        let exit = loop {
            if !out.is_empty() && !self.send(&mut sink, &mut out).await {
                break Exit::Stuck;
            }
            tokio::select! {
                frame = stream.next() => {
                    last_activity = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            self.count_received();
                            self.handle_text(&text, &mut streams, &mut subs, &mut queries, &mut out);
                        }
                        Some(Ok(Message::Binary(_))) => {
                            self.count_received();
                            out.push(protocol::error("MALFORMED_MESSAGE", "binary frames are not supported; send JSON text"));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => break Exit::ClientGone,
                        Some(Err(e)) => {
                            // Oversized or invalid frames end the connection (tungstenite's rules).
                            tracing::debug!(connection = %self.info().id, error = %e, "read failed");
                            break Exit::Close(1009, "message too big or malformed".into());
                        }
                    }
                }
                Some((id, item)) = streams.next(), if !streams.is_empty() => {
                    // Measure the queues before draining them: after a slow write they show how
                    // far this client has fallen behind.
                    if let Some(exit) = self.check_backpressure(&mut subs, &mut out) {
                        break exit;
                    }
                    self.take(&id, item, &mut subs, &mut out);
                    // Drain what else is ready, then flush once.
                    for _ in 0..DRAIN_BATCH {
                        match streams.next().now_or_never() {
                            Some(Some((id, item))) => self.take(&id, item, &mut subs, &mut out),
                            _ => break,
                        }
                    }
                }
                // Taken only after the previous write completed: a client that does not read
                // leaves the frames in the query's bounded queue, which stops its producer.
                Some((id, output)) = queries.streams().next(), if !queries.streams().is_empty() => {
                    queries.take(&id, output, &mut out);
                    for _ in 0..DRAIN_BATCH {
                        match queries.streams().next().now_or_never() {
                            Some(Some((id, output))) => queries.take(&id, output, &mut out),
                            _ => break,
                        }
                    }
                }
                control = self.control.recv() => match control {
                    Some(Control::Close { code, reason }) => break Exit::Close(code, reason),
                    Some(Control::Unsubscribe(id)) => {
                        self.unsubscribe(&id, &mut streams, &mut subs, &mut out);
                    }
                    Some(Control::Send(frame)) => out.push(frame),
                    None => break Exit::Close(CLOSE_GOING_AWAY, "server shutting down".into()),
                },
                _ = heartbeat.tick() => {
                    if last_activity.elapsed() >= config.idle_timeout {
                        break Exit::Close(CLOSE_IDLE, "idle timeout".into());
                    }
                    // Logout, key revocation, disabling or deleting the user, and role changes
                    // reach open connections within one heartbeat.
                    match self.hub.auth.revalidate(&self.identity).await {
                        Ok(identity) => {
                            self.identity = Arc::new(identity);
                            self.drop_forbidden(&mut streams, &mut subs, &mut out);
                        }
                        Err(reason) => break Exit::Close(CLOSE_CREDENTIALS_EXPIRED, reason),
                    }
                    if tokio::time::timeout(config.slow_client_timeout, sink.send(Message::Ping(Default::default()))).await.map_or(true, |r| r.is_err()) {
                        break Exit::Stuck;
                    }
                }
                () = sleep_until(expiry) => {
                    break Exit::Close(CLOSE_CREDENTIALS_EXPIRED, "credentials expired; reconnect with a fresh token".into());
                }
                () = crate::state::shutting_down(&mut shutdown) => {
                    break Exit::Close(CLOSE_GOING_AWAY, "server shutting down".into());
                }
            }
        };
        // Statements streamed to this connection stop now, not at their next row.
        queries.cancel_all();
        match exit {
            Exit::Close(code, reason) => {
                let _ = self.send(&mut sink, &mut out).await;
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(reason),
                };
                // The closing handshake: send Close, then read until the client's Close (or a
                // second passes). Dropping the socket with unread data would reset the connection
                // and the client could lose the Close frame.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    if sink.send(Message::Close(Some(frame))).await.is_ok() {
                        while let Some(Ok(m)) = stream.next().await {
                            if matches!(m, Message::Close(_)) {
                                break;
                            }
                        }
                    }
                })
                .await;
            }
            Exit::ClientGone => {}
            Exit::Stuck => {
                tracing::info!(connection = %self.info().id, "dropping a client that stopped reading");
            }
        }
    }

    /// Ends subscriptions to topics the caller's current roles no longer allow.
    fn drop_forbidden(
        &self,
        streams: &mut StreamMap<String, BroadcastStream<Arc<Event>>>,
        subs: &mut HashMap<String, Subscription>,
        out: &mut Vec<Utf8Bytes>,
    ) {
        let forbidden: Vec<String> = subs
            .iter()
            .filter(|(_, s)| matches!(s.topic.meta.access, Access::Requires(p) if !self.identity.has(p)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in forbidden {
            out.push(protocol::error(
                "FORBIDDEN_TOPIC",
                format!("subscription {id} ended: your roles no longer allow its topic"),
            ));
            self.unsubscribe(&id, streams, subs, out);
        }
    }

    fn info(&self) -> &super::registry::ConnectionInfo {
        &self.registration.info
    }

    fn count_received(&self) {
        self.info()
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Writes every pending frame and flushes once; `false` if the client stopped reading for
    /// the slow-client timeout.
    async fn send(
        &self,
        sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
        out: &mut Vec<Utf8Bytes>,
    ) -> bool {
        let count = out.len() as u64;
        let write = async {
            for frame in out.drain(..) {
                sink.feed(Message::Text(frame)).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(self.hub.config.slow_client_timeout, write).await {
            Ok(Ok(())) => {
                self.info()
                    .messages_sent
                    .fetch_add(count, Ordering::Relaxed);
                true
            }
            Ok(Err(_)) | Err(_) => false,
        }
    }

    fn handle_text(
        &self,
        text: &str,
        streams: &mut StreamMap<String, BroadcastStream<Arc<Event>>>,
        subs: &mut HashMap<String, Subscription>,
        queries: &mut Queries,
        out: &mut Vec<Utf8Bytes>,
    ) {
        match protocol::parse(text) {
            Err((code, message)) => out.push(protocol::error(code, message)),
            Ok(ClientMessage::Query(_) | ClientMessage::Cancel { .. }) if !self.streams_queries => {
                out.push(protocol::error(
                    "UNKNOWN_MESSAGE_TYPE",
                    "query and cancel are served on /api/v1/ws/query",
                ))
            }
            Ok(ClientMessage::Query(request)) => {
                out.extend(queries.start(&self.hub, &self.identity, request));
            }
            Ok(ClientMessage::Cancel { query_id }) => out.extend(queries.cancel(&query_id)),
            Ok(ClientMessage::Ping(echo)) => {
                out.push(protocol::frame("pong", &types::Pong { echo }))
            }
            Ok(ClientMessage::Subscribe {
                topic,
                filter,
                last_sequence,
            }) => {
                let Some(resolved) = self.hub.bus.resolve(&topic).cloned() else {
                    out.push(protocol::error(
                        "UNKNOWN_TOPIC",
                        format!("no topic `{topic}`"),
                    ));
                    return;
                };
                if let Access::Requires(p) = resolved.meta.access
                    && !self.identity.has(p)
                {
                    out.push(protocol::error(
                        "FORBIDDEN_TOPIC",
                        format!(
                            "topic `{}` needs permission `{}`",
                            resolved.name(),
                            p.as_str()
                        ),
                    ));
                    return;
                }
                let filter = match Filter::parse(filter.as_ref()) {
                    Ok(f) => f,
                    Err(e) => {
                        out.push(protocol::error("INVALID_FILTER", e));
                        return;
                    }
                };
                if subs.len() >= self.hub.config.max_subscriptions {
                    out.push(protocol::error(
                        "TOO_MANY_SUBSCRIPTIONS",
                        format!(
                            "at most {} subscriptions per connection",
                            self.hub.config.max_subscriptions
                        ),
                    ));
                    return;
                }
                self.subscribe(streams, subs, out, resolved, filter, last_sequence, None);
            }
            Ok(ClientMessage::Unsubscribe {
                subscription_id,
                topic,
            }) => {
                let ids: Vec<String> = match (subscription_id, topic) {
                    (Some(id), _) => vec![id],
                    (None, Some(topic)) => subs
                        .iter()
                        .filter(|(_, s)| {
                            s.topic.name() == topic
                                || s.topic.meta.message_types.contains(&topic.as_str())
                        })
                        .map(|(id, _)| id.clone())
                        .collect(),
                    (None, None) => Vec::new(),
                };
                if ids.iter().all(|id| !subs.contains_key(id)) {
                    out.push(protocol::error(
                        "NOT_SUBSCRIBED",
                        "no such subscription on this connection",
                    ));
                    return;
                }
                for id in ids {
                    self.unsubscribe(&id, streams, subs, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        streams: &mut StreamMap<String, BroadcastStream<Arc<Event>>>,
        subs: &mut HashMap<String, Subscription>,
        out: &mut Vec<Utf8Bytes>,
        topic: Arc<Topic>,
        filter: Filter,
        last_sequence: Option<u64>,
        min_interval: Option<Duration>,
    ) {
        let id = format!("sub-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let Subscribed {
            rx,
            replay,
            gap,
            head,
        } = topic.subscribe(last_sequence);
        // Where this subscription starts: replayed events advance it from here.
        let start = match (last_sequence, gap) {
            (None, _) => head,
            (Some(_), Some(gap)) => gap.to_sequence,
            (Some(last), None) => last.min(head),
        };
        let info = Arc::new(SubscriptionInfo {
            id: id.clone(),
            connection_id: self.info().id.clone(),
            topic: topic.name(),
            filter: filter.as_value(),
            created_at: chrono::Utc::now(),
            delivered: Default::default(),
            dropped: Default::default(),
            queue_depth: Default::default(),
        });
        self.info()
            .lock_subs()
            .insert(id.clone(), Arc::clone(&info));
        out.push(protocol::frame(
            "subscription_ack",
            &types::SubscriptionAck {
                topic: topic.name().to_string(),
                subscription_id: id.clone(),
                subscribed: true,
                last_sequence: head,
            },
        ));
        let mut sub = Subscription {
            topic: Arc::clone(&topic),
            filter,
            min_interval,
            last_delivered_at: None,
            last_sequence: start,
            warned: false,
            full_since: None,
            info,
        };
        if let Some(gap) = gap {
            out.push(gap_frame(topic.name(), gap));
            sub.info.dropped.fetch_add(gap.missed(), Ordering::Relaxed);
        }
        for event in replay {
            sub.offer(&event, out);
        }
        streams.insert(id.clone(), BroadcastStream::new(rx));
        subs.insert(id, sub);
    }

    fn unsubscribe(
        &self,
        id: &str,
        streams: &mut StreamMap<String, BroadcastStream<Arc<Event>>>,
        subs: &mut HashMap<String, Subscription>,
        out: &mut Vec<Utf8Bytes>,
    ) {
        streams.remove(id);
        self.info().lock_subs().remove(id);
        if let Some(sub) = subs.remove(id) {
            out.push(protocol::frame(
                "subscription_ack",
                &types::SubscriptionAck {
                    topic: sub.topic.name().to_string(),
                    subscription_id: id.to_string(),
                    subscribed: false,
                    last_sequence: sub.topic.head(),
                },
            ));
        }
    }

    /// One item from a subscription's channel: an event, or news that events were overrun.
    fn take(
        &self,
        id: &str,
        item: Result<Arc<Event>, BroadcastStreamRecvError>,
        subs: &mut HashMap<String, Subscription>,
        out: &mut Vec<Utf8Bytes>,
    ) {
        let Some(sub) = subs.get_mut(id) else { return };
        match item {
            Ok(event) => sub.offer(&event, out),
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                let gap = Gap {
                    from_sequence: sub.last_sequence + 1,
                    to_sequence: sub.last_sequence + n,
                };
                sub.last_sequence += n;
                sub.info.dropped.fetch_add(n, Ordering::Relaxed);
                sub.full_since.get_or_insert_with(Instant::now);
                if !sub.warned {
                    sub.warned = true;
                    out.push(warning_frame(id, sub, sub.topic.capacity() as u64));
                }
                out.push(gap_frame(sub.topic.name(), gap));
            }
        }
    }

    /// Warns at 80 % of a subscription's queue and gives up on a client whose queue stays full.
    fn check_backpressure(
        &self,
        subs: &mut HashMap<String, Subscription>,
        out: &mut Vec<Utf8Bytes>,
    ) -> Option<Exit> {
        let limit = self.hub.config.slow_client_timeout;
        for (id, sub) in subs.iter_mut() {
            let capacity = sub.topic.capacity() as u64;
            let depth = sub.topic.head().saturating_sub(sub.last_sequence);
            sub.info.queue_depth.store(depth, Ordering::Relaxed);
            if depth * 5 > capacity * 4 {
                if !sub.warned {
                    sub.warned = true;
                    out.insert(0, warning_frame(id, sub, depth.min(capacity)));
                }
            } else if depth * 2 < capacity {
                sub.warned = false;
                sub.full_since = None;
            }
            if depth >= capacity {
                sub.full_since.get_or_insert_with(Instant::now);
            }
            if sub.full_since.is_some_and(|t| t.elapsed() >= limit) {
                return Some(Exit::Close(
                    CLOSE_TOO_SLOW,
                    format!(
                        "queue of `{}` full for {} s",
                        sub.topic.name(),
                        limit.as_secs()
                    ),
                ));
            }
        }
        None
    }
}

impl Subscription {
    /// Queues an event for the client if it passes the filter and the sampling interval.
    fn offer(&mut self, event: &Event, out: &mut Vec<Utf8Bytes>) {
        if event.sequence <= self.last_sequence {
            return;
        }
        self.last_sequence = event.sequence;
        if !self.filter.is_empty() && !self.filter.matches(&event.data) {
            return;
        }
        if let Some(interval) = self.min_interval {
            let now = Instant::now();
            // A little slack so a 1 s producer is not skipped by timer jitter.
            if self
                .last_delivered_at
                .is_some_and(|t| now.duration_since(t) + Duration::from_millis(100) < interval)
            {
                return;
            }
            self.last_delivered_at = Some(now);
        }
        self.info.delivered.fetch_add(1, Ordering::Relaxed);
        out.push(event.frame.clone());
    }
}

fn warning_frame(id: &str, sub: &Subscription, depth: u64) -> Utf8Bytes {
    protocol::frame(
        "backpressure_warning",
        &types::BackpressureWarning {
            topic: sub.topic.name().to_string(),
            subscription_id: id.to_string(),
            queue_depth: depth,
            capacity: sub.topic.capacity() as u64,
        },
    )
}

fn gap_frame(topic: &str, gap: Gap) -> Utf8Bytes {
    protocol::frame(
        "gap",
        &types::Gap {
            topic: topic.to_string(),
            from_sequence: gap.from_sequence,
            to_sequence: gap.to_sequence,
            missed: gap.missed(),
        },
    )
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
