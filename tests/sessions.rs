//! Sessions (list, get, terminate that really ends them), running-query state and progress, the
//! slow-query log, plan tracking and connection-pool statistics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::StreamExt;
use rustydb::config::{Config, Secret};
use rustydb::server::Server;
use rustydb::telemetry::LogControl;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{ADMIN_PASSWORD, Caller, TestServer};

/// Endless unless interrupted; returns a row every 100,000 steps of the recursion.
const ENDLESS_ROWS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x % 100000 = 0";

async fn sessions_of(c: &Caller<'_>) -> Vec<Value> {
    let r = c.get("/api/v1/sessions").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["total"].as_u64(),
        Some(r.body["sessions"].as_array().expect("sessions").len() as u64)
    );
    r.body["sessions"].as_array().expect("sessions").clone()
}

/// The caller's one session (it has logged in once).
async fn own_session(c: &Caller<'_>) -> Value {
    let sessions = sessions_of(c).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions[0].clone()
}

/// Polls `probe` until it yields a value, failing after 10 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sessions_are_listed_with_their_activity_and_scoped_to_their_user() {
    let server = TestServer::new().await;
    let dev = server
        .user_with_roles("dev", &["developer"])
        .await
        .peer("10.1.2.3");
    let analyst = server.user_with_roles("ana", &["analyst"]).await;
    let admin = server.admin().await;

    let before = own_session(&dev).await;
    assert!(before["session_id"].as_str().unwrap().starts_with("login-"));
    assert_eq!(before["kind"], "login");
    assert_eq!(before["username"], "dev");
    assert_eq!(before["queries_executed"], 0);
    assert_eq!(before["database"], Value::Null);
    assert_eq!(before["client_address"], "10.1.2.3");

    let r = dev
        .post_json("/api/v1/sql/query", r#"{"sql": "SELECT 1"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let txn = dev.post_json("/api/v1/transactions", "{}").await.body["transaction_id"]
        .as_str()
        .expect("txn")
        .to_string();
    let after = own_session(&dev).await;
    assert_eq!(after["queries_executed"], 1);
    assert_eq!(after["database"], "default");
    assert_eq!(after["open_transactions"], json!([txn]));
    assert_eq!(after["connected_at"], before["connected_at"]);

    // Others see only their own; database:admin sees everyone's.
    let id = after["session_id"].as_str().unwrap();
    assert_eq!(own_session(&analyst).await["username"], "ana");
    analyst
        .get(&format!("/api/v1/sessions/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    analyst
        .delete(&format!("/api/v1/sessions/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let all = sessions_of(&admin).await;
    assert!(all.iter().any(|s| s["session_id"] == id));
    assert!(all.iter().any(|s| s["username"] == "ana"));
    let one = admin.get(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["username"], "dev");

    admin
        .get("/api/v1/sessions/login-nope")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    server
        .get("/api/v1/sessions")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);

    // Logout ends the session.
    let r = analyst.post_json("/api/v1/auth/logout", "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(
        !sessions_of(&admin)
            .await
            .iter()
            .any(|s| s["username"] == "ana")
    );
}

#[tokio::test]
async fn api_key_sessions_start_at_first_use_and_terminating_revokes_the_key() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let created = dev
        .post_json("/api/v1/auth/api-keys", r#"{"name": "ci"}"#)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key_id = created.body["id"].as_str().unwrap().to_string();
    let by_key = server
        .anon()
        .header("x-api-key", created.body["api_key"].as_str().unwrap());
    let id = format!("apikey-{key_id}");
    assert!(
        !sessions_of(&dev)
            .await
            .iter()
            .any(|s| s["session_id"] == id)
    );

    let r = by_key
        .post_json("/api/v1/sql/query", r#"{"sql": "SELECT 1"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let session = dev.get(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    assert_eq!(session.body["kind"], "api_key");
    assert_eq!(session.body["queries_executed"], 1);

    let r = dev.delete(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["credential_revoked"], "api_key");
    by_key
        .get("/api/v1/auth/validate")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    dev.delete(&format!("/api/v1/sessions/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // The caller's own login session is untouched.
    assert_eq!(
        dev.get("/api/v1/auth/validate").await.status,
        StatusCode::OK
    );
}

/// A server on a real socket, for WebSocket clients; REST goes through the router.
struct Live {
    addr: SocketAddr,
    app: axum::Router,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Live {
    async fn start() -> Live {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path());
        config.security.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.security.login_attempts_per_minute = 10_000;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::start(config, LogControl::detached(), Instant::now())
            .await
            .expect("start");
        let app = server.app();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Live {
            addr,
            app,
            _stop: stop,
            _dir: dir,
        }
    }

    async fn rest(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        use tower::ServiceExt;
        let mut request = axum::http::Request::builder().method(method).uri(path);
        if !token.is_empty() {
            request = request.header("authorization", format!("Bearer {token}"));
        }
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

    async fn login(&self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .rest(
                "POST",
                "/api/v1/auth/login",
                "",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

#[tokio::test]
async fn terminating_a_login_session_really_ends_it() {
    let live = Live::start().await;
    let admin = live.login("admin", ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/admin/users",
            &admin,
            Some(json!({"username": "dev", "password": "password-123", "roles": ["developer"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tokens = live.login("dev", "password-123").await;
    let dev = tokens["access_token"].as_str().unwrap().to_string();

    // An open transaction, a WebSocket connection and a statement running.
    let (status, txn) = live
        .rest("POST", "/api/v1/transactions", &dev, Some(json!({})))
        .await;
    assert_eq!(status, 201, "{txn}");
    let txn = txn["transaction_id"].as_str().unwrap().to_string();
    let mut request = format!("ws://{}/api/v1/ws", live.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {dev}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let running = {
        let (live, dev) = (&live, dev.clone());
        async move {
            live.rest(
                "POST",
                "/api/v1/sql/query",
                &dev,
                Some(json!({"sql": ENDLESS_ROWS, "timeout": 60000})),
            )
            .await
        }
    };
    let terminate = async {
        let (_, sessions) = live.rest("GET", "/api/v1/sessions", &dev, None).await;
        let session = sessions["sessions"][0].clone();
        let id = session["session_id"].as_str().unwrap().to_string();
        assert_eq!(session["open_transactions"], json!([txn]));
        assert_eq!(
            session["websocket_connections"].as_array().unwrap().len(),
            1
        );
        eventually("the statement to run", || async {
            let (_, s) = live
                .rest("GET", &format!("/api/v1/sessions/{id}"), &dev, None)
                .await;
            (s["running_queries"].as_array()?.len() == 1).then_some(())
        })
        .await;
        let (status, ended) = live
            .rest("DELETE", &format!("/api/v1/sessions/{id}"), &admin, None)
            .await;
        assert_eq!(status, 200, "{ended}");
        (id, ended)
    };
    let started = Instant::now();
    let ((status, body), (id, ended)) = tokio::join!(running, terminate);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(status, 409, "the running statement was interrupted: {body}");
    assert_eq!(body["error"]["code"], "QUERY_CANCELLED");
    assert_eq!(ended["credential_revoked"], "login");
    assert_eq!(ended["queries_cancelled"], 1);
    assert_eq!(ended["transactions_rolled_back"], json!([txn]));
    assert_eq!(
        ended["websocket_connections_closed"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The WebSocket is closed with 4009.
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => break None,
            }
        }
    })
    .await
    .expect("the WebSocket was not closed");
    assert_eq!(code, Some(4009));
    // Access and refresh tokens are dead, the transaction is gone, the session too.
    let (status, _) = live.rest("GET", "/api/v1/auth/validate", &dev, None).await;
    assert_eq!(status, 401);
    let (status, _) = live
        .rest(
            "POST",
            "/api/v1/auth/refresh",
            "",
            Some(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 401);
    let (_, info) = live
        .rest("GET", &format!("/api/v1/transactions/{txn}"), &admin, None)
        .await;
    assert_eq!(info["state"], "rolled_back", "{info}");
    assert_eq!(info["end_reason"], "session terminated");
    let (status, _) = live
        .rest("DELETE", &format!("/api/v1/sessions/{id}"), &admin, None)
        .await;
    assert_eq!(status, 404, "terminating twice");
}

#[tokio::test]
async fn running_queries_report_session_state_and_rows_so_far() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let session = own_session(&dev).await["session_id"].clone();
    let long = async {
        dev.post_json(
            "/api/v1/sql/query",
            &json!({"sql": ENDLESS_ROWS, "timeout": 60000}).to_string(),
        )
        .await
    };
    let watch = async {
        let q = eventually("rows to be produced", || async {
            let list = dev.get("/api/v1/sql/queries").await;
            let q = list.body["queries"].get(0)?.clone();
            (q["rows_so_far"].as_u64()? >= 2).then_some(q)
        })
        .await;
        assert_eq!(q["state"], "executing");
        assert_eq!(q["session_id"], session);
        let id = q["query_id"].as_str().unwrap();
        let r = dev
            .post_json(&format!("/api/v1/sql/queries/{id}/cancel"), "")
            .await;
        assert_eq!(r.body["cancelled"], true);
    };
    let (long, ()) = tokio::join!(long, watch);
    assert_eq!(long.assert_error(StatusCode::CONFLICT), "QUERY_CANCELLED");
}

#[tokio::test]
async fn slow_statements_are_logged_with_their_user_and_rows() {
    let server = TestServer::with_config(|c| {
        c.queries.slow_threshold = Duration::from_millis(250);
    })
    .await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let other = server.user_with_roles("other", &["developer"]).await;
    let admin = server.admin().await;

    let fast = dev
        .post_json("/api/v1/sql/query", r#"{"sql": "SELECT 1"}"#)
        .await;
    assert_eq!(fast.status, StatusCode::OK);
    // Runs past the threshold for sure: it is interrupted at its 400 ms timeout.
    let timed_out = dev
        .post_json(
            "/api/v1/sql/query",
            &json!({"sql": ENDLESS_ROWS, "timeout": 400}).to_string(),
        )
        .await;
    timed_out.assert_error(StatusCode::REQUEST_TIMEOUT);
    let slow = dev
        .post_json(
            "/api/v1/sql/query",
            r#"{"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000) SELECT count(*) FROM c"}"#,
        )
        .await;
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.body);
    let took = slow.body["elapsed_ms"].as_f64().unwrap();

    let log = dev.get("/api/v1/sql/slow-queries").await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    assert_eq!(log.body["threshold_ms"], 250);
    let entries = log.body["queries"].as_array().unwrap();
    if took >= 250.0 {
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0]["outcome"], "completed");
        assert_eq!(entries[0]["rows"], 1);
        assert!(entries[0]["sql"].as_str().unwrap().contains("LIMIT 300000"));
        assert!(entries[0]["id"].as_u64() > entries[1]["id"].as_u64());
    }
    let failed = entries.last().unwrap();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["user"], "dev");
    assert_eq!(failed["database"], "default");
    assert!(failed["duration_ms"].as_f64().unwrap() >= 400.0);
    assert!(failed["error"].as_str().unwrap().contains("timeout"));
    assert!(!entries.iter().any(|e| e["sql"] == "SELECT 1"));

    assert_eq!(other.get("/api/v1/sql/slow-queries").await.body["total"], 0);
    // `total` counts every entry the caller may see, not the page (#16 item 12).
    let all = admin.get("/api/v1/sql/slow-queries?limit=1").await;
    assert_eq!(all.body["queries"].as_array().unwrap().len(), 1);
    assert_eq!(all.body["total"], entries.len(), "{}", all.body);
    dev.get("/api/v1/sql/slow-queries?limit=0")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    dev.get("/api/v1/sql/slow-queries?limit=lots")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_plan_change_is_recorded_after_create_index() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    for sql in [
        "CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, qty INTEGER)",
        "INSERT INTO items (sku, qty) VALUES ('a', 1), ('b', 2), ('c', 3)",
    ] {
        let r = dev
            .post_json("/api/v1/sql/execute", &json!({ "sql": sql }).to_string())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let run = |sku: &'static str| {
        let dev = dev.clone();
        async move {
            let r = dev
                .post_json(
                    "/api/v1/sql/query",
                    &json!({ "sql": format!("SELECT qty FROM items WHERE sku = '{sku}'") })
                        .to_string(),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    };
    run("a").await;
    run("b").await;
    let plans = admin.get("/api/v1/sql/plans").await;
    assert_eq!(plans.status, StatusCode::OK, "{}", plans.body);
    let tracked = plans.body["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["normalized_sql"] == "SELECT qty FROM items WHERE sku = ?")
        .cloned()
        .expect("the query is tracked");
    assert_eq!(tracked["executions"], 2);
    assert_eq!(tracked["plan_changes"], 0);
    assert!(
        tracked["plan"][0]
            .as_str()
            .unwrap()
            .starts_with("SCAN items"),
        "{tracked}"
    );
    let hash = tracked["query_hash"].as_str().unwrap().to_string();

    let r = dev
        .post_json(
            "/api/v1/sql/execute",
            r#"{"sql": "CREATE INDEX items_sku ON items (sku)"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    run("c").await;
    let changes = admin
        .get(&format!("/api/v1/sql/plans/changes?query_hash={hash}"))
        .await;
    assert_eq!(changes.status, StatusCode::OK, "{}", changes.body);
    assert_eq!(changes.body["total"], 1, "{}", changes.body);
    let change = &changes.body["changes"][0];
    assert!(
        change["old_plan"][0]
            .as_str()
            .unwrap()
            .starts_with("SCAN items")
    );
    assert!(
        change["new_plan"][0]
            .as_str()
            .unwrap()
            .starts_with("SEARCH items USING INDEX items_sku"),
        "{change}"
    );
    assert!(
        change["reason"]
            .as_str()
            .unwrap()
            .starts_with("schema changed")
    );
    let plans = admin.get("/api/v1/sql/plans").await;
    let tracked = plans.body["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["query_hash"] == hash.as_str())
        .cloned()
        .unwrap();
    assert_eq!(tracked["executions"], 3);
    assert_eq!(tracked["plan_changes"], 1);

    // Unchanged schema: no re-check, no change. Other hashes have none.
    run("a").await;
    assert_eq!(
        admin.get("/api/v1/sql/plans/changes").await.body["total"],
        1
    );
    assert_eq!(
        admin
            .get("/api/v1/sql/plans/changes?query_hash=0000")
            .await
            .body["total"],
        0
    );
    dev.get("/api/v1/sql/plans")
        .await
        .assert_error(StatusCode::FORBIDDEN);
    dev.get("/api/v1/sql/plans/changes")
        .await
        .assert_error(StatusCode::FORBIDDEN);
}

async fn pool(c: &Caller<'_>) -> Value {
    let r = c.get("/api/v1/databases/default/pool").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn pool_statistics_count_active_idle_and_waiting_callers() {
    let server = TestServer::with_config(|c| c.pool.max_connections = 1).await;
    let admin = server.admin().await;
    let stats = pool(&admin).await;
    assert_eq!(stats["max_connections"], 1);
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["idle"], 1);
    assert_eq!(
        (stats["active"].clone(), stats["waiting"].clone()),
        (json!(0), json!(0))
    );

    // A transaction holds the only connection; a statement then waits for it.
    let txn = admin.post_json("/api/v1/transactions", "{}").await;
    assert_eq!(txn.status, StatusCode::CREATED, "{}", txn.body);
    let txn = txn.body["transaction_id"].as_str().unwrap().to_string();
    let stats = pool(&admin).await;
    assert_eq!(
        (stats["active"].clone(), stats["idle"].clone()),
        (json!(1), json!(0))
    );
    let waiting = async {
        admin
            .post_json("/api/v1/sql/query", r#"{"sql": "SELECT 42 AS answer"}"#)
            .await
    };
    let release = async {
        eventually("a waiting caller", || async {
            (pool(&admin).await["waiting"] == 1).then_some(())
        })
        .await;
        let q = admin.get("/api/v1/sql/queries").await;
        assert_eq!(q.body["queries"][0]["state"], "waiting", "{}", q.body);
        let r = admin
            .post_json(&format!("/api/v1/transactions/{txn}/rollback"), "")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    };
    let (answer, ()) = tokio::join!(waiting, release);
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["rows"], json!([[42]]));
    let stats = pool(&admin).await;
    assert_eq!(stats["waiting"], 0);
    assert_eq!(stats["total"], 1);

    admin
        .get("/api/v1/databases/nope/pool")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let dev = server.user_with_roles("dev", &["developer"]).await;
    dev.get("/api/v1/databases/default/pool")
        .await
        .assert_error(StatusCode::FORBIDDEN);
    let monitor = server.user_with_roles("mon", &["monitor"]).await;
    assert_eq!(pool(&monitor).await["database"], "default");
}

#[tokio::test]
async fn a_caller_that_waits_past_the_acquire_timeout_gets_503() {
    let server = TestServer::with_config(|c| {
        c.pool.max_connections = 1;
        c.pool.acquire_timeout = Duration::from_millis(200);
    })
    .await;
    let admin = server.admin().await;
    let txn = admin.post_json("/api/v1/transactions", "{}").await;
    assert_eq!(txn.status, StatusCode::CREATED, "{}", txn.body);
    let r = admin
        .post_json("/api/v1/sql/query", r#"{"sql": "SELECT 1"}"#)
        .await;
    assert_eq!(
        r.assert_error(StatusCode::SERVICE_UNAVAILABLE),
        "POOL_EXHAUSTED"
    );
    assert_eq!(pool(&admin).await["waiting"], 0);
}
