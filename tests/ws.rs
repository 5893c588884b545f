//! WebSocket streams with a real client over TCP: the protocol, authentication, limits,
//! heartbeat and idle timeout, backpressure, replay, and the management routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustydb::api::types::SystemMetrics;
use rustydb::config::{Config, Secret};
use rustydb::events::Bus;
use rustydb::events::connections::Registry;
use rustydb::server::Server;
use rustydb::telemetry::LogControl;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PASSWORD: &str = "ws-test-password";

struct Live {
    addr: SocketAddr,
    bus: Arc<Bus>,
    connections: Arc<Registry>,
    app: axum::Router,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Live {
    async fn start(edit: impl FnOnce(&mut Config)) -> Live {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path());
        config.security.admin_password = Some(Secret::new(PASSWORD));
        config.security.login_attempts_per_minute = 10_000;
        config.security.requests_per_minute = 100_000;
        edit(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::start(config, LogControl::detached(), Instant::now())
            .await
            .expect("start");
        let bus = Arc::clone(server.bus());
        let connections = Arc::clone(server.connections());
        let app = server.app();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Live {
            addr,
            bus,
            connections,
            app,
            stop: Some(tx),
            _dir: dir,
        }
    }

    /// An access token, by logging in through the in-process router.
    async fn token(&self, username: &str, password: &str) -> String {
        use tower::ServiceExt;
        let request = axum::http::Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"username": username, "password": password}).to_string(),
            ))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("login");
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        body["access_token"].as_str().expect("token").to_string()
    }

    async fn admin_token(&self) -> String {
        self.token("admin", PASSWORD).await
    }

    /// A REST call through the in-process router.
    async fn rest(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        Self::rest_on(self.app.clone(), method, path, token, body).await
    }

    /// `rest` on a clone of the router, for a call made from another task.
    async fn rest_on(
        app: axum::Router,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        use tower::ServiceExt;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(axum::body::Body::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            ))
            .expect("request");
        let response = app.oneshot(request).await.expect("call");
        let status = response.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn connect(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Client, WsError> {
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, value.parse().expect("header value"));
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    async fn connect_as(&self, path: &str, token: &str) -> Client {
        self.connect(path, &[("authorization", format!("Bearer {token}"))])
            .await
            .expect("connect")
    }

    fn publish(&self, n: usize) {
        for i in 0..n {
            self.bus.publish(&metrics(i as u64));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn metrics(marker: u64) -> SystemMetrics {
    SystemMetrics {
        cpu_usage: 1.0,
        memory_usage: marker,
        memory_total: Some(2 * marker),
        memory_percent: 1.0,
        disk_read_bps: 0,
        disk_write_bps: 0,
        network_rx_bps: 0,
        network_tx_bps: 0,
        active_connections: 0,
        active_queries: 0,
    }
}

async fn send(ws: &mut Client, message_type: &str, data: Value) {
    ws.send(Message::Text(
        json!({"message_type": message_type, "data": data})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
}

/// The next JSON text message (pings are answered by the client library), within 5 s.
async fn next_json(ws: &mut Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Reads until a message of `message_type`, returning those before it.
async fn until(ws: &mut Client, message_type: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let m = next_json(ws).await;
        if m["message_type"] == message_type {
            return (m, before);
        }
        before.push(m);
    }
}

async fn subscribe(ws: &mut Client, data: Value) -> Value {
    send(ws, "subscribe", data).await;
    let (ack, _) = until(ws, "subscription_ack").await;
    ack
}

async fn close_code(ws: &mut Client) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
            Err(_) => panic!("connection was not closed"),
        }
    }
}

#[tokio::test]
async fn upgrades_need_valid_credentials_and_the_endpoint_permission() {
    let live = Live::start(|_| {}).await;
    let status = |e: WsError| match e {
        WsError::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    };
    let anonymous = live.connect("/api/v1/ws", &[]).await.expect_err("refused");
    assert_eq!(status(anonymous), 401);
    let bad = live
        .connect("/api/v1/ws", &[("authorization", "Bearer nope".into())])
        .await
        .expect_err("refused");
    assert_eq!(status(bad), 401);
    let admin = live.admin_token().await;
    live.rest(
        "POST",
        "/api/v1/admin/users",
        &admin,
        Some(json!({"username": "reader", "password": "password-123", "roles": ["analyst"]})),
    )
    .await;
    let analyst = live.token("reader", "password-123").await;
    let forbidden = live
        .connect(
            "/api/v1/ws/metrics",
            &[("authorization", format!("Bearer {analyst}"))],
        )
        .await
        .expect_err("refused");
    assert_eq!(status(forbidden), 403);
    let bad_interval = live
        .connect(
            "/api/v1/ws/metrics?interval=0",
            &[("authorization", format!("Bearer {admin}"))],
        )
        .await
        .expect_err("refused");
    assert_eq!(status(bad_interval), 400);
    // Browsers: the token as a subprotocol beside rustydb.v1, which the server selects.
    let (ws, response) = {
        let mut request = format!("ws://{}/api/v1/ws", live.addr)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("rustydb.v1, rustydb.bearer.{admin}")
                .parse()
                .expect("value"),
        );
        tokio_tungstenite::connect_async(request)
            .await
            .expect("connect")
    };
    assert_eq!(response.headers()["sec-websocket-protocol"], "rustydb.v1");
    drop(ws);
    // A plain GET is told to upgrade.
    let (code, body) = live.rest("GET", "/api/v1/ws", &admin, None).await;
    assert_eq!(code, 426);
    assert_eq!(body["error"]["code"], "WEBSOCKET_UPGRADE_REQUIRED");
}

#[tokio::test]
async fn subscribe_receive_unsubscribe_and_errors_keep_the_connection() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;

    for (frame, code) in [
        ("{not json", "MALFORMED_MESSAGE"),
        (r#"{"message_type": "dance"}"#, "UNKNOWN_MESSAGE_TYPE"),
        (
            r#"{"message_type": "subscribe", "data": {"topic": "nope"}}"#,
            "UNKNOWN_TOPIC",
        ),
        (
            r#"{"message_type": "subscribe", "data": {"topic": "ws_protocol"}}"#,
            "UNKNOWN_TOPIC",
        ),
        (
            r#"{"message_type": "subscribe", "data": {"topic": "system_metrics", "filter": [1]}}"#,
            "INVALID_FILTER",
        ),
        (
            r#"{"message_type": "unsubscribe", "data": {"topic": "system_metrics"}}"#,
            "NOT_SUBSCRIBED",
        ),
    ] {
        ws.send(Message::Text(frame.into())).await.expect("send");
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["message_type"], "error", "{frame}");
        assert_eq!(reply["data"]["code"], code, "{frame}");
        assert!(reply["timestamp"].is_i64());
    }
    send(&mut ws, "ping", json!({"n": 1})).await;
    let pong = next_json(&mut ws).await;
    assert_eq!(pong["message_type"], "pong");
    assert_eq!(pong["data"]["echo"], json!({"n": 1}));

    // The seed's wscat form: {"event": "system_metrics"}.
    let ack = subscribe(&mut ws, json!({"event": "system_metrics"})).await;
    assert_eq!(ack["data"]["subscribed"], true);
    assert_eq!(ack["data"]["topic"], "system_metrics");
    live.publish(3);
    for i in 0..3 {
        let event = next_json(&mut ws).await;
        assert_eq!(event["message_type"], "system_metrics");
        assert_eq!(event["topic"], "system_metrics");
        assert_eq!(event["data"]["memory_usage"], i);
        assert_eq!(event["sequence"], i + 1);
    }
    send(&mut ws, "unsubscribe", json!({"topic": "system_metrics"})).await;
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["data"]["subscribed"], false);
    live.publish(2);
    send(&mut ws, "ping", json!(null)).await;
    assert_eq!(
        next_json(&mut ws).await["message_type"],
        "pong",
        "no event after unsubscribe"
    );
}

