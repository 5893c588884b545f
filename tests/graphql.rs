//! GraphQL over a real TCP client: the seed's connection flow, the graphql-ws close codes,
//! subscriptions fed by REST writes, permissions, the legacy subprotocol, and the contract checks
//! (seed documents validate; the served schema equals generated/schema.graphql). The client and
//! server helpers are in `support::graphql`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::graphql::*;

const SEED_STEP_4: &str = "subscription { tableChanges(table: \"users\") { table changeType row { id data } timestamp } }";

#[tokio::test]
async fn seed_flow_table_changes_sees_a_rest_insert_within_a_second() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "users",
        json!([
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "username", "type": "TEXT"}
        ]),
    )
    .await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "sub-1", SEED_STEP_4).await;
    // A heartbeat-free way to know the subscription is live: a ping answered after it.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let inserted = Instant::now();
    live.insert(&admin, "users", json!({"id": 1234, "username": "alice"}))
        .await;
    let next = recv(&mut ws).await;
    assert!(
        inserted.elapsed() < Duration::from_secs(1),
        "took {:?}",
        inserted.elapsed()
    );
    assert_eq!(next["id"], "sub-1");
    assert_eq!(next["type"], "next");
    let change = &next["payload"]["data"]["tableChanges"];
    assert_eq!(change["table"], "users");
    assert_eq!(change["changeType"], "INSERT");
    assert_eq!(change["row"]["id"], "1234");
    let data: Value =
        serde_json::from_str(change["row"]["data"].as_str().expect("data text")).expect("json");
    assert_eq!(data, json!({"id": 1234, "username": "alice"}));
    assert!(
        chrono::DateTime::parse_from_rfc3339(change["timestamp"].as_str().expect("ts")).is_ok()
    );
    // The client ends it; nothing more arrives for it.
    send(&mut ws, json!({"id": "sub-1", "type": "complete"})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
}

#[tokio::test]
async fn connection_init_with_bad_credentials_is_closed_4403() {
    let live = Live::start(|_| {}).await;
    let mut ws = live.connect("graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": "Bearer not-a-token"}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4403);
    let mut ws = live.connect("graphql-transport-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(close_code(&mut ws).await, 4403);
    let mut ws = live.connect("graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": "rustydb_not_a_key"}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4403);
}

#[tokio::test]
async fn protocol_violations_get_their_close_codes() {
    let live =
        Live::start(|c| c.graphql.connection_init_timeout = Duration::from_millis(300)).await;
    let admin = live.admin().await;
    // 4400: not a protocol message.
    let mut ws = live.connect("graphql-transport-ws").await;
    ws.send(Message::Text("not json".into()))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, 4400);
    // 4401: subscribe before the ack.
    let mut ws = live.connect("graphql-transport-ws").await;
    subscribe(&mut ws, "a", "subscription { heartbeat { sequence } }").await;
    assert_eq!(close_code(&mut ws).await, 4401);
    // 4408: no connection_init in time.
    let mut ws = live.connect("graphql-transport-ws").await;
    assert_eq!(close_code(&mut ws).await, 4408);
    // 4409: an id already running.
    let mut ws = live.session(&admin).await;
    subscribe(
        &mut ws,
        "same",
        "subscription { heartbeat(intervalSeconds: 60) { sequence } }",
    )
    .await;
    subscribe(
        &mut ws,
        "same",
        "subscription { heartbeat(intervalSeconds: 60) { sequence } }",
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4409);
    // 4429: a second connection_init.
    let mut ws = live.session(&admin).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 4429);
}

#[tokio::test]
async fn subscription_cap_refuses_the_operation_past_the_limit() {
    let live = Live::start(|c| c.graphql.max_subscriptions = 2).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    for id in ["1", "2", "3"] {
        subscribe(
            &mut ws,
            id,
            "subscription { heartbeat(intervalSeconds: 60) { sequence } }",
        )
        .await;
    }
    let refused = recv(&mut ws).await;
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
}

#[tokio::test]
async fn row_inserted_with_where_clause_receives_only_matching_rows() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "orders",
        json!([
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "status", "type": "TEXT"}
        ]),
    )
    .await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "o", r#"subscription { rowInserted(table: "orders", whereClause: {field: "status", operator: EQ, value: "pending"}) { table row { id data } timestamp } }"#).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    live.insert(&admin, "orders", json!({"id": 1, "status": "shipped"}))
        .await;
    live.insert(&admin, "orders", json!({"id": 2, "status": "pending"}))
        .await;
    live.insert(&admin, "orders", json!({"id": 3, "status": "shipped"}))
        .await;
    live.insert(&admin, "orders", json!({"id": 4, "status": "pending"}))
        .await;
    let ids: Vec<Value> = [recv(&mut ws).await, recv(&mut ws).await]
        .iter()
        .map(|m| m["payload"]["data"]["rowInserted"]["row"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("2"), json!("4")]);
}

#[tokio::test]
async fn aggregate_changes_are_correct_after_writes() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "sales",
        json!([
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "amount", "type": "REAL"}
        ]),
    )
    .await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "agg", r#"subscription { aggregateChanges(table: "sales", aggregates: [{function: SUM, field: "amount"}, {function: COUNT, field: "*"}, {function: MAX, field: "amount"}], intervalSeconds: 1) { table results { function field value } timestamp } }"#).await;
    let first = recv(&mut ws).await;
    assert_eq!(
        first["payload"]["data"]["aggregateChanges"]["results"],
        json!([
            {"function": "SUM", "field": "amount", "value": null},
            {"function": "COUNT", "field": "*", "value": 0.0},
            {"function": "MAX", "field": "amount", "value": null},
        ])
    );
    for (id, amount) in [(1, 10.5), (2, 20.0), (3, 4.5)] {
        live.insert(&admin, "sales", json!({"id": id, "amount": amount}))
            .await;
    }
    let expected = json!([
        {"function": "SUM", "field": "amount", "value": 35.0},
        {"function": "COUNT", "field": "*", "value": 3.0},
        {"function": "MAX", "field": "amount", "value": 20.5 - 0.5},
    ]);
    // Recomputed at most once a second, so the writes may land in one or several results; the
    // last one must show all three.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = recv(&mut ws).await;
        let results = &m["payload"]["data"]["aggregateChanges"]["results"];
        if *results == expected {
            break;
        }
        assert!(Instant::now() < deadline, "last results {results}");
    }
}

