//! Query streaming on /api/v1/ws/query with a real client over TCP: rows in order, progress,
//! completion, errors, the authorizer, cancelling, limits, and flow control with a slow reader.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustydb::api::types::{QueryCompleted, QueryError, QueryProgress, QueryRow, QueryStarted};
use rustydb::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{ADMIN_PASSWORD, TestServer};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A recursive CTE of `n` rows: `x` from 1 to `n`.
fn counting(n: u64) -> String {
    format!("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n})")
}

/// Runs for minutes unless stopped: counts to a billion and returns one row.
fn endless() -> String {
    format!("{} SELECT count(*) FROM c", counting(1_000_000_000))
}

struct Live {
    server: TestServer,
    addr: SocketAddr,
}

impl Live {
    async fn start(edit: impl FnOnce(&mut Config)) -> Live {
        let server = TestServer::with_config(edit).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = server.app.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Live { server, addr }
    }

    async fn token(&self, username: &str, password: &str) -> String {
        let tokens = self.server.login_tokens(username, password).await;
        tokens["access_token"].as_str().expect("token").to_string()
    }

    async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    /// A user with `roles`, created by the administrator; returns its token.
    async fn user(&self, username: &str, roles: &[&str]) -> String {
        self.server.user_with_roles(username, roles).await;
        self.token(username, "password-123").await
    }

    async fn connect(&self, path: &str, token: Option<&str>) -> Result<Client, WsError> {
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        if let Some(token) = token {
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    }

    async fn query_ws(&self, token: &str) -> Client {
        self.connect("/api/v1/ws/query", Some(token))
            .await
            .expect("connect")
    }

    /// The ids of the running queries GET /api/v1/sql/queries shows to `token`.
    async fn running(&self, token: &str) -> Vec<String> {
        let r = self.server.bearer(token).get("/api/v1/sql/queries").await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        r.body["queries"]
            .as_array()
            .expect("queries")
            .iter()
            .map(|q| q["query_id"].as_str().expect("id").to_string())
            .collect()
    }

    /// Polls the running queries until `pred` holds, for up to 10 s.
    async fn wait_running(&self, token: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ids = self.running(token).await;
            if pred(&ids) {
                return ids;
            }
            assert!(Instant::now() < deadline, "running queries stayed {ids:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn send(ws: &mut Client, message_type: &str, data: Value) {
    send_text(
        ws,
        json!({"message_type": message_type, "data": data}).to_string(),
    )
    .await;
}

async fn send_text(ws: &mut Client, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// The next JSON text message (pings are answered by the client library), within 20 s.
async fn next_json(ws: &mut Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).expect("json"),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Reads until a message of `message_type`, returning it.
async fn until(ws: &mut Client, message_type: &str) -> Value {
    loop {
        let m = next_json(ws).await;
        if m["message_type"] == message_type {
            return m;
        }
    }
}

/// Reads the messages of one query up to its `query_completed` or `query_error` (inclusive).
async fn finish(ws: &mut Client) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let m = next_json(ws).await;
        let done = matches!(
            m["message_type"].as_str(),
            Some("query_completed" | "query_error")
        );
        messages.push(m);
        if done {
            return messages;
        }
    }
}

fn data<T: serde::de::DeserializeOwned>(m: &Value) -> T {
    serde_json::from_value(m["data"].clone())
        .unwrap_or_else(|e| panic!("{} does not match its declared type: {e}", m))
}

fn error_code(m: &Value) -> String {
    assert_eq!(m["message_type"], "query_error", "{m}");
    data::<QueryError>(m).code
}

#[tokio::test]
async fn streams_rows_in_order_with_progress_then_completes() {
    let live = Live::start(|_| {}).await;
    let token = live.user("reader", &["analyst"]).await;
    let mut ws = live.query_ws(&token).await;
    const N: u64 = 100_000;
    send(
        &mut ws,
        "query",
        json!({
            "sql": format!("{} SELECT x AS id, 'row ' || x AS name FROM c", counting(N)),
            "query_id": "q-rows",
            "progress_interval_ms": 100,
            // Generous: the whole stream counts, and test machines are busy.
            "timeout": 300000,
        }),
    )
    .await;
    let messages = finish(&mut ws).await;
    let last = messages.last().expect("last");
    assert_eq!(last["message_type"], "query_completed", "{last}");
    let started: QueryStarted = data(&messages[0]);
    assert_eq!(messages[0]["message_type"], "query_started");
    assert_eq!(
        (started.query_id.as_str(), started.database.as_str()),
        ("q-rows", "default")
    );
    let names: Vec<&str> = started.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "name"]);

