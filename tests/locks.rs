//! The lock manager through real API transactions: shared and exclusive locks, FIFO waits,
//! timeouts, deadlocks with their victim, history and events, admin release and access rules.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestResponse, TestServer};

async fn begin(c: &Caller<'_>) -> String {
    let r = c.post_json("/api/v1/transactions", "{}").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["transaction_id"].as_str().expect("id").to_string()
}

async fn lock(c: &Caller<'_>, tx: &str, body: Value) -> TestResponse {
    c.post_json(
        &format!("/api/v1/transactions/{tx}/locks"),
        &body.to_string(),
    )
    .await
}

fn named(resource: &str, mode: &str, timeout_ms: u64) -> Value {
    json!({"resource": resource, "mode": mode, "timeout_ms": timeout_ms})
}

/// Waits (bounded) until `tx` has a lock request queued.
async fn until_waiting(c: &Caller<'_>, tx: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.get(&format!("/api/v1/transactions/{tx}/locks")).await;
        let locks = r.body["locks"].as_array().cloned().unwrap_or_default();
        if locks.iter().any(|l| l["state"] == "waiting") {
            return;
        }
        assert!(Instant::now() < deadline, "{tx} never waited: {}", r.body);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `locks` topic's events so far, as (message_type, data).
fn lock_events(server: &TestServer) -> Vec<(String, Value)> {
    let topic = server.bus().topic("locks").expect("locks topic");
    topic
        .held()
        .iter()
        .map(|e| (e.message_type.to_string(), e.data.clone()))
        .collect()
}

#[tokio::test]
async fn a_deadlock_fails_the_younger_transaction_and_the_other_proceeds() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let admin = server.admin().await;
    let old = begin(&dev).await;
    let young = begin(&dev).await;
    assert_eq!(
        lock(&dev, &old, named("A", "exclusive", 0)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        lock(&dev, &young, named("B", "exclusive", 0)).await.status,
        StatusCode::OK
    );

    // old waits for B; young then asks for A and closes the cycle: young is the victim.
    let (waited, victim) = tokio::join!(lock(&dev, &old, named("B", "exclusive", 20_000)), async {
        until_waiting(&dev, &old).await;
        let graph = admin.get("/api/v1/transactions/locks/graph").await;
        assert_eq!(
            graph.body["edges"][0]["waiter"],
            old.as_str(),
            "{}",
            graph.body
        );
        assert_eq!(graph.body["edges"][0]["holder"], young.as_str());
        let waiters = admin.get("/api/v1/transactions/locks/waiters").await;
        assert_eq!(waiters.body["total"], 1);
        assert_eq!(waiters.body["locks"][0]["blocked_by"], json!([young]));
        lock(&dev, &young, named("A", "exclusive", 20_000)).await
    });
    assert_eq!(victim.assert_error(StatusCode::CONFLICT), "DEADLOCK");
    let details = &victim.body["error"]["details"];
    assert_eq!(details["victim_transaction"], young.as_str());
    assert_eq!(details["transactions"], json!([young, old]));
    assert_eq!(
        details["resource_graph"].as_array().expect("edges").len(),
        2
    );
    assert_eq!(waited.status, StatusCode::OK, "{}", waited.body);
    assert_eq!(waited.body["resource"], "B");
    assert_eq!(waited.body["state"], "granted");

    // The victim was rolled back and says why; the survivor holds both locks.
    let ended = dev.get(&format!("/api/v1/transactions/{young}")).await;
    assert_eq!(ended.body["state"], "rolled_back");
    assert!(
        ended.body["end_reason"]
            .as_str()
            .expect("reason")
            .contains("deadlock victim")
    );
    let held = dev.get(&format!("/api/v1/transactions/{old}/locks")).await;
    assert_eq!(held.body["total"], 2);

    let history = admin.get("/api/v1/transactions/deadlocks").await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["total"], 1);
    assert_eq!(history.body["detected_total"], 1);
    let d = &history.body["deadlocks"][0];
    assert_eq!(d["victim_transaction"], young.as_str());
    assert_eq!(d["detected_by"], "on_wait");
    assert_eq!(d["deadlock_id"], details["deadlock_id"]);
    assert!(
        d["resolution_strategy"]
            .as_str()
            .expect("s")
            .contains("youngest")
    );

    let events = lock_events(&server);
    let detected: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "deadlock_detected")
        .collect();
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0].1["victim_transaction"], young.as_str());
    assert_eq!(detected[0].1["transactions"], json!([young, old]));
    let kinds = |tx: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(t, d)| t == "lock_event" && d["transaction_id"] == tx)
            .map(|(_, d)| {
                format!(
                    "{} {}",
                    d["event_type"].as_str().unwrap(),
                    d["resource"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        kinds(&young),
        ["ACQUIRED B", "WAITING A", "DEADLOCK A", "RELEASED B"]
    );
    assert_eq!(kinds(&old), ["ACQUIRED A", "WAITING B", "ACQUIRED B"]);

    // Nothing is left to find.
    let detect = admin
        .post_json("/api/v1/transactions/deadlocks/detect", "")
        .await;
    assert_eq!(detect.status, StatusCode::OK, "{}", detect.body);
    assert_eq!(detect.body["deadlocks"], json!([]));
    assert_eq!(detect.body["edges_checked"], 0);
}

#[tokio::test]
async fn when_the_older_closes_the_cycle_the_waiting_younger_one_fails() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let old = begin(&dev).await;
    let young = begin(&dev).await;
    let row = |id: &str| json!({"table": "orders", "row_id": id, "mode": "exclusive", "timeout_ms": 20_000});
    assert_eq!(lock(&dev, &old, row("1")).await.status, StatusCode::OK);
    assert_eq!(lock(&dev, &young, row("2")).await.status, StatusCode::OK);
    let (victim, survivor) = tokio::join!(lock(&dev, &young, row("1")), async {
        until_waiting(&dev, &young).await;
        lock(&dev, &old, row("2")).await
    });
    assert_eq!(victim.assert_error(StatusCode::CONFLICT), "DEADLOCK");
    assert_eq!(survivor.status, StatusCode::OK, "{}", survivor.body);
    assert_eq!(survivor.body["lock_type"], "row");
    assert_eq!(survivor.body["table"], "orders");
    assert_eq!(survivor.body["resource"], "orders/2");
    let ended = dev.get(&format!("/api/v1/transactions/{young}")).await;
    assert_eq!(ended.body["state"], "rolled_back");
}

#[tokio::test]
async fn a_lock_not_freed_in_time_is_a_lock_timeout() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let admin = server.admin().await;
    let a = begin(&dev).await;
    let b = begin(&dev).await;
    assert_eq!(
        lock(&dev, &a, named("r", "exclusive", 0)).await.status,
        StatusCode::OK
    );
    let r = lock(&dev, &b, named("r", "exclusive", 150)).await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "LOCK_TIMEOUT");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(&a));
    // timeout_ms 0: no wait at all.
    let r = lock(&dev, &b, named("r", "shared", 0)).await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "LOCK_TIMEOUT");
    // The timed-out requests left no waiter behind, and the transaction is still usable.
    let waiters = admin.get("/api/v1/transactions/locks/waiters").await;
    assert_eq!(waiters.body["total"], 0, "{}", waiters.body);
    assert_eq!(
        lock(&dev, &b, named("other", "exclusive", 0)).await.status,
        StatusCode::OK
    );
    let events = lock_events(&server);
    assert!(
        events
            .iter()
            .any(|(_, d)| d["event_type"] == "TIMEOUT" && d["transaction_id"] == b.as_str())
    );
}

