//! GraphQL subscriptions over transactions, sessions, connection pools and the one-node cluster,
//! over a real graphql-ws client: each fed by real REST activity (transactions with inserts,
//! logins and terminations, an exhausted pool, a data directory that disappears), plus
//! permissions and bad arguments.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::graphql::*;

async fn execute(live: &Live, token: &str, tx: Option<&str>, sql: &str) -> Value {
    let body = json!({"sql": sql, "transaction_id": tx});
    let (status, body) = live
        .rest("POST", "/api/v1/sql/execute", token, Some(body))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn end(live: &Live, token: &str, tx: &str, how: &str) {
    let path = format!("/api/v1/transactions/{tx}/{how}");
    let (status, body) = live.rest("POST", &path, token, None).await;
    assert_eq!(status, 200, "{body}");
}

/// The `next` payloads for subscription `id`, as the seed's fields of `field`, until `n` arrived.
async fn nexts(ws: &mut Client, id: &str, field: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let m = recv_for(ws, id).await;
        got.push(seed_next(&m, id, field).clone());
    }
    got
}

/// Waits until `topic` has `n` subscribers: the subscriptions just sent are listening (a
/// `subscribe` gets no acknowledgement, and its source starts in a task of its own).
async fn listening(live: &Live, topic: &str, n: usize) {
    let topic = live.bus.topic(topic).expect("topic");
    let deadline = tokio::time::Instant::now() + WAIT;
    while topic.subscribers() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} subscribers, not {n}",
            topic.subscribers()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `error` answer to subscription `id`: its `extensions.code`.