#[tokio::test]
async fn query_changes_reflect_an_insert_and_a_delete() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "inventory",
        json!([
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "stock", "type": "INTEGER"}
        ]),
    )
    .await;
    live.insert(&admin, "inventory", json!({"id": 1, "stock": 50}))
        .await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "q", r#"subscription { queryChanges(table: "inventory", whereClause: {field: "stock", operator: LT, value: "10"}, pollIntervalSeconds: 30) { table rows { id data } totalCount timestamp } }"#).await;
    let total = |m: &Value| m["payload"]["data"]["queryChanges"]["totalCount"].clone();
    assert_eq!(total(&recv(&mut ws).await), json!(0));
    live.insert(&admin, "inventory", json!({"id": 2, "stock": 5}))
        .await;
    let m = recv(&mut ws).await;
    assert_eq!(total(&m), json!(1));
    assert_eq!(m["payload"]["data"]["queryChanges"]["rows"][0]["id"], "2");
    let (status, body) = live
        .rest(
            "DELETE",
            "/api/v1/databases/default/tables/inventory/rows/2",
            &admin,
            None,
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let m = recv(&mut ws).await;
    assert_eq!(total(&m), json!(0));
    assert_eq!(m["payload"]["data"]["queryChanges"]["rows"], json!([]));
}

/// The transport starts an operation before it reads the next client message, so a `ping` sent
/// right after `subscribe` is answered after the refusal, and once the `pong` arrives the
/// subscription is live: a change made then is delivered. The SDKs' `ready` relies on this.
#[tokio::test]
async fn a_pong_after_subscribe_means_the_operation_has_started() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(&admin, "users", json!([{"name": "id", "type": "INTEGER", "primary_key": true}, {"name": "name", "type": "TEXT"}]))
        .await;
    let monitor = live.user("watcher", &["monitor"]).await;
    let mut ws = live.session(&monitor).await;
    for id in 0..50 {
        subscribe(&mut ws, &format!("x{id}"), SEED_STEP_4).await;
    }
    send(&mut ws, json!({"type": "ping"})).await;
    for id in 0..50 {
        let refused = recv(&mut ws).await;
        assert_eq!(
            (refused["type"].as_str(), refused["id"].as_str()),
            (Some("error"), Some(format!("x{id}").as_str()))
        );
    }
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "t", SEED_STEP_4).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    live.insert(&admin, "users", json!({"id": 1, "name": "ada"}))
        .await;
    let change = recv(&mut ws).await;
    assert_eq!(change["id"], "t");
    assert_eq!(
        change["payload"]["data"]["tableChanges"]["changeType"],
        "INSERT"
    );
}

#[tokio::test]
async fn a_subscription_without_its_permission_is_refused() {
    let live = Live::start(|_| {}).await;
    let monitor = live.user("watcher", &["monitor"]).await;
    let mut ws = live.session(&monitor).await;
    subscribe(&mut ws, "x", SEED_STEP_4).await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["id"], "x");
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    // The connection stays usable for what the role may do.
    subscribe(
        &mut ws,
        "h",
        "subscription { heartbeat(intervalSeconds: 1) { sequence } }",
    )
    .await;
    assert_eq!(
        recv(&mut ws).await["payload"]["data"]["heartbeat"]["sequence"],
        1
    );
}

#[tokio::test]
async fn the_legacy_graphql_ws_subprotocol_works() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.connect("graphql-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    assert_eq!(recv(&mut ws).await["type"], "ka");
    send(&mut ws, json!({"id": "1", "type": "start", "payload": {"query": "subscription { heartbeat(intervalSeconds: 1) { sequence timestamp } }"}})).await;
    let data = recv(&mut ws).await;
    assert_eq!(data["type"], "data");
    assert_eq!(data["payload"]["data"]["heartbeat"]["sequence"], 1);
    send(&mut ws, json!({"id": "1", "type": "stop"})).await;
    send(&mut ws, json!({"type": "connection_terminate"})).await;
    assert_eq!(close_code(&mut ws).await, 1000);
}

#[tokio::test]
async fn the_legacy_subprotocol_keeps_sending_ka_while_the_connection_is_quiet() {
    let live = Live::start(|c| c.graphql.legacy_keep_alive = Duration::from_secs(1)).await;
    let admin = live.admin().await;
    let mut ws = live.connect("graphql-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    // The one after the ack, then one per interval with nothing else going on.
    for _ in 0..3 {
        assert_eq!(recv(&mut ws).await, json!({"type": "ka"}));
    }
    // graphql-transport-ws has its own ping/pong: no `ka` there.
    let mut modern = live.connect("graphql-transport-ws").await;
    send(
        &mut modern,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut modern).await["type"], "connection_ack");
    send(&mut modern, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut modern).await["type"], "pong");
}