#[tokio::test]
async fn shared_locks_share_and_exclusive_waits_for_the_commit() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let admin = server.admin().await;
    let (a, b, c) = (begin(&dev).await, begin(&dev).await, begin(&dev).await);
    let s1 = lock(&dev, &a, named("report", "shared", 0)).await;
    assert_eq!(s1.status, StatusCode::OK, "{}", s1.body);
    assert_eq!(
        lock(&dev, &b, named("report", "shared", 0)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        admin.get("/api/v1/transactions/locks").await.body["total"],
        2
    );
    // Asking again returns the same lock.
    let again = lock(&dev, &a, named("report", "shared", 0)).await;
    assert_eq!(again.body["lock_id"], s1.body["lock_id"]);

    // An exclusive request waits until both shared holders end.
    let (x, ()) = tokio::join!(
        lock(&dev, &c, named("report", "exclusive", 20_000)),
        async {
            until_waiting(&dev, &c).await;
            dev.post_json(&format!("/api/v1/transactions/{a}/commit"), "")
                .await;
            dev.post_json(&format!("/api/v1/transactions/{b}/rollback"), "")
                .await;
        }
    );
    assert_eq!(x.status, StatusCode::OK, "{}", x.body);
    assert_eq!(x.body["mode"], "exclusive");
    assert!(x.body["wait_time_ms"].as_f64().unwrap() > 0.0);
    // An exclusive lock blocks a shared request.
    let d = begin(&dev).await;
    let r = lock(&dev, &d, named("report", "shared", 50)).await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "LOCK_TIMEOUT");
    // Committing releases it.
    dev.post_json(&format!("/api/v1/transactions/{c}/commit"), "")
        .await;
    assert_eq!(
        lock(&dev, &d, named("report", "shared", 0)).await.status,
        StatusCode::OK
    );
    let released: Vec<_> = lock_events(&server)
        .into_iter()
        .filter(|(_, e)| e["event_type"] == "RELEASED" && e["transaction_id"] == c.as_str())
        .collect();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].1["reason"], "commit");
    assert_eq!(released[0].1["granted"], false);
}

