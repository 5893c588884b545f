//! The event stream on `/api/v1/ws`. It remembers its subscriptions and the last sequence seen
//! per topic; when the connection drops it reconnects with backoff (refreshing the token first
//! after a `4001`), resubscribes with `last_sequence` so the server replays what was missed (or
//! sends a `gap`), and drops replayed events it had already delivered. It stops after `4009`
//! (closed by an administrator) or [`EventStream::close`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::error::Error;
use crate::events::{Event, Message, SubscriptionAck};
use crate::session::Session;
use crate::socket::{self, Socket};

/// Reconnect attempts after a drop before giving up; the delay doubles from 100 ms.
const RECONNECT_ATTEMPTS: u32 = 6;

#[derive(Clone, Debug)]
struct Subscription {
    topic: String,
    filter: Option<Value>,
}

pub struct EventStream {
    session: Session,
    socket: Option<Socket>,
    /// The access token the socket was opened with (renewed after a 4001 close).
    token: Option<String>,
    subscriptions: Vec<Subscription>,
    /// Last sequence delivered per topic (as named in the events' `topic` field).
    last_sequence: HashMap<String, u64>,
    /// The server run each topic's sequence was counted in (sequences restart with the server).
    epoch: HashMap<String, String>,
    /// Frames read while waiting for a reply, delivered by [`EventStream::next`] first.
    pending: VecDeque<Message>,
    closed: bool,
}

impl EventStream {
    pub(crate) fn new(session: Session) -> Self {
        Self {
            session,
            socket: None,
            token: None,
            subscriptions: Vec::new(),
            last_sequence: HashMap::new(),
            epoch: HashMap::new(),
            pending: VecDeque::new(),
            closed: false,
        }
    }

    /// Opens the connection (done by `subscribe` and `next` as well when needed).
    pub async fn connect(&mut self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let (socket, token) = socket::open(&self.session, "/api/v1/ws", None).await?;
        self.socket = Some(socket);
        self.token = Some(token);
        Ok(())
    }

    /// Subscribes to `topic` (optionally with a filter object) and remembers it for reconnects.
    /// A refusal is [`Error::Subscription`] with the protocol's code (`FORBIDDEN_TOPIC`, ...).
    pub async fn subscribe(
        &mut self,
        topic: &str,
        filter: Option<Value>,
    ) -> Result<SubscriptionAck, Error> {
        if self.socket.is_none() {
            self.connect().await?;
        }
        let subscription = Subscription {
            topic: topic.to_owned(),
            filter,
        };
        let ack = self.send_subscribe(&subscription, None, None).await?;
        // Resume from here: events published before the subscription were never ours.
        self.last_sequence
            .entry(ack.topic.clone())
            .or_insert(ack.last_sequence);
        self.epoch
            .entry(ack.topic.clone())
            .or_insert_with(|| ack.epoch.clone());
        self.subscriptions.push(subscription);
        Ok(ack)
    }

