//! Databases and SQL: happy paths, bad input, the authorizer per role, timeouts, batches.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestResponse, TestServer};

async fn exec(c: &Caller<'_>, sql: &str, params: Value) -> TestResponse {
    c.post_json(
        "/api/v1/sql/execute",
        &json!({"sql": sql, "params": params}).to_string(),
    )
    .await
}

async fn query(c: &Caller<'_>, body: Value) -> TestResponse {
    c.post_json("/api/v1/sql/query", &body.to_string()).await
}

#[tokio::test]
async fn databases_are_created_described_listed_and_deleted() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let list = admin.get("/api/v1/databases").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["databases"][0]["name"], "default");
    let created = admin
        .post_json("/api/v1/databases", r#"{"name": "shop"}"#)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["journal_mode"], "wal");
    assert!(server.data_dir.path().join("databases/shop.db").exists());
    let r = admin
        .post_json(
            "/api/v1/sql/execute",
            r#"{"sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)", "database": "shop"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let info = admin.get("/api/v1/databases/shop").await;
    assert_eq!(info.body["tables"], json!(["items"]));
    assert!(info.body["page_count"].as_i64().expect("pages") >= 2);
    assert!(
        info.body["size_bytes"].as_u64().expect("size") > 0
            || info.body["wal_bytes"].as_u64().expect("wal") > 0
    );

    for (name, status) in [
        ("shop", StatusCode::CONFLICT),
        ("../etc", StatusCode::UNPROCESSABLE_ENTITY),
        ("Shop", StatusCode::UNPROCESSABLE_ENTITY),
        ("1abc", StatusCode::UNPROCESSABLE_ENTITY),
        ("a/b", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = admin
            .post_json("/api/v1/databases", &json!({"name": name}).to_string())
            .await;
        r.assert_error(status);
    }
    admin
        .get("/api/v1/databases/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    admin
        .delete("/api/v1/databases/default")
        .await
        .assert_error(StatusCode::CONFLICT);
    assert_eq!(
        admin.delete("/api/v1/databases/shop").await.status,
        StatusCode::NO_CONTENT
    );
    assert!(!server.data_dir.path().join("databases/shop.db").exists());
    admin
        .get("/api/v1/databases/shop")
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn statements_bind_parameters_and_return_typed_rows() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let r = exec(
        &dev,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, score REAL, avatar BLOB)",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = exec(
        &dev,
        "INSERT INTO users (name, age, score, avatar) VALUES (?, ?, ?, x'CAFE')",
        json!(["alice", 30, 9.5]),
    )
    .await;
    assert_eq!(r.body["rows_affected"], 1, "{}", r.body);
    assert_eq!(r.body["last_insert_id"], 1);
    // Injection attempts stay data.
    let evil = "x'); DROP TABLE users; --";
    exec(
        &dev,
        "INSERT INTO users (name, age) VALUES (:name, :age)",
        json!({"name": evil, "age": null}),
    )
    .await;
    let rows = query(&dev, json!({"sql": "SELECT id, name, age, score, avatar FROM users WHERE age > ? OR age IS NULL ORDER BY id", "params": [18], "timeout": 30000})).await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.body);
    assert_eq!(rows.body["row_count"], 2);
    assert_eq!(rows.body["rows"][0], json!([1, "alice", 30, 9.5, "yv4="]));
    assert_eq!(rows.body["rows"][1][1], evil);
    assert!(rows.body["rows"][1][2].is_null());
    assert_eq!(
        rows.body["columns"][1],
        json!({"name": "name", "decl_type": "TEXT"})
    );
    assert_eq!(rows.body["database"], "default");

    let capped = query(&dev, json!({"sql": "SELECT * FROM users", "max_rows": 1})).await;
    assert_eq!(capped.body["row_count"], 1);
    assert_eq!(capped.body["truncated"], true);
}

#[tokio::test]
async fn bad_sql_and_bad_parameters_are_client_errors() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(
        &dev,
        "CREATE TABLE t (a INTEGER NOT NULL UNIQUE)",
        Value::Null,
    )
    .await;
    let cases = [
        (
            json!({"sql": "SELEC 1"}),
            StatusCode::BAD_REQUEST,
            "SQL_ERROR",
        ),
        (
            json!({"sql": "SELECT * FROM missing"}),
            StatusCode::BAD_REQUEST,
            "SQL_ERROR",
        ),
        (
            json!({"sql": "SELECT nope FROM t"}),
            StatusCode::BAD_REQUEST,
            "SQL_ERROR",
        ),
        (
            json!({"sql": "SELECT 1; SELECT 2"}),
            StatusCode::BAD_REQUEST,
            "SQL_ERROR",
        ),
        (
            json!({"sql": "SELECT ?"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT ?", "params": [1, 2]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT ?", "params": [[1]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT :a", "params": {"b": 1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT 1", "params": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT 1", "database": "nope"}),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            json!({"sql": "SELECT 1", "timeout": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": "SELECT 1", "max_rows": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST",
        ),
        (
            json!({"sql": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
        (
            json!({"query": "SELECT 1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
    ];
    for (body, status, code) in cases {
        let r = query(&dev, body.clone()).await;
        assert_eq!(r.assert_error(status), code, "{body}: {}", r.body);
    }
    exec(&dev, "INSERT INTO t VALUES (1)", Value::Null).await;
    let dup = exec(&dev, "INSERT INTO t VALUES (1)", Value::Null).await;
    assert_eq!(dup.assert_error(StatusCode::BAD_REQUEST), "SQL_ERROR");
    assert!(
        dup.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("UNIQUE")
    );
}

#[tokio::test]
async fn the_authorizer_enforces_each_role_inside_sql() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let analyst = server.user_with_roles("ana", &["analyst"]).await;
    exec(&dev, "CREATE TABLE t (a INTEGER)", Value::Null).await;
    exec(&dev, "INSERT INTO t VALUES (1)", Value::Null).await;

    // analyst: reads only, even through /sql/query.
    let ok = query(&analyst, json!({"sql": "SELECT a FROM t"})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    for sql in [
        "INSERT INTO t VALUES (2) RETURNING a",
        "DELETE FROM t RETURNING a",
        "CREATE TABLE x (a)",
        "PRAGMA user_version = 3",
        "ATTACH DATABASE '/tmp/evil.db' AS evil",
    ] {
        let r = query(&analyst, json!({"sql": sql})).await;
        assert_eq!(
            r.assert_error(StatusCode::FORBIDDEN),
            "SQL_NOT_AUTHORIZED",
            "analyst: {sql}"
        );
    }
    let r = exec(&analyst, "INSERT INTO t VALUES (2)", Value::Null).await;
    assert_eq!(
        r.assert_error(StatusCode::FORBIDDEN),
        "FORBIDDEN",
        "operation permission"
    );
    let info = query(&analyst, json!({"sql": "PRAGMA table_info(t)"})).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);

    // developer: writes and schema, but no settings and no ATTACH.
    for sql in [
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 3",
        "ATTACH DATABASE ':memory:' AS m",
    ] {
        let r = exec(&dev, sql, Value::Null).await;
        assert_eq!(
            r.assert_error(StatusCode::FORBIDDEN),
            "SQL_NOT_AUTHORIZED",
            "developer: {sql}"
        );
    }
    assert_eq!(
        exec(&dev, "CREATE INDEX t_a ON t (a)", Value::Null)
            .await
            .status,
        StatusCode::OK
    );

    // admin: settings too, still no ATTACH.
    assert_eq!(
        exec(&admin, "PRAGMA user_version = 3", Value::Null)
            .await
            .status,
        StatusCode::OK
    );
    let r = exec(
        &admin,
        "ATTACH DATABASE '/tmp/evil.db' AS evil",
        Value::Null,
    )
    .await;
    assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "SQL_NOT_AUTHORIZED");
    // Nothing the refused statements tried happened.
    let count = query(&analyst, json!({"sql": "SELECT count(*) FROM t"})).await;
    assert_eq!(count.body["rows"][0][0], 1);
}

#[tokio::test]
async fn runaway_statements_are_interrupted_at_their_timeout() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let start = std::time::Instant::now();
    let r = query(
        &dev,
        json!({"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout": 200}),
    )
    .await;
    assert_eq!(r.assert_error(StatusCode::REQUEST_TIMEOUT), "QUERY_TIMEOUT");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "interrupted promptly"
    );
    // The pooled connection is usable afterwards.
    let ok = query(&dev, json!({"sql": "SELECT 1"})).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, "CREATE TABLE t (a INTEGER UNIQUE)", Value::Null).await;
    let ok = dev
        .post_json(
            "/api/v1/sql/batch",
            &json!({"statements": [
                {"sql": "INSERT INTO t VALUES (?)", "params": [1]},
                {"sql": "INSERT INTO t VALUES (?)", "params": [2]}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["results"][1]["last_insert_id"], 2);
    let failed = dev
        .post_json(
            "/api/v1/sql/batch",
            &json!({"statements": [
                {"sql": "INSERT INTO t VALUES (3)"},
                {"sql": "INSERT INTO t VALUES (1)"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(failed.assert_error(StatusCode::BAD_REQUEST), "SQL_ERROR");
    assert!(
        failed.body["error"]["message"]
            .as_str()
            .expect("m")
            .starts_with("statement 2:")
    );
    let count = query(&dev, json!({"sql": "SELECT count(*) FROM t"})).await;
    assert_eq!(
        count.body["rows"][0][0], 2,
        "the first statement was rolled back"
    );
    let empty = dev
        .post_json("/api/v1/sql/batch", r#"{"statements": []}"#)
        .await;
    empty.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn explain_returns_the_plan_as_a_tree() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(
        &dev,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)",
        Value::Null,
    )
    .await;
    let scan = dev
        .post_json(
            "/api/v1/sql/explain",
            r#"{"sql": "SELECT * FROM users WHERE email = ?", "params": ["a"]}"#,
        )
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.body);
    assert!(
        scan.body["plan"][0]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("SCAN")
    );
    exec(
        &dev,
        "CREATE INDEX users_email ON users (email)",
        Value::Null,
    )
    .await;
    let search = dev
        .post_json(
            "/api/v1/sql/explain",
            r#"{"sql": "SELECT * FROM users WHERE email = ?", "params": ["a"]}"#,
        )
        .await;
    let detail = search.body["plan"][0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("USING") && detail.contains("users_email"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_database_in_use_is_not_deleted_unless_forced() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    admin
        .post_json("/api/v1/databases", r#"{"name": "busy"}"#)
        .await;
    let long = {
        let admin = admin.clone();
        async move {
            query(
                &admin,
                json!({"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout": 1500, "database": "busy"}),
            )
            .await
        }
    };
    let delete = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let refused = admin.delete("/api/v1/databases/busy").await;
        let forced = admin.delete("/api/v1/databases/busy?force=true").await;
        (refused, forced)
    };
    let (long, (refused, forced)) = tokio::join!(long, delete);
    assert_eq!(refused.assert_error(StatusCode::CONFLICT), "CONFLICT");
    assert_eq!(forced.status, StatusCode::NO_CONTENT, "{}", forced.body);
    assert_eq!(long.status, StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn the_request_timeout_answers_408_with_the_error_body() {
    let server = TestServer::with_config(|c| c.request_timeout_secs = 1).await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let start = std::time::Instant::now();
    let r = query(
        &dev,
        json!({"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout": 5000}),
    )
    .await;
    assert_eq!(
        r.assert_error(StatusCode::REQUEST_TIMEOUT),
        "REQUEST_TIMEOUT"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(4));
    // The abandoned statement was interrupted: the database is idle again at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let info = dev.get("/api/v1/databases/default").await;
        if info.body["active_connections"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statement still running: {}",
            info.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn running_queries_are_listed_and_can_be_cancelled() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let other = server.user_with_roles("other", &["developer"]).await;
    let long = {
        let dev = dev.clone();
        async move {
            query(
                &dev,
                json!({"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "timeout": 20000}),
            )
            .await
        }
    };
    let cancel = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let id = loop {
            let list = dev.get("/api/v1/sql/queries").await;
            if let Some(q) = list.body["queries"].as_array().and_then(|a| a.first()) {
                assert!(
                    q["sql"]
                        .as_str()
                        .expect("sql")
                        .starts_with("WITH RECURSIVE")
                );
                assert_eq!(q["user"], "dev");
                break q["query_id"].as_str().expect("id").to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the query never showed up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        // Another user neither sees nor cancels it.
        assert_eq!(other.get("/api/v1/sql/queries").await.body["total"], 0);
        other
            .post_json(&format!("/api/v1/sql/queries/{id}/cancel"), "")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let one = dev.get(&format!("/api/v1/sql/queries/{id}")).await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.body);
        let r = dev
            .post_json(&format!("/api/v1/sql/queries/{id}/cancel"), "")
            .await;
        assert_eq!(r.body["cancelled"], true, "{}", r.body);
        id
    };
    let start = std::time::Instant::now();
    let (long, id) = tokio::join!(long, cancel);
    assert_eq!(long.assert_error(StatusCode::CONFLICT), "QUERY_CANCELLED");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    dev.get(&format!("/api/v1/sql/queries/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

/// `rows_affected` and `last_insert_id` describe the statement itself: SQLite's per-connection
/// counters outlive statements, so DDL and UPDATEs reported the last INSERT's figures (possibly
/// another user's on a pooled connection).
#[tokio::test]
async fn execute_reports_each_statements_own_figures() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(
        &dev,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)",
        Value::Null,
    )
    .await;
    let r = exec(&dev, "INSERT INTO t (v) VALUES (1), (2), (3)", Value::Null).await;
    assert_eq!(r.body["rows_affected"], 3, "{}", r.body);
    assert_eq!(r.body["last_insert_id"], 3);
    for (statement, rows) in [
        ("CREATE INDEX t_v ON t(v)", 0),
        ("UPDATE t SET v = v + 1 WHERE id < 3", 2),
        ("DELETE FROM t WHERE id = 3", 1),
        ("DROP INDEX t_v", 0),
    ] {
        let r = exec(&dev, statement, Value::Null).await;
        assert_eq!(r.status, StatusCode::OK, "{statement}: {}", r.body);
        assert_eq!(r.body["rows_affected"], rows, "{statement}: {}", r.body);
        assert_eq!(
            r.body["last_insert_id"],
            Value::Null,
            "{statement}: {}",
            r.body
        );
    }
    let r = dev
        .post_json(
            "/api/v1/sql/batch",
            &json!({"statements": [
                {"sql": "INSERT INTO t (v) VALUES (9)"},
                {"sql": "CREATE TABLE u (a)"},
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Row 3 was deleted, so the new row gets rowid 3 again: the same value the connection last
    // reported, and still this statement's insert.
    assert_eq!(r.body["results"][0]["last_insert_id"], 3, "{}", r.body);
    assert_eq!(r.body["results"][1]["rows_affected"], 0, "{}", r.body);
    assert_eq!(
        r.body["results"][1]["last_insert_id"],
        Value::Null,
        "{}",
        r.body
    );
}

/// `/sql/query` is database:read and runs reads only, whatever the caller's role: a write sent
/// there is a 400 pointing to `/sql/execute`, and nothing is written (#16 item 12).
#[tokio::test]
async fn the_query_route_runs_reads_only() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    exec(&dev, "CREATE TABLE t (v INTEGER)", Value::Null).await;
    for statement in [
        "INSERT INTO t VALUES (1)",
        "DROP TABLE t",
        "CREATE TABLE u (a)",
    ] {
        let r = dev
            .post_json("/api/v1/sql/query", &json!({"sql": statement}).to_string())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{statement}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/api/v1/sql/execute"),
            "{statement}: {}",
            r.body
        );
    }
    let r = dev
        .post_json("/api/v1/sql/query", r#"{"sql": "SELECT count(*) FROM t"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["rows"][0][0], 0, "nothing was written");
    // A reader's write stays a 403: its role may not write anywhere.
    let reader = server.user_with_roles("ana", &["analyst"]).await;
    let r = reader
        .post_json("/api/v1/sql/query", r#"{"sql": "DELETE FROM t"}"#)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}
