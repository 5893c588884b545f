//! GraphQL subscriptions over statements and the buffer pool, over a real graphql-ws client:
//! each one sees its event happen for real (reads, running and cancelled statements, slow
//! statements, a plan changed by CREATE INDEX), with the seed's fields, and refuses what it must.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::graphql::*;

/// Runs until cancelled, yielding a row every 300,000 steps, so its row count grows while it runs.
const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT x FROM c WHERE x % 300000 = 0";

async fn sql_query(live: &Live, token: &str, sql: &str) -> (u16, Value) {
    let body = json!({"sql": sql, "timeout": 120_000});
    live.rest("POST", "/api/v1/sql/query", token, Some(body))
        .await
}

async fn sql_execute(live: &Live, token: &str, sql: &str) {
    let body = json!({"sql": sql});
    let (status, body) = live
        .rest("POST", "/api/v1/sql/execute", token, Some(body))
        .await;
    assert_eq!(status, 200, "{sql}: {body}");
}

/// Waits (polling GET /api/v1/sql/queries as `token`) until a statement with this text is
/// running and `ready` accepts its listing; returns the listing.
async fn running(live: &Live, token: &str, sql: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = live.rest("GET", "/api/v1/sql/queries", token, None).await;
        assert_eq!(status, 200, "{body}");
        let found = body["queries"]
            .as_array()
            .expect("queries")
            .iter()
            .find(|q| q["sql"] == sql && ready(q))
            .cloned();
        if let Some(q) = found {
            return q;
        }
        assert!(Instant::now() < deadline, "`{sql}` not running: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cancel(live: &Live, token: &str, id: &str) {
    let path = format!("/api/v1/sql/queries/{id}/cancel");
    let (status, body) = live.rest("POST", &path, token, None).await;
    assert_eq!(status, 200, "{body}");
}

/// The `error` message of operation `id`, with its code.
async fn refused(ws: &mut Client, id: &str, code: &str) -> String {
    let m = recv_for(ws, id).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], code, "{m}");
    m["payload"][0]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

/// Nothing more is queued for this connection: a ping is answered before any other message.
async fn quiet(ws: &mut Client) {
    send(ws, json!({"type": "ping"})).await;
    let m = recv(ws).await;
    assert_eq!(m["type"], "pong", "unexpected {m}");
}

#[tokio::test]
async fn buffer_pool_metrics_follow_real_reads() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "items",
        json!([{"name": "id", "type": "INTEGER", "primary_key": true}, {"name": "name", "type": "TEXT"}]),
    )
    .await;
    for id in 0..20 {
        live.insert(
            &admin,
            "items",
            json!({"id": id, "name": format!("item {id}")}),
        )
        .await;
    }
    for _ in 0..3 {
        assert_eq!(sql_query(&live, &admin, "SELECT * FROM items").await.0, 200);
    }
    let mut ws = live.session(&admin).await;
    // The seed's document as written: the first sample comes on subscribe.
    subscribe(&mut ws, "seed", &seed_doc("bufferPoolMetrics")).await;
    let m = recv(&mut ws).await;
    let first = seed_next(&m, "seed", "bufferPoolMetrics").clone();
    let total = first["totalPages"].as_i64().expect("totalPages");
    assert!(total > 0, "{first}");
    assert!(
        first["sizeBytes"].as_i64().expect("sizeBytes") >= total * 512,
        "{first}"
    );
    let free = first["freePages"].as_i64().expect("freePages");
    assert!((0..=total).contains(&free), "{first}");
    assert!(first["dirtyPages"].as_i64().expect("dirtyPages") >= 0);
    assert!(first["evictions"].is_null(), "not measurable: {first}");
    let hits = first["cacheHits"].as_i64().expect("cacheHits");
    let misses = first["cacheMisses"].as_i64().expect("cacheMisses");
    assert!(hits > 0, "reads were made: {first}");
    let ratio = first["hitRatio"].as_f64().expect("hitRatio");
    assert!(
        (ratio - hits as f64 / (hits + misses) as f64).abs() < 1e-9,
        "{first}"
    );
    // The REST route measures the same pool: its counters have only grown since.
    let (status, rest) = live
        .rest("GET", "/api/v1/storage/buffer-pool", &admin, None)
        .await;
    assert_eq!(status, 200, "{rest}");
    assert!(
        rest["total"]["hits"].as_i64().expect("hits") >= hits,
        "{rest}"
    );
    assert_eq!(rest["total"]["total_pages"].as_i64(), Some(total), "{rest}");
    // More reads: a later sample (one a second) counts more hits.
    subscribe(
        &mut ws,
        "fast",
        &seed_document("bufferPoolMetrics", "(intervalSeconds: 1)"),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(sql_query(&live, &admin, "SELECT * FROM items").await.0, 200);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let m = recv_for(&mut ws, "fast").await;
        let sample = seed_next(&m, "fast", "bufferPoolMetrics");
        if sample["cacheHits"].as_i64().expect("hits") > hits {
            break;
        }
        assert!(Instant::now() < deadline, "hits never grew: {sample}");
    }
    subscribe(
        &mut ws,
        "bad",
        "subscription { bufferPoolMetrics(intervalSeconds: 0) { hitRatio } }",
    )
    .await;
    let why = refused(&mut ws, "bad", "INVALID_ARGUMENT").await;
    assert!(why.contains("intervalSeconds"), "{why}");
}