#[tokio::test]
async fn filters_and_forbidden_topics_and_subscription_limit() {
    let live = Live::start(|c| c.websocket.max_subscriptions = 2).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"memory_usage": 7}}),
    )
    .await;
    live.publish(10);
    let event = next_json(&mut ws).await;
    assert_eq!(event["data"]["memory_usage"], 7, "only the matching event");
    subscribe(&mut ws, json!({"topic": "system_metrics"})).await;
    send(&mut ws, "subscribe", json!({"topic": "system_metrics"})).await;
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["data"]["code"], "TOO_MANY_SUBSCRIPTIONS");

    live.rest(
        "POST",
        "/api/v1/admin/users",
        &admin,
        Some(json!({"username": "dev", "password": "password-123", "roles": ["developer"]})),
    )
    .await;
    let developer = live.token("dev", "password-123").await;
    let mut ws = live.connect_as("/api/v1/ws", &developer).await;
    send(&mut ws, "subscribe", json!({"topic": "system_metrics"})).await;
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["data"]["code"], "FORBIDDEN_TOPIC");
}

#[tokio::test]
async fn oversized_messages_close_the_connection() {
    let live = Live::start(|c| c.websocket.max_message_bytes = 1024).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    let big = format!(
        r#"{{"message_type": "ping", "data": "{}"}}"#,
        "x".repeat(4096)
    );
    let _ = ws.send(Message::Text(big.into())).await;
    let code = close_code(&mut ws).await;
    assert!(code.is_none() || code == Some(1009), "{code:?}");
    assert!(
        live.connections.is_empty() || {
            tokio::time::sleep(Duration::from_millis(200)).await;
            live.connections.is_empty()
        }
    );
}

/// The server writes every frame itself (tungstenite only reads): it must still answer a ping
/// with its payload and a close with a close.
#[tokio::test]
async fn pings_get_their_pong_and_a_close_is_echoed() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(&pong, Ok(Some(Ok(Message::Pong(p)))) if &p[..] == b"are you there"),
        "{pong:?}"
    );
    // A ping between subscription frames does not disturb them.
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"cpu_usage": 1.0}}),
    )
    .await;
    live.publish(3);
    ws.send(Message::Ping(b"again".to_vec().into()))
        .await
        .expect("ping");
    live.publish(3);
    let (mut events, mut pongs) = (0, 0);
    while events < 6 || pongs < 1 {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("system_metrics") => events += 1,
            Ok(Some(Ok(Message::Pong(p)))) if &p[..] == b"again" => pongs += 1,
            Ok(Some(Ok(Message::Ping(_)))) => {}
            other => panic!("events {events}, pongs {pongs}: {other:?}"),
        }
    }
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .await
    .expect("close");
    assert_eq!(close_code(&mut ws).await, Some(1001), "the close is echoed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !live.connections.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(live.connections.is_empty());
}

/// A request that is not a complete WebSocket handshake gets 426 saying what is missing.
#[tokio::test]
async fn incomplete_handshakes_are_refused_with_the_missing_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    for (headers, missing) in [
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Key",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Sec-WebSocket-Version",
        ),
        (
            "Connection: keep-alive\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            "Connection header",
        ),
    ] {
        let mut tcp = TcpStream::connect(live.addr).await.expect("connect");
        let request = format!(
            "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n{headers}Connection: close\r\n\r\n"
        );
        // `Connection: close` after the first Connection header: hyper joins them, so the
        // `upgrade` token (when present) is still found.
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(response.starts_with("HTTP/1.1 426"), "{response}");
        assert!(
            response.contains("WEBSOCKET_UPGRADE_REQUIRED"),
            "{response}"
        );
        assert!(response.contains(missing), "{missing}: {response}");
    }
    // The complete handshake is answered with the RFC 6455 accept key.
    let mut tcp = TcpStream::connect(live.addr).await.expect("connect");
    let request = format!(
        "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let response = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(response.starts_with("http/1.1 101"), "{response}");
    assert!(
        response.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{response}"
    );
}

#[tokio::test]
async fn heartbeat_keeps_readers_alive_and_idle_clients_are_closed() {
    let live = Live::start(|c| {
        c.websocket.heartbeat = Duration::from_millis(100);
        c.websocket.idle_timeout = Duration::from_millis(600);
    })
    .await;
    let admin = live.admin_token().await;
    let mut reader = live.connect_as("/api/v1/ws", &admin).await;
    let mut sleeper = live.connect_as("/api/v1/ws", &admin).await;
    let mut pings = 0;
    let until_t = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until_t {
        if let Ok(Some(Ok(Message::Ping(_)))) =
            tokio::time::timeout(Duration::from_millis(200), reader.next()).await
        {
            pings += 1;
        }
    }
    assert!(pings >= 5, "pings every 100 ms: {pings}");
    send(&mut reader, "ping", json!(null)).await;
    assert_eq!(
        next_json(&mut reader).await["message_type"],
        "pong",
        "the reader is alive"
    );
    // The sleeper answered no ping (it did not read), so it was closed as idle.
    assert_eq!(close_code(&mut sleeper).await, Some(4000));
}

#[tokio::test]
async fn replay_returns_exactly_the_missed_events_or_reports_a_gap() {
    let live = Live::start(|c| c.websocket.bus_capacity = 10).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(&mut ws, json!({"topic": "system_metrics"})).await;
    live.publish(5);
    let mut last = 0;
    for _ in 0..5 {
        last = next_json(&mut ws).await["sequence"].as_u64().expect("seq");
    }
    assert_eq!(last, 5);
    drop(ws);
    live.publish(3);
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "last_sequence": last}),
    )
    .await;
    let replayed: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(next_json(&mut ws).await["sequence"].as_u64().expect("seq"));
        }
        v
    };
    assert_eq!(replayed, [6, 7, 8]);
    live.publish(1);
    assert_eq!(
        next_json(&mut ws).await["sequence"],
        9,
        "then live, no repeat"
    );
    drop(ws);

    // Overrun: 30 more events while away, 10 held.
    live.publish(30);
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "last_sequence": 9}),
    )
    .await;
    let gap = next_json(&mut ws).await;
    assert_eq!(gap["message_type"], "gap");
    assert_eq!(gap["data"]["from_sequence"], 10);
    assert_eq!(gap["data"]["to_sequence"], 29);
    assert_eq!(gap["data"]["missed"], 20);
    for expected in 30..=39 {
        assert_eq!(next_json(&mut ws).await["sequence"], expected);
    }
}