#[tokio::test]
async fn post_runs_queries_with_rest_permissions() {
    let live = Live::start(|_| {}).await;
    let analyst = live.user("ana", &["analyst"]).await;
    let body = json!({"query": "{ databases { databases { name } } }"});
    let (status, body) = live.rest("POST", "/graphql", &analyst, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["databases"]["databases"][0]["name"], "default",
        "{body}"
    );
    // serverInfo needs system:read, which an analyst lacks.
    let body = json!({"query": "{ serverInfo { name } }"});
    let (status, body) = live.rest("POST", "/graphql", &analyst, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let (status, _) = live
        .rest(
            "POST",
            "/graphql",
            "bad-token",
            Some(json!({"query": "{ serverInfo { name } }"})),
        )
        .await;
    assert_eq!(status, 401);
}

async fn lock(live: &Live, token: &str, tx: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/v1/transactions/{tx}/locks");
    live.rest("POST", &path, token, Some(body)).await
}

fn named(resource: &str, timeout_ms: u64) -> Value {
    json!({"resource": resource, "mode": "exclusive", "timeout_ms": timeout_ms})
}

#[tokio::test]
async fn lock_events_and_deadlock_detection_follow_a_deadlock_made_through_rest() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    // The seed's own documents: lockEvents filtered to two tables, deadlockDetection as is.
    subscribe(&mut ws, "seed", &seed_doc("lockEvents")).await;
    subscribe(
        &mut ws,
        "l",
        &seed_document("lockEvents", "(eventTypes: [ACQUIRED, WAITING, DEADLOCK])"),
    )
    .await;
    subscribe(&mut ws, "d", &seed_document("deadlockDetection", "")).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");

    let old = begin(&live, &admin).await;
    let young = begin(&live, &admin).await;
    // A row lock on `orders`: the only event the seed's table filter lets through.
    let row = json!({"table": "orders", "row_id": "42", "mode": "shared", "timeout_ms": 0});
    assert_eq!(lock(&live, &admin, &old, row).await.0, 200);
    let m = recv_for(&mut ws, "seed").await;
    let e = seed_next(&m, "seed", "lockEvents");
    assert_eq!(e["eventType"], "ACQUIRED");
    assert_eq!(e["tableName"], "orders");
    assert_eq!(e["resource"], "orders/42");
    assert_eq!(e["lockType"], "row");
    assert_eq!(e["lockMode"], "shared");
    assert_eq!(e["granted"], true);

    assert_eq!(lock(&live, &admin, &old, named("A", 0)).await.0, 200);
    assert_eq!(lock(&live, &admin, &young, named("B", 0)).await.0, 200);
    let mut seen = Vec::new();
    let mut deadlock = None;
    // old waits for B; once the subscription reports it waiting, young asks for A: a cycle.
    let (waited, victim) = tokio::join!(lock(&live, &admin, &old, named("B", 20_000)), async {
        loop {
            let m = recv(&mut ws).await;
            if m["id"] == "l" {
                let e = seed_next(&m, "l", "lockEvents").clone();
                if e["resource"] == "orders/42" {
                    continue;
                }
                seen.push(format!(
                    "{} {} {}",
                    e["eventType"].as_str().unwrap(),
                    e["resource"].as_str().unwrap(),
                    if e["transactionId"] == old.as_str() {
                        "old"
                    } else {
                        "young"
                    }
                ));
                if e["eventType"] == "WAITING" {
                    break;
                }
            }
        }
        lock(&live, &admin, &young, named("A", 20_000)).await
    });
    assert_eq!(waited.0, 200, "{}", waited.1);
    assert_eq!(victim.0, 409, "{}", victim.1);
    while deadlock.is_none() || seen.len() < 6 {
        let m = recv(&mut ws).await;
        match m["id"].as_str() {
            Some("l") => {
                let e = seed_next(&m, "l", "lockEvents");
                assert!(e["tableName"].is_null(), "{e}");
                assert!(e["waitTimeMs"].as_f64().expect("wait") >= 0.0);
                seen.push(format!(
                    "{} {} {}",
                    e["eventType"].as_str().unwrap(),
                    e["resource"].as_str().unwrap(),
                    if e["transactionId"] == old.as_str() {
                        "old"
                    } else {
                        "young"
                    }
                ));
            }
            Some("d") => deadlock = Some(seed_next(&m, "d", "deadlockDetection").clone()),
            _ => {}
        }
    }
    // RELEASED is not among the requested types.
    assert_eq!(
        seen,
        [
            "ACQUIRED A old",
            "ACQUIRED B young",
            "WAITING B old",
            "WAITING A young",
            "DEADLOCK A young",
            "ACQUIRED B old"
        ]
    );
    let d = deadlock.expect("deadlock");
    assert_eq!(d["victimTransaction"], young.as_str());
    assert_eq!(d["transactions"], json!([young, old]));
    assert_eq!(d["resourceGraph"].as_array().expect("edges").len(), 2);
    assert_eq!(d["resourceGraph"][0]["waiter"], young.as_str());
    assert_eq!(d["impactedQueries"].as_array().expect("queries").len(), 2);
}

