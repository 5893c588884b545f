//! GraphQL over WebSocket on `GET /graphql`: the `graphql-transport-ws` protocol (the graphql-ws
//! library's) and the legacy `graphql-ws` one (subscriptions-transport-ws).
//!
//! Flow: `connection_init` (credentials in `payload.authorization`: `Bearer <jwt>` or an API key;
//! without it, the upgrade request's own credentials) -> `connection_ack`; then `subscribe`
//! (legacy `start`) runs an operation whose results come as `next` (legacy `data`) and end with
//! `complete`; the client ends one with `complete` (legacy `stop`). Close codes, as the graphql-ws
//! library uses them: 4400 bad message, 4401 subscribe before ack, 4403 credentials refused or
//! expired, 4408 no `connection_init` in time, 4409 duplicate operation id, 4429 second
//! `connection_init`. The connection is closed with 4403 when its token or API key expires or is
//! revoked (checked every minute), which ends every subscription on it, and with 4008 when a
//! subscription's queue stays full for the slow-client timeout (the seed's backpressure, as on
//! /api/v1/ws).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::{HeaderMap, HeaderValue};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::GraphQl;
use crate::api::event_source::EVENTS_LOST_CODE;
use crate::api::graphql_runtime::{Caller, Queues};
use crate::api::runtime::{Identity, Principal};
use crate::events::Pressure;
use crate::events::connections::CLOSE_TOO_SLOW;
use crate::sync::lock;

/// The two subprotocols, newest first.
pub const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

/// How often the credentials of an open connection are checked again (revocation).
const REVALIDATE: Duration = Duration::from_secs(60);