/// The management routes show a stalled subscriber's true figures: its backlog grows while its
/// task waits on the client, events overwritten meanwhile count as dropped at once, and every
/// event published since it subscribed is delivered, dropped or queued.
#[tokio::test]
async fn a_stalled_subscriber_shows_its_true_depth_dropped_and_lag() {
    let live = Live::start(|c| c.websocket.bus_capacity = 100).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    let ack = subscribe(&mut ws, json!({"topic": "system_metrics"})).await;
    let start = ack["data"]["last_sequence"].as_u64().expect("sequence");
    let (_, status) = live.rest("GET", "/api/v1/ws/status", &admin, None).await;
    assert_eq!(status["status"], "healthy", "{status}");
    assert_eq!(status["reasons"], json!([]));
    // The client reads nothing from here: 100,000 events (~30 MB), published in bursts the
    // server's task keeps up with, fill the socket buffers, then the 100-event ring.
    for _ in 0..1000 {
        live.publish(100);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let topic = Arc::clone(live.bus.topic("system_metrics").expect("topic"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, subs) = live
            .rest(
                "GET",
                "/api/v1/ws/subscriptions?topic=system_metrics",
                &admin,
                None,
            )
            .await;
        let s = subs["subscriptions"][0].clone();
        let published = topic.head() - start;
        let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k}: {s}"));
        let accounted = n("delivered") + n("dropped") + n("queue_depth");
        if n("queue_depth") == 100 && accounted == published {
            assert!(n("dropped") > 0, "{s}");
            assert!(n("lag") >= n("queue_depth"), "{s}");
            // A client losing events makes the WebSocket service degraded, and says why.
            let (_, status) = live.rest("GET", "/api/v1/ws/status", &admin, None).await;
            assert_eq!(status["status"], "degraded", "{status}");
            assert!(
                status["reasons"][0]
                    .as_str()
                    .unwrap()
                    .contains("1 subscription(s) with a full queue"),
                "{status}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{s}: {accounted} accounted for of {published} published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ws);
}

/// A `last_sequence` ahead of the topic's newest sequence means the server restarted (sequences
/// start again at 1): the client gets every event held, and a gap for those no longer held.
#[tokio::test]
async fn replay_after_a_restart_sends_everything_held() {
    let live = Live::start(|c| c.websocket.bus_capacity = 10).await;
    let admin = live.admin_token().await;
    live.publish(4);
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "last_sequence": 500}),
    )
    .await;
    for expected in 1..=4 {
        assert_eq!(next_json(&mut ws).await["sequence"], expected);
    }
    live.publish(1);
    assert_eq!(next_json(&mut ws).await["sequence"], 5, "then live");
    drop(ws);

    // Overrun since the restart: 15 published in all, 6..15 held.
    live.publish(10);
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "last_sequence": 500}),
    )
    .await;
    let gap = next_json(&mut ws).await;
    assert_eq!(gap["message_type"], "gap");
    assert_eq!(gap["data"]["from_sequence"], 1);
    assert_eq!(gap["data"]["to_sequence"], 5);
    for expected in 6..=15 {
        assert_eq!(next_json(&mut ws).await["sequence"], expected);
    }
}

/// A `last_sequence` counted in another run of the server (another epoch) replays everything held,
/// even when the topic has passed that position since: a plain resume would skip events.
#[tokio::test]
async fn a_sequence_from_another_epoch_replays_everything_held() {
    let live = Live::start(|c| c.websocket.bus_capacity = 10).await;
    let admin = live.admin_token().await;
    live.publish(6);
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    let ack = subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"cpu_usage": 1.0}}),
    )
    .await;
    let epoch = ack["data"]["epoch"].as_str().expect("epoch").to_string();
    assert_eq!(epoch.len(), 16, "{ack}");
    assert!(epoch.bytes().all(|b| b.is_ascii_hexdigit()), "{ack}");

    // The same epoch: an ordinary resume, after the client's last event.
    let ack = subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"cpu_usage": 1.0}, "last_sequence": 2, "epoch": epoch}),
    )
    .await;
    assert_eq!(ack["data"]["epoch"], epoch.as_str());
    for expected in 3..=6 {
        assert_eq!(next_json(&mut ws).await["sequence"], expected);
    }
    // Another epoch: everything held, from 1.
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"cpu_usage": 1.0}, "last_sequence": 2, "epoch": "0123456789abcdef"}),
    )
    .await;
    for expected in 1..=6 {
        assert_eq!(next_json(&mut ws).await["sequence"], expected);
    }
    // An epoch without a position asks for nothing to be replayed.
    subscribe(
        &mut ws,
        json!({"topic": "system_metrics", "filter": {"cpu_usage": 1.0}, "epoch": "0123456789abcdef"}),
    )
    .await;
    // An epoch that is not a string is refused; the connection stays.
    send(
        &mut ws,
        "subscribe",
        json!({"topic": "system_metrics", "last_sequence": 2, "epoch": 7}),
    )
    .await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["message_type"], "error", "{error}");
    assert_eq!(error["data"]["code"], "MALFORMED_MESSAGE");
    // A live event reaches all four subscriptions; nothing else was queued before it. (The
    // filter keeps the server's own samples out; they may take sequence numbers meanwhile.)
    live.bus.publish(&metrics(99));
    for _ in 0..4 {
        let event = next_json(&mut ws).await;
        assert_eq!(event["data"]["memory_usage"], 99, "{event}");
    }
}

