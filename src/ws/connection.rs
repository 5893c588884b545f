//! One connection's task: reads client messages, reads its subscriptions' topics, and writes.
//! A subscription is a cursor into its topic's ring (see `events::bus`), and the topic wakes the
//! task after each publish; the task then takes everything ready from every subscription, writes
//! the frames (the topic's shared bytes, never re-encoded or copied: see `wire`) and flushes once
//! (per-message flushing is an order of magnitude slower). tungstenite reads the client's frames;
//! everything sent goes through the connection's `FrameWriter`. Close codes are documented in
//! docs/websocket.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use tokio::io::WriteHalf;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::WireFrame;
use super::WsHub;
use super::protocol::{self, ClientMessage};
use super::query::Queries;
use super::wire::{FrameWriter, ReadOnly};
use crate::api::runtime::Identity;
use crate::api::types::ErrorCode;
use crate::api::upgrade::Socket;
use crate::api::{Access, types};
use crate::events::connections::{
    CLOSE_CREDENTIALS_EXPIRED, CLOSE_GOING_AWAY, CLOSE_IDLE, CLOSE_NORMAL, CLOSE_TOO_SLOW,
    ConnectionInfo, Control, Registration, SubscriptionId, SubscriptionInfo,
};
use crate::events::{Cursor, Filter, Gap, Pressure, Subscribed, Topic};

/// Most events taken from one subscription before a flush.
const DRAIN_BATCH: usize = 512;

/// One subscription, kept small: it is per subscriber, the events themselves are per topic.
struct Subscription {
    /// Where it is in its topic: the newest sequence taken (delivered or filtered out).
    cursor: Cursor,
    /// Metrics sampling (/api/v1/ws/metrics only, so boxed); `None` delivers every event.
    sampling: Option<Box<Sampling>>,
    pressure: Pressure,
    /// Its id, filter and counters, shared with the management routes.
    info: Arc<SubscriptionInfo>,
}

const _: () = assert!(std::mem::size_of::<Subscription>() <= 64);

/// Deliver at most one event per `min_interval`.
struct Sampling {
    min_interval: Duration,
    last_delivered_at: Option<Instant>,
}

impl Subscription {
    fn topic(&self) -> &Arc<Topic> {
        self.cursor.topic()
    }

    fn id(&self) -> SubscriptionId {
        self.info.id
    }
}

pub(super) struct Connection {
    pub hub: Arc<WsHub>,
    pub registration: Registration,
    pub identity: Arc<Identity>,
    /// When the credentials stop being valid (access token expiry).
    pub expires_at: Option<Instant>,
    /// Accepts `query` and `cancel` (/api/v1/ws/query).
    pub streams_queries: bool,
}

type Writer = FrameWriter<WriteHalf<Socket>>;

enum Exit {
    /// The client sent a close frame (with this code) or the socket ended.
    ClientClosed(Option<u16>),
    Close(u16, String),
    /// The socket stopped accepting writes; no close frame can be sent.
    Stuck,
}

