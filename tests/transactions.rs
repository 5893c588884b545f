//! Explicit transactions: isolation until commit, rollback, nested savepoints, ownership and the
//! idle timeout.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestServer};

async fn exec(c: &Caller<'_>, tx: Option<&str>, sql: &str) -> crate::support::TestResponse {
    c.post_json(
        "/api/v1/sql/execute",
        &json!({"sql": sql, "transaction_id": tx}).to_string(),
    )
    .await
}

async fn count(c: &Caller<'_>, tx: Option<&str>) -> Value {
    let r = c
        .post_json(
            "/api/v1/sql/query",
            &json!({"sql": "SELECT count(*) FROM t", "transaction_id": tx}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["rows"][0][0].clone()
}

async fn begin(c: &Caller<'_>, body: Value) -> String {
    let r = c.post_json("/api/v1/transactions", &body.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "active");
    r.body["transaction_id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn changes_are_invisible_until_commit_and_gone_after_rollback() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let tx = begin(&dev, json!({"mode": "immediate"})).await;
    assert_eq!(
        exec(&dev, Some(&tx), "INSERT INTO t VALUES (1)")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(count(&dev, Some(&tx)).await, 1, "visible inside");
    assert_eq!(count(&dev, None).await, 0, "invisible outside");
    let active = dev.get("/api/v1/transactions/active").await;
    assert_eq!(active.body["total"], 1);
    assert_eq!(active.body["transactions"][0]["statements"], 2);
    let done = dev
        .post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["state"], "committed");
    assert_eq!(count(&dev, None).await, 1);
    // Ended: no longer usable, but it says how it ended.
    let again = dev
        .post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    assert_eq!(again.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    assert!(
        again.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("commit")
    );
    assert_eq!(
        dev.get(&format!("/api/v1/transactions/{tx}")).await.body["state"],
        "committed"
    );

    let tx = begin(&dev, json!({})).await;
    exec(&dev, Some(&tx), "INSERT INTO t VALUES (2)").await;
    let r = dev
        .post_json(&format!("/api/v1/transactions/{tx}/rollback"), "")
        .await;
    assert_eq!(r.body["state"], "rolled_back");
    assert_eq!(count(&dev, None).await, 1);
}

#[tokio::test]
async fn nested_savepoints_release_and_roll_back() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let tx = begin(&dev, json!({})).await;
    let sp = |name: &str| json!({"name": name}).to_string();
    let base = format!("/api/v1/transactions/{tx}/savepoints");
    exec(&dev, Some(&tx), "INSERT INTO t VALUES (1)").await;
    dev.post_json(&base, &sp("a")).await;
    exec(&dev, Some(&tx), "INSERT INTO t VALUES (2)").await;
    let r = dev.post_json(&base, &sp("b")).await;
    assert_eq!(r.body["savepoints"], json!(["a", "b"]));
    exec(&dev, Some(&tx), "INSERT INTO t VALUES (3)").await;
    let r = dev.post_json(&format!("{base}/b/rollback"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["savepoints"],
        json!(["a", "b"]),
        "rollback to keeps the savepoint"
    );
    assert_eq!(count(&dev, Some(&tx)).await, 2);
    let r = dev.post_json(&format!("{base}/a/release"), "").await;
    assert_eq!(r.body["savepoints"], json!([]));
    dev.post_json(&format!("{base}/a/rollback"), "")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    dev.post_json(&base, r#"{"name": "bad name!"}"#)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    dev.post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    assert_eq!(count(&dev, None).await, 2);
}

#[tokio::test]
async fn transactions_belong_to_their_owner() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let other = server.user_with_roles("other", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let tx = begin(&dev, json!({})).await;
    for r in [
        other.get(&format!("/api/v1/transactions/{tx}")).await,
        exec(&other, Some(&tx), "INSERT INTO t VALUES (9)").await,
        other
            .post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
            .await,
    ] {
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    }
    assert_eq!(
        other.get("/api/v1/transactions/active").await.body["total"],
        0
    );
    let admin = server.admin().await;
    assert_eq!(
        admin.get("/api/v1/transactions/active").await.body["total"],
        1
    );
    exec(&dev, Some("txn-nope"), "SELECT 1")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let wrong_db = dev
        .post_json(
            "/api/v1/sql/execute",
            &json!({"sql": "SELECT 1", "transaction_id": tx, "database": "nope"}).to_string(),
        )
        .await;
    wrong_db.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    // An analyst's transaction is read-only whatever it asks for.
    let analyst = server.user_with_roles("ana", &["analyst"]).await;
    let ro = analyst
        .post_json("/api/v1/transactions", r#"{"read_only": false}"#)
        .await;
    assert_eq!(ro.body["read_only"], true, "{}", ro.body);
}

#[tokio::test]
async fn an_idle_transaction_is_rolled_back_and_says_so() {
    let server = TestServer::with_config(|c| {
        c.transaction_idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let tx = begin(&dev, json!({"mode": "immediate"})).await;
    exec(&dev, Some(&tx), "INSERT INTO t VALUES (1)").await;
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let info = dev.get(&format!("/api/v1/transactions/{tx}")).await;
    assert_eq!(info.body["state"], "rolled_back", "{}", info.body);
    assert_eq!(info.body["end_reason"], "rolled back after 1 s idle");
    let late = exec(&dev, Some(&tx), "INSERT INTO t VALUES (2)").await;
    assert!(
        late.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("idle")
    );
    assert_eq!(count(&dev, None).await, 0);
    // The write lock it held is free again.
    assert_eq!(
        exec(&dev, None, "INSERT INTO t VALUES (3)").await.status,
        StatusCode::OK
    );
}

/// Transaction control sent as SQL inside an API transaction would end it behind the API's back
/// (the record said active, later statements autocommitted, and a rollback "succeeded" over
/// committed rows): it is a 400 naming the routes to use, and the transaction goes on intact.
#[tokio::test]
async fn sql_transaction_control_inside_an_api_transaction_is_refused() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let tx = begin(&dev, json!({"mode": "immediate"})).await;
    assert_eq!(
        exec(&dev, Some(&tx), "INSERT INTO t VALUES (1)")
            .await
            .status,
        StatusCode::OK
    );
    for (statement, names) in [
        ("COMMIT", "/commit"),
        ("ROLLBACK", "/rollback"),
        ("BEGIN", "/commit"),
        ("END", "/commit"),
        ("SAVEPOINT s", "savepoints"),
        ("RELEASE s", "savepoints"),
    ] {
        let r = exec(&dev, Some(&tx), statement).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{statement}: {}", r.body);
        let message = r.body["error"]["message"].as_str().expect("message");
        assert!(message.contains(names), "{statement}: {message}");
    }
    let info = dev.get(&format!("/api/v1/transactions/{tx}")).await;
    assert_eq!(info.body["state"], "active", "{}", info.body);
    assert_eq!(
        count(&dev, None).await,
        0,
        "nothing committed behind the API's back"
    );
    assert_eq!(
        exec(&dev, Some(&tx), "INSERT INTO t VALUES (2)")
            .await
            .status,
        StatusCode::OK
    );
    let done = dev
        .post_json(&format!("/api/v1/transactions/{tx}/rollback"), "")
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["state"], "rolled_back");
    assert_eq!(
        count(&dev, None).await,
        0,
        "the record says rolled back and nothing is stored"
    );
}

/// A contradictory begin is refused with a message, never a 500.
#[tokio::test]
async fn a_read_only_transaction_cannot_take_the_write_lock() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    for mode in ["immediate", "exclusive"] {
        let r = dev
            .post_json(
                "/api/v1/transactions",
                &json!({"database": "default", "mode": mode, "read_only": true}).to_string(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{mode}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("read-only"),
            "{}",
            r.body
        );
    }
    let reader = server.user_with_roles("ana", &["analyst"]).await;
    let r = reader
        .post_json(
            "/api/v1/transactions",
            &json!({"mode": "immediate"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Deferred and read-only is what a reader gets.
    let tx = begin(&reader, json!({"mode": "deferred", "read_only": true})).await;
    assert!(tx.starts_with("txn-"));
}

/// A write blocked by another writer's lock answers 409 after the busy timeout, on the SQL
/// routes as on the transactions route (it was a 400 "database is locked" there).
#[tokio::test]
async fn a_write_blocked_by_another_writer_is_a_conflict_everywhere() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, None, "CREATE TABLE t (a INTEGER)").await;
    let holder = begin(&dev, json!({"mode": "immediate"})).await;
    let r = exec(&dev, None, "INSERT INTO t VALUES (1)").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked by another writer"),
        "{}",
        r.body
    );
    let other = dev
        .post_json(
            "/api/v1/transactions",
            &json!({"mode": "immediate"}).to_string(),
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(r.body["error"]["code"], other.body["error"]["code"]);
    let done = dev
        .post_json(&format!("/api/v1/transactions/{holder}/rollback"), "")
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(
        exec(&dev, None, "INSERT INTO t VALUES (1)").await.status,
        StatusCode::OK
    );
}