#[tokio::test]
async fn active_queries_stream_lists_running_statements_the_caller_may_see() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let ana = live.user("ana", &["analyst"]).await;
    let ana_sql = format!("{RUNAWAY} AND x > 0");
    let (admin_done, ana_done, ()) = tokio::join!(
        sql_query(&live, &admin, RUNAWAY),
        sql_query(&live, &ana, &ana_sql),
        async {
            let mine = running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
            let hers = running(&live, &ana, &ana_sql, |_| true).await;
            // The seed's document as written (userFilter "admin", every 5 s): measured at once.
            let mut ws = live.session(&admin).await;
            subscribe(&mut ws, "seed", &seed_doc("activeQueriesStream")).await;
            let m = recv(&mut ws).await;
            let q = seed_next(&m, "seed", "activeQueriesStream");
            assert_eq!(q["queryId"], mine["query_id"], "{q}");
            assert_eq!(q["username"], "admin");
            assert_eq!(q["sqlText"], RUNAWAY);
            assert_eq!(q["state"], "EXECUTING");
            assert!(q["waitEvent"].is_null(), "{q}");
            assert_eq!(q["sessionId"], mine["session_id"]);
            assert!(q["durationMs"].as_f64().expect("duration") > 0.0);
            assert!(q["rowsProcessed"].as_i64().expect("rows") >= 0);
            // ana is no database:admin: she sees her own statement, never admin's, each second.
            let mut theirs = live.session(&ana).await;
            subscribe(
                &mut theirs,
                "a",
                &seed_document("activeQueriesStream", "(refreshIntervalSeconds: 1)"),
            )
            .await;
            let mut seen = Vec::new();
            while seen.len() < 2 {
                let m = recv(&mut theirs).await;
                let q = seed_next(&m, "a", "activeQueriesStream");
                assert_eq!(q["queryId"], hers["query_id"], "{q}");
                assert_eq!(q["username"], "ana");
                seen.push(q["rowsProcessed"].as_i64().expect("rows"));
            }
            assert!(seen[1] >= seen[0], "{seen:?}");
            subscribe(
                &mut theirs,
                "bad",
                "subscription { activeQueriesStream(refreshIntervalSeconds: 3601) { queryId } }",
            )
            .await;
            refused(&mut theirs, "bad", "INVALID_ARGUMENT").await;
            cancel(&live, &admin, mine["query_id"].as_str().expect("id")).await;
            cancel(&live, &ana, hers["query_id"].as_str().expect("id")).await;
        }
    );
    assert_eq!(admin_done.0, 409, "{}", admin_done.1);
    assert_eq!(ana_done.0, 409, "{}", ana_done.1);
}