    let mut rows = 0u64;
    let mut progress = Vec::new();
    for m in &messages[1..messages.len() - 1] {
        match m["message_type"].as_str() {
            Some("query_row") => {
                let row: QueryRow = data(m);
                assert_eq!(row.query_id, "q-rows");
                assert_eq!(row.row_index, rows, "rows arrive in order");
                assert_eq!(row.row_data["id"], json!(rows + 1));
                assert_eq!(row.row_data["name"], json!(format!("row {}", rows + 1)));
                rows += 1;
            }
            Some("query_progress") => {
                let p: QueryProgress = data(m);
                // A sample counts rows produced before it, so never more than were received.
                assert!(p.rows_processed <= rows, "{m} after {rows} rows");
                assert!(p.vm_steps > 0);
                progress.push(p);
            }
            _ => panic!("unexpected message {m}"),
        }
    }
    assert_eq!(rows, N);
    assert!(!progress.is_empty(), "a long query reports progress");
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].rows_processed <= w[1].rows_processed && w[0].vm_steps < w[1].vm_steps)
    );
    let completed: QueryCompleted = data(messages.last().expect("last"));
    assert_eq!(
        messages.last().expect("last")["message_type"],
        "query_completed"
    );
    assert_eq!(
        (completed.query_id.as_str(), completed.row_count),
        ("q-rows", N)
    );
    assert_eq!(completed.columns.len(), 2);

    // A server-chosen id, an empty result, and repeated column names kept apart.
    send(
        &mut ws,
        "query",
        json!({"sql": "SELECT 1 AS a, 2 AS a WHERE ?", "params": [1]}),
    )
    .await;
    let messages = finish(&mut ws).await;
    let started: QueryStarted = data(&messages[0]);
    assert!(started.query_id.starts_with("q-"), "{}", started.query_id);
    let row: QueryRow = data(&messages[1]);
    assert_eq!(Value::Object(row.row_data), json!({"a": 1, "a:2": 2}));
    assert_eq!(data::<QueryCompleted>(&messages[2]).row_count, 1);
    send(&mut ws, "query", json!({"sql": "SELECT 1 WHERE 0"})).await;
    let messages = finish(&mut ws).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(data::<QueryCompleted>(&messages[1]).row_count, 0);
}

#[tokio::test]
async fn errors_end_the_query_and_keep_the_connection() {
    let live = Live::start(|_| {}).await;
    let token = live.admin_token().await;
    let mut ws = live.query_ws(&token).await;
    let cases = [
        (
            json!({"sql": "SELECT * FROM missing", "query_id": "bad"}),
            "SQL_ERROR",
        ),
        (
            json!({"sql": "SELECT ?", "params": [1, 2]}),
            "INVALID_REQUEST",
        ),
        (json!({"sql": "SELECT 1", "timeout": 0}), "INVALID_REQUEST"),
        (
            json!({"sql": "SELECT 1", "progress_interval_ms": 5}),
            "INVALID_REQUEST",
        ),
        (json!({"sql": "  "}), "INVALID_REQUEST"),
        (
            json!({"sql": "SELECT 1", "query_id": "no spaces"}),
            "INVALID_REQUEST",
        ),
        (json!({"sql": "SELECT 1", "database": "nope"}), "NOT_FOUND"),
        (json!({"sql": "ATTACH 'x.db' AS x"}), "SQL_NOT_AUTHORIZED"),
    ];
    for (request, code) in cases {
        send(&mut ws, "query", request.clone()).await;
        let messages = finish(&mut ws).await;
        let last = messages.last().expect("answer");
        assert_eq!(error_code(last), code, "{request}");
        if let Some(id) = request["query_id"].as_str().filter(|id| !id.contains(' ')) {
            assert_eq!(data::<QueryError>(last).query_id, id);
        }
    }
    // A timeout while the engine works.
    send(&mut ws, "query", json!({"sql": endless(), "timeout": 200})).await;
    let messages = finish(&mut ws).await;
    assert_eq!(
        error_code(messages.last().expect("answer")),
        "QUERY_TIMEOUT"
    );
    // Still usable.
    send(&mut ws, "query", json!({"sql": "SELECT 42 AS n"})).await;
    let messages = finish(&mut ws).await;
    assert_eq!(messages[1]["data"]["row_data"], json!({"n": 42}));
    assert_eq!(messages[2]["message_type"], "query_completed");
}

