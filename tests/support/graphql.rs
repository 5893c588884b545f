//! The GraphQL test harness shared by the GraphQL test modules: a real server on a TCP port,
//! a graphql-ws client, and the seed's subscription documents.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustydb::config::{Config, Secret};
use rustydb::engine::SystemDb;
use rustydb::events::Bus;
use rustydb::graphql::Backends;
use rustydb::server::Server;
use rustydb::telemetry::LogControl;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PASSWORD: &str = "graphql-test-password";
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Live {
    pub addr: SocketAddr,
    pub bus: Arc<Bus>,
    pub system_db: SystemDb,
    pub graphql: Arc<Backends>,
    pub app: axum::Router,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub _dir: tempfile::TempDir,
}

impl Live {
    pub async fn start(edit: impl FnOnce(&mut Config)) -> Live {
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
        let system_db = server.system_db().clone();
        let graphql = Arc::clone(server.graphql());
        let app = server.app();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Live {
            addr,
            bus,
            system_db,
            graphql,
            app,
            stop: Some(tx),
            _dir: dir,
        }
    }

    /// GraphQL sockets the server holds open now.
    pub fn open_sockets(&self) -> u64 {
        self.graphql
            .process
            .stats
            .graphql_sockets
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs one statement through `POST /api/v1/sql/execute`; it must succeed.
    pub async fn execute(&self, token: &str, sql: &str) -> Value {
        let (status, body) = self
            .rest(
                "POST",
                "/api/v1/sql/execute",
                token,
                Some(json!({"sql": sql})),
            )
            .await;
        assert_eq!(status, 200, "{sql}: {body}");
        body
    }

    pub async fn rest(
        &self,
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
        let response = self.app.clone().oneshot(request).await.expect("call");
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

    pub async fn token(&self, username: &str, password: &str) -> String {
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

    pub async fn admin(&self) -> String {
        self.token("admin", PASSWORD).await
    }

    /// A user with these roles, logged in.
    pub async fn user(&self, name: &str, roles: &[&str]) -> String {
        let admin = self.admin().await;
        let body = json!({"username": name, "password": "password-123", "roles": roles});
        let (status, body) = self
            .rest("POST", "/api/v1/admin/users", &admin, Some(body))
            .await;
        assert_eq!(status, 201, "{body}");
        self.token(name, "password-123").await
    }

    pub async fn connect(&self, protocol: &str) -> Client {
        let mut request = format!("ws://{}/graphql", self.addr)
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        ws
    }

    /// Steps 1-3 of the seed's flow: connect, `connection_init`, `connection_ack`.
    pub async fn session(&self, token: &str) -> Client {
        let mut ws = self.connect("graphql-transport-ws").await;
        send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})).await;
        let ack = recv(&mut ws).await;
        assert_eq!(ack, json!({"type": "connection_ack", "payload": {}}));
        ws
    }

    pub async fn create_table(&self, token: &str, name: &str, columns: Value) {
        let body = json!({"name": name, "columns": columns});
        let (status, body) = self
            .rest(
                "POST",
                "/api/v1/databases/default/tables",
                token,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn insert(&self, token: &str, table: &str, values: Value) -> Value {
        let path = format!("/api/v1/databases/default/tables/{table}/rows");
        let (status, body) = self
            .rest("POST", &path, token, Some(json!({"values": values})))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn send(ws: &mut Client, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
}

pub async fn subscribe(ws: &mut Client, id: &str, query: &str) {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
}

/// The next text message as JSON (control frames skipped).
pub async fn recv(ws: &mut Client) -> Value {
    recv_within(ws, WAIT).await.expect("a message in time")
}

pub async fn recv_within(ws: &mut Client, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match next {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("json")),
            Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// The close code the server ends the connection with.
pub async fn close_code(ws: &mut Client) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error instead of close: {e}"),
        }
    }
}

/// Begins a REST (API) transaction and returns its id.
pub async fn begin(live: &Live, token: &str) -> String {
    let (status, body) = live
        .rest("POST", "/api/v1/transactions", token, Some(json!({})))
        .await;
    assert_eq!(status, 201, "{body}");
    body["transaction_id"].as_str().expect("id").to_string()
}

/// The `graphql` blocks of the seed's "GraphQL Subscriptions" section.
pub fn seed_documents() -> Vec<String> {
    // The seed beside the project when it is there (the contract as it stands), else the copy
    // committed with the tests (a clone without `../shared`).
    let text = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/seed/websocket-integration-guide.md"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/websocket-integration-guide.md"
        ),
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .expect("seed guide");
    let section = text
        .split("## GraphQL Subscriptions")
        .nth(1)
        .expect("section");
    let section = section.split("\n## ").next().expect("section end");
    section
        .split("```graphql")
        .skip(1)
        .map(|b| b.split("```").next().expect("block end").to_string())
        .collect()
}

pub fn root_field(document: &str) -> String {
    let body = document.split_once('{').expect("selection").1;
    body.trim_start()
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .expect("field")
        .to_string()
}

/// The seed's selection set of a subscription, without its outer braces.
pub fn seed_selection(field: &str) -> String {
    let doc = seed_documents()
        .into_iter()
        .find(|d| root_field(d) == field)
        .expect("seed document");
    let after = doc.split_once(field).expect("field").1.trim_start();
    let after = match after.strip_prefix('(') {
        Some(args) => args.split_once(')').expect("arguments end").1,
        None => after,
    };
    let body = after.trim_start().strip_prefix('{').expect("selection");
    let mut depth = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return body[..i].to_string(),
            '}' => depth -= 1,
            _ => {}
        }
    }
    panic!("unclosed selection of {field}")
}

/// The top-level field names of the seed's selection.
pub fn seed_fields(field: &str) -> BTreeSet<String> {
    let mut depth = 0;
    let mut names = BTreeSet::new();
    for token in seed_selection(field).split_whitespace() {
        match token {
            "{" => depth += 1,
            "}" => depth -= 1,
            name if depth == 0 => {
                names.insert(name.to_string());
            }
            _ => {}
        }
    }
    names
}

/// The seed's document for `field` as written.
pub fn seed_doc(field: &str) -> String {
    seed_documents()
        .into_iter()
        .find(|d| root_field(d) == field)
        .expect("seed document")
}

/// The seed's selection of `field` with other arguments.
pub fn seed_document(field: &str, args: &str) -> String {
    format!(
        "subscription {{ {field}{args} {{ {} }} }}",
        seed_selection(field)
    )
}

/// Asserts a `next` for subscription `id` carrying exactly the seed's fields of `field`.
pub fn seed_next<'a>(message: &'a Value, id: &str, field: &str) -> &'a Value {
    assert_eq!(message["id"], id, "{message}");
    assert_eq!(message["type"], "next", "{message}");
    let data = &message["payload"]["data"][field];
    let keys: BTreeSet<String> = data
        .as_object()
        .unwrap_or_else(|| panic!("{field}: {message}"))
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, seed_fields(field));
    data
}

/// The next message that is for subscription `id`.
pub async fn recv_for(ws: &mut Client, id: &str) -> Value {
    loop {
        let m = recv(ws).await;
        if m["id"] == id {
            return m;
        }
    }
}