/// How often the subscriptions' queues are measured for the backpressure rules.
const WATCH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`.
    Modern,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    pub fn from_header(selected: Option<&HeaderValue>) -> Protocol {
        match selected.and_then(|v| v.to_str().ok()) {
            Some("graphql-ws") => Protocol::Legacy,
            _ => Protocol::Modern,
        }
    }
    fn names(self) -> Names {
        match self {
            Protocol::Modern => Names {
                subscribe: "subscribe",
                next: "next",
                stop: "complete",
            },
            Protocol::Legacy => Names {
                subscribe: "start",
                next: "data",
                stop: "stop",
            },
        }
    }
}

struct Names {
    subscribe: &'static str,
    next: &'static str,
    stop: &'static str,
}

/// What operation tasks tell the connection.
enum Out {
    Send(String),
    Finished(String),
}

struct Close(u16, String);

fn close(code: u16, reason: impl Into<String>) -> Close {
    Close(code, reason.into())
}

/// Counts an open socket for as long as it is held, however `serve` ends.
struct OpenSocket(Arc<GraphQl>);

impl OpenSocket {
    fn count(gql: &Arc<GraphQl>) -> OpenSocket {
        gql.backends
            .process
            .stats
            .graphql_sockets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenSocket(Arc::clone(gql))
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0
            .backends
            .process
            .stats
            .graphql_sockets
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves one upgraded connection until it closes.
pub async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    gql: Arc<GraphQl>,
    upgrade_principal: Principal,
    client_ip: Option<std::net::IpAddr>,
) {
    let _open = OpenSocket::count(&gql);
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(256);
    let mut conn = Connection {
        gql: Arc::clone(&gql),
        protocol,
        names: protocol.names(),
        caller: None,
        init_seen: false,
        operations: HashMap::new(),
        tx,
        upgrade_principal,
        client_ip,
    };
    let init_deadline = Instant::now() + gql.config().connection_init_timeout;
    let mut revalidate = tokio::time::interval_at(Instant::now() + REVALIDATE, REVALIDATE);
    let every = gql.config().legacy_keep_alive;
    let mut keep_alive = tokio::time::interval_at(Instant::now() + every, every);
    // How often the subscriptions' queues are measured (backpressure).
    let mut watch = tokio::time::interval(WATCH);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = gql.backends.process.shutdown.clone();
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let outcome: Close = 'serve: loop {
        let expiry = conn
            .caller
            .as_ref()
            .map_or(far, |c| expires(&c.identity).unwrap_or(far));
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => match conn.handle(text.as_str()).await {
                    Ok(replies) => {
                        for r in replies {
                            match deliver(&mut sink, r, expiry, &mut conn, &mut watch).await {
                                Delivery::Sent => {}
                                Delivery::Gone | Delivery::Stuck => {
                                    conn.abort_all();
                                    return;
                                }
                                Delivery::Expired => break 'serve expired(),
                                Delivery::TooSlow(close) => break 'serve close,
                            }
                        }
                    }
                    Err(c) => break c,
                },
                Some(Ok(Message::Binary(_))) => break close(4400, "Binary messages are not supported"),
                Some(Ok(Message::Close(_))) => {
                    conn.abort_all();
                    // The library queued the echo of the client's close (RFC 6455 5.5.1); closing
                    // the sink flushes it, so the client sees its own code rather than 1006.
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                    return;
                }
                None | Some(Err(_)) => {
                    conn.abort_all();
                    return;
                }
                Some(Ok(_)) => {}
            },
            Some(out) = rx.recv() => match out {
                Out::Send(text) => match deliver(&mut sink, text, expiry, &mut conn, &mut watch).await {
                    Delivery::Sent => {}
                    Delivery::Gone | Delivery::Stuck => {
                        conn.abort_all();
                        return;
                    }
                    Delivery::Expired => break 'serve expired(),
                    Delivery::TooSlow(close) => break 'serve close,
                },
                Out::Finished(id) => { conn.operations.remove(&id); }
            },
            () = tokio::time::sleep_until(init_deadline), if conn.caller.is_none() && !conn.init_seen => {
                break close(4408, "Connection initialisation timeout");
            }
            () = tokio::time::sleep_until(expiry), if conn.caller.is_some() => {
                break expired();
            }
            _ = revalidate.tick(), if conn.caller.is_some() => {
                if let Some(caller) = &conn.caller {
                    match gql.backends.auth.revalidate(&caller.identity).await {
                        Ok(identity) => conn.caller = Some(Caller { identity: Arc::new(identity), client_ip, queues: Default::default() }),
                        Err(reason) => break close(4403, format!("Forbidden: {reason}")),
                    }
                }
            }
            // The legacy client counts a connection dead after 30 s without `ka`, whatever
            // else it receives, and reconnects (losing events in the gap).
            _ = keep_alive.tick(), if protocol == Protocol::Legacy && conn.caller.is_some() => {
                match deliver(&mut sink, r#"{"type":"ka"}"#.into(), expiry, &mut conn, &mut watch).await {
                    Delivery::Sent => {}
                    Delivery::Gone | Delivery::Stuck => {
                        conn.abort_all();
                        return;
                    }
                    Delivery::Expired => break 'serve expired(),
                    Delivery::TooSlow(close) => break 'serve close,
                }
            }
            _ = watch.tick(), if !conn.operations.is_empty() => {
                if let Some(close) = conn.check_queues() {
                    break close;
                }
            }
            _ = shutdown.changed() => break close(1001, "server shutting down"),
        }
    };
    conn.abort_all();
    let frame = CloseFrame {
        code: outcome.0,
        reason: outcome.1.into(),
    };
    // Bounded: a client that stopped reading must not hold the connection open.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

fn expired() -> Close {
    close(4403, "Forbidden: credentials expired")
}

enum Delivery {
    Sent,
    /// The socket failed: the client is gone.
    Gone,
    /// The credentials expired while the write waited for a client that does not read.
    Expired,
    /// A subscription's queue stayed full for the slow-client timeout meanwhile.
    TooSlow(Close),
    /// The socket took nothing for the slow-client timeout: a close frame could not get
    /// through either, so the connection is dropped (as /api/v1/ws does).
    Stuck,
}

/// Sends one message, waiting for a client that reads slowly but not past the credentials'
/// expiry: otherwise a client that stops reading keeps its subscriptions, and the data they
/// carry, long after its token is invalid. The queues are watched meanwhile: the write that
/// waits is exactly when they fill.
async fn deliver(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    text: String,
    expiry: Instant,
    conn: &mut Connection,
    watch: &mut tokio::time::Interval,
) -> Delivery {
    let mut send = std::pin::pin!(sink.send(Message::text(text)));
    if let Some(sent) = send.as_mut().now_or_never() {
        return if sent.is_ok() {
            Delivery::Sent
        } else {
            Delivery::Gone
        };
    }
    let stuck = Instant::now() + conn.gql.backends.slow_client_timeout;
    loop {
        tokio::select! {
            sent = &mut send => return match sent {
                Ok(()) => Delivery::Sent,
                Err(_) => Delivery::Gone,
            },
            () = tokio::time::sleep_until(expiry) => return Delivery::Expired,
            () = tokio::time::sleep_until(stuck), if stuck < expiry => return Delivery::Stuck,
            _ = watch.tick() => {
                if let Some(close) = conn.check_queues() {
                    return Delivery::TooSlow(close);
                }
            }
        }
    }
}

/// When the connection's credential stops being valid.
fn expires(identity: &Identity) -> Option<Instant> {
    let at = crate::auth::accepted_until(&identity.credential)?;
    let left = at - chrono::Utc::now().timestamp();
    Some(Instant::now() + Duration::from_secs(left.max(0) as u64))
}

struct Connection {
    gql: Arc<GraphQl>,
    protocol: Protocol,
    names: Names,
    caller: Option<Caller>,
    init_seen: bool,
    operations: HashMap<String, Operation>,
    tx: mpsc::Sender<Out>,
    upgrade_principal: Principal,
    client_ip: Option<std::net::IpAddr>,
}

/// A running operation: its task, and the queues of its subscriptions.
struct Operation {
    task: AbortHandle,
    queues: Arc<Queues>,
    pressure: Pressure,
    /// A backpressure warning for the operation's next message (`extensions`).
    warning: Arc<Mutex<Option<Value>>>,
}

impl Connection {
    fn abort_all(&mut self) {
        for (_, op) in self.operations.drain() {
            op.task.abort();
        }
    }

    /// The seed's rules on every operation's fullest queue: a warning at 80 %, riding on the
    /// operation's next message; the connection closed with 4008 once a queue has stayed full
    /// for the slow-client timeout. A queue that overflows a topic without a change log is
    /// full (its oldest events are being dropped); one on a durable topic reads on from the log.
    fn check_queues(&mut self) -> Option<Close> {
        let limit = self.gql.backends.slow_client_timeout;
        for op in self.operations.values_mut() {
            let Some(fill) = op.queues.fullest() else {
                continue;
            };
            let overflowing = !fill.lossless && fill.depth >= fill.capacity;
            let verdict = op
                .pressure
                .observe(fill.depth, fill.capacity, overflowing, limit);
            if verdict.warn {
                *lock(&op.warning) = Some(json!({
                    "topic": fill.topic,
                    "queue_depth": fill.depth.min(fill.capacity),
                    "capacity": fill.capacity,
                }));
            }
            if verdict.too_slow {
                return Some(close(
                    CLOSE_TOO_SLOW,
                    format!("queue of `{}` full for {} s", fill.topic, limit.as_secs()),
                ));
            }
        }
        None
    }

    /// One client message: the replies to send, or why the connection closes.
    async fn handle(&mut self, text: &str) -> Result<Vec<String>, Close> {
        let msg: Value =
            serde_json::from_str(text).map_err(|_| close(4400, "Invalid message received"))?;
        let kind = msg
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| close(4400, "Invalid message received: no `type`"))?;
        match kind {
            "connection_init" => self.init(msg.get("payload")).await,
            "ping" if self.protocol == Protocol::Modern => {
                let mut pong = json!({"type": "pong"});
                if let Some(p) = msg.get("payload") {
                    pong["payload"] = p.clone();
                }
                Ok(vec![pong.to_string()])
            }
            "pong" if self.protocol == Protocol::Modern => Ok(vec![]),
            "connection_terminate" if self.protocol == Protocol::Legacy => {
                Err(close(1000, "Normal Closure"))
            }
            k if k == self.names.subscribe => self.subscribe(&msg),
            k if k == self.names.stop => {
                if let Some(op) = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| self.operations.remove(id))
                {
                    op.task.abort();
                }
                Ok(vec![])
            }
            other => Err(close(4400, format!("Invalid message type `{other}`"))),
        }
    }

    async fn init(&mut self, payload: Option<&Value>) -> Result<Vec<String>, Close> {
        if self.init_seen {
            return Err(close(4429, "Too many initialisation requests"));
        }
        self.init_seen = true;
        if payload.is_some_and(|p| !p.is_null() && !p.is_object()) {
            return Err(close(
                4400,
                "Invalid message received: payload is not an object",
            ));
        }
        let authorization = payload
            .and_then(|p| p.get("authorization").or_else(|| p.get("Authorization")))
            .and_then(Value::as_str);
        let principal = match authorization {
            Some(value) => {
                // The same resolver as HTTP requests: a bearer token, otherwise an API key.
                let mut headers = HeaderMap::new();
                let (name, v) = match value.strip_prefix("Bearer ") {
                    Some(_) => ("authorization", value),
                    None => ("x-api-key", value),
                };
                match HeaderValue::from_str(v) {
                    Ok(v) => {
                        headers.insert(name, v);
                        self.gql.backends.auth.authenticate(&headers).await
                    }
                    Err(_) => Principal::Rejected("malformed credentials".into()),
                }
            }
            None => self.upgrade_principal.clone(),
        };
        match principal {
            Principal::User(identity) => {
                if expires(&identity).is_some_and(|at| at <= Instant::now()) {
                    return Err(close(4403, "Forbidden: credentials expired"));
                }
                self.caller = Some(Caller {
                    identity,
                    client_ip: self.client_ip,
                    queues: Default::default(),
                });
                let mut replies = vec![json!({"type": "connection_ack", "payload": {}}).to_string()];
                if self.protocol == Protocol::Legacy {
                    replies.push(json!({"type": "ka"}).to_string());
                }
                Ok(replies)
            }
            Principal::Rejected(reason) => Err(self.refuse(format!("Forbidden: {reason}"))),
            Principal::Anonymous => Err(self.refuse(
                "Forbidden: connection_init needs `payload.authorization` (`Bearer <jwt>` or an API key)",
            )),
        }
    }

    fn refuse(&self, reason: impl Into<String>) -> Close {
        close(4403, reason)
    }

    fn subscribe(&mut self, msg: &Value) -> Result<Vec<String>, Close> {
        let Some(caller) = self.caller.clone() else {
            return Err(close(4401, "Unauthorized"));
        };
        let id = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| close(4400, "Invalid message received: no `id`"))?
            .to_string();
        let request: async_graphql::Request = msg
            .get("payload")
            .cloned()
            .and_then(|p| serde_json::from_value(p).ok())
            .ok_or_else(|| close(4400, "Invalid message received: bad `payload`"))?;
        if self.operations.contains_key(&id) {
            return Err(close(4409, format!("Subscriber for {id} already exists")));
        }
        let cap = self.gql.config().max_subscriptions;
        if self.operations.len() >= cap {
            let errors = json!([{
                "message": format!("this connection already runs {cap} operations (the limit)"),
                "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
            }]);
            return Ok(vec![self.error_message(&id, errors)]);
        }
        let queues = Arc::new(Queues::default());
        let caller = Caller {
            queues: Arc::clone(&queues),
            ..caller
        };
        let request = async_graphql::dynamic::DynamicRequest::from(request.data(caller));
        let mut responses = self.gql.schema.execute_stream(request);
        let warning = Arc::new(Mutex::new(None));
        let frames = Frames {
            id: id.clone(),
            next: self.names.next,
            legacy: self.protocol == Protocol::Legacy,
            warning: Arc::clone(&warning),
        };
        // One poll here, before the connection reads its next message: the operation's start
        // (validation, the permission check, subscribing to its source) is done, or its refusal
        // queued, before the reply to anything the client sends after `subscribe`. Clients rely
        // on that order: a `pong` to a ping sent after `subscribe` means the subscription is live.
        let mut out = Vec::new();
        let mut first = true;
        match responses.next().now_or_never() {
            None => {}
            Some(None) => return Ok(vec![frames.complete()]),
            Some(Some(response)) => {
                let (text, refused) = frames.response(response, true);
                out.push(text);
                if refused {
                    return Ok(out);
                }
                first = false;
            }
        }
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            while let Some(response) = responses.next().await {
                let (text, refused) = frames.response(response, first);
                first = false;
                if tx.send(Out::Send(text)).await.is_err() {
                    return;
                }
                if refused {
                    let _ = tx.send(Out::Finished(frames.id)).await;
                    return;
                }
            }
            let _ = tx.send(Out::Send(frames.complete())).await;
            let _ = tx.send(Out::Finished(frames.id)).await;
        });
        self.operations.insert(
            id,
            Operation {
                task: task.abort_handle(),
                queues,
                pressure: Pressure::default(),
                warning,
            },
        );
        Ok(out)
    }

    /// An `error` message: the errors list (legacy: the first error).
    fn error_message(&self, id: &str, errors: Value) -> String {
        let payload = match self.protocol {
            Protocol::Modern => errors,
            Protocol::Legacy => errors.get(0).cloned().unwrap_or_default(),
        };
        json!({"id": id, "type": "error", "payload": payload}).to_string()
    }
}

/// The messages of one operation.
struct Frames {
    id: String,
    next: &'static str,
    legacy: bool,
    warning: Arc<Mutex<Option<Value>>>,
}

impl Frames {
    /// The message for one response, and whether it refused the operation: errors before
    /// execution (validation, permission, arguments) end it with an `error` message, as the
    /// protocol says; later ones travel in `next`. A loss notice is an item of the stream
    /// even when it comes first (the subscriber resumed from before what the log keeps).
    fn response(&self, response: async_graphql::Response, first: bool) -> (String, bool) {
        let lost = response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from(EVENTS_LOST_CODE))
        });
        let refused = first
            && !lost
            && !response.errors.is_empty()
            && response.data == async_graphql::Value::Null;
        let text = if refused {
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            let payload = if self.legacy {
                errors.get(0).cloned().unwrap_or_default()
            } else {
                errors
            };
            json!({"id": self.id, "type": "error", "payload": payload}).to_string()
        } else {
            let mut payload = serde_json::to_value(&response).unwrap_or_default();
            if let Some(warning) = lock(&self.warning).take() {
                payload["extensions"]["backpressure_warning"] = warning;
            }
            json!({"id": self.id, "type": self.next, "payload": payload}).to_string()
        };
        (text, refused)
    }

    fn complete(&self) -> String {
        json!({"id": self.id, "type": "complete"}).to_string()
    }
}