/// Streamed statements go through the SQL API's executor: a slow one is in the slow-query log
/// (completed or not) and a completed one counts in the sender's session, like over REST.
#[tokio::test]
async fn streamed_statements_reach_the_slow_log_and_the_session_count() {
    let live = Live::start(|c| c.queries.slow_threshold = Duration::from_millis(150)).await;
    let token = live.user("reader", &["analyst"]).await;
    let caller = live.server.bearer(&token);
    let session = || async {
        let r = caller.get("/api/v1/sessions").await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        r.body["sessions"][0].clone()
    };
    assert_eq!(session().await["queries_executed"], 0);
    let mut ws = live.query_ws(&token).await;

    send(
        &mut ws,
        "query",
        json!({"sql": "SELECT 1 AS n", "query_id": "fast"}),
    )
    .await;
    assert_eq!(
        finish(&mut ws).await.last().unwrap()["message_type"],
        "query_completed"
    );
    // Past the threshold for sure: interrupted at its 300 ms timeout.
    send(
        &mut ws,
        "query",
        json!({"sql": endless(), "query_id": "slow", "timeout": 300}),
    )
    .await;
    assert_eq!(
        error_code(finish(&mut ws).await.last().unwrap()),
        "QUERY_TIMEOUT"
    );

    let after = session().await;
    assert_eq!(after["queries_executed"], 1, "{after}");
    assert_eq!(after["database"], "default");
    let log = caller.get("/api/v1/sql/slow-queries").await;
    assert_eq!(log.status.as_u16(), 200, "{}", log.body);
    let entries = log.body["queries"].as_array().expect("queries");
    let slow = entries
        .iter()
        .find(|e| e["sql"] == endless())
        .unwrap_or_else(|| panic!("the streamed statement is not logged: {entries:?}"));
    assert_eq!(slow["outcome"], "failed");
    assert_eq!(slow["user"], "reader");
    assert_eq!(slow["session_id"], after["session_id"]);
    assert!(slow["duration_ms"].as_f64().unwrap() >= 300.0, "{slow}");
    assert!(
        slow["error"].as_str().unwrap().contains("timeout"),
        "{slow}"
    );
    assert!(!entries.iter().any(|e| e["sql"] == "SELECT 1 AS n"));
}