#[tokio::test]
async fn query_execution_follows_a_statement_until_it_is_cancelled() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let ana = live.user("ana", &["analyst"]).await;
    let mut ws = live.session(&admin).await;
    // The seed's document as written names a query that is not running.
    subscribe(&mut ws, "seed", &seed_doc("queryExecution")).await;
    let why = refused(&mut ws, "seed", "NOT_FOUND").await;
    assert!(why.contains("q-12345"), "{why}");
    let (done, ()) = tokio::join!(sql_query(&live, &admin, RUNAWAY), async {
        let q = running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
        let id = q["query_id"].as_str().expect("id").to_string();
        // Another user does not see it, as with GET /api/v1/sql/queries/{id}.
        let mut theirs = live.session(&ana).await;
        let doc = seed_document("queryExecution", &format!("(queryId: \"{id}\")"));
        subscribe(&mut theirs, "x", &doc).await;
        refused(&mut theirs, "x", "NOT_FOUND").await;
        subscribe(&mut ws, "q", &doc).await;
        // Progress each second until rows have come, then the end once it is cancelled.
        let deadline = Instant::now() + WAIT;
        loop {
            let m = recv_for(&mut ws, "q").await;
            let p = seed_next(&m, "q", "queryExecution");
            assert_eq!(p["queryId"], id.as_str());
            assert_eq!(p["status"], "EXECUTING", "{p}");
            assert!(
                p["progressPercent"].is_null() && p["message"].is_null(),
                "{p}"
            );
            assert!(p["elapsedMs"].as_f64().expect("elapsed") > 0.0);
            if p["rowsAffected"].as_i64().expect("rows") > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "no rows yet: {p}");
        }
        cancel(&live, &admin, &id).await;
        loop {
            let m = recv_for(&mut ws, "q").await;
            let p = seed_next(&m, "q", "queryExecution");
            if p["status"] == "CANCELLING" || p["status"] == "EXECUTING" {
                continue;
            }
            assert_eq!(p["status"], "CANCELLED", "{p}");
            assert!(p["rowsAffected"].as_i64().expect("rows") > 0, "{p}");
            assert!(p["progressPercent"].is_null(), "{p}");
            assert!(
                p["message"]
                    .as_str()
                    .expect("message")
                    .contains("cancelled"),
                "{p}"
            );
            break;
        }
        // Then the subscription completes.
        let m = recv_for(&mut ws, "q").await;
        assert_eq!(m["type"], "complete", "{m}");
    });
    assert_eq!(done.0, 409, "{}", done.1);
    subscribe(
        &mut ws,
        "bad",
        "subscription { queryExecution(queryId: \"q-1\", intervalSeconds: 0) { status } }",
    )
    .await;
    refused(&mut ws, "bad", "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn query_execution_reports_a_waiting_statement_completed() {
    // One connection: a second statement waits for it while the first runs.
    let live = Live::start(|c| {
        c.pool.max_connections = 1;
        c.pool.acquire_timeout = Duration::from_secs(60);
    })
    .await;
    let admin = live.admin().await;
    let mut ws = live.session(&admin).await;
    let waiter = "SELECT 42 AS answer";
    let (first, second, ()) = tokio::join!(
        sql_query(&live, &admin, RUNAWAY),
        async {
            running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
            sql_query(&live, &admin, waiter).await
        },
        async {
            let blocker = running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
            let q = running(&live, &admin, waiter, |_| true).await;
            let id = q["query_id"].as_str().expect("id");
            let doc = seed_document("queryExecution", &format!("(queryId: \"{id}\")"));
            subscribe(&mut ws, "q", &doc).await;
            let m = recv_for(&mut ws, "q").await;
            let p = seed_next(&m, "q", "queryExecution");
            assert_eq!(p["status"], "WAITING", "{p}");
            cancel(&live, &admin, blocker["query_id"].as_str().expect("id")).await;
            loop {
                let m = recv_for(&mut ws, "q").await;
                let p = seed_next(&m, "q", "queryExecution");
                if p["status"] == "WAITING" || p["status"] == "EXECUTING" {
                    continue;
                }
                assert_eq!(p["status"], "COMPLETED", "{p}");
                assert_eq!(p["rowsAffected"], 1, "{p}");
                assert_eq!(p["progressPercent"], 100.0, "{p}");
                assert!(p["message"].is_null(), "{p}");
                break;
            }
            assert_eq!(recv_for(&mut ws, "q").await["type"], "complete");
        }
    );
    assert_eq!(first.0, 409, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert_eq!(second.1["rows"], json!([[42]]));
}

#[tokio::test]
async fn slow_queries_stream_reports_each_slow_statement_as_it_is_logged() {
    let live = Live::start(|c| {
        c.queries.slow_threshold = Duration::from_millis(200);
        c.pool.max_connections = 1;
        c.pool.acquire_timeout = Duration::from_secs(60);
    })
    .await;
    let admin = live.admin().await;
    let dev = live.user("dev", &["developer"]).await;
    let mut all = live.session(&admin).await;
    let mut own = live.session(&dev).await;
    subscribe(
        &mut all,
        "s",
        &seed_document("slowQueriesStream", "(thresholdMs: 200)"),
    )
    .await;
    subscribe(&mut own, "s", &seed_document("slowQueriesStream", "")).await;
    quiet(&mut all).await;
    quiet(&mut own).await;
    // dev's statement waits for the only connection while admin's runs; admin's is cancelled
    // once dev's has waited well past the threshold, so both are slow.
    let waiter = "SELECT 42 AS answer";
    let (first, second, ()) = tokio::join!(
        sql_query(&live, &admin, RUNAWAY),
        async {
            running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
            sql_query(&live, &dev, waiter).await
        },
        async {
            let blocker = running(&live, &admin, RUNAWAY, |q| q["state"] == "executing").await;
            running(&live, &admin, waiter, |q| {
                q["elapsed_ms"].as_f64().unwrap_or(0.0) > 300.0
            })
            .await;
            cancel(&live, &admin, blocker["query_id"].as_str().expect("id")).await;
        }
    );
    assert_eq!(first.0, 409, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    let mut by_user = std::collections::BTreeMap::new();
    while by_user.len() < 2 {
        let m = recv(&mut all).await;
        let n = seed_next(&m, "s", "slowQueriesStream").clone();
        by_user.insert(n["username"].as_str().expect("user").to_string(), n);
    }
    let cancelled = &by_user["admin"];
    assert_eq!(cancelled["sqlText"], RUNAWAY);
    assert!(cancelled["queryId"].as_str().expect("id").starts_with("q-"));
    assert!(cancelled["executionTimeMs"].as_f64().expect("time") >= 200.0);
    let waited = &by_user["dev"];
    assert_eq!(waited["sqlText"], waiter);
    assert_eq!(waited["database"], "default");
    assert_eq!(waited["rowsReturned"], 1);
    assert!(
        waited["executionTimeMs"].as_f64().expect("time") > 300.0,
        "{waited}"
    );
    let start = chrono::DateTime::parse_from_rfc3339(waited["startTime"].as_str().expect("start"))
        .expect("start time");
    let end = chrono::DateTime::parse_from_rfc3339(waited["endTime"].as_str().expect("end"))
        .expect("end time");
    assert!(end > start);
    // dev sees only their own statement.
    let m = recv(&mut own).await;
    assert_eq!(
        seed_next(&m, "s", "slowQueriesStream")["queryId"],
        waited["queryId"]
    );
    quiet(&mut own).await;
    // The same entries are in the REST log.
    let (status, log) = live
        .rest("GET", "/api/v1/sql/slow-queries", &admin, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(log["total"], 2, "{log}");
    // Below the log's own threshold nothing is recorded: refused rather than silently missed.
    subscribe(
        &mut own,
        "low",
        "subscription { slowQueriesStream(thresholdMs: 50) { queryId } }",
    )
    .await;
    let why = refused(&mut own, "low", "INVALID_ARGUMENT").await;
    assert!(why.contains("slow_threshold_ms"), "{why}");
    subscribe(
        &mut own,
        "neg",
        "subscription { slowQueriesStream(thresholdMs: -1) { queryId } }",
    )
    .await;
    refused(&mut own, "neg", "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn query_plan_changes_report_scan_to_search_after_create_index() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    live.create_table(
        &admin,
        "users",
        json!([{"name": "id", "type": "INTEGER", "primary_key": true}, {"name": "email", "type": "TEXT"}]),
    )
    .await;
    live.create_table(
        &admin,
        "orders",
        json!([{"name": "id", "type": "INTEGER", "primary_key": true}, {"name": "total", "type": "REAL"}]),
    )
    .await;
    let mut ws = live.session(&admin).await;
    // The seed's document as written (table "users"), and one for another table.
    subscribe(&mut ws, "seed", &seed_doc("queryPlanChanges")).await;
    subscribe(
        &mut ws,
        "other",
        &seed_document("queryPlanChanges", "(table: \"orders\")"),
    )
    .await;
    quiet(&mut ws).await;
    let by_email = |e: &str| format!("SELECT id FROM users WHERE email = '{e}'");
    assert_eq!(sql_query(&live, &admin, &by_email("a@x")).await.0, 200);
    sql_execute(
        &live,
        &admin,
        "CREATE INDEX idx_users_email ON users(email)",
    )
    .await;
    // The same normalized query, run after the schema changed: its plan is taken again.
    assert_eq!(sql_query(&live, &admin, &by_email("b@x")).await.0, 200);
    let m = recv(&mut ws).await;
    let c = seed_next(&m, "seed", "queryPlanChanges");
    let old: Vec<&str> = c["oldPlan"]
        .as_array()
        .expect("old")
        .iter()
        .map(|l| l.as_str().expect("line"))
        .collect();
    let new: Vec<&str> = c["newPlan"]
        .as_array()
        .expect("new")
        .iter()
        .map(|l| l.as_str().expect("line"))
        .collect();
    assert_eq!(old, ["SCAN users"], "{c}");
    assert!(
        new.len() == 1
            && new[0].starts_with("SEARCH users USING")
            && new[0].contains("idx_users_email"),
        "{c}"
    );
    assert!(c["estimatedCostChange"].is_null(), "not measurable: {c}");
    assert!(
        c["reason"]
            .as_str()
            .expect("reason")
            .contains("schema changed")
    );
    assert!(chrono::DateTime::parse_from_rfc3339(c["timestamp"].as_str().expect("ts")).is_ok());
    // The change REST records is the same one.
    let (status, changes) = live
        .rest("GET", "/api/v1/sql/plans/changes", &admin, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        changes["changes"][0]["query_hash"], c["queryHash"],
        "{changes}"
    );
    // Nothing for the subscription on `orders`.
    quiet(&mut ws).await;
    subscribe(
        &mut ws,
        "bad",
        "subscription { queryPlanChanges(table: \"\") { queryHash } }",
    )
    .await;
    refused(&mut ws, "bad", "INVALID_ARGUMENT").await;
}

#[tokio::test]
async fn statement_subscriptions_need_the_rest_routes_permissions() {
    let live = Live::start(|_| {}).await;
    // monitor: system:read only; analyst: database:read only; developer: no database:admin.
    let monitor = live.user("watcher", &["monitor"]).await;
    let analyst = live.user("ana", &["analyst"]).await;
    let developer = live.user("dev", &["developer"]).await;
    let mut ws = live.session(&monitor).await;
    for (id, field) in [
        ("a", "activeQueriesStream"),
        ("q", "queryExecution"),
        ("s", "slowQueriesStream"),
        ("p", "queryPlanChanges"),
    ] {
        subscribe(&mut ws, id, &seed_doc(field)).await;
        refused(&mut ws, id, "FORBIDDEN").await;
    }
    subscribe(&mut ws, "b", &seed_doc("bufferPoolMetrics")).await;
    seed_next(&recv_for(&mut ws, "b").await, "b", "bufferPoolMetrics");
    let mut ws = live.session(&analyst).await;
    subscribe(&mut ws, "b", &seed_doc("bufferPoolMetrics")).await;
    refused(&mut ws, "b", "FORBIDDEN").await;
    let mut ws = live.session(&developer).await;
    subscribe(&mut ws, "p", &seed_doc("queryPlanChanges")).await;
    refused(&mut ws, "p", "FORBIDDEN").await;
}