#[tokio::test]
async fn alert_stream_receives_a_firing_alert_of_its_categories_only() {
    let live = Live::start(|c| {
        c.alerts.evaluation_interval = Duration::from_millis(20);
    })
    .await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "a", &seed_doc("alertStream")).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let mut alerts = live.bus.topic("alerts").expect("topic").listen();
    let rule = |name: &str, category: &str| {
        json!({"name": name, "metric": "active_transactions", "comparison": "gt", "threshold": 0,
               "duration_seconds": 0, "severity": "WARNING", "category": category})
    };
    // A `system` alert fires first: the subscription's category filter must skip it.
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/alerts/rules",
            &admin,
            Some(rule("sys", "system")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    begin(&live, &admin).await;
    loop {
        let e = tokio::time::timeout(WAIT, alerts.recv())
            .await
            .expect("alert")
            .expect("event");
        if e.data["category"] == "system" {
            break;
        }
    }
    let (status, body) = live
        .rest(
            "POST",
            "/api/v1/alerts/rules",
            &admin,
            Some(rule("open transactions", "database")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let m = recv(&mut ws).await;
    let a = seed_next(&m, "a", "alertStream");
    assert_eq!(a["name"], "open transactions");
    assert_eq!(a["category"], "database");
    assert_eq!(a["severity"], "WARNING");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["occurrenceCount"], 1);
    assert_eq!(a["details"]["metric"], "active_transactions");
    assert_eq!(a["details"]["value"], 1.0);
    assert!(a["alertId"].as_str().expect("id").len() > 1);
}

#[tokio::test]
async fn partition_events_report_a_created_partition_of_the_table() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(
        &mut ws,
        "p",
        &seed_document("partitionEvents", "(table: \"sales\")"),
    )
    .await;
    subscribe(
        &mut ws,
        "other",
        &seed_document("partitionEvents", "(table: \"returns\")"),
    )
    .await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let body = json!({"table": "sales", "name": "y2024", "partition_type": "range",
        "column": "sold_on",
        "columns": [{"name": "id", "type": "INTEGER"}, {"name": "sold_on", "type": "TEXT", "not_null": true}],
        "from": "2024-01-01", "to": "2025-01-01"});
    let (status, body) = live
        .rest("POST", "/api/v1/storage/partitions", &admin, Some(body))
        .await;
    assert_eq!(status, 201, "{body}");
    let m = recv(&mut ws).await;
    let p = seed_next(&m, "p", "partitionEvents");
    assert_eq!(p["eventType"], "CREATED");
    assert_eq!(p["partitionId"], "default.sales.y2024");
    assert_eq!(p["partitionName"], "y2024");
    assert_eq!(p["tableName"], "sales");
    assert_eq!(p["partitionType"], "range");
    assert_eq!(p["rowCount"], 0);
    assert!(p["sizeBytes"].as_i64().expect("size") >= 0);
}

#[tokio::test]
async fn health_status_changes_report_a_data_directory_that_is_gone() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    std::fs::remove_dir_all(live._dir.path()).expect("remove data dir");
    subscribe(
        &mut ws,
        "h",
        &seed_doc("healthStatusChanges").replace("intervalSeconds: 30", "intervalSeconds: 1"),
    )
    .await;
    let m = recv(&mut ws).await;
    let h = seed_next(&m, "h", "healthStatusChanges");
    assert_eq!(h["status"], "unhealthy");
    let changed = h["changedComponents"].as_array().expect("components");
    assert_eq!(changed.len(), 1, "{h}");
    assert_eq!(changed[0]["name"], "data_directory");
    assert_eq!(changed[0]["status"], "unhealthy");
    assert!(changed[0]["responseTimeMs"].as_f64().is_some());
    assert!(
        changed[0]["details"]
            .as_str()
            .expect("why")
            .contains("cannot write")
    );
    assert_eq!(h["errors"].as_array().expect("errors").len(), 1);
    assert_eq!(h["warnings"], json!([]));
    // Bad interval: an error for this operation, not a broken connection.
    subscribe(
        &mut ws,
        "bad",
        "subscription { healthStatusChanges(intervalSeconds: 0) { status } }",
    )
    .await;
    let m = recv_for(&mut ws, "bad").await;
    assert_eq!(m["type"], "error", "{m}");
}

#[tokio::test]
async fn monitoring_subscriptions_stream_measurements_at_their_interval() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(
        &mut ws,
        "m",
        &seed_doc("systemMetrics").replace("intervalSeconds: 5", "intervalSeconds: 1"),
    )
    .await;
    subscribe(
        &mut ws,
        "cpu",
        &seed_document("systemMetrics", "(intervalSeconds: 1, metricTypes: [CPU])"),
    )
    .await;
    subscribe(
        &mut ws,
        "io",
        &seed_document("ioStatisticsStream", "(intervalSeconds: 1)"),
    )
    .await;
    subscribe(
        &mut ws,
        "s",
        &seed_document("storageStatusChanges", "(intervalSeconds: 1)"),
    )
    .await;
    let mut got = BTreeSet::new();
    while got.len() < 4 {
        let m = recv(&mut ws).await;
        let id = m["id"].as_str().expect("id").to_string();
        match id.as_str() {
            "m" => {
                let s = seed_next(&m, "m", "systemMetrics");
                let total = s["memoryTotal"].as_i64().expect("memoryTotal");
                assert!(
                    total > 0 && s["memoryUsage"].as_i64().expect("used") <= total,
                    "{s}"
                );
                assert!(s["cpuUsage"].as_f64().is_some() && s["networkRxBps"].as_i64().is_some());
                assert!(s["activeQueries"].as_i64().expect("queries") >= 0, "{s}");
                // This GraphQL socket is the server's only connection.
                assert_eq!(s["activeConnections"], 1, "{s}");
            }
            "cpu" => {
                let s = seed_next(&m, "cpu", "systemMetrics");
                assert!(s["cpuUsage"].as_f64().is_some(), "{s}");
                assert!(
                    s["memoryTotal"].is_null() && s["diskReadBps"].is_null(),
                    "{s}"
                );
            }
            "io" => {
                let io = seed_next(&m, "io", "ioStatisticsStream");
                for f in [
                    "reads",
                    "writes",
                    "bytesRead",
                    "bytesWritten",
                    "readThroughputBps",
                ] {
                    assert!(io[f].as_i64().expect("count") >= 0, "{io}");
                }
            }
            "s" => {
                let st = seed_next(&m, "s", "storageStatusChanges");
                let total = st["totalBytes"].as_i64().expect("total");
                assert!(
                    total > 0 && st["usedBytes"].as_i64().expect("used") <= total,
                    "{st}"
                );
                assert!(st["dataSize"].as_i64().expect("data") > 0, "{st}");
            }
            other => panic!("unexpected {other}: {m}"),
        }
        got.insert(id);
    }
    subscribe(
        &mut ws,
        "bad",
        "subscription { storageStatusChanges(intervalSeconds: 99999) { usedBytes } }",
    )
    .await;
    assert_eq!(recv_for(&mut ws, "bad").await["type"], "error");
}

