//! Partitioned tables: rows are routed to the partition that takes their key, reads see every
//! partition, a dropped partition takes its rows, and each step is published.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Caller, TestResponse, TestServer, next_event};

async fn sql(c: &Caller<'_>, sql: &str) -> TestResponse {
    c.post_json("/api/v1/sql/execute", &json!({ "sql": sql }).to_string())
        .await
}

async fn rows(c: &Caller<'_>, sql: &str) -> Value {
    let r = c
        .post_json("/api/v1/sql/query", &json!({ "sql": sql }).to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{sql}: {}", r.body);
    r.body["rows"].clone()
}

fn sales(name: &str, from: Value, to: Value) -> String {
    json!({
        "table": "sales",
        "name": name,
        "partition_type": "range",
        "column": "sold_on",
        "columns": [
            { "name": "id", "type": "INTEGER" },
            { "name": "sold_on", "type": "TEXT", "not_null": true },
            { "name": "amount", "type": "REAL" }
        ],
        "from": from,
        "to": to,
    })
    .to_string()
}

const PARTITIONS: &str = "/api/v1/storage/partitions";

#[tokio::test]
async fn range_partitions_route_rows_and_a_dropped_partition_takes_its_rows() {
    let server = TestServer::with_config(|c| {
        c.partitions.stats_interval = Duration::from_millis(20);
    })
    .await;
    let admin = server.admin().await;
    let mut events = server
        .bus()
        .topic("partitions")
        .expect("partitions topic")
        .listen();

    let y2023 = admin
        .post_json(
            PARTITIONS,
            &sales("y2023", json!("2023-01-01"), json!("2024-01-01")),
        )
        .await;
    assert_eq!(y2023.status, StatusCode::CREATED, "{}", y2023.body);
    assert_eq!(y2023.body["id"], "default.sales.y2023");
    assert_eq!(y2023.body["child_table"], "sales__p_y2023");
    assert_eq!(y2023.body["row_count"], 0);
    let created = next_event(&mut events, |d| d["event_type"] == "CREATED").await;
    assert_eq!(created["partition_id"], "default.sales.y2023");
    assert_eq!(created["partition_type"], "range");
    // Later partitions may leave the columns out; an open upper bound takes everything above.
    let y2024 = admin
        .post_json(
            PARTITIONS,
            &json!({"table": "sales", "name": "y2024", "partition_type": "range",
                    "column": "sold_on", "from": "2024-01-01"})
            .to_string(),
        )
        .await;
    assert_eq!(y2024.status, StatusCode::CREATED, "{}", y2024.body);
    next_event(&mut events, |d| d["partition_name"] == "y2024").await;

    let insert = sql(
        &admin,
        "INSERT INTO sales (id, sold_on, amount) VALUES \
         (1, '2023-05-01', 10), (2, '2024-02-01', 20), (3, '2031-12-31', 30)",
    )
    .await;
    assert_eq!(insert.status, StatusCode::OK, "{}", insert.body);
    assert_eq!(
        rows(&admin, "SELECT id FROM sales__p_y2023").await,
        json!([[1]])
    );
    assert_eq!(
        rows(&admin, "SELECT id FROM sales__p_y2024 ORDER BY id").await,
        json!([[2], [3]])
    );
    assert_eq!(
        rows(&admin, "SELECT id, amount FROM sales ORDER BY id").await,
        json!([[1, 10.0], [2, 20.0], [3, 30.0]])
    );

    // A key no partition takes is refused, and the statement leaves nothing behind.
    let orphan = sql(
        &admin,
        "INSERT INTO sales (id, sold_on, amount) VALUES (4, '2024-06-01', 1), (5, '2022-01-01', 1)",
    )
    .await;
    let code = orphan.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(code, "SQL_ERROR");
    assert!(
        orphan.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no partition of sales"),
        "{}",
        orphan.body
    );
    assert_eq!(
        rows(&admin, "SELECT count(*) FROM sales").await,
        json!([[3]])
    );

    // The stats watcher reports the rows that arrived.
    let more = sql(
        &admin,
        "INSERT INTO sales (id, sold_on) VALUES (6, '2023-07-01')",
    )
    .await;
    assert_eq!(more.status, StatusCode::OK, "{}", more.body);
    let changed = next_event(&mut events, |d| {
        d["event_type"] == "STATS_CHANGED" && d["partition_name"] == "y2023" && d["row_count"] == 2
    })
    .await;
    assert!(changed["size_bytes"].as_u64().expect("size") > 0);

    let list = admin.get(&format!("{PARTITIONS}?table=sales")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let parts = list.body["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["name"], "y2023");
    assert_eq!(parts[0]["row_count"], 2);
    assert_eq!(parts[0]["from"], "2023-01-01");
    assert_eq!(parts[1]["row_count"], 2);
    assert!(parts[1]["to"].is_null(), "{}", parts[1]);
    assert!(parts[1]["size_bytes"].as_u64().expect("size") > 0);

    let dropped = admin
        .delete(&format!("{PARTITIONS}/default.sales.y2024"))
        .await;
    assert_eq!(dropped.status, StatusCode::NO_CONTENT, "{}", dropped.body);
    let event = next_event(&mut events, |d| d["event_type"] == "DROPPED").await;
    assert_eq!(event["partition_id"], "default.sales.y2024");
    assert_eq!(event["row_count"], 2, "the rows it took with it");
    assert_eq!(
        rows(&admin, "SELECT id FROM sales ORDER BY id").await,
        json!([[1], [6]])
    );
    let gone = sql(&admin, "SELECT * FROM sales__p_y2024").await;
    gone.assert_error(StatusCode::BAD_REQUEST);
    // Its range is free again: the row that found no partition before now does not either.
    let later = sql(
        &admin,
        "INSERT INTO sales (id, sold_on) VALUES (7, '2024-02-01')",
    )
    .await;
    later.assert_error(StatusCode::BAD_REQUEST);

    // The last partition takes the partitioned table with it.
    let last = admin
        .delete(&format!("{PARTITIONS}/default.sales.y2023"))
        .await;
    assert_eq!(last.status, StatusCode::NO_CONTENT, "{}", last.body);
    sql(&admin, "SELECT * FROM sales")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    let empty = admin.get(PARTITIONS).await;
    assert_eq!(empty.body["partitions"], json!([]));
}

#[tokio::test]
async fn list_partitions_route_by_value() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let db = admin
        .post_json("/api/v1/databases", r#"{"name": "shop"}"#)
        .await;
    assert_eq!(db.status, StatusCode::CREATED, "{}", db.body);
    let region = |name: &str, values: Value| {
        json!({"database": "shop", "table": "customers", "name": name, "partition_type": "list",
               "column": "country",
               "columns": [{"name": "id", "type": "INTEGER"}, {"name": "country", "type": "TEXT"}],
               "values": values})
        .to_string()
    };
    let eu = admin
        .post_json(PARTITIONS, &region("eu", json!(["fr", "de"])))
        .await;
    assert_eq!(eu.status, StatusCode::CREATED, "{}", eu.body);
    assert_eq!(eu.body["id"], "shop.customers.eu");
    let us = admin
        .post_json(PARTITIONS, &region("us", json!(["us"])))
        .await;
    assert_eq!(us.status, StatusCode::CREATED, "{}", us.body);
    let taken = admin
        .post_json(PARTITIONS, &region("fr", json!(["fr"])))
        .await;
    assert_eq!(taken.assert_error(StatusCode::CONFLICT), "CONFLICT");

    let r = admin
        .post_json(
            "/api/v1/sql/execute",
            &json!({"database": "shop", "sql":
                "INSERT INTO customers VALUES (1, 'de'), (2, 'us'), (3, 'fr')"})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = admin.get(&format!("{PARTITIONS}?database=shop")).await;
    let counts: Vec<(String, u64)> = list.body["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["row_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("eu".into(), 2), ("us".into(), 1)]);
    let null = admin
        .post_json(
            "/api/v1/sql/execute",
            &json!({"database": "shop", "sql": "INSERT INTO customers VALUES (4, NULL)"})
                .to_string(),
        )
        .await;
    null.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_partitions_get_clear_errors() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let first = admin
        .post_json(PARTITIONS, &sales("a", json!("2020"), json!("2021")))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    let cases: Vec<(String, StatusCode)> =
        vec![
        (sales("b", json!("2020-06"), json!("2022")), StatusCode::CONFLICT), // overlaps a
        (sales("a", json!("2030"), json!("2031")), StatusCode::CONFLICT),    // name taken
        (sales("c", json!("2031"), json!("2030")), StatusCode::UNPROCESSABLE_ENTITY), // from > to
        (sales("d", json!(1), json!(2)), StatusCode::UNPROCESSABLE_ENTITY), // numbers vs strings
        (sales("e", json!(true), Value::Null), StatusCode::UNPROCESSABLE_ENTITY),
        (sales("Bad-Name", Value::Null, json!("2000")), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"table": "sales", "name": "f", "partition_type": "list", "column": "sold_on",
                   "values": ["x"]})
            .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY, // the table is range-partitioned
        ),
        (
            json!({"table": "fresh", "name": "a", "partition_type": "range", "column": "k",
                   "from": 1})
            .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY, // a new table needs columns
        ),
        (
            json!({"table": "fresh", "name": "a", "partition_type": "range", "column": "k",
                   "columns": [{"name": "x", "type": "INTEGER"}], "from": 1})
            .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY, // the key is not a column
        ),
        (
            json!({"database": "nope", "table": "t", "name": "a", "partition_type": "list",
                   "column": "k", "values": [1]})
            .to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"table": "t", "name": "a", "partition_type": "hash", "column": "k"})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let r = admin.post_json(PARTITIONS, &body).await;
        r.assert_error(status);
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }

    // An ordinary table of that name is not taken over.
    let plain = admin
        .post_json(
            "/api/v1/sql/execute",
            r#"{"sql": "CREATE TABLE plain (k INTEGER)"}"#,
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    let r = admin
        .post_json(
            PARTITIONS,
            &json!({"table": "plain", "name": "a", "partition_type": "list", "column": "k",
                    "columns": [{"name": "k", "type": "INTEGER"}], "values": [1]})
            .to_string(),
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");

    for id in [
        "default.sales.zz",
        "default.nosuch.a",
        "nope.sales.a",
        "garbage",
    ] {
        let r = admin.delete(&format!("{PARTITIONS}/{id}")).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND", "{id}");
    }
    let r = admin.get(&format!("{PARTITIONS}?database=nope")).await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");

    let analyst = server.user_with_roles("reader", &["analyst"]).await;
    assert_eq!(analyst.get(PARTITIONS).await.status, StatusCode::OK);
    let r = analyst
        .post_json(PARTITIONS, &sales("z", json!("2040"), json!("2041")))
        .await;
    assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
}