    /// The next message: events, gaps, and protocol messages not consumed by `subscribe`.
    /// Reconnects and resumes transparently when the connection drops.
    pub async fn next(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                if self.is_duplicate(&message) {
                    continue;
                }
                return Ok(message);
            }
            if self.closed {
                return Err(Error::Closed);
            }
            match self.read_frame().await {
                Ok(message) => self.pending.push_back(message),
                Err(Interruption::Final) => {
                    self.closed = true;
                    return Err(Error::Closed);
                }
                Err(Interruption::Expired) => {
                    // The socket's token was refused: renew it (unless done meanwhile).
                    let token = self.token.take().unwrap_or_default();
                    self.session.recover(&token).await?;
                    self.resume().await?;
                }
                Err(Interruption::Lost) => self.resume().await?,
            }
        }
    }

    /// Drops the connection without forgetting the subscriptions: the next [`EventStream::next`]
    /// reconnects and resumes, as after a network failure.
    pub async fn disconnect(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
    }

    /// Closes the stream for good.
    pub async fn close(&mut self) {
        self.disconnect().await;
        self.closed = true;
    }

    /// Filters out a replayed event delivered before the drop, and records the sequence.
    fn is_duplicate(&mut self, message: &Message) -> bool {
        let (Some(topic), Some(sequence)) = (&message.topic, message.sequence) else {
            return false;
        };
        let last = self.last_sequence.entry(topic.clone()).or_insert(0);
        if sequence <= *last {
            return true;
        }
        *last = sequence;
        false
    }

    async fn resume(&mut self) -> Result<(), Error> {
        let mut delay = Duration::from_millis(100);
        let mut last_error = Error::Closed;
        for _ in 0..RECONNECT_ATTEMPTS {
            match self.reconnect_once().await {
                Ok(()) => return Ok(()),
                Err(e @ (Error::Subscription { .. } | Error::NotLoggedIn)) => return Err(e),
                Err(Error::Api(e)) if e.is_unauthorized() || e.is_forbidden() => {
                    return Err(Error::Api(e));
                }
                Err(e) => last_error = e,
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(last_error)
    }

    async fn reconnect_once(&mut self) -> Result<(), Error> {
        self.socket = None;
        self.connect().await?;
        for subscription in self.subscriptions.clone() {
            let last = self.last_sequence.get(&subscription.topic).copied();
            let known = self.epoch.get(&subscription.topic).cloned();
            let ack = self
                .send_subscribe(&subscription, last, known.as_deref())
                .await?;
            // Another epoch, or a newest sequence below ours: the server restarted and numbering
            // began again, and it replays every event it holds, so none of them is a duplicate.
            let restarted = known.as_ref().is_some_and(|e| *e != ack.epoch)
                || last.is_some_and(|last| ack.last_sequence < last);
            if restarted {
                self.last_sequence.insert(ack.topic.clone(), 0);
            }
            self.epoch.insert(ack.topic, ack.epoch);
        }
        Ok(())
    }

    async fn send_subscribe(
        &mut self,
        subscription: &Subscription,
        last_sequence: Option<u64>,
        epoch: Option<&str>,
    ) -> Result<SubscriptionAck, Error> {
        let mut data = json!({ "topic": subscription.topic });
        if let Some(filter) = &subscription.filter {
            data["filter"] = filter.clone();
        }
        if let Some(last) = last_sequence {
            data["last_sequence"] = json!(last);
            if let Some(epoch) = epoch {
                data["epoch"] = json!(epoch);
            }
        }
        let frame = json!({ "message_type": "subscribe", "data": data }).to_string();
        let socket = self.socket.as_mut().ok_or(Error::Closed)?;
        socket
            .send(Frame::text(frame))
            .await
            .map_err(|e| Error::WebSocket(e.to_string()))?;
        // Replies come in request order; events read meanwhile are kept for `next`.
        loop {
            let message = self
                .read_frame()
                .await
                .map_err(|_| Error::WebSocket("connection lost while subscribing".into()))?;
            match &message.event {
                Some(Event::SubscriptionAck(ack)) if ack.subscribed => return Ok(ack.clone()),
                Some(Event::Error(e)) => {
                    return Err(Error::Subscription {
                        code: e.code.to_string(),
                        message: e.message.clone(),
                    });
                }
                _ => self.pending.push_back(message),
            }
        }
    }

    async fn read_frame(&mut self) -> Result<Message, Interruption> {
        let socket = self.socket.as_mut().ok_or(Interruption::Lost)?;
        loop {
            let frame = match socket.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(_)) | None => {
                    self.socket = None;
                    return Err(Interruption::Lost);
                }
            };
            match frame {
                Frame::Text(text) => {
                    if let Some(message) = Message::parse(text.as_str()) {
                        return Ok(message);
                    }
                }
                Frame::Close(reason) => {
                    self.socket = None;
                    return Err(match reason.map(|r| r.code) {
                        Some(CloseCode::Library(4009)) => Interruption::Final,
                        Some(CloseCode::Library(4001)) => Interruption::Expired,
                        _ => Interruption::Lost,
                    });
                }
                _ => {}
            }
        }
    }
}

/// Why a read ended without a message.
enum Interruption {
    /// Network failure or a close that allows a reconnect.
    Lost,
    /// 4001: credentials expired or revoked; refresh before reconnecting.
    Expired,
    /// 4009: closed by an administrator.
    Final,
}