async fn refused(ws: &mut Client, id: &str) -> String {
    let m = recv_for(ws, id).await;
    assert_eq!(m["type"], "error", "{m}");
    m["payload"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

#[tokio::test]
async fn transaction_events_follow_begin_commit_and_rollback_with_measured_modified_rows() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    execute(
        &live,
        &admin,
        None,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)",
    )
    .await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "t", &seed_document("transactionEvents", "")).await;
    listening(&live, "transactions", 1).await;

    // Three rows inserted, one of them updated, one more inserted and undone by a savepoint
    // rollback: three distinct rows committed.
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/transactions",
            &admin,
            Some(json!({"mode": "immediate"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let tx = body["transaction_id"].as_str().expect("id").to_string();
    execute(
        &live,
        &admin,
        Some(&tx),
        "INSERT INTO t (v) VALUES (1), (2), (3)",
    )
    .await;
    execute(&live, &admin, Some(&tx), "UPDATE t SET v = 20 WHERE v = 2").await;
    let savepoints = format!("/api/v1/transactions/{tx}/savepoints");
    let (status, _) = live
        .rest("POST", &savepoints, &admin, Some(json!({"name": "s"})))
        .await;
    assert_eq!(status, 200);
    execute(&live, &admin, Some(&tx), "INSERT INTO t (v) VALUES (4)").await;
    let (status, _) = live
        .rest("POST", &format!("{savepoints}/s/rollback"), &admin, None)
        .await;
    assert_eq!(status, 200);
    end(&live, &admin, &tx, "commit").await;

    let events = nexts(&mut ws, "t", "transactionEvents", 2).await;
    let (began, commit) = (&events[0], &events[1]);
    assert_eq!(began["eventType"], "BEGIN", "{began}");
    assert_eq!(began["transactionId"], tx.as_str());
    assert_eq!(began["username"], "admin");
    assert_eq!(began["isolationLevel"], "IMMEDIATE");
    assert_eq!(began["modifiedRows"], 0);
    let session = began["sessionId"].as_str().expect("session").to_string();
    assert!(session.starts_with("login-"), "{began}");
    assert_eq!(commit["eventType"], "COMMIT", "{commit}");
    assert_eq!(commit["transactionId"], tx.as_str());
    assert_eq!(commit["modifiedRows"], 3, "{commit}");
    assert!(commit["durationMs"].as_f64().expect("duration") > 0.0);

    // Only this session's transactions, and none of a session that does not exist.
    subscribe(
        &mut ws,
        "mine",
        &seed_doc("transactionEvents").replace("session-123", &session),
    )
    .await;
    subscribe(&mut ws, "none", &seed_doc("transactionEvents")).await;
    listening(&live, "transactions", 3).await;
    let tx = begin(&live, &admin).await;
    execute(
        &live,
        &admin,
        Some(&tx),
        "INSERT INTO t (v) VALUES (5), (6)",
    )
    .await;
    end(&live, &admin, &tx, "rollback").await;
    let mut mine = Vec::new();
    while mine.len() < 2 {
        let m = recv(&mut ws).await;
        assert_ne!(m["id"], "none", "{m}");
        if m["id"] == "mine" {
            mine.push(seed_next(&m, "mine", "transactionEvents").clone());
        }
    }
    assert_eq!(mine[0]["eventType"], "BEGIN");
    assert_eq!(mine[0]["isolationLevel"], "DEFERRED");
    assert_eq!(mine[1]["eventType"], "ROLLBACK", "{}", mine[1]);
    assert_eq!(mine[1]["modifiedRows"], 2, "{}", mine[1]);
    // The rows really are as the events say: three committed, the rolled-back two gone.
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/sql/query",
            &admin,
            Some(json!({"sql": "SELECT count(*) FROM t"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0][0], 3);
}

#[tokio::test]
async fn session_events_see_a_login_a_termination_and_a_logout() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(
        &mut ws,
        "s",
        &seed_doc("sessionEvents").replace("userFilter: \"admin\"", "userFilter: \"carol\""),
    )
    .await;
    listening(&live, "sessions", 1).await;
    let carol = live.user("carol", &["developer"]).await;
    // A statement of the session, so its figures have something to show.
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/sql/query",
            &carol,
            Some(json!({"sql": "SELECT 1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let login = &nexts(&mut ws, "s", "sessionEvents", 1).await[0];
    assert_eq!(login["eventType"], "LOGIN", "{login}");
    assert_eq!(login["username"], "carol");
    assert_eq!(login["queriesExecuted"], 0);
    assert!(login["userId"].as_str().is_some_and(|u| !u.is_empty()));
    let id = login["sessionId"].as_str().expect("session").to_string();
    assert!(id.starts_with("login-"), "{login}");

    let (status, body) = live
        .rest("DELETE", &format!("/api/v1/sessions/{id}"), &admin, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let ended = &nexts(&mut ws, "s", "sessionEvents", 1).await[0];
    assert_eq!(ended["eventType"], "TERMINATED", "{ended}");
    assert_eq!(ended["sessionId"], id.as_str());
    assert_eq!(ended["queriesExecuted"], 1, "{ended}");
    assert_eq!(ended["database"], "default", "{ended}");
    assert_eq!(ended["connectionTime"], login["connectionTime"]);
    assert!(ended["durationSeconds"].as_f64().expect("duration") >= 0.0);

    let again = live.token("carol", "password-123").await;
    let (status, _) = live.rest("POST", "/api/v1/auth/logout", &again, None).await;
    assert_eq!(status, 204);
    let events = nexts(&mut ws, "s", "sessionEvents", 2).await;
    assert_eq!(events[0]["eventType"], "LOGIN");
    assert_eq!(events[1]["eventType"], "LOGOUT", "{}", events[1]);
    assert_eq!(events[1]["sessionId"], events[0]["sessionId"]);
}

#[tokio::test]
async fn session_events_show_a_non_admin_only_their_own_sessions() {
    let live = Live::start(|_| {}).await;
    let dave = live.user("dave", &["developer"]).await;
    let admin = live.admin().await;
    let body = json!({"username": "erin", "password": "password-123", "roles": ["analyst"]});
    let (status, _) = live
        .rest("POST", "/api/v1/admin/users", &admin, Some(body))
        .await;
    assert_eq!(status, 201);
    let mut ws = live.session(&dave).await;
    subscribe(
        &mut ws,
        "s",
        "subscription { sessionEvents { eventType username } }",
    )
    .await;
    listening(&live, "sessions", 1).await;
    // Erin's login first, then Dave's own: Dave is told only of his.
    live.token("erin", "password-123").await;
    live.token("dave", "password-123").await;
    let m = recv_for(&mut ws, "s").await;
    assert_eq!(
        m["payload"]["data"]["sessionEvents"],
        json!({"eventType": "LOGIN", "username": "dave"}),
        "{m}"
    );
}

#[tokio::test]
async fn connection_pool_events_report_an_exhausted_pool() {
    let live = Live::start(|c| {
        c.pool.max_connections = 1;
        c.pool.acquire_timeout = Duration::from_millis(200);
    })
    .await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(
        &mut ws,
        "p",
        &seed_doc("connectionPoolEvents").replace("main-pool", "default"),
    )
    .await;
    subscribe(&mut ws, "other", &seed_doc("connectionPoolEvents")).await;
    listening(&live, "connection_pool", 2).await;
    // The transaction holds the pool's only connection; a statement outside it is refused.
    let tx = begin(&live, &admin).await;
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/sql/query",
            &admin,
            Some(json!({"sql": "SELECT 1"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "POOL_EXHAUSTED");
    let exhausted = loop {
        let m = recv(&mut ws).await;
        assert_ne!(m["id"], "other", "{m}");
        let e = seed_next(&m, "p", "connectionPoolEvents").clone();
        assert_eq!(e["poolId"], "default");
        if e["eventType"] == "EXHAUSTED" {
            break e;
        }
    };
    assert_eq!(exhausted["activeConnections"], 1, "{exhausted}");
    assert_eq!(exhausted["idleConnections"], 0);
    assert_eq!(exhausted["totalConnections"], 1);
    assert_eq!(
        exhausted["waitingRequests"], 0,
        "the refused caller no longer waits"
    );
    end(&live, &admin, &tx, "rollback").await;
}

#[tokio::test]
async fn the_cluster_subscriptions_report_this_node_and_its_health_changes() {
    let live = Live::start(|c| {
        c.health.watch_interval = Duration::from_millis(200);
    })
    .await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "topo", &seed_doc("clusterTopologyChanges")).await;
    let current = nexts(&mut ws, "topo", "clusterTopologyChanges", 1).await[0].clone();
    assert_eq!(current["eventType"], "CURRENT", "{current}");
    assert_eq!(current["role"], "PRIMARY");
    assert!(current["previousStatus"].is_null());
    assert!(current["nodeName"].as_str().is_some_and(|n| !n.is_empty()));
    let id = current["nodeId"].as_str().expect("id").to_string();
    assert!(id.starts_with("node-"), "{current}");
    // The id is the one kept in system.db, so a restart finds the same.
    let stored = live
        .system_db
        .call(|c| {
            Ok(c.query_row(
                "SELECT value FROM settings WHERE key = 'node_id'",
                [],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
        .expect("settings");
    assert_eq!(stored, id);

    subscribe(
        &mut ws,
        "repl",
        &seed_doc("replicationStatus")
            .replace("replica-1", &id)
            .replace("intervalSeconds: 10", "intervalSeconds: 1"),
    )
    .await;
    for r in nexts(&mut ws, "repl", "replicationStatus", 2).await {
        assert_eq!(r["nodeId"], id.as_str());
        assert_eq!(r["role"], "PRIMARY");
        assert_eq!(r["state"], "STANDALONE");
        assert_eq!(r["isHealthy"], true, "{r}");
        for none in [
            "lagBytes",
            "lagSeconds",
            "lastWalReceived",
            "lastWalApplied",
        ] {
            assert!(r[none].is_null(), "{r}");
        }
    }
    subscribe(
        &mut ws,
        "node",
        &seed_doc("nodeHealthChanges").replace("node-1", &id),
    )
    .await;
    let first = nexts(&mut ws, "node", "nodeHealthChanges", 1).await[0].clone();
    assert_eq!(first["nodeId"], id.as_str());
    assert_ne!(first["healthStatus"], "unhealthy", "{first}");
    let memory = first["memoryUsage"].as_f64().expect("memory");
    assert!(memory > 0.0 && memory <= 100.0, "{first}");
    assert!(
        first["cpuUsage"].as_f64().is_some_and(|c| c >= 0.0),
        "{first}"
    );
    let disk = first["diskUsage"].as_f64().expect("disk");
    assert!(disk > 0.0 && disk <= 100.0, "{first}");

    // The data directory disappears: the health watcher finds the node unhealthy.
    std::fs::remove_dir_all(live._dir.path()).expect("remove data dir");
    let mut seen = (false, false);
    while seen != (true, true) {
        let m = recv(&mut ws).await;
        match m["id"].as_str() {
            Some("topo") => {
                let t = seed_next(&m, "topo", "clusterTopologyChanges");
                assert_eq!(t["eventType"], "STATUS_CHANGED", "{t}");
                assert_eq!(t["status"], "unhealthy");
                assert_eq!(t["previousStatus"], current["status"]);
                assert_eq!(t["nodeId"], id.as_str());
                seen.0 = true;
            }
            Some("node") => {
                let n = seed_next(&m, "node", "nodeHealthChanges");
                if n["healthStatus"] == "unhealthy" {
                    seen.1 = true;
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_new_subscriptions_refuse_missing_permissions_and_bad_arguments() {
    let live = Live::start(|_| {}).await;
    // An analyst reads data but not system or cluster figures; a monitor the reverse.
    let analyst = live.user("ana", &["analyst"]).await;
    let monitor = live.user("mo", &["monitor"]).await;
    let mut ws = live.session(&analyst).await;
    for (id, doc) in [
        ("pool", "subscription { connectionPoolEvents { poolId } }"),
        ("topo", "subscription { clusterTopologyChanges { nodeId } }"),
        ("repl", "subscription { replicationStatus { nodeId } }"),
        ("node", "subscription { nodeHealthChanges { nodeId } }"),
    ] {
        subscribe(&mut ws, id, doc).await;
        assert_eq!(refused(&mut ws, id).await, "FORBIDDEN", "{id}");
    }
    let mut ws = live.session(&monitor).await;
    subscribe(
        &mut ws,
        "tx",
        "subscription { transactionEvents { transactionId } }",
    )
    .await;
    assert_eq!(refused(&mut ws, "tx").await, "FORBIDDEN");

    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    // Another node than this one, an interval out of range, an argument of the wrong type.
    subscribe(&mut ws, "other", &seed_doc("replicationStatus")).await;
    assert_eq!(refused(&mut ws, "other").await, "NOT_FOUND");
    subscribe(&mut ws, "node", &seed_doc("nodeHealthChanges")).await;
    assert_eq!(refused(&mut ws, "node").await, "NOT_FOUND");
    subscribe(
        &mut ws,
        "interval",
        "subscription { replicationStatus(intervalSeconds: 0) { nodeId } }",
    )
    .await;
    assert_eq!(refused(&mut ws, "interval").await, "INVALID_ARGUMENT");
    subscribe(
        &mut ws,
        "type",
        "subscription { connectionPoolEvents(poolId: 5) { poolId } }",
    )
    .await;
    let m = recv_for(&mut ws, "type").await;
    assert_eq!(m["type"], "error", "{m}");
    // The connection survives all of it.
    subscribe(
        &mut ws,
        "ok",
        "subscription { heartbeat(intervalSeconds: 1) { sequence } }",
    )
    .await;
    assert_eq!(recv_for(&mut ws, "ok").await["type"], "next");
}

/// A `/api/v1/ws` client with `token`, subscribed to `topic`: the answer to the subscription.
async fn ws_topic(live: &Live, token: &str, topic: &str) -> (Client, Value) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/v1/ws", live.addr)
        .into_client_request()
        .expect("request");
    let bearer = format!("Bearer {token}").parse().expect("header");
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let subscribe = json!({"message_type": "subscribe", "data": {"topic": topic}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("send");
    let answer = recv(&mut ws).await;
    (ws, answer)
}

#[tokio::test]
async fn the_sessions_topic_is_for_database_admins_on_the_websocket_api() {
    let live = Live::start(|_| {}).await;
    let developer = live.user("dev", &["developer"]).await;
    let (_, refused) = ws_topic(&live, &developer, "sessions").await;
    assert_eq!(refused["data"]["code"], "FORBIDDEN_TOPIC", "{refused}");
    let admin = live.admin().await;
    let (mut ws, ack) = ws_topic(&live, &admin, "sessions").await;
    assert_eq!(ack["message_type"], "subscription_ack", "{ack}");
    live.token("dev", "password-123").await;
    let event = recv(&mut ws).await;
    assert_eq!(event["message_type"], "session_event", "{event}");
    assert_eq!(event["data"]["event_type"], "LOGIN");
    assert_eq!(event["data"]["kind"], "login");
    assert_eq!(event["data"]["username"], "dev");
}
