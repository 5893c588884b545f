//! MVCC and WAL routes against the real engine: frame counts that move with writes, checkpoints
//! that empty the log, vacuums that return free pages, snapshots held by API transactions, and
//! the maintenance events they publish.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestServer};

async fn exec(c: &Caller<'_>, tx: Option<&str>, sql: &str) {
    let r = c
        .post_json(
            "/api/v1/sql/execute",
            &json!({"sql": sql, "transaction_id": tx}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{sql}: {}", r.body);
}

/// `n` rows of about 1 KB each into `t`.
async fn fill(c: &Caller<'_>, n: u32) {
    exec(
        c,
        None,
        &format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
             INSERT INTO t SELECT hex(randomblob(500)) FROM s"
        ),
    )
    .await;
}

fn default_of(body: &Value) -> Value {
    body["databases"]
        .as_array()
        .expect("databases")
        .iter()
        .find(|d| d["database"] == "default")
        .cloned()
        .expect("default database")
}

async fn wal(c: &Caller<'_>) -> Value {
    let r = c.get("/api/v1/transactions/wal/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    default_of(&r.body)
}

async fn mvcc(c: &Caller<'_>) -> Value {
    let r = c.get("/api/v1/transactions/mvcc/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    default_of(&r.body)
}

async fn checkpoint(c: &Caller<'_>, mode: &str) -> Value {
    let r = c
        .post_json(
            "/api/v1/transactions/wal/checkpoint",
            &json!({"mode": mode}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The maintenance events published so far (the bus keeps them for replay).
fn maintenance_events(server: &TestServer) -> Vec<Value> {
    let topic = server.bus().topic("maintenance").expect("topic");
    topic.held().iter().map(|e| e.data.clone()).collect()
}

#[tokio::test]
async fn writes_add_wal_frames_and_checkpoints_copy_then_truncate_them() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    exec(&admin, None, "CREATE TABLE t (a TEXT)").await;
    fill(&admin, 100).await;
    let before = wal(&admin).await;
    let frames = before["frames"].as_u64().expect("WAL-index read");
    assert!(frames > 20, "{before}");
    assert!(before["wal_bytes"].as_u64().unwrap() > 100_000, "{before}");
    assert_eq!(before["wal_page_size"], 4096);
    assert!(before.get("last_checkpoint").is_none(), "{before}");
    fill(&admin, 50).await;
    let more = wal(&admin).await["frames"].as_u64().unwrap();
    assert!(more > frames, "{more} after {frames}");

    // PASSIVE copies every frame (no reader is in the way) and leaves the log in place.
    let passive = checkpoint(&admin, "PASSIVE").await;
    assert_eq!(passive["busy"], 0, "{passive}");
    assert_eq!(passive["log_frames"].as_u64().unwrap(), more, "{passive}");
    assert_eq!(passive["checkpointed_frames"], passive["log_frames"]);
    let after = wal(&admin).await;
    assert_eq!(
        after["frames_backfilled"].as_u64().unwrap(),
        more,
        "{after}"
    );
    assert!(after["wal_bytes"].as_u64().unwrap() > 0);

    // TRUNCATE resets the log: no frames, a zero-byte file.
    let truncate = checkpoint(&admin, "TRUNCATE").await;
    assert_eq!(truncate["busy"], 0, "{truncate}");
    assert!(truncate["wal_bytes_before"].as_u64().unwrap() > 100_000);
    assert_eq!(truncate["wal_bytes_after"], 0, "{truncate}");
    // SQLite reports the reset log, not what it copied (see docs/operations.md).
    assert_eq!(truncate["log_frames"], 0, "{truncate}");
    assert_eq!(truncate["checkpointed_frames"], 0, "{truncate}");
    let empty = wal(&admin).await;
    assert_eq!(empty["frames"], 0, "{empty}");
    assert_eq!(empty["wal_bytes"], 0, "{empty}");
    assert_eq!(empty["last_checkpoint"]["mode"], "TRUNCATE", "{empty}");

    let events: Vec<Value> = maintenance_events(&server)
        .into_iter()
        .filter(|e| e["operation"] == "CHECKPOINT")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["checkpoint_mode"], "PASSIVE");
    assert_eq!(events[0]["checkpointed_frames"].as_u64().unwrap(), more);
    assert_eq!(events[1]["statement"], "PRAGMA wal_checkpoint(TRUNCATE)");
    assert_eq!(events[1]["wal_bytes_after"], 0);
    assert_eq!(events[1]["user"], "admin");
}

#[tokio::test]
async fn a_read_snapshot_is_seen_and_holds_back_a_checkpoint() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    exec(&admin, None, "CREATE TABLE t (a TEXT)").await;
    fill(&admin, 20).await;
    checkpoint(&admin, "TRUNCATE").await;
    fill(&admin, 20).await;

    let r = admin
        .post_json(
            "/api/v1/transactions",
            &json!({"mode": "deferred"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tx = r.body["transaction_id"].as_str().unwrap().to_string();
    let holds = &mvcc(&admin).await["transactions"];
    assert_eq!(holds["open"], 1, "{holds}");
    assert_eq!(
        holds["none"], 1,
        "deferred: no snapshot before the first read: {holds}"
    );

    let r = admin
        .post_json(
            "/api/v1/sql/query",
            &json!({"sql": "SELECT count(*) FROM t", "transaction_id": tx}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let holds = &mvcc(&admin).await["transactions"];
    assert_eq!(holds["read_snapshot"], 1, "{holds}");
    let pinned = wal(&admin).await["frames"].as_u64().unwrap();

    // Newer frames than the snapshot cannot be copied while it lives.
    fill(&admin, 20).await;
    let passive = checkpoint(&admin, "PASSIVE").await;
    let (log, done) = (
        passive["log_frames"].as_u64().unwrap(),
        passive["checkpointed_frames"].as_u64().unwrap(),
    );
    assert!(
        done <= pinned && log > pinned,
        "{passive}, snapshot at {pinned}"
    );
    assert!(
        wal(&admin).await["read_marks"]
            .as_array()
            .unwrap()
            .contains(&json!(pinned))
    );

    let r = admin
        .post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(mvcc(&admin).await["transactions"]["open"], 0);
    let passive = checkpoint(&admin, "PASSIVE").await;
    assert_eq!(
        passive["checkpointed_frames"], passive["log_frames"],
        "{passive}"
    );
}

#[tokio::test]
async fn vacuum_returns_the_free_pages_left_by_deletes() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    exec(&admin, None, "CREATE TABLE t (a TEXT)").await;
    fill(&admin, 300).await;
    exec(&admin, None, "DELETE FROM t").await;
    let status = mvcc(&admin).await;
    let free = status["freelist_count"].as_i64().unwrap();
    assert!(free > 50, "{status}");
    assert_eq!(status["auto_vacuum"], "none");

    // Incremental vacuum frees nothing without auto_vacuum = INCREMENTAL: refused, not faked.
    let r = admin
        .post_json(
            "/api/v1/transactions/mvcc/vacuum",
            &json!({"mode": "incremental"}).to_string(),
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");

    let r = admin
        .post_json("/api/v1/transactions/mvcc/vacuum", "{}")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reclaimed = r.body["bytes_reclaimed"].as_i64().unwrap();
    assert_eq!(r.body["freelist_before"].as_i64().unwrap(), free);
    assert_eq!(r.body["freelist_after"], 0);
    assert!(reclaimed >= free * 4096, "{}", r.body);
    assert_eq!(
        r.body["size_before_bytes"].as_i64().unwrap()
            - r.body["size_after_bytes"].as_i64().unwrap(),
        reclaimed
    );
    assert_eq!(mvcc(&admin).await["freelist_count"], 0);
    let events = maintenance_events(&server);
    let vacuum = events.last().expect("event");
    assert_eq!(vacuum["operation"], "VACUUM");
    assert_eq!(vacuum["statement"], "VACUUM");
    assert_eq!(
        vacuum["size_before_bytes"].as_i64().unwrap()
            - vacuum["size_after_bytes"].as_i64().unwrap(),
        reclaimed
    );

    // With auto_vacuum = INCREMENTAL, exactly the pages asked for are returned.
    exec(&admin, None, "PRAGMA auto_vacuum = INCREMENTAL").await;
    exec(&admin, None, "VACUUM").await;
    fill(&admin, 300).await;
    exec(&admin, None, "DELETE FROM t").await;
    let r = admin
        .post_json(
            "/api/v1/transactions/mvcc/vacuum",
            &json!({"mode": "incremental", "pages": 10}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["statement"], "PRAGMA incremental_vacuum(10)");
    let (before, after) = (
        r.body["freelist_before"].as_i64().unwrap(),
        r.body["freelist_after"].as_i64().unwrap(),
    );
    assert!(before > 10, "{}", r.body);
    assert_eq!(after, before - 10, "{}", r.body);
    assert_eq!(r.body["bytes_reclaimed"], 10 * 4096);
}

#[tokio::test]
async fn bad_requests_and_permissions() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    for (path, body) in [
        (
            "/api/v1/transactions/wal/checkpoint",
            json!({"mode": "SOMETIMES"}),
        ),
        (
            "/api/v1/transactions/mvcc/vacuum",
            json!({"mode": "partial"}),
        ),
        ("/api/v1/transactions/mvcc/vacuum", json!({"pages": -1})),
    ] {
        let r = admin.post_json(path, &body.to_string()).await;
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    for path in [
        "/api/v1/transactions/wal/checkpoint",
        "/api/v1/transactions/mvcc/vacuum",
    ] {
        let r = admin
            .post_json(path, &json!({"database": "nope"}).to_string())
            .await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    }
    let analyst = server.user_with_roles("ann", &["analyst"]).await;
    for path in [
        "/api/v1/transactions/wal/checkpoint",
        "/api/v1/transactions/mvcc/vacuum",
    ] {
        let r = analyst.post_json(path, "{}").await;
        assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
    }
    for path in [
        "/api/v1/transactions/wal/status",
        "/api/v1/transactions/mvcc/status",
    ] {
        assert_eq!(analyst.get(path).await.status, StatusCode::OK);
    }
    // The routes beside /transactions/{id} still reach the transaction handlers.
    let r = admin.get("/api/v1/transactions/txn-unknown").await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
}
