//! GraphQL queries and mutations over the core (`schema/subscriptions/core.yaml`), sent as
//! HTTP POST /graphql to a real server on a socket, and compared with the REST routes they
//! mirror: same results, same permissions, same error codes.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::graphql::Live;

/// How long one HTTP exchange may take on a loaded machine before the test fails.
const EXCHANGE: Duration = Duration::from_secs(60);

/// POST /graphql over a real socket (the shared harness's REST helper goes through the router).
impl Live {
    /// One HTTP/1.1 exchange on a new connection: (status, JSON body or null).
    async fn http(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await.expect("connect");
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
                 Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                self.addr,
                body.len()
            );
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.expect("read");
            String::from_utf8(response).expect("utf-8")
        };
        let response = tokio::time::timeout(EXCHANGE, exchange)
            .await
            .expect("HTTP exchange within the limit");
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "this client reads plain bodies only: {head}"
        );
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// POST /graphql; the answer is always 200 with `data` and/or `errors`.
    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        let (status, body) = self.http("POST", "/graphql", token, Some(body)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The data of a GraphQL operation that must succeed.
    async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    /// The `extensions.code` of a GraphQL operation that must fail.
    async fn code(&self, token: &str, query: &str, variables: Value) -> String {
        let body = self.gql(token, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: no error code in {body}"))
            .to_string()
    }
}

const CREATE_TABLE: &str = "mutation($db: String!, $input: TableCreate!) {
    createTable(database: $db, input: $input) { name rowCount indexes columns { name type primaryKey notNull } } }";
const INSERT: &str = "mutation($db: String!, $t: String!, $v: JSON!) {
    insertRow(database: $db, table: $t, values: $v) { rowId row } }";
const ROWS: &str = "query($db: String!, $t: String!, $w: [RowFilter!], $o: String, $l: Int, $off: Int) {
    rows(database: $db, table: $t, where: $w, orderBy: $o, limit: $l, offset: $off) { rows total limit offset } }";

/// `people(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER)` in `db`, made through
/// GraphQL, with `rows` inserted through GraphQL.
async fn people(live: &Live, token: &str, db: &str, rows: &[Value]) {
    let input = json!({
        "name": "people",
        "columns": [
            {"name": "id", "type": "INTEGER", "primaryKey": true},
            {"name": "name", "type": "TEXT", "notNull": true, "unique": true},
            {"name": "age", "type": "INTEGER"},
        ],
    });
    let data = live
        .ok(token, CREATE_TABLE, json!({"db": db, "input": input}))
        .await;
    let table = &data["createTable"];
    assert_eq!(table["name"], "people");
    assert_eq!(table["rowCount"], 0);
    assert_eq!(table["columns"][0]["primaryKey"], true, "{table}");
    assert_eq!(table["columns"][1]["notNull"], true, "{table}");
    for row in rows {
        live.ok(token, INSERT, json!({"db": db, "t": "people", "v": row}))
            .await;
    }
}