#[tokio::test]
async fn operations_subscriptions_need_their_permissions() {
    let live = Live::start(|_| {}).await;
    // A monitor may watch alerts but not locks; an analyst neither alerts nor health.
    let monitor = live.user("watcher", &["monitor"]).await;
    let analyst = live.user("ana", &["analyst"]).await;
    let mut ws = live.session(&monitor).await;
    subscribe(&mut ws, "l", "subscription { lockEvents { lockId } }").await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    let mut ws = live.session(&analyst).await;
    subscribe(&mut ws, "a", "subscription { alertStream { alertId } }").await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    subscribe(&mut ws, "m", "subscription { systemMetrics { cpuUsage } }").await;
    let refused = recv(&mut ws).await;
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
}

/// Subscriptions of the seed that have no real source yet: not declared, listed here so that a
/// newly declared one (or a lost one) fails this test until the list is updated.
const PENDING: &[&str] = &[];

#[tokio::test]
async fn every_seed_subscription_document_validates_or_is_pending() {
    let live = Live::start(|_| {}).await;
    let schema = rustydb::graphql::schema(&live.graphql).expect("schema");
    let documents = seed_documents();
    assert_eq!(documents.len(), 29, "the seed lists 29 subscriptions");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/schema.graphql"
    ))
    .expect("generated/schema.graphql");
    let subscription_root = committed
        .split("type Subscription {")
        .nth(1)
        .expect("Subscription root");
    let mut pending = Vec::new();
    for doc in &documents {
        let field = root_field(doc);
        if !subscription_root.contains(&format!("  {field}("))
            && !subscription_root.contains(&format!("  {field}:"))
        {
            pending.push(field);
            continue;
        }
        // Without a caller, a valid document reaches the field's permission check and stops
        // there; an invalid one never gets that far.
        let mut stream = schema.execute_stream(async_graphql::Request::new(doc.as_str()));
        let first = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("response")
            .expect("one");
        let messages: Vec<String> = first.errors.iter().map(|e| e.message.clone()).collect();
        assert_eq!(
            messages,
            vec!["credentials required".to_string()],
            "{field}: {doc}"
        );
    }
    assert_eq!(pending, PENDING);
}

/// Type definitions as comparable lines (descriptions and order ignored).
fn shape(sdl: &str) -> BTreeSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(sdl).expect("SDL parses");
    let mut lines = BTreeSet::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let name = t.node.name.node.to_string();
        if name.starts_with("__")
            || ["String", "Int", "Float", "Boolean", "ID"].contains(&name.as_str())
        {
            continue;
        }
        match &t.node.kind {
            TypeKind::Object(o) => {
                for f in &o.fields {
                    let args: Vec<String> = f
                        .node
                        .arguments
                        .iter()
                        .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
                        .collect();
                    lines.insert(format!(
                        "type {name}.{}({}): {}",
                        f.node.name.node,
                        args.join(", "),
                        f.node.ty.node
                    ));
                }
            }
            TypeKind::InputObject(o) => {
                for f in &o.fields {
                    lines.insert(format!(
                        "input {name}.{}: {}",
                        f.node.name.node, f.node.ty.node
                    ));
                }
            }
            TypeKind::Enum(e) => {
                for v in &e.values {
                    lines.insert(format!("enum {name}.{}", v.node.value.node));
                }
            }
            TypeKind::Scalar => {
                lines.insert(format!("scalar {name}"));
            }
            other => panic!("unexpected type kind {other:?}"),
        }
    }
    lines
}

#[tokio::test]
async fn the_served_schema_equals_generated_schema_graphql() {
    let live = Live::start(|_| {}).await;
    let served = rustydb::graphql::schema(&live.graphql)
        .expect("schema")
        .sdl();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/schema.graphql"
    ))
    .expect("generated/schema.graphql");
    assert_eq!(shape(&served), shape(&committed));
}