#[tokio::test]
async fn an_admin_release_wakes_the_waiter_and_the_holder_stays_open() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let admin = server.admin().await;
    let (a, b) = (begin(&dev).await, begin(&dev).await);
    let held = lock(&dev, &a, named("job", "exclusive", 0)).await;
    let lock_id = held.body["lock_id"].as_str().expect("id").to_string();
    dev.delete(&format!("/api/v1/transactions/locks/{lock_id}"))
        .await
        .assert_error(StatusCode::FORBIDDEN);
    let (granted, released) =
        tokio::join!(lock(&dev, &b, named("job", "exclusive", 20_000)), async {
            until_waiting(&dev, &b).await;
            admin
                .delete(&format!("/api/v1/transactions/locks/{lock_id}"))
                .await
        });
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    assert_eq!(released.body["transaction_id"], a.as_str());
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["transaction_id"], b.as_str());
    // The holder's listing shows the lock gone; its transaction is still open.
    assert_eq!(
        dev.get(&format!("/api/v1/transactions/{a}/locks"))
            .await
            .body["total"],
        0
    );
    assert_eq!(
        dev.get(&format!("/api/v1/transactions/{a}")).await.body["state"],
        "active"
    );
    admin
        .delete(&format!("/api/v1/transactions/locks/{lock_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let reason = lock_events(&server)
        .into_iter()
        .find(|(_, e)| e["event_type"] == "RELEASED")
        .expect("released")
        .1["reason"]
        .clone();
    assert_eq!(reason, "released by admin admin");
}

#[tokio::test]
async fn locks_belong_to_the_transaction_owner_and_global_views_to_admins() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let other = server.user_with_roles("other", &["developer"]).await;
    let monitor = server.user_with_roles("mon", &["monitor"]).await;
    let tx = begin(&dev).await;
    let path = format!("/api/v1/transactions/{tx}/locks");
    let body = named("r", "shared", 0).to_string();
    other
        .post_json(&path, &body)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    other.get(&path).await.assert_error(StatusCode::NOT_FOUND);
    monitor
        .post_json(&path, &body)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    server
        .anon()
        .post_json(&path, &body)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    for route in [
        "/api/v1/transactions/locks",
        "/api/v1/transactions/locks/waiters",
        "/api/v1/transactions/locks/graph",
        "/api/v1/transactions/deadlocks",
    ] {
        dev.get(route).await.assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            server.admin().await.get(route).await.status,
            StatusCode::OK,
            "{route}"
        );
    }
    dev.post_json("/api/v1/transactions/deadlocks/detect", "")
        .await
        .assert_error(StatusCode::FORBIDDEN);
    // An admin may lock in anyone's transaction.
    let admin = server.admin().await;
    assert_eq!(admin.post_json(&path, &body).await.status, StatusCode::OK);
    assert_eq!(dev.get(&path).await.body["locks"][0]["owner"], "dev");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let tx = begin(&dev).await;
    let r = lock(&dev, "txn-nope", named("r", "shared", 0)).await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    for (body, status) in [
        (
            json!({"resource": "r", "mode": "bogus"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"resource": "r"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"mode": "shared"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"table": "t", "mode": "shared"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"row_id": "1", "mode": "shared"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"resource": "r", "table": "t", "row_id": "1", "mode": "shared"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"resource": "", "mode": "shared"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"resource": "r", "mode": "shared", "timeout_ms": 60_001}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"resource": "r", "mode": "shared", "timeout_ms": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = lock(&dev, &tx, body.clone()).await;
        r.assert_error(status);
        assert_ne!(r.status, StatusCode::OK, "{body}");
    }
    dev.post_json(&format!("/api/v1/transactions/{tx}/locks"), "{")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    // Nothing was taken by the refused requests.
    assert_eq!(
        dev.get(&format!("/api/v1/transactions/{tx}/locks"))
            .await
            .body["total"],
        0
    );
    // An ended transaction cannot lock.
    dev.post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    lock(&dev, &tx, named("r", "shared", 0))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}