#[tokio::test]
async fn queries_and_mutations_cover_databases_tables_rows_sql_and_users() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;

    let data = live
        .ok(
            &admin,
            r#"mutation { createDatabase(input: {name: "shop"}) { name tablespace tables } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["createDatabase"]["name"], "shop");
    assert_eq!(data["createDatabase"]["tables"], json!([]));

    people(&live, &admin, "shop", &[json!({"name": "ann", "age": 30})]).await;
    let data = live
        .ok(
            &admin,
            r#"{ tables(database: "shop") { total tables { name rowCount } }
                 table(database: "shop", name: "people") { name rowCount indexes columns { name primaryKey } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["tables"]["total"], 1);
    assert_eq!(data["tables"]["tables"][0]["name"], "people");
    assert_eq!(data["table"]["rowCount"], 1);
    // The table as REST shows it: the same columns, indexes and row count.
    let (status, rest) = live
        .http("GET", "/api/v1/databases/shop/tables/people", &admin, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(data["table"]["indexes"], rest["indexes"]);
    assert_eq!(data["table"]["rowCount"], rest["row_count"]);
    assert_eq!(
        data["table"]["columns"][0]["name"],
        rest["columns"][0]["name"]
    );

    // Rows: insert, read by key, update, delete.
    let data = live
        .ok(
            &admin,
            INSERT,
            json!({"db": "shop", "t": "people", "v": {"name": "bob", "age": 41}}),
        )
        .await;
    let bob = data["insertRow"]["rowId"].clone();
    assert_eq!(data["insertRow"]["row"]["name"], "bob");
    let key = bob.to_string();
    let data = live
        .ok(
            &admin,
            r#"mutation($id: String!) { updateRow(database: "shop", table: "people", rowId: $id, values: {age: 42}) { row } }"#,
            json!({"id": key}),
        )
        .await;
    assert_eq!(data["updateRow"]["row"]["age"], 42);
    let data = live
        .ok(
            &admin,
            r#"query($id: String!) { row(database: "shop", table: "people", rowId: $id) { rowId row } }"#,
            json!({"id": key}),
        )
        .await;
    assert_eq!(
        data["row"]["row"],
        json!({"id": bob, "name": "bob", "age": 42})
    );
    let data = live
        .ok(
            &admin,
            r#"mutation($id: String!) { deleteRow(database: "shop", table: "people", rowId: $id) }"#,
            json!({"id": key}),
        )
        .await;
    assert_eq!(data["deleteRow"], true);
    let (status, _) = live
        .http(
            "GET",
            &format!("/api/v1/databases/shop/tables/people/rows/{key}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 404, "the deleted row is gone for REST too");

    // SQL: a write with parameters, then a read.
    let data = live
        .ok(
            &admin,
            r#"mutation { executeSql(database: "shop", sql: "INSERT INTO people(name, age) VALUES (?, ?)", params: ["cid", 7]) { database rowsAffected lastInsertId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["executeSql"]["rowsAffected"], 1);
    let data = live
        .ok(
            &admin,
            r#"{ querySql(database: "shop", sql: "SELECT name, age FROM people WHERE age < :a ORDER BY name", params: {a: 10}) { columns { name } rows rowCount truncated } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["querySql"]["rows"], json!([["cid", 7]]));
    assert_eq!(data["querySql"]["columns"][1]["name"], "age");

    // Server status, transactions, sessions, users and roles.
    let data = live
        .ok(
            &admin,
            "{ serverStatus { uptimeSeconds requestsTotal workerThreads responses { success } }
               transactions { total } sessions { total sessions { username } }
               users { total users { username roles } } roles { roles { name builtIn } } }",
            json!({}),
        )
        .await;
    assert!(
        data["serverStatus"]["requestsTotal"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert!(
        data["serverStatus"]["workerThreads"].as_u64().unwrap_or(0) > 0,
        "{data}"
    );
    assert_eq!(data["transactions"]["total"], 0);
    assert!(
        data["sessions"]["total"].as_u64().unwrap_or(0) >= 1,
        "{data}"
    );
    assert_eq!(data["users"]["users"][0]["username"], "admin");
    let roles: Vec<&str> = data["roles"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(roles.contains(&"analyst"), "{roles:?}");

    // Users: create one, it can log in, delete it.
    let data = live
        .ok(
            &admin,
            r#"mutation { createUser(input: {username: "gql-user", password: "password-123", roles: ["analyst"]}) { id username roles disabled } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["createUser"]["roles"], json!(["analyst"]));
    let id = data["createUser"]["id"].as_str().expect("id").to_string();
    live.token("gql-user", "password-123").await;
    let data = live
        .ok(
            &admin,
            "mutation($id: String!) { deleteUser(userId: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["deleteUser"], true);
    let (status, _) = live
        .http("GET", &format!("/api/v1/admin/users/{id}"), &admin, None)
        .await;
    assert_eq!(status, 404);

    // Drop the table, then the database.
    let data = live
        .ok(
            &admin,
            r#"mutation { dropTable(database: "shop", name: "people") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["dropTable"], true);
    let data = live
        .ok(
            &admin,
            r#"mutation { dropDatabase(name: "shop") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["dropDatabase"], true);
    let (status, _) = live
        .http("GET", "/api/v1/databases/shop", &admin, None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn transactions_scope_execute_sql_until_commit_or_rollback() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    people(&live, &admin, "default", &[]).await;
    let count = "{ querySql(sql: \"SELECT count(*) FROM people\") { rows } }";
    let insert = r#"mutation($tx: String!, $name: String!) {
        executeSql(sql: "INSERT INTO people(name) VALUES (?)", params: [$name], transactionId: $tx) { rowsAffected } }"#;

    for (end, kept) in [("commitTransaction", 1), ("rollbackTransaction", 0)] {
        let data = live
            .ok(
                &admin,
                r#"mutation { beginTransaction(input: {database: "default", mode: "immediate"}) { transactionId state database } }"#,
                json!({}),
            )
            .await;
        assert_eq!(data["beginTransaction"]["state"], "active");
        let tx = data["beginTransaction"]["transactionId"]
            .as_str()
            .expect("id")
            .to_string();
        let data = live
            .ok(
                &admin,
                "{ transactions { total transactions { transactionId } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["transactions"]["transactions"][0]["transactionId"], tx);
        live.ok(&admin, insert, json!({"tx": tx, "name": end}))
            .await;
        let data = live
            .ok(
                &admin,
                &format!(
                    "mutation($tx: String!) {{ {end}(transactionId: $tx) {{ state statements }} }}"
                ),
                json!({"tx": tx}),
            )
            .await;
        assert_eq!(data[end]["statements"], 1, "{data}");
        let data = live.ok(&admin, count, json!({})).await;
        let before = if end == "commitTransaction" { 0 } else { 1 };
        assert_eq!(data["querySql"]["rows"], json!([[before + kept]]), "{end}");
        // The transaction is over: using it again is refused as REST refuses it.
        let code = live
            .code(&admin, insert, json!({"tx": tx, "name": "late"}))
            .await;
        let (status, rest) = live
            .http(
                "POST",
                "/api/v1/sql/execute",
                &admin,
                Some(json!({"sql": "INSERT INTO people(name) VALUES ('late')", "transaction_id": tx})),
            )
            .await;
        assert!(status >= 400, "{rest}");
        assert_eq!(code, rest["error"]["code"], "{rest}");
    }
}

#[tokio::test]
async fn row_filters_give_the_same_rows_as_the_rest_filter() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    let rows = [
        json!({"name": "ann", "age": 30}),
        json!({"name": "bob", "age": 41}),
        json!({"name": "cid", "age": null}),
        json!({"name": "dan", "age": 18}),
        json!({"name": "eve", "age": 30}),
    ];
    people(&live, &admin, "default", &rows).await;
    let filters = [
        json!([{"column": "age", "op": "eq", "value": 30}]),
        json!([{"column": "age", "op": "ne", "value": 30}]),
        json!([{"column": "age", "op": "lt", "value": 30}]),
        json!([{"column": "age", "op": "le", "value": 30}]),
        json!([{"column": "age", "op": "gt", "value": 18}]),
        json!([{"column": "age", "op": "ge", "value": 41}]),
        json!([{"column": "name", "op": "like", "value": "%N%"}]),
        json!([{"column": "name", "op": "in", "value": ["bob", "eve", "zed"]}]),
        json!([{"column": "age", "op": "is_null", "value": true}]),
        json!([{"column": "age", "op": "is_null", "value": false}, {"column": "name", "op": "ne", "value": "dan"}]),
        json!([]),
    ];
    for filter in filters {
        for (order, limit, offset) in [("-age", 2, 1), ("name", 100, 0)] {
            let query = format!(
                "filter={}&order_by={order}&limit={limit}&offset={offset}",
                encode(&filter.to_string())
            );
            let (status, rest) = live
                .http(
                    "GET",
                    &format!("/api/v1/databases/default/tables/people/rows?{query}"),
                    &admin,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{filter}: {rest}");
            let data = live
                .ok(
                    &admin,
                    ROWS,
                    json!({"db": "default", "t": "people", "w": filter, "o": order, "l": limit, "off": offset}),
                )
                .await;
            let page = &data["rows"];
            assert_eq!(page["rows"], rest["rows"], "{filter} {order}");
            assert_eq!(page["total"], rest["total"], "{filter}");
            assert_eq!(
                (page["limit"].clone(), page["offset"].clone()),
                (json!(limit), json!(offset))
            );
        }
    }
    // Something to compare: the filters do select.
    let data = live
        .ok(
            &admin,
            ROWS,
            json!({"db": "default", "t": "people", "w": [{"column": "age", "op": "eq", "value": 30}], "o": "name"}),
        )
        .await;
    assert_eq!(data["rows"]["total"], 2);
    assert_eq!(data["rows"]["rows"][1]["name"], "eve");
    assert_eq!(data["rows"]["limit"], 100, "the REST default page size");

    // A filter REST refuses is refused with the same code.
    let bad = json!([{"column": "age", "op": "in", "value": 3}]);
    let (status, rest) = live
        .http(
            "GET",
            &format!(
                "/api/v1/databases/default/tables/people/rows?filter={}",
                encode(&bad.to_string())
            ),
            &admin,
            None,
        )
        .await;
    assert!(status >= 400);
    let code = live
        .code(
            &admin,
            ROWS,
            json!({"db": "default", "t": "people", "w": bad}),
        )
        .await;
    assert_eq!(code, rest["error"]["code"], "{rest}");
    let bad = json!([{"column": "nope", "op": "eq", "value": 1}]);
    let code = live
        .code(
            &admin,
            ROWS,
            json!({"db": "default", "t": "people", "w": bad}),
        )
        .await;
    let (_, rest) = live
        .http(
            "GET",
            &format!(
                "/api/v1/databases/default/tables/people/rows?filter={}",
                encode(&bad.to_string())
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(code, rest["error"]["code"], "{rest}");
    // Paging outside REST's bounds: the same parameter error.
    let code = live
        .code(
            &admin,
            ROWS,
            json!({"db": "default", "t": "people", "l": 0}),
        )
        .await;
    let (status, rest) = live
        .http(
            "GET",
            "/api/v1/databases/default/tables/people/rows?limit=0",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(code, rest["error"]["code"], "{rest}");
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn permissions_are_those_of_the_rest_routes() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    people(
        &live,
        &admin,
        "default",
        &[json!({"name": "ann", "age": 30})],
    )
    .await;
    let analyst = live.user("reader", &["analyst"]).await;
    let monitor = live.user("watcher", &["monitor"]).await;

    // A read-only user reads, but every mutation is FORBIDDEN, as the REST routes are.
    let data = live
        .ok(&analyst, ROWS, json!({"db": "default", "t": "people"}))
        .await;
    assert_eq!(data["rows"]["total"], 1);
    let code = live
        .code(
            &analyst,
            INSERT,
            json!({"db": "default", "t": "people", "v": {"name": "x"}}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (status, rest) = live
        .http(
            "POST",
            "/api/v1/databases/default/tables/people/rows",
            &analyst,
            Some(json!({"values": {"name": "x"}})),
        )
        .await;
    assert_eq!(
        (status, rest["error"]["code"].clone()),
        (403, json!("FORBIDDEN"))
    );
    for mutation in [
        r#"mutation { executeSql(sql: "DELETE FROM people") { rowsAffected } }"#,
        r#"mutation { dropTable(database: "default", name: "people") }"#,
        r#"mutation { createDatabase(input: {name: "x"}) { name } }"#,
        r#"mutation { createUser(input: {username: "x", password: "password-123"}) { id } }"#,
    ] {
        assert_eq!(
            live.code(&analyst, mutation, json!({})).await,
            "FORBIDDEN",
            "{mutation}"
        );
    }
    let (status, _) = live
        .http(
            "POST",
            "/api/v1/sql/execute",
            &analyst,
            Some(json!({"sql": "DELETE FROM people"})),
        )
        .await;
    assert_eq!(status, 403);
    // Nothing was written.
    let data = live
        .ok(&admin, ROWS, json!({"db": "default", "t": "people"}))
        .await;
    assert_eq!(data["rows"]["total"], 1);

    // users and roles are for admins only; so are the REST routes.
    for query in ["{ users { total } }", "{ roles { roles { name } } }"] {
        assert_eq!(
            live.code(&analyst, query, json!({})).await,
            "FORBIDDEN",
            "{query}"
        );
        assert_eq!(
            live.code(&monitor, query, json!({})).await,
            "FORBIDDEN",
            "{query}"
        );
    }
    let (status, _) = live
        .http("GET", "/api/v1/admin/users", &analyst, None)
        .await;
    assert_eq!(status, 403);
    // serverStatus needs system:read: the monitor has it, the analyst does not.
    live.ok(&monitor, "{ serverStatus { uptimeSeconds } }", json!({}))
        .await;
    assert_eq!(
        live.code(&analyst, "{ serverStatus { uptimeSeconds } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    // A forbidden field next to an allowed one: the allowed one still answers.
    let body = live
        .gql(
            &analyst,
            "{ users { total } tables(database: \"default\") { total } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["tables"]["total"], 1, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`users`"), "{body}");
    // Without valid credentials nothing runs.
    let (status, _) = live
        .http(
            "POST",
            "/graphql",
            "bad-token",
            Some(
                json!({"query": "mutation { dropTable(database: \"default\", name: \"people\") }"}),
            ),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn errors_carry_the_rest_error_codes() {
    let live = Live::start(|_| {}).await;
    let admin = live.admin().await;
    people(
        &live,
        &admin,
        "default",
        &[json!({"name": "ann", "age": 30})],
    )
    .await;

    // Unknown table / database / row: NOT_FOUND, as REST.
    for (query, rest_path) in [
        (
            r#"{ table(database: "default", name: "nope") { name } }"#,
            "/api/v1/databases/default/tables/nope",
        ),
        (
            r#"{ rows(database: "default", table: "nope") { total } }"#,
            "/api/v1/databases/default/tables/nope/rows",
        ),
        (
            r#"{ tables(database: "nodb") { total } }"#,
            "/api/v1/databases/nodb/tables",
        ),
        (
            r#"{ row(database: "default", table: "people", rowId: "999") { row } }"#,
            "/api/v1/databases/default/tables/people/rows/999",
        ),
    ] {
        assert_eq!(
            live.code(&admin, query, json!({})).await,
            "NOT_FOUND",
            "{query}"
        );
        let (status, rest) = live.http("GET", rest_path, &admin, None).await;
        assert_eq!(
            (status, rest["error"]["code"].clone()),
            (404, json!("NOT_FOUND")),
            "{rest_path}"
        );
    }
    let code = live
        .code(
            &admin,
            INSERT,
            json!({"db": "default", "t": "nope", "v": {"a": 1}}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");

    // A field's error names the field by its response key (here an alias); the field that
    // resolved has no error.
    let body = live
        .gql(
            &admin,
            r#"{ ok: table(database: "default", name: "people") { name }
                 missing: table(database: "default", name: "nope") { name } }"#,
            json!({}),
        )
        .await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["missing"]), "{body}");
    let body = live
        .gql(
            &admin,
            INSERT,
            json!({"db": "default", "t": "nope", "v": {"a": 1}}),
        )
        .await;
    assert_eq!(body["errors"][0]["path"], json!(["insertRow"]), "{body}");

    // SQL errors and refusals: the code of POST /api/v1/sql/execute for the same statement.
    for sql in [
        "INSERT INTO nope VALUES (1)",
        "THIS IS NOT SQL",
        "ATTACH DATABASE 'x.db' AS x",
        "INSERT INTO people(name) VALUES ('ann')",
    ] {
        let code = live
            .code(
                &admin,
                "mutation($sql: String!) { executeSql(sql: $sql) { rowsAffected } }",
                json!({"sql": sql}),
            )
            .await;
        let (status, rest) = live
            .http(
                "POST",
                "/api/v1/sql/execute",
                &admin,
                Some(json!({"sql": sql})),
            )
            .await;
        assert!(status >= 400, "{sql}: {rest}");
        assert_eq!(code, rest["error"]["code"], "{sql}: {rest}");
    }
    assert_eq!(
        live.code(
            &admin,
            r#"mutation { executeSql(sql: "THIS IS NOT SQL") { rowsAffected } }"#,
            json!({})
        )
        .await,
        "SQL_ERROR"
    );

    // A duplicate table and database: CONFLICT, as REST.
    let input = json!({"name": "people", "columns": [{"name": "id", "type": "INTEGER"}]});
    let code = live
        .code(
            &admin,
            CREATE_TABLE,
            json!({"db": "default", "input": input}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    // `default` cannot be dropped; REST gives the same code.
    let code = live
        .code(
            &admin,
            r#"mutation { dropDatabase(name: "default") }"#,
            json!({}),
        )
        .await;
    let (status, rest) = live
        .http("DELETE", "/api/v1/databases/default", &admin, None)
        .await;
    assert!(status >= 400);
    assert_eq!(code, rest["error"]["code"], "{rest}");

    // Row values that are not an object, and an argument a shared type's constraint refuses.
    let code = live
        .code(
            &admin,
            INSERT,
            json!({"db": "default", "t": "people", "v": [1, 2]}),
        )
        .await;
    assert_eq!(code, "INVALID_ARGUMENT");
    let input = json!({"name": "", "columns": [{"name": "id", "type": "INTEGER"}]});
    let code = live
        .code(
            &admin,
            CREATE_TABLE,
            json!({"db": "default", "input": input}),
        )
        .await;
    assert_eq!(code, "INVALID_ARGUMENT");
    // A transaction id nobody opened.
    let code = live
        .code(
            &admin,
            r#"mutation { commitTransaction(transactionId: "nope") { state } }"#,
            json!({}),
        )
        .await;
    let (_, rest) = live
        .http("POST", "/api/v1/transactions/nope/commit", &admin, None)
        .await;
    assert_eq!(code, rest["error"]["code"], "{rest}");
}

#[tokio::test]
async fn depth_and_complexity_limits_apply_to_queries_and_mutations() {
    let live = Live::start(|c| {
        c.graphql.max_depth = 3;
        c.graphql.max_complexity = 10;
    })
    .await;
    let admin = live.admin().await;
    // Depth 3 is allowed, depth 4 is not.
    live.ok(
        &admin,
        r#"{ tables(database: "default") { tables { name } } }"#,
        json!({}),
    )
    .await;
    let body = live
        .gql(
            &admin,
            r#"{ tables(database: "default") { tables { columns { name } } } }"#,
            json!({}),
        )
        .await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested too deep"), "{body}");
    assert!(body["data"].is_null(), "nothing ran: {body}");
    // Too many fields: refused before anything runs, a mutation included.
    let wide = r#"mutation { createDatabase(input: {name: "wide"}) { name tablespace path sizeBytes walBytes pageSize pageCount freelistCount tables journalMode activeConnections } }"#;
    let body = live.gql(&admin, wide, json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too complex"), "{body}");
    let (status, _) = live
        .http("GET", "/api/v1/databases/wide", &admin, None)
        .await;
    assert_eq!(status, 404, "the refused mutation did not run");
}