/// The seed's table-data, schema and utility documents, exactly as written there, stream data
/// (the other subscriptions' tests use the seed's own documents too).
#[tokio::test]
async fn the_seed_table_schema_and_heartbeat_documents_stream_as_written() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    for (table, column, kind) in [
        ("users", "name", "TEXT"),
        ("orders", "status", "TEXT"),
        ("products", "price", "REAL"),
        ("temp_data", "note", "TEXT"),
        ("sales", "amount", "REAL"),
        ("inventory", "stock", "INTEGER"),
        ("payments", "amount", "REAL"),
    ] {
        let columns = json!([
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": column, "type": kind}
        ]);
        live.create_table(&admin, table, columns).await;
    }
    let fields = [
        "tableChanges",
        "rowInserted",
        "rowUpdated",
        "rowDeleted",
        "rowChanges",
        "aggregateChanges",
        "queryChanges",
        "tableModifications",
        "schemaChanges",
        "heartbeat",
    ];
    let mut ws = live.session(&admin).await;
    for field in fields {
        subscribe(&mut ws, field, &seed_doc(field)).await;
    }
    send(&mut ws, json!({"type": "ping"})).await;
    let mut seen: std::collections::BTreeMap<String, Value> = Default::default();
    // aggregateChanges and queryChanges answer at once with their current value.
    loop {
        let m = recv(&mut ws).await;
        if m["type"] == "pong" {
            break;
        }
        assert_eq!(m["type"], "next", "{m}");
        let id = m["id"].as_str().expect("id").to_string();
        seen.entry(id.clone())
            .or_insert(m["payload"]["data"][&id].clone());
    }
    live.insert(&admin, "users", json!({"id": 123, "name": "ada"}))
        .await;
    live.insert(&admin, "orders", json!({"id": 1, "status": "pending"}))
        .await;
    live.insert(&admin, "products", json!({"id": 1, "price": 1.5}))
        .await;
    let path = "/api/v1/databases/default/tables/products/rows/1";
    let (status, body) = live
        .rest("PUT", path, &admin, Some(json!({"values": {"price": 2.5}})))
        .await;
    assert_eq!(status, 200, "{body}");
    live.insert(&admin, "temp_data", json!({"id": 7, "note": "x"}))
        .await;
    let path = "/api/v1/databases/default/tables/temp_data/rows/7";
    let (status, body) = live.rest("DELETE", path, &admin, None).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let columns = json!([{"name": "id", "type": "INTEGER", "primary_key": true}]);
    live.create_table(&admin, "audit", columns).await;
    // The heartbeat's first beat comes after its 30 s interval.
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < fields.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(m) = recv_within(&mut ws, left).await else {
            panic!("no data within 60 s for some of {fields:?}; got {seen:?}");
        };
        assert_eq!(m["type"], "next", "{m}");
        let id = m["id"].as_str().expect("id").to_string();
        seen.entry(id.clone())
            .or_insert(m["payload"]["data"][&id].clone());
    }
    assert_eq!(seen["tableChanges"]["changeType"], "INSERT");
    assert_eq!(seen["rowChanges"]["id"], "123");
    let inserted: Value = serde_json::from_str(
        seen["rowInserted"]["row"]["data"]
            .as_str()
            .expect("data text"),
    )
    .expect("json");
    assert_eq!(inserted["status"], "pending");
    assert_eq!(seen["rowUpdated"]["changedFields"], json!(["price"]));
    assert_eq!(seen["rowDeleted"]["id"], "7");
    assert_eq!(seen["tableModifications"]["table"], "orders");
    assert_eq!(seen["schemaChanges"]["objectName"], "audit");
    assert_eq!(seen["heartbeat"]["sequence"], 1);
    assert_eq!(seen["aggregateChanges"]["table"], "sales");
    assert_eq!(seen["queryChanges"]["totalCount"], 0);
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let mut ws = live.connect("graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .expect("close");
    // Without the echo the client sees the TCP stream end: 1006, "closed without a code".
    assert_eq!(close_code(&mut ws).await, 1000);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_when_its_token_expires() {
    let live = Live::start(|c| {
        c.security.access_token_ttl_secs = 5;
        c.security.token_leeway_secs = 2;
    })
    .await;
    let admin = live.admin().await;
    live.execute(
        &admin,
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body TEXT)",
    )
    .await;
    let mut ws = live.connect("graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { tableChanges(table: \"blobs\") { table row { id data } } }"}})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let open = || live.open_sockets();
    assert_eq!(open(), 1);
    // From here the client reads nothing. ~80 MB of changes: far more than the socket buffers
    // hold, so the server's writes wait on the client. Each batch logs in afresh: the
    // subscriber's own token expires meanwhile.
    for _ in 0..8 {
        let writer = live.admin().await;
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) \
                   INSERT INTO blobs (body) SELECT hex(randomblob(5000)) FROM c";
        let (status, body) = live
            .rest(
                "POST",
                "/api/v1/sql/execute",
                &writer,
                Some(json!({"sql": sql})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // The token is accepted until `exp` plus the validation leeway (7 s after login); the
    // connection lives exactly as long.
    let deadline = Instant::now() + Duration::from_secs(20);
    while open() > 0 {
        assert!(
            Instant::now() < deadline,
            "a client that stopped reading outlived its token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(ws);
}

#[tokio::test]
async fn a_token_within_the_leeway_opens_a_connection_that_stays_open() {
    let live = Live::start(|c| c.security.access_token_ttl_secs = 1).await;
    let admin = live.admin().await;
    // Past `exp`, inside the 30 s leeway: REST accepts it, so the connection must too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = live
        .rest("GET", "/api/v1/auth/validate", &admin, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut ws = live.connect("graphql-transport-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
}

/// A row-change subscription on a database or table that does not exist is that operation's
/// NOT_FOUND error, not a subscription that silently never fires; the connection stays usable and
/// a subscription on a table that exists works.
#[tokio::test]
async fn a_subscription_on_a_missing_table_or_database_is_not_found() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.execute(&admin, "CREATE TABLE here (id INTEGER PRIMARY KEY)")
        .await;
    let mut ws = live.session(&admin).await;
    for (id, query) in [
        (
            "db",
            r#"subscription { tableChanges(table: "here", database: "nowhere") { table } }"#,
        ),
        (
            "table",
            r#"subscription { rowInserted(table: "ghost") { table } }"#,
        ),
        (
            "tables",
            r#"subscription { tableModifications(tables: ["here", "ghost"]) { table } }"#,
        ),
    ] {
        subscribe(&mut ws, id, query).await;
        let m = recv_for(&mut ws, id).await;
        assert_eq!(m["type"], "error", "{m}");
        let errors = &m["payload"];
        assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{id}: {m}");
        let missing = if id == "db" { "nowhere" } else { "ghost" };
        assert!(
            errors[0]["message"].as_str().unwrap().contains(missing),
            "{id}: {m}"
        );
    }
    subscribe(
        &mut ws,
        "ok",
        r#"subscription { tableModifications(tables: ["here"]) { table changeType } }"#,
    )
    .await;
    // The subscription is live once a ping sent after it is answered.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    live.execute(&admin, "INSERT INTO here VALUES (1)").await;
    let m = recv_for(&mut ws, "ok").await;
    assert_eq!(
        m["payload"]["data"]["tableModifications"]["changeType"], "INSERT",
        "{m}"
    );
}

/// A subscriber that falls behind what the change log still holds is told exactly what it lost:
/// an `EVENTS_LOST` error on its stream (range and count in `extensions.details`), which ends the
/// subscription (async-graphql ends a subscription at its first error). Every change before the
/// loss was delivered, in order; a new subscription works.
#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_exactly_what_it_lost() {
    let live = Live::start(|c| {
        c.websocket.bus_capacity = 100;
        c.changes.retention_events = 1000;
    })
    .await;
    let admin = live.admin().await;
    live.execute(
        &admin,
        "CREATE TABLE wide (id INTEGER PRIMARY KEY, body TEXT)",
    )
    .await;
    let mut ws = live.session(&admin).await;
    let document = r#"subscription { tableModifications(tables: ["wide"]) { rowId } }"#;
    subscribe(&mut ws, "w", document).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    // The client reads nothing while 5,000 rows of 5 KB (25 MB, far more than the socket buffers
    // and the 100-event ring hold) are inserted by one statement.
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) \
               INSERT INTO wide (id, body) SELECT x, hex(randomblob(2500)) FROM c";
    live.execute(&admin, sql).await;
    // Row ids are the topic's sequences here: the table's rows are its only events.
    let mut last_id = 0u64;
    let details = loop {
        let m = recv_for(&mut ws, "w").await;
        assert_eq!(m["type"], "next", "{m} after row {last_id}");
        if let Some(errors) = m["payload"]["errors"].as_array() {
            let e = &errors[0];
            assert_eq!(e["extensions"]["code"], "EVENTS_LOST", "{m}");
            let missed = e["extensions"]["details"]["missed"]
                .as_u64()
                .expect("missed");
            assert!(
                e["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{missed} events were lost")),
                "{m}"
            );
            break e["extensions"]["details"].clone();
        }
        let id: u64 = m["payload"]["data"]["tableModifications"]["rowId"]
            .as_str()
            .expect("rowId")
            .parse()
            .expect("numeric");
        assert_eq!(id, last_id + 1, "a change went missing without notice");
        last_id = id;
    };
    let (from, to) = (
        details["from_sequence"].as_u64().unwrap(),
        details["to_sequence"].as_u64().unwrap(),
    );
    assert_eq!(
        from,
        last_id + 1,
        "the notice starts at the first change not delivered: {details}"
    );
    assert_eq!(
        details["missed"].as_u64().unwrap(),
        to + 1 - from,
        "{details}"
    );
    assert!(to < 5000, "{details}");
    assert_eq!(recv_for(&mut ws, "w").await["type"], "complete");

    subscribe(&mut ws, "again", document).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    live.execute(&admin, "INSERT INTO wide (id, body) VALUES (9999, 'after')")
        .await;
    let m = recv_for(&mut ws, "again").await;
    assert_eq!(
        m["payload"]["data"]["tableModifications"]["rowId"], "9999",
        "{m}"
    );
}

/// The change log carries one transaction of any size: a 100,000-row statement reaches a
/// reading `/api/v1/ws` client and a reading graphql-ws client complete and in order, though
/// the in-memory ring holds 1,000 events. Each client is read on its own task.
#[tokio::test]
async fn a_large_statement_reaches_reading_clients_of_both_transports_complete() {
    const ROWS: u64 = 100_000;
    // The statement commits before the first change is sent, and a debug build on a busy
    // 2-core machine is slow at it: wait per message longer than the usual 10 s.
    const PATIENCE: Duration = Duration::from_secs(120);
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.execute(
        &admin,
        "CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER)",
    )
    .await;

    let mut request = format!("ws://{}/api/v1/ws", live.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let (mut events, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let subscribe_ws = json!({"message_type": "subscribe", "data": {"topic": "table_changes", "filter": {"table": "big"}}});
    events
        .send(Message::Text(subscribe_ws.to_string().into()))
        .await
        .expect("send");
    let ack = recv(&mut events).await;
    assert_eq!(ack["message_type"], "subscription_ack", "{ack}");
    let ws_reader = tokio::spawn(async move {
        let mut last = 0u64;
        while last < ROWS {
            let m = recv_within(&mut events, PATIENCE)
                .await
                .expect("an event in time");
            // The queue is deep while the reader catches up from the log: a warning, no loss.
            if m["message_type"] == "backpressure_warning" {
                continue;
            }
            assert_eq!(m["message_type"], "table_modified", "{m} after row {last}");
            let id: u64 = m["data"]["row_id"]
                .as_str()
                .expect("row_id")
                .parse()
                .expect("id");
            assert_eq!(id, last + 1, "out of order or missing");
            last = id;
        }
        last
    });

    let mut gql = live.session(&admin).await;
    subscribe(
        &mut gql,
        "big",
        r#"subscription { tableModifications(tables: ["big"]) { rowId } }"#,
    )
    .await;
    send(&mut gql, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut gql).await["type"], "pong");
    let gql_reader = tokio::spawn(async move {
        let mut last = 0u64;
        while last < ROWS {
            let m = recv_within(&mut gql, PATIENCE)
                .await
                .expect("an event in time");
            if m["id"] != "big" {
                continue;
            }
            assert_eq!(m["type"], "next", "{m} after row {last}");
            let id: u64 = m["payload"]["data"]["tableModifications"]["rowId"]
                .as_str()
                .expect("rowId")
                .parse()
                .expect("id");
            assert_eq!(id, last + 1, "out of order or missing: {m}");
            last = id;
        }
        last
    });

    let sql = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS}) \
         INSERT INTO big (id, n) SELECT x, x * 2 FROM c"
    );
    live.execute(&admin, &sql).await;
    assert_eq!(ws_reader.await.expect("ws reader"), ROWS);
    assert_eq!(gql_reader.await.expect("graphql reader"), ROWS);
}