#[tokio::test]
async fn a_slow_client_is_warned_and_dropped_while_a_fast_one_gets_everything() {
    let live = Live::start(|c| {
        // Room for a busy CI machine to stall the fast reader without losing events.
        c.websocket.bus_capacity = 512;
        c.websocket.slow_client_timeout = Duration::from_secs(10);
    })
    .await;
    let admin = live.admin_token().await;
    let mut fast = live.connect_as("/api/v1/ws", &admin).await;
    let mut slow = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(&mut fast, json!({"topic": "system_metrics"})).await;
    subscribe(&mut slow, json!({"topic": "system_metrics"})).await;
    let topic = Arc::clone(live.bus.topic("system_metrics").expect("topic"));
    let fast_received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (fast_received, stop) = (Arc::clone(&fast_received), Arc::clone(&stop));
        tokio::spawn(async move {
            // 16 KiB events, never more than 256 ahead of the fast client: it cannot fall
            // behind the topic's 512, however busy the machine, while the slow one must. Runs
            // until the slow client is gone, then sends a last event to tell the fast reader.
            let padding = "p".repeat(16 * 1024);
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
                while i > fast_received.load(std::sync::atomic::Ordering::Relaxed) + 256 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                topic.publish_value(
                    "system_metrics",
                    json!({"memory_usage": i, "padding": padding}),
                );
                i += 1;
                tokio::task::yield_now().await;
            }
            topic.publish_value("system_metrics", json!({"last": true}));
            i + 1
        })
    };
    let reader = {
        let fast_received = Arc::clone(&fast_received);
        tokio::spawn(async move {
            let mut expected = 1u64;
            loop {
                let m = next_json(&mut fast).await;
                assert_eq!(m["message_type"], "system_metrics", "fast client: {m}");
                assert_eq!(
                    m["sequence"], expected,
                    "fast client got every event in order"
                );
                fast_received.store(expected, std::sync::atomic::Ordering::Relaxed);
                if m["data"]["last"] == true {
                    return expected;
                }
                expected += 1;
            }
        })
    };
    // The slow client reads at most ~100 messages a second, far slower than the publisher (paced
    // by the fast client, hundreds a second even on a loaded machine): its socket fills, then
    // its queue overflows.
    let mut warned = false;
    let mut gap = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && !(warned && gap) {
        match tokio::time::timeout(Duration::from_millis(100), slow.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let m: Value = serde_json::from_str(&t).expect("json");
                warned |= m["message_type"] == "backpressure_warning";
                gap |= m["message_type"] == "gap";
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(_)) | None) => break,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(warned, "the slow client was warned");
    assert!(gap, "and told what it lost");
    // Then it stops reading for good and is dropped within the slow-client timeout.
    let deadline = Instant::now() + Duration::from_secs(40);
    while live.connections.len() > 1 {
        assert!(
            Instant::now() < deadline,
            "the slow client was not disconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let published = publisher.await.expect("publisher");
    let received = reader.await.expect("fast reader");
    // Contiguous sequences up to the last event (the server's own once-a-second samples share
    // the topic, so there may be a few more than published here).
    assert!(received >= published, "{received} < {published}");
    drop(slow);
}

#[tokio::test]
async fn management_routes_list_disconnect_and_broadcast() {
    let live = Live::start(|c| c.websocket.max_connections_per_user = 2).await;
    let admin = live.admin_token().await;
    let mut a = live.connect_as("/api/v1/ws", &admin).await;
    let mut b = live
        .connect_as("/api/v1/ws/metrics?interval=1", &admin)
        .await;
    let over = live
        .connect(
            "/api/v1/ws",
            &[("authorization", format!("Bearer {admin}"))],
        )
        .await
        .expect_err("over the per-user limit");
    match over {
        WsError::Http(r) => assert_eq!(r.status().as_u16(), 429),
        other => panic!("{other:?}"),
    }
    subscribe(&mut a, json!({"topic": "system_metrics"})).await;
    let (_, status) = live.rest("GET", "/api/v1/ws/status", &admin, None).await;
    assert_eq!(status["active_connections"], 2);
    assert_eq!(status["total_subscriptions"], 2);
    let (_, list) = live
        .rest("GET", "/api/v1/ws/connections", &admin, None)
        .await;
    assert_eq!(list["total"], 2);
    let first = &list["connections"][0];
    assert!(
        first["client_address"]
            .as_str()
            .expect("addr")
            .starts_with("127.0.0.1:")
    );
    assert!(first["messages_received"].as_u64().expect("n") >= 1);
    let (_, subs) = live
        .rest(
            "GET",
            "/api/v1/ws/subscriptions?topic=system_metrics",
            &admin,
            None,
        )
        .await;
    assert_eq!(subs["total"], 2);

    let (code, sent) = live
        .rest(
            "POST",
            "/api/v1/ws/broadcast",
            &admin,
            Some(json!({"message": "hello all"})),
        )
        .await;
    assert_eq!(code, 200, "{sent}");
    assert_eq!(sent["delivered_to"], 2);
    let (m, _) = until(&mut a, "broadcast").await;
    assert_eq!(m["data"]["message"], "hello all");
    assert_eq!(m["data"]["from"], "admin");

    // The metrics endpoint streams measured samples.
    let (m, _) = until(&mut b, "system_metrics").await;
    for field in [
        "cpu_usage",
        "memory_usage",
        "memory_percent",
        "disk_read_bps",
        "network_rx_bps",
        "active_connections",
        "active_queries",
    ] {
        assert!(m["data"][field].is_number(), "{field}: {m}");
    }
    assert!(m["data"]["memory_usage"].as_u64().expect("bytes") > 0);
    assert!(m["data"]["active_connections"].as_u64().expect("n") >= 2);

    let id = first["connection_id"].as_str().expect("id").to_string();
    let (code, body) = live
        .rest(
            "DELETE",
            &format!("/api/v1/ws/connections/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["connection_id"], id.as_str());
    assert_eq!(close_code(&mut a).await, Some(4009));
    let (code, _) = live
        .rest("DELETE", "/api/v1/ws/connections/conn-nope", &admin, None)
        .await;
    assert_eq!(code, 404);
    drop(b);
}

#[tokio::test]
async fn server_shutdown_closes_connections_with_1001() {
    let mut live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    if let Some(stop) = live.stop.take() {
        let _ = stop.send(());
    }
    assert_eq!(close_code(&mut ws).await, Some(u16::from(CloseCode::Away)));
}

#[tokio::test]
async fn storage_io_streams_measured_disk_statistics() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let mut ws = live.connect_as("/api/v1/ws/storage/io", &admin).await;
    let (m, _) = until(&mut ws, "disk_io_event").await;
    let stats = &m["data"]["IoStats"];
    for field in [
        "reads_per_sec",
        "writes_per_sec",
        "read_throughput_mbps",
        "write_throughput_mbps",
        "avg_read_latency_us",
        "avg_write_latency_us",
        "timestamp",
    ] {
        assert!(stats[field].is_number(), "{field}: {m}");
    }
    assert!(stats["reads_per_sec"].as_f64().expect("rate") >= 0.0);
    assert_eq!(m["topic"], "disk_io");
}

#[tokio::test]
async fn revoked_credentials_and_lost_roles_reach_open_connections() {
    let live = Live::start(|c| c.websocket.heartbeat = Duration::from_millis(100)).await;
    let admin = live.admin_token().await;
    live.rest(
        "POST",
        "/api/v1/admin/users",
        &admin,
        Some(json!({"username": "mon", "password": "password-123", "roles": ["monitor"]})),
    )
    .await;
    let monitor = live.token("mon", "password-123").await;
    let mut ws = live.connect_as("/api/v1/ws", &monitor).await;
    subscribe(&mut ws, json!({"topic": "system_metrics"})).await;
    let (_, me) = live
        .rest("GET", "/api/v1/auth/validate", &monitor, None)
        .await;
    let id = me["user_id"].as_str().expect("id").to_string();
    // Losing system:read ends the subscription, the connection stays.
    live.rest(
        "PUT",
        &format!("/api/v1/admin/users/{id}/roles"),
        &admin,
        Some(json!({"roles": ["analyst"]})),
    )
    .await;
    let (refused, _) = until(&mut ws, "error").await;
    assert_eq!(refused["data"]["code"], "FORBIDDEN_TOPIC");
    let (ack, _) = until(&mut ws, "subscription_ack").await;
    assert_eq!(ack["data"]["subscribed"], false);
    // Logging out closes the connection with 4001.
    let (code, _) = live
        .rest("POST", "/api/v1/auth/logout", &monitor, None)
        .await;
    assert_eq!(code, 204);
    assert_eq!(close_code(&mut ws).await, Some(4001));
}

/// Connects to an `/api/v1/ws/events` URL and waits for the acks of its five topics.
async fn events(live: &Live, path: &str, token: &str) -> Client {
    let mut ws = live.connect_as(path, token).await;
    let mut topics = Vec::new();
    for _ in 0..5 {
        let (ack, _) = until(&mut ws, "subscription_ack").await;
        topics.push(
            ack["data"]["topic"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    topics.sort();
    assert_eq!(
        topics,
        [
            "locks",
            "maintenance",
            "schema_changes",
            "table_changes",
            "transactions"
        ]
    );
    ws
}

async fn sql(live: &Live, token: &str, path: &str, body: Value) -> (u16, Value) {
    live.rest("POST", path, token, Some(body)).await
}

#[tokio::test]
async fn committed_changes_stream_in_order_and_rollbacks_stay_silent() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    sql(&live, &admin, exec, json!({"sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, avatar BLOB)"})).await;
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE other (a INTEGER)"}),
    )
    .await;
    let mut ws = events(&live, "/api/v1/ws/events?table=users", &admin).await;

    // Through the rows API, raw SQL and a batch.
    let (code, body) = live
        .rest(
            "POST",
            "/api/v1/databases/default/tables/users/rows",
            &admin,
            Some(json!({"values": {"username": "alice"}})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO other VALUES (1)"}),
    )
    .await;
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "UPDATE users SET username = 'alicia', avatar = x'00FF' WHERE id = 1"}),
    )
    .await;
    let (code, _) = sql(
        &live,
        &admin,
        "/api/v1/sql/batch",
        json!({"statements": [
            {"sql": "INSERT INTO users (username) VALUES ('bob')"},
            {"sql": "INSERT INTO users (username) VALUES ('carol')"}
        ]}),
    )
    .await;
    assert_eq!(code, 200);
    // A failing batch is rolled back and emits nothing.
    let (code, _) = sql(
        &live,
        &admin,
        "/api/v1/sql/batch",
        json!({"statements": [
            {"sql": "INSERT INTO users (username) VALUES ('dave')"},
            {"sql": "INSERT INTO users (username) VALUES ('alicia')"}
        ]}),
    )
    .await;
    assert_eq!(code, 400);
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "DELETE FROM users WHERE username = 'bob'"}),
    )
    .await;

    let mut events = Vec::new();
    for _ in 0..5 {
        let m = next_json(&mut ws).await;
        assert_eq!(m["message_type"], "table_modified", "{m}");
        events.push(m["data"].clone());
    }
    let ops: Vec<&str> = events
        .iter()
        .map(|e| e["operation"].as_str().expect("op"))
        .collect();
    assert_eq!(ops, ["INSERT", "UPDATE", "INSERT", "INSERT", "DELETE"]);
    assert!(
        events
            .iter()
            .all(|e| e["table"] == "users" && e["database"] == "default")
    );
    assert_eq!(
        events[0]["row_data"],
        json!({"id": 1, "username": "alice", "avatar": null})
    );
    assert_eq!(events[0]["row_id"], "1");
    assert_eq!(events[1]["old_row_data"]["username"], "alice");
    assert_eq!(
        events[1]["row_data"],
        json!({"id": 1, "username": "alicia", "avatar": "AP8="})
    );
    assert_eq!(
        events[2]["transaction_id"], events[3]["transaction_id"],
        "one batch, one transaction"
    );
    assert_ne!(events[1]["transaction_id"], events[2]["transaction_id"]);
    assert_eq!(
        events[4]["row_data"]["username"], "bob",
        "DELETE carries the old row"
    );
    // Nothing else arrived (no `dave`, nothing from `other`).
    send(&mut ws, "ping", json!(null)).await;
    assert_eq!(next_json(&mut ws).await["message_type"], "pong");

    // The capture machinery is the server's: savepoints (400: they go through the transactions
    // API) and direct calls of the capture function (403: they would forge events) are refused.
    for (statement, status) in [
        ("SAVEPOINT a", 400),
        (
            "SELECT rustydb_capture_v1('users', 'DELETE', 1, 1, 'forged')",
            403,
        ),
    ] {
        let (code, body) = sql(
            &live,
            &admin,
            "/api/v1/sql/query",
            json!({"sql": statement}),
        )
        .await;
        assert_eq!(code, status, "{statement}: {body}");
    }
}

