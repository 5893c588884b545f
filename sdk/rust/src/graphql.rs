//! GraphQL subscriptions over WebSocket on `/graphql`, protocol `graphql-transport-ws` (the
//! graphql-ws library's; docs/graphql.md).
//!
//! [`GraphQlClient::connect`] opens the socket, sends `connection_init` with
//! `payload.authorization: "Bearer <access token>"` and waits for `connection_ack`. A task owns
//! the socket from then on: it sends `subscribe` (ids `1`, `2`, ...), routes each `next`,
//! `error` and `complete` to its [`Subscription`], answers the server's `ping` with `pong`, and
//! sends `complete` when a [`Subscription`] is dropped.
//!
//! Errors are the crate's [`Error`]: a subscription refused for its permission
//! (`extensions.code: FORBIDDEN`) is `Error::Api` with status 403, credentials refused or expired
//! (close 4403) are `Error::Api` with status 401, other GraphQL errors are `Error::GraphQl`.
//! The server sends nothing missed while disconnected, so there is no resume: after a 4403 for an
//! expired token, open a new client (it takes the session's renewed token) and subscribe again.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::error::{ApiError, Error};
use crate::session::Session;
use crate::socket::{self, Socket};

const SUBPROTOCOL: &str = "graphql-transport-ws";

/// How long `connect` waits for `connection_ack`.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One GraphQL WebSocket connection; cheap to share by reference, closed when dropped.
pub struct GraphQlClient {
    commands: mpsc::UnboundedSender<Command>,
    next_id: std::sync::atomic::AtomicU64,
}

enum Command {
    Subscribe {
        id: String,
        payload: Value,
        results: mpsc::UnboundedSender<Result<Value, Error>>,
    },
    Complete {
        id: String,
    },
    Ping {
        pong: oneshot::Sender<()>,
    },
}

impl GraphQlClient {
    pub(crate) async fn connect(session: &Session) -> Result<Self, Error> {
        let (mut socket, token) = socket::open(session, "/graphql", Some(SUBPROTOCOL)).await?;
        let init = json!({
            "type": "connection_init",
            "payload": {"authorization": format!("Bearer {token}")},
        });
        send(&mut socket, &init).await?;
        tokio::time::timeout(ACK_TIMEOUT, wait_for_ack(&mut socket))
            .await
            .map_err(|_| Error::WebSocket("no connection_ack within 30 s".into()))??;
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, receiver));
        Ok(Self {
            commands,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Starts an operation (`subscription { ... }`) with its variables (`Value::Null` for none).
    /// Each result's `data` arrives deserialized as `T` (use `serde_json::Value` to keep it raw).
    pub fn subscribe<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<Subscription<T>, Error> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let mut payload = json!({ "query": query });
        if !variables.is_null() {
            payload["variables"] = variables;
        }
        let (results, receiver) = mpsc::unbounded_channel();
        self.commands
            .send(Command::Subscribe {
                id: id.clone(),
                payload,
                results,
            })
            .map_err(|_| Error::Closed)?;
        Ok(Subscription {
            id,
            results: receiver,
            commands: self.commands.clone(),
            ended: false,
            _data: PhantomData,
        })
    }

    /// Sends `ping` and waits for the server's `pong`.
    pub async fn ping(&self) -> Result<(), Error> {
        let (pong, answer) = oneshot::channel();
        self.commands
            .send(Command::Ping { pong })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)
    }
}

/// The results of one operation, a [`Stream`] of `data` payloads. It ends after the server's
/// `complete`, or with one error (refused operation, closed connection). Dropping it sends
/// `complete` to the server.
pub struct Subscription<T> {
    id: String,
    results: mpsc::UnboundedReceiver<Result<Value, Error>>,
    commands: mpsc::UnboundedSender<Command>,
    ended: bool,
    _data: PhantomData<fn() -> T>,
}

impl<T> Subscription<T> {
    /// The operation id sent in `subscribe`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.results.poll_recv(cx);
        Poll::Ready(match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                None
            }
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Some(Err(e))
            }
            Poll::Ready(Some(Ok(payload))) => Some(decode(payload)),
        })
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if !self.ended {
            let id = std::mem::take(&mut self.id);
            let _ = self.commands.send(Command::Complete { id });
        }
    }
}

/// A `next` payload (an execution result): its `data` as `T`, or its `errors`.
fn decode<T: DeserializeOwned>(mut payload: Value) -> Result<T, Error> {
    if let Some(errors) = payload.get("errors").filter(|e| !e.is_null()) {
        return Err(graphql_error(errors.clone()));
    }
    serde_json::from_value(payload["data"].take()).map_err(|e| {
        Error::WebSocket(format!(
            "a `next` payload that is not the expected type: {e}"
        ))
    })
}