/// A graphql-ws client that reconnects with `afterSequence` gets exactly the changes committed
/// after the last one it received, read back from the change log; a negative sequence is refused.
#[tokio::test]
async fn after_sequence_resumes_row_changes_from_the_change_log() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.execute(&admin, "CREATE TABLE resumed (id INTEGER PRIMARY KEY)")
        .await;
    let document = |after: &str| {
        format!(
            r#"subscription {{ tableModifications(tables: ["resumed"]{after}) {{ rowId sequence }} }}"#
        )
    };
    let mut first = live.session(&admin).await;
    subscribe(&mut first, "c", &document("")).await;
    send(&mut first, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut first).await["type"], "pong");
    live.execute(&admin, "INSERT INTO resumed (id) VALUES (1), (2)")
        .await;
    let mut last = 0;
    for want in ["1", "2"] {
        let m = recv_for(&mut first, "c").await;
        let change = &m["payload"]["data"]["tableModifications"];
        assert_eq!(change["rowId"], want, "{m}");
        let sequence = change["sequence"].as_u64().expect("a sequence");
        assert!(sequence > last, "sequences rise: {m}");
        last = sequence;
    }
    drop(first);

    // Committed while no one listens, and more than the ring holds in between (1,000 events).
    live.execute(&admin, "INSERT INTO resumed (id) VALUES (3)")
        .await;
    live.execute(&admin, "CREATE TABLE filler (id INTEGER PRIMARY KEY)")
        .await;
    live.execute(
        &admin,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) \
         INSERT INTO filler (id) SELECT x FROM c",
    )
    .await;
    live.execute(&admin, "INSERT INTO resumed (id) VALUES (4)")
        .await;

    let mut again = live.session(&admin).await;
    subscribe(
        &mut again,
        "r",
        &document(&format!(", afterSequence: {last}")),
    )
    .await;
    for want in ["3", "4"] {
        let m = recv_for(&mut again, "r").await;
        assert_eq!(m["type"], "next", "{m}");
        let change = &m["payload"]["data"]["tableModifications"];
        assert_eq!(change["rowId"], want, "{m}");
        assert!(change["sequence"].as_u64().expect("a sequence") > last);
    }
    // Nothing before the resume point comes again.
    live.execute(&admin, "INSERT INTO resumed (id) VALUES (5)")
        .await;
    let m = recv_for(&mut again, "r").await;
    assert_eq!(
        m["payload"]["data"]["tableModifications"]["rowId"], "5",
        "{m}"
    );

    subscribe(&mut again, "bad", &document(", afterSequence: -1")).await;
    let m = recv_for(&mut again, "bad").await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(
        m["payload"][0]["extensions"]["code"], "INVALID_ARGUMENT",
        "{m}"
    );
}