#[tokio::test]
async fn an_analyst_cannot_write_through_the_stream() {
    let live = Live::start(|_| {}).await;
    let admin = live.server.admin().await;
    let r = admin
        .post_json(
            "/api/v1/sql/execute",
            r#"{"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"}"#,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let analyst = live.user("reader", &["analyst"]).await;
    let mut ws = live.query_ws(&analyst).await;
    for sql in [
        "INSERT INTO t (v) VALUES ('x')",
        "INSERT INTO t (v) VALUES ('x') RETURNING id",
        "DELETE FROM t",
        "DROP TABLE t",
        "PRAGMA user_version = 7",
    ] {
        send(&mut ws, "query", json!({ "sql": sql })).await;
        let messages = finish(&mut ws).await;
        assert_eq!(messages.len(), 1, "{sql}: refused before it starts");
        assert_eq!(error_code(&messages[0]), "SQL_NOT_AUTHORIZED", "{sql}");
    }
    let r = admin
        .post_json(
            "/api/v1/sql/query",
            r#"{"sql": "SELECT count(*) AS n FROM t"}"#,
        )
        .await;
    assert_eq!(r.body["rows"], json!([[0]]), "nothing was written");

    // A developer may write, and RETURNING rows stream like any others.
    let developer = live.user("dev", &["developer"]).await;
    let mut ws = live.query_ws(&developer).await;
    send(
        &mut ws,
        "query",
        json!({"sql": "INSERT INTO t (v) VALUES (?), (?) RETURNING id, v", "params": ["a", "b"]}),
    )
    .await;
    let messages = finish(&mut ws).await;
    assert_eq!(messages[1]["data"]["row_data"], json!({"id": 1, "v": "a"}));
    assert_eq!(data::<QueryCompleted>(&messages[3]).row_count, 2);
}

#[tokio::test]
async fn cancel_by_message_or_by_rest_stops_a_long_query() {
    let live = Live::start(|_| {}).await;
    let token = live.user("reader", &["analyst"]).await;
    let mut ws = live.query_ws(&token).await;
    send(
        &mut ws,
        "query",
        json!({"sql": endless(), "query_id": "long-1", "timeout": 120000, "progress_interval_ms": 100}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["message_type"], "query_started");
    // No rows yet: progress comes from SQLite's progress handler while it counts.
    let progress: QueryProgress = data(&until(&mut ws, "query_progress").await);
    assert_eq!(
        (progress.query_id.as_str(), progress.rows_processed),
        ("long-1", 0)
    );
    assert!(progress.vm_steps > 0);
    assert!(live.running(&token).await.contains(&"long-1".to_string()));

    send(&mut ws, "cancel", json!({"query_id": "nope"})).await;
    let m = until(&mut ws, "error").await;
    assert_eq!(m["data"]["code"], "UNKNOWN_QUERY");

    let asked = Instant::now();
    send(&mut ws, "cancel", json!({"query_id": "long-1"})).await;
    let end = until(&mut ws, "query_error").await;
    assert_eq!(error_code(&end), "QUERY_CANCELLED");
    assert!(asked.elapsed() < Duration::from_secs(10));
    live.wait_running(&token, |ids| ids.is_empty()).await;

    // The id is free again; this time POST /api/v1/sql/queries/{id}/cancel stops it.
    send(
        &mut ws,
        "query",
        json!({"sql": endless(), "query_id": "long-1", "timeout": 120000}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["message_type"], "query_started");
    let r = live
        .server
        .bearer(&token)
        .post_json("/api/v1/sql/queries/long-1/cancel", "{}")
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["cancelled"], true);
    let end = until(&mut ws, "query_error").await;
    assert_eq!(error_code(&end), "QUERY_CANCELLED");
}

#[tokio::test]
async fn closing_the_socket_stops_its_queries() {
    let live = Live::start(|_| {}).await;
    let token = live.user("reader", &["analyst"]).await;
    let mut ws = live.query_ws(&token).await;
    send(
        &mut ws,
        "query",
        json!({"sql": endless(), "query_id": "orphan", "timeout": 120000}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["message_type"], "query_started");
    live.wait_running(&token, |ids| ids == ["orphan"]).await;
    ws.close(None).await.expect("close");
    drop(ws);
    live.wait_running(&token, |ids| ids.is_empty()).await;
}

#[tokio::test]
async fn limits_concurrent_queries_and_refuses_ids_in_use() {
    let live = Live::start(|c| c.websocket.max_queries = 1).await;
    let token = live.user("reader", &["analyst"]).await;
    let mut ws = live.query_ws(&token).await;
    send(
        &mut ws,
        "query",
        json!({"sql": endless(), "query_id": "one", "timeout": 120000}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["message_type"], "query_started");
    send(
        &mut ws,
        "query",
        json!({"sql": "SELECT 1", "query_id": "two"}),
    )
    .await;
    let m = until(&mut ws, "query_error").await;
    assert_eq!(error_code(&m), "TOO_MANY_QUERIES");
    assert_eq!(m["data"]["query_id"], "two");

    let mut other = live.query_ws(&token).await;
    send(
        &mut other,
        "query",
        json!({"sql": "SELECT 1", "query_id": "one"}),
    )
    .await;
    assert_eq!(
        error_code(&until(&mut other, "query_error").await),
        "QUERY_ID_IN_USE"
    );

    send(&mut ws, "cancel", json!({"query_id": "one"})).await;
    assert_eq!(
        error_code(&until(&mut ws, "query_error").await),
        "QUERY_CANCELLED"
    );
    send(
        &mut ws,
        "query",
        json!({"sql": "SELECT 1", "query_id": "two"}),
    )
    .await;
    assert_eq!(
        until(&mut ws, "query_completed").await["data"]["query_id"],
        "two"
    );
}

#[tokio::test]
async fn a_slow_reader_holds_the_query_instead_of_filling_memory() {
    let live = Live::start(|_| {}).await;
    let token = live.user("reader", &["analyst"]).await;
    // A small receive buffer, so the kernel holds little of the result for the client.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    let stream = socket.connect(live.addr).await.expect("tcp connect");
    let mut request = format!("ws://{}/api/v1/ws/query", live.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("upgrade");
    let mut ws: Client = ws;
    // About 16 MB of frames: several times what the server's send buffer (at most 4 MB here)
    // and the client's receive buffer hold.
    const N: u64 = 16_000;
    send(
        &mut ws,
        "query",
        json!({
            "sql": format!("{} SELECT x, printf('%01000d', x) AS pad FROM c", counting(N)),
            "query_id": "slow",
            "timeout": 300000,
        }),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["message_type"], "query_started");
    // Read nothing for 6 s. A server that buffered without bound would have produced every
    // frame by then (about 2 s in a debug build on a loaded 2-core machine), and the query would
    // be gone from the running list; this one must still be waiting for the reader.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        live.running(&token).await.contains(&"slow".to_string()),
        "the query waits for the reader"
    );
    let messages = finish(&mut ws).await;
    let last = messages.last().expect("last");
    assert_eq!(last["message_type"], "query_completed", "{last}");
    let rows = messages
        .iter()
        .filter(|m| m["message_type"] == "query_row")
        .count() as u64;
    assert_eq!(rows, N);
    assert_eq!(data::<QueryCompleted>(last).row_count, N);
}

#[tokio::test]
async fn upgrade_needs_credentials_and_database_read() {
    let live = Live::start(|_| {}).await;
    let status = |e: WsError| match e {
        WsError::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    };
    let anonymous = live
        .connect("/api/v1/ws/query", None)
        .await
        .expect_err("refused");
    assert_eq!(status(anonymous), 401);
    let monitor = live.user("watcher", &["monitor"]).await;
    let forbidden = live
        .connect("/api/v1/ws/query", Some(&monitor))
        .await
        .expect_err("refused");
    assert_eq!(status(forbidden), 403);
}

#[tokio::test]
async fn malformed_messages_get_an_error_and_the_connection_stays() {
    let live = Live::start(|_| {}).await;
    let token = live.admin_token().await;
    let mut ws = live.query_ws(&token).await;
    send_text(&mut ws, "{not json".into()).await;
    assert_eq!(
        next_json(&mut ws).await["data"]["code"],
        "MALFORMED_MESSAGE"
    );
    for data in [
        json!({"sql": 5}),
        json!({}),
        json!({"sql": "SELECT 1", "rows": 3}),
    ] {
        send(&mut ws, "query", data).await;
        let m = next_json(&mut ws).await;
        assert_eq!(
            (m["message_type"].as_str(), m["data"]["code"].as_str()),
            (Some("error"), Some("MALFORMED_MESSAGE"))
        );
    }
    send(&mut ws, "cancel", json!({"id": "x"})).await;
    assert_eq!(
        next_json(&mut ws).await["data"]["code"],
        "MALFORMED_MESSAGE"
    );
    send(&mut ws, "ping", json!(1)).await;
    assert_eq!(next_json(&mut ws).await["message_type"], "pong");

    // The other endpoints do not run queries.
    let mut events = live
        .connect("/api/v1/ws", Some(&token))
        .await
        .expect("connect");
    send(&mut events, "query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(
        next_json(&mut events).await["data"]["code"],
        "UNKNOWN_MESSAGE_TYPE"
    );
}