#[tokio::test]
async fn a_transaction_publishes_at_commit_without_its_rolled_back_savepoints() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    sql(
        &live,
        &admin,
        "/api/v1/sql/execute",
        json!({"sql": "CREATE TABLE t (a INTEGER)"}),
    )
    .await;
    let mut ws = events(&live, "/api/v1/ws/events?table=t", &admin).await;
    let (_, tx) = sql(&live, &admin, "/api/v1/transactions", json!({})).await;
    let id = tx["transaction_id"].as_str().expect("id").to_string();
    let insert =
        |v: i64| json!({"sql": "INSERT INTO t VALUES (?)", "params": [v], "transaction_id": id});
    sql(&live, &admin, "/api/v1/sql/execute", insert(1)).await;
    sql(
        &live,
        &admin,
        &format!("/api/v1/transactions/{id}/savepoints"),
        json!({"name": "a"}),
    )
    .await;
    sql(&live, &admin, "/api/v1/sql/execute", insert(2)).await;
    let (code, body) = sql(
        &live,
        &admin,
        &format!("/api/v1/transactions/{id}/savepoints/a/rollback"),
        json!({}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    sql(&live, &admin, "/api/v1/sql/execute", insert(3)).await;
    // Nothing before the commit.
    send(&mut ws, "ping", json!(null)).await;
    assert_eq!(next_json(&mut ws).await["message_type"], "pong");
    let (code, _) = sql(
        &live,
        &admin,
        &format!("/api/v1/transactions/{id}/commit"),
        json!({}),
    )
    .await;
    assert_eq!(code, 200);
    let first = next_json(&mut ws).await;
    let second = next_json(&mut ws).await;
    assert_eq!(first["data"]["row_data"]["a"], 1);
    assert_eq!(second["data"]["row_data"]["a"], 3);
    assert_eq!(
        first["data"]["transaction_id"],
        second["data"]["transaction_id"]
    );
    send(&mut ws, "ping", json!(null)).await;
    assert_eq!(
        next_json(&mut ws).await["message_type"],
        "pong",
        "row 2 was never published"
    );
}

/// Reads the next `n` messages of `message_type`, skipping others.
async fn next_of(ws: &mut Client, message_type: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let (m, _) = until(ws, message_type).await;
        out.push(m["data"].clone());
    }
    out
}

#[tokio::test]
async fn ddl_becomes_schema_change_events_after_commit_only() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    let mut ws = events(&live, "/api/v1/ws/events", &admin).await;
    for statement in [
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE INDEX idx_items_name ON items(name)",
        "ALTER TABLE items ADD COLUMN price REAL",
        "CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10",
        "DROP VIEW cheap",
        "DROP INDEX idx_items_name",
    ] {
        let (code, body) = sql(&live, &admin, exec, json!({"sql": statement})).await;
        assert_eq!(code, 200, "{statement}: {body}");
    }
    let changes = next_of(&mut ws, "schema_changed", 6).await;
    let summary: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["change_type"].as_str().unwrap(),
                c["object_type"].as_str().unwrap(),
                c["object_name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "CREATE TABLE items",
            "CREATE INDEX idx_items_name",
            "ALTER TABLE items",
            "CREATE VIEW cheap",
            "DROP VIEW cheap",
            "DROP INDEX idx_items_name",
        ]
    );
    assert_eq!(changes[1]["table"], "items");
    assert_eq!(
        changes[1]["statement"],
        "CREATE INDEX idx_items_name ON items(name)"
    );
    assert_eq!(changes[1]["user"], "admin");
    assert_eq!(changes[1]["database"], "default");
    assert!(
        changes[2]["definition"]
            .as_str()
            .unwrap()
            .contains("price REAL"),
        "{}",
        changes[2]
    );
    assert!(
        changes[0]["transaction_id"]
            .as_str()
            .unwrap()
            .starts_with("q-"),
        "{}",
        changes[0]
    );

    // A rename keeps the object: one ALTER with the old name.
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "ALTER TABLE items RENAME TO products"}),
    )
    .await;
    let renamed = next_of(&mut ws, "schema_changed", 1).await;
    assert_eq!(renamed[0]["change_type"], "ALTER", "{}", renamed[0]);
    assert_eq!(renamed[0]["object_name"], "products");
    assert_eq!(renamed[0]["previous_name"], "items");

    // DDL in an API transaction that rolls back emits nothing; one that commits emits at
    // COMMIT.
    for commit in [false, true] {
        let (_, tx) = sql(&live, &admin, "/api/v1/transactions", json!({})).await;
        let id = tx["transaction_id"].as_str().expect("id").to_string();
        let table = if commit { "kept" } else { "discarded" };
        let (code, body) = sql(
            &live,
            &admin,
            exec,
            json!({"sql": format!("CREATE TABLE {table} (a INTEGER)"), "transaction_id": id}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let end = if commit { "commit" } else { "rollback" };
        let (code, body) = sql(
            &live,
            &admin,
            &format!("/api/v1/transactions/{id}/{end}"),
            json!({}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    // Topics are delivered independently, so only the order within each topic is promised.
    let (mut transactions, mut schema) = (Vec::new(), Vec::new());
    while transactions.len() + schema.len() < 5 {
        let m = next_json(&mut ws).await;
        match m["message_type"].as_str() {
            Some("schema_changed") => schema.push(m["data"]["object_name"].clone()),
            Some("transaction_event") => transactions.push(m["data"]["event_type"].clone()),
            _ => {}
        }
    }
    assert_eq!(schema, ["kept"]);
    assert_eq!(transactions, ["BEGIN", "ROLLBACK", "BEGIN", "COMMIT"]);

    // A failed DDL statement emits nothing either; the next event is the marker's.
    let (code, _) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE products (x)"}),
    )
    .await;
    assert_eq!(code, 400);
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE marker (x)"}),
    )
    .await;
    let next = next_of(&mut ws, "schema_changed", 1).await;
    assert_eq!(next[0]["object_name"], "marker");

    // `?table=` keeps the schema changes of that table only.
    let mut only = events(&live, "/api/v1/ws/events?table=kept", &admin).await;
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE INDEX idx_marker ON marker(x)"}),
    )
    .await;
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE INDEX idx_kept ON kept(a)"}),
    )
    .await;
    let next = next_json(&mut only).await;
    assert_eq!(next["message_type"], "schema_changed", "{next}");
    assert_eq!(next["data"]["object_name"], "idx_kept");
}