/// Publishes `n` deadlock notices of ~5 KB each on the `locks` topic (not durable: what its ring
/// overwrites is gone), yielding after each so the server sends while they are published (the
/// test runtime has one thread).
async fn flood_deadlocks(live: &Live, n: usize) {
    let topic = live.bus.topic("locks").expect("locks topic");
    let padding = "p".repeat(5000);
    for i in 0..n {
        topic.publish_value(
            "deadlock_detected",
            json!({
                "deadlock_id": format!("dl-{i}"),
                "detected_at": "2026-12-07T00:00:00Z",
                "transactions": ["txn-a", "txn-b"],
                "victim_transaction": "txn-b",
                "resource_graph": [],
                "resolution_strategy": padding,
                "impacted_queries": [],
            }),
        );
        tokio::task::yield_now().await;
    }
}

const DEADLOCKS: &str = "subscription { deadlockDetection { deadlockId resolutionStrategy } }";

/// The seed's backpressure on GraphQL: a subscriber whose queue passes 80 % is warned on its
/// next message (`extensions.backpressure_warning`), then told what its queue dropped.
#[tokio::test]
async fn a_graphql_subscriber_behind_is_warned_then_told_what_was_dropped() {
    let live = Live::start(|c| c.websocket.bus_capacity = 100).await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "d", DEADLOCKS).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    // 25 MB while the client reads nothing: more than the socket buffers hold, so its queue
    // fills; the queues are measured every second.
    flood_deadlocks(&live, 5000).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut warning = None;
    let lost = loop {
        let m = recv_for(&mut ws, "d").await;
        assert_eq!(m["type"], "next", "{m}");
        if let Some(w) = m["payload"]["extensions"].get("backpressure_warning") {
            warning.get_or_insert(w.clone());
        }
        if let Some(errors) = m["payload"]["errors"].as_array() {
            break errors[0].clone();
        }
    };
    let warning = warning.expect("warned before the loss");
    assert_eq!(warning["topic"], "locks", "{warning}");
    assert_eq!(warning["capacity"], 100, "{warning}");
    assert!(warning["queue_depth"].as_u64().unwrap() >= 80, "{warning}");
    assert_eq!(lost["extensions"]["code"], "EVENTS_LOST", "{lost}");
    assert!(lost["extensions"]["details"]["missed"].as_u64().unwrap() > 0);
    assert_eq!(recv_for(&mut ws, "d").await["type"], "complete");
}

/// A GraphQL connection whose subscription queue stays full for the slow-client timeout is
/// closed (4008), though the client reads nothing at all and the writes wait on it.
#[tokio::test]
async fn a_graphql_connection_whose_queue_stays_full_is_closed() {
    let live = Live::start(|c| {
        c.websocket.bus_capacity = 100;
        c.websocket.slow_client_timeout = Duration::from_secs(3);
    })
    .await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    subscribe(&mut ws, "d", DEADLOCKS).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    let open = || live.open_sockets();
    assert_eq!(open(), 1);
    flood_deadlocks(&live, 5000).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while open() > 0 {
        assert!(Instant::now() < deadline, "the stalled connection was kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the client can still read ends with the close code if the frame fit in the socket
    // buffers, or with the connection dropped if it did not; never with more subscriptions.
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the end in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4008, "{frame:?}");
                break;
            }
            Some(Err(_)) | None | Some(Ok(Message::Close(None))) => break,
            Some(Ok(_)) => continue,
        }
    }
}