impl Connection {
    /// Runs until the client leaves or the server closes the connection. `auto` subscriptions
    /// (topic, sampling interval) are made on connect.
    pub(super) async fn run(
        mut self,
        socket: Socket,
        read_config: WebSocketConfig,
        auto: Vec<(Arc<Topic>, Option<Duration>, Filter)>,
    ) {
        let (read, write) = tokio::io::split(socket);
        let mut stream =
            WebSocketStream::from_raw_socket(ReadOnly(read), Role::Server, Some(read_config)).await;
        let mut writer = FrameWriter::new(write);
        let info = Arc::clone(&self.registration.info);
        // Woken by the subscribed topics after each publish.
        let wake = Arc::new(Notify::new());
        let mut subs: Vec<Subscription> = Vec::new();
        let mut out: Vec<WireFrame> = Vec::new();
        let mut queries = Queries::default();
        let config = self.hub.config.clone();
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        heartbeat.tick().await;
        let mut last_activity = Instant::now();
        let mut shutdown = self.hub.shutdown.clone();
        // Made once: a timer created per loop turn would be registered and cancelled per turn.
        let expiry = sleep_until(self.expires_at);
        let shutdown = crate::process::shutting_down(&mut shutdown);
        // Likewise the waits on the topics' wake-ups and on control requests: made anew per turn,
        // each would join and leave its waiter list (a lock each way) at every wake-up.
        let woken = wake.notified();
        let control = info.control.recv();
        tokio::pin!(expiry, shutdown, woken, control);

        for (topic, interval, filter) in auto {
            self.subscribe(&wake, &mut subs, &mut out, topic, filter, None, interval);
        }

        let exit = loop {
            if !out.is_empty() && !self.send(&mut writer, &mut out).await {
                break Exit::Stuck;
            }
            tokio::select! {
                frame = stream.next() => {
                    last_activity = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            self.count_received();
                            self.handle_text(&text, &wake, &mut subs, &mut queries, &mut out);
                        }
                        Some(Ok(Message::Binary(_))) => {
                            self.count_received();
                            out.push(protocol::error(ErrorCode::MalformedMessage, "binary frames are not supported; send JSON text"));
                        }
                        Some(Ok(Message::Ping(payload))) => out.push(WireFrame::pong(payload)),
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(frame))) => {
                            break Exit::ClientClosed(frame.map(|f| u16::from(f.code)));
                        }
                        None => break Exit::ClientClosed(None),
                        Some(Err(e)) => {
                            // Oversized or invalid frames end the connection (tungstenite's rules).
                            tracing::debug!(connection = %self.info().id, error = %e, "read failed");
                            break Exit::Close(1009, "message too big or malformed".into());
                        }
                    }
                }
                () = &mut woken, if !subs.is_empty() => {
                    woken.set(wake.notified());
                    // Measure the queues before draining them: after a slow write they show how
                    // far this client has fallen behind.
                    if let Some(exit) = self.check_backpressure(&mut subs, &mut out) {
                        break exit;
                    }
                    // Take what is ready, then flush once (at the top of the loop); come back
                    // for the rest of a long backlog after that write.
                    let mut more = false;
                    for sub in &mut subs {
                        sub.take(DRAIN_BATCH, &mut out);
                        more |= sub.cursor.pending() > 0;
                    }
                    if more {
                        wake.notify_one();
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
                request = &mut control => {
                    control.set(info.control.recv());
                    match request {
                        Control::Close { code, reason } => break Exit::Close(code, reason),
                        Control::Unsubscribe(id) => self.unsubscribe(id, &mut subs, &mut out),
                        Control::Send(frame) => out.push(frame),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_activity.elapsed() >= config.idle_timeout {
                        break Exit::Close(CLOSE_IDLE, "idle timeout".into());
                    }
                    // Logout, key revocation, disabling or deleting the user, and role changes
                    // reach open connections within one heartbeat.
                    match self.hub.auth.revalidate(&self.identity).await {
                        Ok(identity) => {
                            self.identity = Arc::new(identity);
                            self.drop_forbidden(&mut subs, &mut out);
                        }
                        Err(reason) => break Exit::Close(CLOSE_CREDENTIALS_EXPIRED, reason),
                    }
                    if !self.write(&mut writer, &[WireFrame::ping()]).await {
                        break Exit::Stuck;
                    }
                }
                () = &mut expiry => {
                    break Exit::Close(CLOSE_CREDENTIALS_EXPIRED, "credentials expired; reconnect with a fresh token".into());
                }
                () = &mut shutdown => {
                    break Exit::Close(CLOSE_GOING_AWAY, "server shutting down".into());
                }
            }
        };
        // Statements streamed to this connection stop now, not at their next row.
        queries.cancel_all();
        match exit {
            Exit::Close(code, reason) => {
                let _ = self.send(&mut writer, &mut out).await;
                // The closing handshake: send Close, then read until the client's Close (or a
                // second passes). Dropping the socket with unread data would reset the connection
                // and the client could lose the Close frame.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    if writer
                        .write_all(&[WireFrame::close(code, &reason)])
                        .await
                        .is_ok()
                    {
                        while let Some(Ok(m)) = stream.next().await {
                            if matches!(m, Message::Close(_)) {
                                break;
                            }
                        }
                    }
                })
                .await;
            }
            Exit::ClientClosed(code) => {
                // Echo the client's close (RFC 6455 5.5.1), then end the TCP stream.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let echo = WireFrame::close(code.unwrap_or(CLOSE_NORMAL), "");
                    if writer.write_all(&[echo]).await.is_ok() {
                        let _ = writer.shutdown().await;
                    }
                })
                .await;
            }
            Exit::Stuck => {
                tracing::info!(connection = %self.info().id, "dropping a client that stopped reading");
            }
        }
    }

    /// Ends subscriptions to topics the caller's current roles no longer allow.
    fn drop_forbidden(&self, subs: &mut Vec<Subscription>, out: &mut Vec<WireFrame>) {
        let forbidden: Vec<SubscriptionId> = subs
            .iter()
            .filter(
                |s| matches!(s.topic().meta.access, Access::Requires(p) if !self.identity.has(p)),
            )
            .map(Subscription::id)
            .collect();
        for id in forbidden {
            out.push(protocol::error(
                ErrorCode::ForbiddenTopic,
                format!("subscription {id} ended: your roles no longer allow its topic"),
            ));
            self.unsubscribe(id, subs, out);
        }
    }

    fn info(&self) -> &ConnectionInfo {
        &self.registration.info
    }

    fn count_received(&self) {
        self.info()
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Writes every pending frame and flushes once, counting them as messages sent; `false` if
    /// the client stopped reading for the slow-client timeout.
    async fn send(&self, writer: &mut Writer, out: &mut Vec<WireFrame>) -> bool {
        let sent = self.write(writer, out).await;
        if sent {
            self.info()
                .messages_sent
                .fetch_add(out.len() as u64, Ordering::Relaxed);
        }
        // Not kept: an idle connection holds no list (1,000 subscribers' lists were ~15 % of
        // what their subscriptions cost), and the allocation is small beside the write.
        *out = Vec::new();
        sent
    }

    /// Writes frames; `false` if the socket failed or accepted nothing for the slow-client
    /// timeout.
    async fn write(&self, writer: &mut Writer, frames: &[WireFrame]) -> bool {
        let mut write = std::pin::pin!(writer.write_all(frames));
        // Most writes complete at once; only one that waits for the client needs a timer.
        let written = match write.as_mut().now_or_never() {
            Some(result) => Ok(result),
            None => tokio::time::timeout(self.hub.config.slow_client_timeout, write).await,
        };
        matches!(written, Ok(Ok(())))
    }

    fn handle_text(
        &self,
        text: &str,
        wake: &Arc<Notify>,
        subs: &mut Vec<Subscription>,
        queries: &mut Queries,
        out: &mut Vec<WireFrame>,
    ) {
        match protocol::parse(text) {
            Err((code, message)) => out.push(protocol::error(code, message)),
            Ok(ClientMessage::Query(_) | ClientMessage::Cancel { .. }) if !self.streams_queries => {
                out.push(protocol::error(
                    ErrorCode::UnknownMessageType,
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
                epoch,
            }) => {
                let Some(resolved) = self.hub.bus.resolve(&topic).cloned() else {
                    out.push(protocol::error(
                        ErrorCode::UnknownTopic,
                        format!("no topic `{topic}`"),
                    ));
                    return;
                };
                // Counted in another epoch (an earlier run, for an in-memory topic): every
                // event held is new to the client.
                let last_sequence = match epoch {
                    Some(e) if e != resolved.epoch() => last_sequence.map(|_| 0),
                    _ => last_sequence,
                };
                if let Access::Requires(p) = resolved.meta.access
                    && !self.identity.has(p)
                {
                    out.push(protocol::error(
                        ErrorCode::ForbiddenTopic,
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
                        out.push(protocol::error(ErrorCode::InvalidFilter, e));
                        return;
                    }
                };
                if subs.len() >= self.hub.config.max_subscriptions {
                    out.push(protocol::error(
                        ErrorCode::TooManySubscriptions,
                        format!(
                            "at most {} subscriptions per connection",
                            self.hub.config.max_subscriptions
                        ),
                    ));
                    return;
                }
                self.subscribe(wake, subs, out, resolved, filter, last_sequence, None);
            }
            Ok(ClientMessage::Unsubscribe {
                subscription_id,
                topic,
            }) => {
                let ids: Vec<SubscriptionId> = match (subscription_id, topic) {
                    (Some(id), _) => SubscriptionId::parse(&id).into_iter().collect(),
                    (None, Some(topic)) => subs
                        .iter()
                        .filter(|s| {
                            s.topic().name() == topic
                                || s.topic().meta.message_types.contains(&topic.as_str())
                        })
                        .map(Subscription::id)
                        .collect(),
                    (None, None) => Vec::new(),
                };
                if ids.iter().all(|id| !subs.iter().any(|s| s.id() == *id)) {
                    out.push(protocol::error(
                        ErrorCode::NotSubscribed,
                        "no such subscription on this connection",
                    ));
                    return;
                }
                for id in ids {
                    self.unsubscribe(id, subs, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        wake: &Arc<Notify>,
        subs: &mut Vec<Subscription>,
        out: &mut Vec<WireFrame>,
        topic: Arc<Topic>,
        filter: Filter,
        last_sequence: Option<u64>,
        min_interval: Option<Duration>,
    ) {
        let id = SubscriptionId::random();
        let Subscribed { cursor, gap, head } = topic.subscribe(last_sequence, wake);
        let info = Arc::new(SubscriptionInfo {
            id,
            topic: topic.meta,
            filter,
            created_at: chrono::Utc::now(),
            delivered: Default::default(),
            dropped: Default::default(),
            taken: AtomicU64::new(cursor.last()),
        });
        self.info().add_subscription(Arc::clone(&info));
        out.push(protocol::frame(
            "subscription_ack",
            &types::SubscriptionAck {
                topic: topic.name().to_string(),
                subscription_id: id.to_string(),
                subscribed: true,
                last_sequence: head,
                epoch: topic.epoch().to_string(),
            },
        ));
        let mut sub = Subscription {
            cursor,
            sampling: min_interval.map(|min_interval| {
                Box::new(Sampling {
                    min_interval,
                    last_delivered_at: None,
                })
            }),
            pressure: Pressure::default(),
            info,
        };
        if let Some(gap) = gap {
            out.push(gap_frame(topic.name(), gap));
            sub.info.dropped.fetch_add(gap.missed(), Ordering::Relaxed);
        }
        // The replay: every held event after `last_sequence`, right after the acknowledgement;
        // what is read from the change log comes in batches, like any backlog.
        sub.take(usize::MAX, out);
        if sub.cursor.pending() > 0 {
            wake.notify_one();
        }
        // Grown one at a time: most connections hold one or two subscriptions.
        subs.reserve_exact(1);
        subs.push(sub);
    }

    fn unsubscribe(
        &self,
        id: SubscriptionId,
        subs: &mut Vec<Subscription>,
        out: &mut Vec<WireFrame>,
    ) {
        self.info().remove_subscription(id);
        if let Some(i) = subs.iter().position(|s| s.id() == id) {
            let sub = subs.remove(i);
            out.push(protocol::frame(
                "subscription_ack",
                &types::SubscriptionAck {
                    topic: sub.topic().name().to_string(),
                    subscription_id: id.to_string(),
                    subscribed: false,
                    last_sequence: sub.topic().head(),
                    epoch: sub.topic().epoch().to_string(),
                },
            ));
        }
    }

    /// Warns at 80 % of a subscription's queue and gives up on a client whose queue stays full.
    fn check_backpressure(
        &self,
        subs: &mut [Subscription],
        out: &mut Vec<WireFrame>,
    ) -> Option<Exit> {
        let limit = self.hub.config.slow_client_timeout;
        for sub in subs.iter_mut() {
            let capacity = sub.topic().capacity() as u64;
            let depth = sub.cursor.pending();
            // A durable topic's subscriber that is a ring behind reads on from the change log
            // and loses nothing: its queue counts as full only once it overran the log too
            // (see `take`), so a reader catching up on a large transaction is not closed.
            let overflowing = depth >= capacity && !sub.topic().durable();
            let verdict = sub.pressure.observe(depth, capacity, overflowing, limit);
            if verdict.warn {
                out.insert(0, warning_frame(sub, depth.min(capacity)));
            }
            if verdict.too_slow {
                return Some(Exit::Close(
                    CLOSE_TOO_SLOW,
                    format!(
                        "queue of `{}` full for {} s",
                        sub.topic().name(),
                        limit.as_secs()
                    ),
                ));
            }
        }
        None
    }
}

impl Subscription {
    /// Takes up to `max` events from the topic and queues those that pass the filter and the
    /// sampling interval. Events overwritten before this subscriber read them are dropped, counted
    /// and reported as a gap (after a warning), ahead of the events that follow them.
    fn take(&mut self, max: usize, out: &mut Vec<WireFrame>) {
        let mark = out.len();
        let mut delivered = 0;
        let filter = &self.info.filter;
        let sampling = &mut self.sampling;
        let taken = self.cursor.read(max, |event| {
            if !filter.is_empty() && !filter.matches(&event.data) {
                return;
            }
            if let Some(sampling) = sampling {
                let now = Instant::now();
                // A little slack so a 1 s producer is not skipped by timer jitter.
                if sampling.last_delivered_at.is_some_and(|t| {
                    now.duration_since(t) + Duration::from_millis(100) < sampling.min_interval
                }) {
                    return;
                }
                sampling.last_delivered_at = Some(now);
            }
            delivered += 1;
            out.push(event.frame.clone());
        });
        if delivered > 0 {
            self.info.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
        if let Some(gap) = taken.lost {
            self.info.dropped.fetch_add(gap.missed(), Ordering::Relaxed);
            let mut notices = Vec::with_capacity(2);
            if self.pressure.overflowed() {
                notices.push(warning_frame(self, self.topic().capacity() as u64));
            }
            notices.push(gap_frame(self.topic().name(), gap));
            out.splice(mark..mark, notices);
        }
        // Last, after the counters: taken = delivered + filtered + dropped, for the management
        // routes' figures.
        self.info.taken.store(self.cursor.last(), Ordering::Relaxed);
    }
}

fn warning_frame(sub: &Subscription, depth: u64) -> WireFrame {
    protocol::frame(
        "backpressure_warning",
        &types::BackpressureWarning {
            topic: sub.topic().name().to_string(),
            subscription_id: sub.id().to_string(),
            queue_depth: depth,
            capacity: sub.topic().capacity() as u64,
        },
    )
}

fn gap_frame(topic: &str, gap: Gap) -> WireFrame {
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