/// One id space: an API transaction's changes carry its `txn-` id (as in the transaction
/// events); an autocommit statement's carry its query id (as in the slow-query log's events).
#[tokio::test]
async fn row_changes_carry_the_transaction_or_the_statement_id() {
    let live = Live::start(|c| c.queries.slow_threshold = Duration::ZERO).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE t (v INTEGER)"}),
    )
    .await;
    let mut ws = events(&live, "/api/v1/ws/events?table=t", &admin).await;
    let mut log = live.connect_as("/api/v1/ws", &admin).await;
    subscribe(&mut log, json!({"topic": "queries"})).await;

    let (_, tx) = sql(&live, &admin, "/api/v1/transactions", json!({})).await;
    let id = tx["transaction_id"].as_str().expect("id").to_string();
    for v in [1, 2] {
        let (code, body) = sql(
            &live,
            &admin,
            exec,
            json!({"sql": format!("INSERT INTO t VALUES ({v})"), "transaction_id": id}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, _) = sql(
        &live,
        &admin,
        &format!("/api/v1/transactions/{id}/commit"),
        json!({}),
    )
    .await;
    assert_eq!(code, 200);
    let inside = next_of(&mut ws, "table_modified", 2).await;
    assert_eq!(inside[0]["transaction_id"], id.as_str(), "{}", inside[0]);
    assert_eq!(inside[1]["transaction_id"], id.as_str());

    let (code, _) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO t VALUES (3), (4)"}),
    )
    .await;
    assert_eq!(code, 200);
    let alone = next_of(&mut ws, "table_modified", 2).await;
    let logged = loop {
        let (m, _) = until(&mut log, "slow_query_logged").await;
        if m["data"]["sql"] == "INSERT INTO t VALUES (3), (4)" {
            break m["data"].clone();
        }
    };
    assert!(
        logged["query_id"].as_str().unwrap().starts_with("q-"),
        "{logged}"
    );
    assert_eq!(
        alone[0]["transaction_id"], logged["query_id"],
        "{}",
        alone[0]
    );
    assert_eq!(alone[1]["transaction_id"], logged["query_id"]);
}

/// `?table=` names a value, not an object: subscribing before the table exists sees its
/// creation and its first rows (documented in docs/websocket.md, Filters).
#[tokio::test]
async fn a_table_filter_made_before_the_table_sees_its_creation_and_rows() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    let mut ws = events(&live, "/api/v1/ws/events?table=later", &admin).await;
    for statement in [
        "CREATE TABLE later (v INTEGER)",
        "INSERT INTO later VALUES (1)",
    ] {
        let (code, body) = sql(&live, &admin, exec, json!({"sql": statement})).await;
        assert_eq!(code, 200, "{statement}: {body}");
    }
    let created = next_of(&mut ws, "schema_changed", 1).await;
    assert_eq!(created[0]["object_name"], "later", "{}", created[0]);
    let row = next_of(&mut ws, "table_modified", 1).await;
    assert_eq!(row[0]["row_data"]["v"], 1, "{}", row[0]);
}

/// A long query that overlaps DDL on another connection does not announce the DDL again: the
/// schema change is announced once, by the statement that made it.
#[tokio::test]
async fn ddl_overlapping_a_long_query_is_announced_once() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    let mut ws = events(&live, "/api/v1/ws/events", &admin).await;
    let long = {
        let (app, admin) = (live.app.clone(), admin.clone());
        tokio::spawn(async move {
            Live::rest_on(
                app,
                "POST",
                "/api/v1/sql/query",
                &admin,
                Some(json!({"sql": "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"})),
            )
            .await
        })
    };
    // Let the query start before the DDL.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE during (x)"}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = long.await.expect("query task");
    assert_eq!(code, 200, "{body}");
    assert!(
        !long_was_quick(&body),
        "the query ended before the DDL: {body}"
    );
    let (code, _) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE marker (x)"}),
    )
    .await;
    assert_eq!(code, 200);
    let changes = next_of(&mut ws, "schema_changed", 2).await;
    let names: Vec<&Value> = changes.iter().map(|c| &c["object_name"]).collect();
    assert_eq!(names, ["during", "marker"], "{changes:?}");
    assert_eq!(changes[0]["statement"], "CREATE TABLE during (x)");
}

fn long_was_quick(body: &Value) -> bool {
    body["elapsed_ms"].as_f64().unwrap_or(0.0) < 400.0
}

