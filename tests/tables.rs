//! Tables and rows without SQL: create, describe, insert, list with filters, update, delete.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

const USERS: &str = "/api/v1/databases/default/tables/users";

#[tokio::test]
async fn rows_can_be_inserted_listed_with_filters_updated_and_deleted() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let created = dev
        .post_json(
            "/api/v1/databases/default/tables",
            &json!({"name": "users", "columns": [
                {"name": "id", "type": "INTEGER", "primary_key": true},
                {"name": "username", "type": "TEXT", "not_null": true, "unique": true},
                {"name": "age", "type": "INTEGER"},
                {"name": "team", "type": "TEXT", "default": "none"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["columns"][0]["primary_key"], true);
    assert_eq!(created.body["columns"][3]["default"], "'none'");

    for (name, age) in [("alice", 30), ("bob", 17), ("carol", 45), ("dave", 22)] {
        let r = dev
            .post_json(
                &format!("{USERS}/rows"),
                &json!({"values": {"username": name, "age": age}}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let one = dev.get(&format!("{USERS}/rows/1")).await;
    assert_eq!(
        one.body["row"],
        json!({"id": 1, "username": "alice", "age": 30, "team": "none"})
    );
    assert_eq!(one.body["row_id"], 1);

    let page = |filter: Value, extra: &str| {
        let dev = dev.clone();
        let query = format!(
            "{USERS}/rows?filter={}{extra}",
            url_encode(&filter.to_string())
        );
        async move { dev.get(&query).await }
    };
    let adults = page(
        json!([{"column": "age", "op": "ge", "value": 18}]),
        "&order_by=-age",
    )
    .await;
    assert_eq!(adults.status, StatusCode::OK, "{}", adults.body);
    let names: Vec<&str> = adults.body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["username"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["carol", "alice", "dave"]);
    assert_eq!(adults.body["total"], 3);
    let some = page(
        json!([{"column": "username", "op": "in", "value": ["bob", "dave", "zed"]}]),
        "&limit=1&offset=1",
    )
    .await;
    assert_eq!(some.body["total"], 2);
    assert_eq!(some.body["rows"][0]["username"], "dave");
    let like = page(json!([{"column": "username", "op": "like", "value": "%a%"}, {"column": "age", "op": "lt", "value": 40}]), "").await;
    assert_eq!(like.body["total"], 2, "{}", like.body);
    let nulls = page(
        json!([{"column": "age", "op": "is_null", "value": true}]),
        "",
    )
    .await;
    assert_eq!(nulls.body["total"], 0);

    let updated = dev
        .put_json(
            &format!("{USERS}/rows/2"),
            r#"{"values": {"age": 18, "team": "red"}}"#,
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["row"]["age"], 18);
    let dup = dev
        .put_json(
            &format!("{USERS}/rows/2"),
            r#"{"values": {"username": "alice"}}"#,
        )
        .await;
    assert_eq!(dup.assert_error(StatusCode::CONFLICT), "CONFLICT");
    assert_eq!(
        dev.delete(&format!("{USERS}/rows/2")).await.status,
        StatusCode::NO_CONTENT
    );
    dev.get(&format!("{USERS}/rows/2"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    dev.delete(&format!("{USERS}/rows/2"))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let info = dev.get(USERS).await;
    assert_eq!(info.body["row_count"], 3);
    assert_eq!(
        info.body["indexes"].as_array().expect("indexes").len(),
        1,
        "the UNIQUE index"
    );
    let list = dev.get("/api/v1/databases/default/tables").await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(dev.delete(USERS).await.status, StatusCode::NO_CONTENT);
    dev.get(USERS).await.assert_error(StatusCode::NOT_FOUND);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bad_identifiers_filters_and_values_are_refused() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    dev.post_json(
        "/api/v1/databases/default/tables",
        r#"{"name": "t", "columns": [{"name": "a", "type": "INTEGER"}]}"#,
    )
    .await;
    let base = "/api/v1/databases/default/tables";
    let cases: Vec<(String, Option<&str>, StatusCode)> = vec![
        (format!("{base}/nope/rows"), None, StatusCode::NOT_FOUND),
        (
            "/api/v1/databases/nope/tables".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            format!(
                "{base}/t/rows?filter={}",
                url_encode(r#"[{"column":"a; DROP TABLE t","op":"eq","value":1}]"#)
            ),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!(
                "{base}/t/rows?filter={}",
                url_encode(r#"[{"column":"a","op":"regex","value":1}]"#)
            ),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{base}/t/rows?filter={}", url_encode("not json")),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!(
                "{base}/t/rows?filter={}",
                url_encode(r#"[{"column":"a","op":"in","value":[]}]"#)
            ),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{base}/t/rows?order_by=b"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("{base}/t/rows?limit=0"),
            None,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, _, status) in cases {
        let r = dev.get(&path).await;
        r.assert_error(status);
    }
    let bad_inserts = [
        (r#"{"values": {"b": 1}}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"values": {}}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"values": {"a": [1, 2]}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"values": 5}"#, StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, status) in bad_inserts {
        let r = dev.post_json(&format!("{base}/t/rows"), body).await;
        r.assert_error(status);
    }
    let bad_tables = [
        (
            r#"{"name": "t", "columns": [{"name": "a", "type": "INTEGER"}]}"#,
            StatusCode::CONFLICT,
        ),
        (
            r#"{"name": "x", "columns": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name": "x", "columns": [{"name": "a", "type": "INT); DROP TABLE t; --"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name": "sqlite_x", "columns": [{"name": "a", "type": "INT"}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in bad_tables {
        let r = dev.post_json(base, body).await;
        r.assert_error(status);
    }
    // A quoted odd name is still just a name.
    let odd = dev
        .post_json(
            base,
            r#"{"name": "we\"ird", "columns": [{"name": "sel\"ect", "type": "TEXT"}]}"#,
        )
        .await;
    assert_eq!(odd.status, StatusCode::CREATED, "{}", odd.body);
    assert_eq!(dev.get(base).await.body["total"], 2, "t survived");
}

#[tokio::test]
async fn readers_cannot_write_through_the_rows_api() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let analyst = server.user_with_roles("ana", &["analyst"]).await;
    dev.post_json(
        "/api/v1/databases/default/tables",
        r#"{"name": "t", "columns": [{"name": "a", "type": "INTEGER"}]}"#,
    )
    .await;
    let rows = analyst.get("/api/v1/databases/default/tables/t/rows").await;
    assert_eq!(rows.status, StatusCode::OK);
    let r = analyst
        .post_json(
            "/api/v1/databases/default/tables/t/rows",
            r#"{"values": {"a": 1}}"#,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
}
