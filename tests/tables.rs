//! Tables and rows without SQL: create, describe, insert, list with filters, update, delete.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Caller, TestResponse, TestServer};

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

const TABLES: &str = "/api/v1/databases/default/tables";

async fn patch(caller: &Caller<'_>, path: &str, body: Value) -> TestResponse {
    caller
        .send(
            Method::PATCH,
            path,
            Some("application/json"),
            Some(body.to_string()),
        )
        .await
}

async fn create(caller: &Caller<'_>, body: Value) {
    let r = caller.post_json(TABLES, &body.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn composite_and_without_rowid_keys_address_rows_by_their_full_key() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let created = dev
        .post_json(
            TABLES,
            &json!({"name": "pairs", "without_rowid": true, "columns": [
                {"name": "org", "type": "TEXT", "primary_key": true},
                {"name": "id", "type": "INTEGER", "primary_key": true},
                {"name": "name", "type": "TEXT"}
            ]})
            .to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["columns"][1]["primary_key"], true);
    let rows = format!("{TABLES}/pairs/rows");

    let first = dev
        .post_json(
            &rows,
            &json!({"values": {"org": "a,b", "id": 1, "name": "x"}}).to_string(),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["row_id"], "a\\,b,1");
    let second = dev
        .post_json(&rows, r#"{"values": {"org": "c", "id": 2}}"#)
        .await;
    assert_eq!(second.body["row_id"], "c,2");
    assert_eq!(
        second.body["row"],
        json!({"org": "c", "id": 2, "name": null})
    );

    // The row_id a write returns is the path segment that reads the row back.
    let got = dev.get(&format!("{rows}/{}", url_encode("a\\,b,1"))).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["row"]["name"], "x");
    assert_eq!(got.body["row_id"], "a\\,b,1");

    let renamed = dev
        .put_json(
            &format!("{rows}/c,2"),
            r#"{"values": {"id": 3, "name": "y"}}"#,
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["row_id"], "c,3");
    dev.get(&format!("{rows}/c,2"))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let dup = dev
        .post_json(&rows, r#"{"values": {"org": "c", "id": 3}}"#)
        .await;
    assert_eq!(dup.assert_error(StatusCode::CONFLICT), "CONFLICT");
    let no_key = dev.post_json(&rows, r#"{"values": {"name": "z"}}"#).await;
    assert_eq!(no_key.assert_error(StatusCode::CONFLICT), "CONFLICT");

    for bad in ["c", "c,3,4", url_encode("c\\x,3").as_str(), "c%5C"] {
        let r = dev.get(&format!("{rows}/{bad}")).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "INVALID_PARAMETER",
            "{bad}"
        );
        assert_eq!(r.body["error"]["details"]["parameter"], "row_id");
        dev.delete(&format!("{rows}/{bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }

    let page = dev.get(&rows).await;
    let keys: Vec<(&str, i64)> = page.body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["org"].as_str().expect("org"),
                r["id"].as_i64().expect("id"),
            )
        })
        .collect();
    assert_eq!(keys, [("a,b", 1), ("c", 3)], "ordered by the key");

    assert_eq!(
        dev.delete(&format!("{rows}/c,3")).await.status,
        StatusCode::NO_CONTENT
    );
    dev.delete(&format!("{rows}/c,3"))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    // A WITHOUT ROWID table with a single text key, and a composite key on a rowid table.
    create(
        &dev,
        json!({"name": "kv", "without_rowid": true, "columns": [
            {"name": "k", "type": "TEXT", "primary_key": true},
            {"name": "v", "type": "INTEGER"}
        ]}),
    )
    .await;
    let kv = format!("{TABLES}/kv/rows");
    let put = dev
        .post_json(&kv, r#"{"values": {"k": "x,y", "v": 1}}"#)
        .await;
    assert_eq!(put.body["row_id"], "x,y", "one key column: no escaping");
    let updated = dev
        .put_json(&format!("{kv}/x,y"), r#"{"values": {"v": 2}}"#)
        .await;
    assert_eq!(updated.body["row"], json!({"k": "x,y", "v": 2}));
    assert_eq!(
        dev.delete(&format!("{kv}/x,y")).await.status,
        StatusCode::NO_CONTENT
    );
    create(
        &dev,
        json!({"name": "grid", "columns": [
            {"name": "x", "type": "INTEGER", "primary_key": true},
            {"name": "y", "type": "INTEGER", "primary_key": true},
            {"name": "v", "type": "TEXT"}
        ]}),
    )
    .await;
    let grid = format!("{TABLES}/grid/rows");
    let cell = dev
        .post_json(&grid, r#"{"values": {"x": 4, "y": 5, "v": "p"}}"#)
        .await;
    assert_eq!(cell.body["row_id"], "4,5");
    assert_eq!(dev.get(&format!("{grid}/4,5")).await.body["row"]["v"], "p");
    dev.get(&format!("{grid}/5,4"))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let no_pk = dev
        .post_json(
            TABLES,
            r#"{"name": "w", "without_rowid": true, "columns": [{"name": "a", "type": "TEXT"}]}"#,
        )
        .await;
    no_pk.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn alter_table_adds_renames_and_drops_and_reports_refusals() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    create(
        &dev,
        json!({"name": "t", "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "a", "type": "TEXT", "unique": true},
            {"name": "b", "type": "INTEGER"}
        ]}),
    )
    .await;
    create(
        &dev,
        json!({"name": "other", "columns": [{"name": "x", "type": "TEXT"}]}),
    )
    .await;
    let t = format!("{TABLES}/t");
    dev.post_json(&format!("{t}/rows"), r#"{"values": {"a": "one", "b": 1}}"#)
        .await;

    let added = patch(
        &dev,
        &t,
        json!({"add_column": {"name": "c", "type": "TEXT", "not_null": true, "default": "z"}}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["columns"][3]["name"], "c");
    assert_eq!(dev.get(&format!("{t}/rows/1")).await.body["row"]["c"], "z");

    // SQLite's refusals come back as 400 with its message; taken names are 409.
    let refusals = [
        (
            json!({"add_column": {"name": "d", "type": "TEXT", "not_null": true}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"add_column": {"name": "d", "type": "TEXT", "unique": true}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"add_column": {"name": "d", "type": "TEXT); DROP TABLE t; --"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"add_column": {"name": "B", "type": "TEXT"}}),
            StatusCode::CONFLICT,
        ),
        (json!({"drop_column": "id"}), StatusCode::BAD_REQUEST),
        (json!({"drop_column": "a"}), StatusCode::BAD_REQUEST),
        (json!({"drop_column": "nope"}), StatusCode::NOT_FOUND),
        (
            json!({"rename_column": {"from": "nope", "to": "x"}}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"rename_column": {"from": "a", "to": "b"}}),
            StatusCode::CONFLICT,
        ),
        (json!({"rename_to": "other"}), StatusCode::CONFLICT),
        (
            json!({"rename_to": "sqlite_x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"drop_column": "b", "rename_to": "u"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"rename_to": ""}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, status) in refusals {
        let r = patch(&dev, &t, body.clone()).await;
        let code = r.assert_error(status).to_string();
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(code, "SQL_ERROR", "{body}: {}", r.body);
        }
    }
    patch(&dev, &format!("{TABLES}/nope"), json!({"drop_column": "a"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(
        dev.get(&t).await.body["columns"]
            .as_array()
            .expect("c")
            .len(),
        4
    );

    let r = patch(
        &dev,
        &t,
        json!({"rename_column": {"from": "b", "to": "bee"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["columns"][2]["name"], "bee");
    let r = patch(&dev, &t, json!({"drop_column": "bee"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["columns"].as_array().expect("columns").len(), 3);

    // A hostile new name is only a name.
    let odd = "t\"; DROP TABLE other; --";
    let r = patch(&dev, &t, json!({"rename_to": odd})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], odd);
    dev.get(&t).await.assert_error(StatusCode::NOT_FOUND);
    let moved = format!("{TABLES}/{}", url_encode(odd));
    // Rows keep working on the renamed table (change capture follows the rename).
    let row = dev
        .post_json(&format!("{moved}/rows"), r#"{"values": {"a": "two"}}"#)
        .await;
    assert_eq!(row.status, StatusCode::CREATED, "{}", row.body);
    assert_eq!(dev.get(&moved).await.body["row_count"], 2);
    assert_eq!(dev.get(TABLES).await.body["total"], 2, "other survived");
}

#[tokio::test]
async fn indexes_can_be_created_listed_dropped_and_analyzed() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    create(
        &dev,
        json!({"name": "t", "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "email", "type": "TEXT", "unique": true},
            {"name": "age", "type": "INTEGER"}
        ]}),
    )
    .await;
    let t = format!("{TABLES}/t");
    for (email, age) in [("a@x", 30), ("b@x", 30), ("c@x", 40)] {
        dev.post_json(
            &format!("{t}/rows"),
            &json!({"values": {"email": email, "age": age}}).to_string(),
        )
        .await;
    }
    let indexes = format!("{t}/indexes");
    let listed = dev.get(&indexes).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["indexes"][0]["origin"], "unique");
    assert_eq!(listed.body["indexes"][0]["columns"], json!(["email"]));
    let autoindex = listed.body["indexes"][0]["name"]
        .as_str()
        .expect("name")
        .to_string();

    let made = dev
        .post_json(
            &indexes,
            r#"{"name": "by_age", "columns": ["age", "email"]}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        made.body,
        json!({"name": "by_age", "table": "t", "unique": false, "columns": ["age", "email"],
               "origin": "create", "partial": false})
    );
    let refused = [
        (
            r#"{"name": "by_age", "columns": ["age"]}"#,
            StatusCode::CONFLICT,
        ),
        (r#"{"name": "T", "columns": ["age"]}"#, StatusCode::CONFLICT),
        (
            r#"{"name": "u_age", "columns": ["age"], "unique": true}"#,
            StatusCode::CONFLICT,
        ),
        (
            r#"{"name": "x", "columns": ["nope"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name": "x", "columns": ["age) WHERE 1; DROP TABLE t; --"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name": "x", "columns": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name": "sqlite_x", "columns": ["age"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in refused {
        dev.post_json(&indexes, body).await.assert_error(status);
    }
    dev.post_json(
        &format!("{TABLES}/nope/indexes"),
        r#"{"name": "x", "columns": ["a"]}"#,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    let odd = dev
        .post_json(
            &indexes,
            r#"{"name": "i\"; DROP TABLE t; --", "columns": ["email"], "unique": true}"#,
        )
        .await;
    assert_eq!(odd.status, StatusCode::CREATED, "{}", odd.body);
    assert_eq!(odd.body["unique"], true);
    assert_eq!(dev.get(&indexes).await.body["total"], 3);
    assert_eq!(
        dev.get(&t).await.body["indexes"]
            .as_array()
            .expect("i")
            .len(),
        3
    );

    let stats = dev.post_json(&format!("{t}/analyze"), "").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["table"], "t");
    let by_age = stats.body["statistics"]
        .as_array()
        .expect("statistics")
        .iter()
        .find(|s| s["index"] == "by_age")
        .expect("by_age analyzed");
    // Three rows; two share an age; each (age, email) is distinct.
    assert_eq!(by_age["stat"], "3 2 1");
    // As an ANALYZE statement through the SQL API, it is a maintenance event.
    let topic = server.bus().topic("maintenance").expect("topic");
    let analyzed: Vec<Value> = topic.held().iter().map(|e| e.data.clone()).collect();
    assert!(
        analyzed.iter().any(|e| e["operation"] == "ANALYZE"
            && e["statement"] == "ANALYZE \"t\""
            && e["user"] == "dev"
            && e["database"] == "default"),
        "{analyzed:?}"
    );
    dev.post_json(&format!("{TABLES}/nope/analyze"), "")
        .await
        .assert_error(StatusCode::NOT_FOUND);

    assert_eq!(
        dev.delete(&format!("{indexes}/by_age")).await.status,
        StatusCode::NO_CONTENT
    );
    dev.delete(&format!("{indexes}/by_age"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    dev.delete(&format!("{indexes}/{autoindex}"))
        .await
        .assert_error(StatusCode::CONFLICT);
    dev.delete(&format!("{TABLES}/other/indexes/by_age"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(dev.get(&indexes).await.body["total"], 2);
}

#[tokio::test]
async fn readers_cannot_alter_index_or_analyze() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    let analyst = server.user_with_roles("ana", &["analyst"]).await;
    create(
        &dev,
        json!({"name": "t", "columns": [{"name": "a", "type": "INTEGER"}]}),
    )
    .await;
    dev.post_json(
        &format!("{TABLES}/t/indexes"),
        r#"{"name": "i", "columns": ["a"]}"#,
    )
    .await;
    assert_eq!(
        analyst.get(&format!("{TABLES}/t/indexes")).await.body["total"],
        1
    );
    let forbidden = [
        patch(
            &analyst,
            &format!("{TABLES}/t"),
            json!({"drop_column": "a"}),
        )
        .await,
        analyst
            .post_json(
                &format!("{TABLES}/t/indexes"),
                r#"{"name": "j", "columns": ["a"]}"#,
            )
            .await,
        analyst.delete(&format!("{TABLES}/t/indexes/i")).await,
        analyst.post_json(&format!("{TABLES}/t/analyze"), "").await,
    ];
    for r in forbidden {
        assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
    }
    assert_eq!(
        dev.get(&format!("{TABLES}/t/indexes")).await.body["total"],
        1
    );
}

/// GET /tables/{t} says which columns are unique, however the uniqueness was declared: the
/// tables API's `unique`, a UNIQUE constraint, or a unique index of that column alone (#16 item
/// 12). Composite and partial unique indexes make no single column unique.
#[tokio::test]
async fn table_description_reports_unique_columns() {
    let server = TestServer::new().await;
    let dev = server.user_with_roles("dev", &["developer"]).await;
    create(
        &dev,
        json!({"name": "accounts", "columns": [
            {"name": "id", "type": "INTEGER", "primary_key": true},
            {"name": "email", "type": "TEXT", "unique": true},
            {"name": "handle", "type": "TEXT"},
            {"name": "a", "type": "INTEGER"},
            {"name": "b", "type": "INTEGER"},
            {"name": "c", "type": "INTEGER"},
            {"name": "plain", "type": "TEXT"},
        ]}),
    )
    .await;
    for sql in [
        "CREATE UNIQUE INDEX accounts_handle ON accounts(handle)",
        "CREATE UNIQUE INDEX accounts_ab ON accounts(a, b)",
        "CREATE UNIQUE INDEX accounts_c ON accounts(c) WHERE c > 0",
    ] {
        let r = dev
            .post_json("/api/v1/sql/execute", &json!({"sql": sql}).to_string())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{sql}: {}", r.body);
    }
    let r = dev.get("/api/v1/databases/default/tables/accounts").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let unique: Vec<(String, bool)> = r.body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["unique"].as_bool().expect("unique"),
            )
        })
        .collect();
    let expected = [
        ("id", false),
        ("email", true),
        ("handle", true),
        ("a", false),
        ("b", false),
        ("c", false),
        ("plain", false),
    ];
    assert_eq!(
        unique,
        expected.map(|(n, u)| (n.to_string(), u)).to_vec(),
        "{}",
        r.body
    );
}