/// A list of GraphQL errors as the crate's error: `FORBIDDEN` is the REST 403.
fn graphql_error(errors: Value) -> Error {
    let first = errors.get(0).unwrap_or(&errors);
    let message = first["message"]
        .as_str()
        .unwrap_or("GraphQL error")
        .to_owned();
    let code = first
        .pointer("/extensions/code")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if code.as_deref() == Some("FORBIDDEN") {
        return Error::Api(Box::new(ApiError {
            status: 403,
            code: "FORBIDDEN".into(),
            message,
            details: Some(errors),
            retry_after: None,
        }));
    }
    Error::GraphQl {
        code,
        message,
        errors,
    }
}

/// How a close frame ends the connection's operations: 4403 is a refused or expired login.
fn close_error(frame: Option<&CloseFrame>) -> Error {
    let (code, reason) = frame.map_or((1005, String::new()), |f| {
        (u16::from(f.code), f.reason.to_string())
    });
    if code == 4403 {
        return Error::Api(Box::new(ApiError {
            status: 401,
            code: "UNAUTHORIZED".into(),
            message: reason,
            details: None,
            retry_after: None,
        }));
    }
    Error::WebSocket(format!("connection closed ({code} {reason})"))
}

async fn send(socket: &mut Socket, message: &Value) -> Result<(), Error> {
    socket
        .send(Frame::text(message.to_string()))
        .await
        .map_err(|e| Error::WebSocket(e.to_string()))
}

async fn wait_for_ack(socket: &mut Socket) -> Result<(), Error> {
    loop {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                match message["type"].as_str() {
                    Some("connection_ack") => return Ok(()),
                    Some("ping") => send(socket, &json!({"type": "pong"})).await?,
                    _ => {}
                }
            }
            Some(Ok(Frame::Close(frame))) => return Err(close_error(frame.as_ref())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Error::WebSocket(e.to_string())),
            None => return Err(close_error(None)),
        }
    }
}

/// The connection task: runs until the socket closes or the [`GraphQlClient`] is dropped.
async fn run(mut socket: Socket, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut operations: HashMap<String, mpsc::UnboundedSender<Result<Value, Error>>> =
        HashMap::new();
    let mut pongs: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let ending = loop {
        tokio::select! {
            command = commands.recv() => {
                let sent = match command {
                    None => {
                        let _ = socket.close(None).await;
                        return;
                    }
                    Some(Command::Subscribe { id, payload, results }) => {
                        operations.insert(id.clone(), results);
                        send(&mut socket, &json!({"id": id, "type": "subscribe", "payload": payload})).await
                    }
                    Some(Command::Complete { id }) => {
                        if operations.remove(&id).is_some() {
                            send(&mut socket, &json!({"id": id, "type": "complete"})).await
                        } else {
                            Ok(())
                        }
                    }
                    Some(Command::Ping { pong }) => {
                        pongs.push_back(pong);
                        send(&mut socket, &json!({"type": "ping"})).await
                    }
                };
                if let Err(e) = sent {
                    break e;
                }
            }
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    if let Err(e) = route(&mut socket, message, &mut operations, &mut pongs).await {
                        break e;
                    }
                }
                Some(Ok(Frame::Close(frame))) => break close_error(frame.as_ref()),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Error::WebSocket(e.to_string()),
                None => break close_error(None),
            },
        }
    };
    // Every running operation ends with the reason; the client's later calls get `Closed`.
    for (_, results) in operations {
        let _ = results.send(Err(ending.clone()));
    }
}

/// Handles one server message.
async fn route(
    socket: &mut Socket,
    mut message: Value,
    operations: &mut HashMap<String, mpsc::UnboundedSender<Result<Value, Error>>>,
    pongs: &mut VecDeque<oneshot::Sender<()>>,
) -> Result<(), Error> {
    let id = message["id"].as_str().unwrap_or_default().to_owned();
    let payload = message["payload"].take();
    match message["type"].as_str().unwrap_or_default() {
        "next" => {
            if let Some(results) = operations.get(&id)
                && results.send(Ok(payload)).is_err()
            {
                // The Subscription is gone; its Drop already asked for `complete`.
                operations.remove(&id);
            }
        }
        "error" => {
            if let Some(results) = operations.remove(&id) {
                let _ = results.send(Err(graphql_error(payload)));
            }
        }
        // Dropping the sender ends the Subscription's stream.
        "complete" => drop(operations.remove(&id)),
        "ping" => send(socket, &json!({"type": "pong"})).await?,
        "pong" => {
            if let Some(pong) = pongs.pop_front() {
                let _ = pong.send(());
            }
        }
        _ => {}
    }
    Ok(())
}