#[tokio::test]
async fn transactions_announce_begin_commit_and_idle_rollback() {
    let live = Live::start(|c| c.transaction_idle_timeout = Duration::from_secs(1)).await;
    let admin = live.admin_token().await;
    sql(
        &live,
        &admin,
        "/api/v1/sql/execute",
        json!({"sql": "CREATE TABLE t (a INTEGER)"}),
    )
    .await;
    let mut ws = events(&live, "/api/v1/ws/events", &admin).await;
    let (_, tx) = sql(
        &live,
        &admin,
        "/api/v1/transactions",
        json!({"mode": "immediate"}),
    )
    .await;
    let id = tx["transaction_id"].as_str().expect("id").to_string();
    for v in [1, 2] {
        sql(
            &live,
            &admin,
            "/api/v1/sql/execute",
            json!({"sql": "INSERT INTO t VALUES (?)", "params": [v], "transaction_id": id}),
        )
        .await;
    }
    sql(
        &live,
        &admin,
        &format!("/api/v1/transactions/{id}/commit"),
        json!({}),
    )
    .await;
    let events = next_of(&mut ws, "transaction_event", 2).await;
    assert_eq!(events[0]["event_type"], "BEGIN");
    assert_eq!(events[0]["mode"], "immediate");
    assert_eq!(events[0]["username"], "admin");
    assert_eq!(events[1]["event_type"], "COMMIT");
    assert_eq!(events[1]["transaction_id"], id.as_str());
    assert_eq!(events[1]["statements"], 2);
    assert!(events[1]["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(events[1].get("reason").is_none(), "{}", events[1]);

    // Left idle, the transaction is rolled back by the server, and the event says why.
    let (_, tx) = sql(&live, &admin, "/api/v1/transactions", json!({})).await;
    let idle = tx["transaction_id"].as_str().expect("id").to_string();
    let events = next_of(&mut ws, "transaction_event", 2).await;
    assert_eq!(events[0]["event_type"], "BEGIN");
    assert_eq!(events[1]["event_type"], "ROLLBACK");
    assert_eq!(events[1]["transaction_id"], idle.as_str());
    assert!(
        events[1]["reason"].as_str().unwrap().contains("idle"),
        "{}",
        events[1]
    );
}

#[tokio::test]
async fn vacuum_and_analyze_report_sizes() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE big (a TEXT)"}),
    )
    .await;
    let (code, body) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO big SELECT hex(randomblob(500)) FROM generate_series(1, 2000)"}),
    )
    .await;
    if code != 200 {
        // generate_series is an extension in some builds; a recursive CTE is always there.
        let (code, body2) = sql(&live, &admin, exec, json!({"sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO big SELECT hex(randomblob(500)) FROM n"})).await;
        assert_eq!(code, 200, "{body} / {body2}");
    }
    sql(&live, &admin, exec, json!({"sql": "DELETE FROM big"})).await;
    let mut ws = events(&live, "/api/v1/ws/events", &admin).await;
    let (code, body) = sql(&live, &admin, exec, json!({"sql": "VACUUM"})).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = sql(&live, &admin, exec, json!({"sql": "-- stats\nANALYZE big"})).await;
    assert_eq!(code, 200, "{body}");
    let events = next_of(&mut ws, "maintenance_event", 2).await;
    assert_eq!(events[0]["operation"], "VACUUM");
    assert_eq!(events[0]["user"], "admin");
    let (before, after) = (
        events[0]["size_before_bytes"].as_i64().unwrap(),
        events[0]["size_after_bytes"].as_i64().unwrap(),
    );
    assert!(
        before > 1_000_000 && after < before / 10,
        "{before} -> {after}"
    );
    assert_eq!(events[1]["operation"], "ANALYZE");
    assert_eq!(events[1]["statement"], "-- stats\nANALYZE big");

    // An analyst may not VACUUM (the authorizer refuses it), and nothing is announced.
    let analyst_password = "analyst-password-1";
    let (code, body) = live
        .rest(
            "POST",
            "/api/v1/admin/users",
            &admin,
            Some(json!({"username": "ann", "password": analyst_password, "roles": ["analyst"]})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let ann = live.token("ann", analyst_password).await;
    let (code, _) = sql(&live, &ann, exec, json!({"sql": "VACUUM"})).await;
    assert_eq!(code, 403);
    // VACUUM INTO would write a file of the caller's choosing: refused even to admins.
    let target = std::env::temp_dir().join(format!("rustydb-evil-{}.db", std::process::id()));
    let (code, body) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": format!("VACUUM INTO '{}'", target.display())}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(!target.exists());
    sql(&live, &admin, exec, json!({"sql": "REINDEX"})).await;
    let next = next_of(&mut ws, "maintenance_event", 1).await;
    assert_eq!(next[0]["operation"], "REINDEX");
}

#[tokio::test]
async fn without_rowid_tables_are_captured_with_their_primary_key_as_row_id() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    let (code, body) = sql(&live, &admin, exec, json!({"sql": "CREATE TABLE pairs (org TEXT, id INTEGER, v TEXT, PRIMARY KEY (org, id)) WITHOUT ROWID"})).await;
    assert_eq!(code, 200, "{body}");
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE tags (tag TEXT PRIMARY KEY) WITHOUT ROWID"}),
    )
    .await;
    let mut ws = live
        .connect_as("/api/v1/ws/events?table=pairs", &admin)
        .await;
    until(&mut ws, "subscription_ack").await;
    let (code, body) = live
        .rest(
            "POST",
            "/api/v1/databases/default/tables/pairs/rows",
            &admin,
            Some(json!({"values": {"org": "a,b\\c", "id": 1, "v": "x"}})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["row_id"], "a\\,b\\\\c,1");
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "UPDATE pairs SET id = 2, v = 'y'"}),
    )
    .await;
    sql(&live, &admin, exec, json!({"sql": "DELETE FROM pairs"})).await;
    // Other topics of /ws/events (acks, schema changes) are skipped.
    let events = next_of(&mut ws, "table_modified", 3).await;
    let ids: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().expect("op"),
                e["row_id"].as_str().expect("row_id"),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("INSERT", "a\\,b\\\\c,1"),
            ("UPDATE", "a\\,b\\\\c,2"),
            ("DELETE", "a\\,b\\\\c,2")
        ]
    );
    assert_eq!(events[1]["old_row_data"]["v"], "x");
    assert_eq!(events[1]["row_data"]["v"], "y");

    // A refused drop leaves the capture triggers in place (the transaction rolls back).
    let (code, body) = live
        .rest(
            "PATCH",
            "/api/v1/databases/default/tables/pairs",
            &admin,
            Some(json!({"drop_column": "org"})),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO pairs VALUES ('q', 5, 'w')"}),
    )
    .await;
    let m = next_of(&mut ws, "table_modified", 1).await;
    assert_eq!(m[0]["row_id"], "q,5", "{m:?}");

    // Dropping a column through the API keeps capture working, without that column.
    let (code, body) = live
        .rest(
            "PATCH",
            "/api/v1/databases/default/tables/pairs",
            &admin,
            Some(json!({"drop_column": "v"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO pairs VALUES ('z', 9)"}),
    )
    .await;
    let m = next_of(&mut ws, "table_modified", 1).await;
    assert_eq!(m[0]["row_data"], json!({"org": "z", "id": 9}), "{m:?}");
    assert_eq!(m[0]["operation"], "INSERT");
    assert_eq!(m[0]["row_id"], "z,9");

    // Raw SQL too: ALTER TABLE ... DROP COLUMN works outside a transaction, and capture goes on.
    for statement in [
        "ALTER TABLE pairs ADD COLUMN note TEXT",
        "INSERT INTO pairs VALUES ('n', 1, 'hello')",
        "ALTER TABLE pairs DROP COLUMN note",
        "INSERT INTO pairs VALUES ('n', 2)",
    ] {
        let (code, body) = sql(&live, &admin, exec, json!({"sql": statement})).await;
        assert_eq!(code, 200, "{statement}: {body}");
    }
    let m = next_of(&mut ws, "table_modified", 2).await;
    assert_eq!(
        m[0]["row_data"],
        json!({"org": "n", "id": 1, "note": "hello"}),
        "{m:?}"
    );
    assert_eq!(m[1]["row_data"], json!({"org": "n", "id": 2}), "{m:?}");
    // A refused raw drop (a key column) is a 400 and leaves the triggers as they were.
    let (code, body) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "ALTER TABLE pairs DROP COLUMN org"}),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO pairs VALUES ('n', 3)"}),
    )
    .await;
    assert_eq!(code, 200);
    let m = next_of(&mut ws, "table_modified", 1).await;
    assert_eq!(m[0]["row_id"], "n,3", "{m:?}");

    // A single-column key is the value itself, as in the rows path.
    let mut ws = live
        .connect_as("/api/v1/ws/events?table=tags", &admin)
        .await;
    until(&mut ws, "subscription_ack").await;
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "INSERT INTO tags VALUES ('x,y')"}),
    )
    .await;
    let m = next_of(&mut ws, "table_modified", 1).await;
    assert_eq!(m[0]["row_id"], "x,y", "{m:?}");
}

#[tokio::test]
async fn buffer_pool_stream_and_routes_report_measured_pages() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let exec = "/api/v1/sql/execute";
    sql(
        &live,
        &admin,
        exec,
        json!({"sql": "CREATE TABLE big (a TEXT)"}),
    )
    .await;
    let (code, body) = sql(
        &live,
        &admin,
        exec,
        json!({"sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO big SELECT hex(randomblob(300)) FROM n"}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = sql(
        &live,
        &admin,
        "/api/v1/sql/query",
        json!({"sql": "SELECT count(*), sum(length(a)) FROM big"}),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Committed to the WAL, not yet checkpointed (the auto-checkpoint runs at 1,000 frames;
    // this write is smaller): dirty pages.
    let (code, report) = live
        .rest("GET", "/api/v1/storage/buffer-pool", &admin, None)
        .await;
    assert_eq!(code, 200, "{report}");
    let total = &report["total"];
    assert!(total["dirty_pages"].as_u64().unwrap() > 100, "{report}");
    assert!(total["hits"].as_u64().unwrap() > 0, "{report}");
    assert!(total["writes"].as_u64().unwrap() > 100, "{report}");
    let (used, capacity) = (
        total["used_pages"].as_u64().unwrap(),
        total["total_pages"].as_u64().unwrap(),
    );
    assert!(used > 0 && used <= capacity, "{report}");
    let rate = total["hit_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate), "{report}");
    assert!(
        report["databases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["database"] == "default"
                && d["figures"]["dirty_pages"] == total["dirty_pages"]),
        "{report}"
    );

    let mut ws = live
        .connect_as("/api/v1/ws/storage/buffer-pool", &admin)
        .await;
    until(&mut ws, "subscription_ack").await;
    let (event, _) = until(&mut ws, "buffer_pool_event").await;
    let stats = &event["data"]["PoolStats"];
    assert_eq!(stats["dirty_pages"], total["dirty_pages"], "{event}");
    assert!(stats["used_pages"].as_u64().unwrap() > 0, "{event}");
    assert!(stats["timestamp"].is_i64(), "{event}");

    // Flushing checkpoints the WAL: nothing is dirty afterwards, and the stream says so.
    let (code, flushed) = live
        .rest("POST", "/api/v1/storage/buffer-pool/flush", &admin, None)
        .await;
    assert_eq!(code, 200, "{flushed}");
    let default = flushed["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["database"] == "default")
        .expect("default flushed")
        .clone();
    assert_eq!(default["busy"], false, "{flushed}");
    assert_eq!(
        default["wal_frames"], default["checkpointed_frames"],
        "{flushed}"
    );
    assert_eq!(flushed["after"]["total"]["dirty_pages"], 0, "{flushed}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (event, _) = until(&mut ws, "buffer_pool_event").await;
        if event["data"]["PoolStats"]["dirty_pages"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dirty pages never reached 0: {event}"
        );
    }

    // Permissions: reading needs system:read, flushing database:admin.
    for (name, role) in [("ann", "analyst"), ("mo", "monitor")] {
        let (code, body) = live
            .rest(
                "POST",
                "/api/v1/admin/users",
                &admin,
                Some(json!({"username": name, "password": "password-for-tests", "roles": [role]})),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }
    let ann = live.token("ann", "password-for-tests").await;
    let mo = live.token("mo", "password-for-tests").await;
    let refused = live
        .connect(
            "/api/v1/ws/storage/buffer-pool",
            &[("authorization", format!("Bearer {ann}"))],
        )
        .await;
    assert!(refused.is_err(), "an analyst may not watch the buffer pool");
    assert_eq!(
        live.rest("GET", "/api/v1/storage/buffer-pool", &ann, None)
            .await
            .0,
        403
    );
    assert_eq!(
        live.rest("GET", "/api/v1/storage/buffer-pool", &mo, None)
            .await
            .0,
        200
    );
    assert_eq!(
        live.rest("POST", "/api/v1/storage/buffer-pool/flush", &mo, None)
            .await
            .0,
        403
    );
}

/// The next `system_metrics` sample's `active_queries`.
async fn active_queries(metrics: &mut Client) -> u64 {
    let (sample, _) = until(metrics, "system_metrics").await;
    sample["data"]["active_queries"]
        .as_u64()
        .expect("active_queries")
}

#[tokio::test]
async fn active_queries_counts_the_user_statements_running_not_system_calls() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin_token().await;
    let mut metrics = live
        .connect_as("/api/v1/ws/metrics?interval=1", &admin)
        .await;
    // Every request reads system.db to authenticate; none of that is a user statement.
    assert_eq!(active_queries(&mut metrics).await, 0);
    let statement = live.rest(
        "POST",
        "/api/v1/sql/execute",
        &admin,
        Some(json!({
            "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            "timeout": 60000
        })),
    );
    let observe = async {
        let id = loop {
            let (_, list) = live.rest("GET", "/api/v1/sql/queries", &admin, None).await;
            if let Some(id) = list["queries"][0]["query_id"].as_str() {
                break id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Samples already queued may predate the statement; a few later ones must count it.
        let mut counted = Vec::new();
        for _ in 0..4 {
            let n = active_queries(&mut metrics).await;
            counted.push(n);
            if n == 1 {
                break;
            }
        }
        let (cancel, _) = live
            .rest(
                "POST",
                &format!("/api/v1/sql/queries/{id}/cancel"),
                &admin,
                None,
            )
            .await;
        (counted, cancel)
    };
    let ((status, body), (counted, cancel)) = tokio::join!(statement, observe);
    assert_eq!(
        counted.last(),
        Some(&1),
        "samples while it ran: {counted:?}"
    );
    assert_eq!(cancel, 200);
    assert_eq!(status, 409, "{body}");
    let mut after = Vec::new();
    for _ in 0..4 {
        after.push(active_queries(&mut metrics).await);
        if after.last() == Some(&0) {
            break;
        }
    }
    assert_eq!(after.last(), Some(&0), "samples after it ended: {after:?}");
}

#[tokio::test]
async fn a_token_within_the_leeway_keeps_the_connection_it_opened() {
    let live = Live::start(|c| c.security.access_token_ttl_secs = 1).await;
    let admin = live.admin_token().await;
    // Past `exp`, inside the 30 s validation leeway: the upgrade accepts it (101), so the
    // connection must not close at once with 4001.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut ws = live.connect_as("/api/v1/ws", &admin).await;
    let ack = subscribe(&mut ws, json!({"topic": "system_metrics"})).await;
    assert_eq!(ack["data"]["subscribed"], true, "{ack}");
    send(&mut ws, "ping", json!({"n": 1})).await;
    let (pong, _) = until(&mut ws, "pong").await;
    assert_eq!(pong["data"]["echo"], json!({"n": 1}));
}
