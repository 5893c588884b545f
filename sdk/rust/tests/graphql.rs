//! The GraphQL subscription client (graphql-transport-ws on /graphql) against a real server.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use rustydb_client::{ClientExt, Error, Options, types};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, WAIT, admin, body, people_table, start, user};

const TABLE_CHANGES: &str = "subscription($table: String!, $database: String) {
  tableChanges(table: $table, database: $database) { table changeType row { id data } }
}";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableChanges {
    table_changes: TableChange,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableChange {
    table: String,
    change_type: String,
    row: Row,
}

#[derive(Debug, Deserialize)]
struct Row {
    id: String,
    data: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_changes_receives_an_insert_made_through_the_rest_client() {
    let Some(server) = start().await else { return };
    let client = admin(&server).await;
    people_table(&client, "sdk_gql", "people").await;

    let gql = client.graphql().await.unwrap();
    let mut changes = gql
        .subscribe::<TableChanges>(
            TABLE_CHANGES,
            json!({"table": "people", "database": "sdk_gql"}),
        )
        .unwrap();
    // The server answers in order: once the pong is back, the subscribe was read.
    gql.ping().await.unwrap();

    // The subscription goes live when the server's task has started it, which the pong does not
    // strictly prove: insert until a change arrives, and check it is one of ours.
    let mut inserted = Vec::new();
    let change = loop {
        let row = client
            .insert_row()
            .name("sdk_gql")
            .table("people")
            .body(body::<types::RowValues>(
                json!({"values": {"name": format!("user{}", inserted.len()), "age": 40}}),
            ))
            .send()
            .await
            .unwrap()
            .into_inner();
        inserted.push(row.row_id.to_string());
        match tokio::time::timeout(Duration::from_secs(5), changes.next()).await {
            Ok(next) => break next.expect("a result").expect("a change"),
            Err(_) if inserted.len() < 5 => continue,
            Err(_) => panic!("no tableChanges result after {} inserts", inserted.len()),
        }
    };
    let change = change.table_changes;
    assert_eq!(change.table, "people");
    assert_eq!(change.change_type, "INSERT");
    assert!(
        inserted.contains(&change.row.id),
        "{change:?} not in {inserted:?}"
    );
    let data: Value = serde_json::from_str(&change.row.data).unwrap();
    assert_eq!(data["age"], 40);

    // Raw values work too, on the same connection.
    let mut raw = gql
        .subscribe::<Value>(
            TABLE_CHANGES,
            json!({"table": "people", "database": "sdk_gql"}),
        )
        .unwrap();
    gql.ping().await.unwrap();
    client
        .delete_row()
        .name("sdk_gql")
        .table("people")
        .row_id(inserted[0].clone())
        .send()
        .await
        .unwrap();
    let deleted = tokio::time::timeout(WAIT, async {
        loop {
            let next = raw.next().await.expect("a result").expect("a change");
            if next["tableChanges"]["changeType"] == "DELETE" {
                return next;
            }
        }
    })
    .await
    .expect("the DELETE within 30 s");
    assert_eq!(deleted["tableChanges"]["row"]["id"], inserted[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_field_is_a_403_and_refused_credentials_a_401() {
    let Some(server) = start().await else { return };
    let admin = admin(&server).await;
    let analyst = user(&server, &admin, "gql_analyst", "analyst").await;

    // systemMetrics needs system:read, which an analyst lacks; the connection stays usable.
    let gql = analyst.graphql().await.unwrap();
    let mut metrics = gql
        .subscribe::<Value>("subscription { systemMetrics { cpuUsage } }", Value::Null)
        .unwrap();
    let refused = tokio::time::timeout(WAIT, metrics.next())
        .await
        .expect("an answer within 30 s")
        .expect("one item");
    match refused {
        Err(Error::Api(api)) => {
            assert!(api.is_forbidden(), "{api}");
            assert_eq!(api.code, "FORBIDDEN");
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(metrics.next().await.is_none(), "the operation ended");
    gql.ping().await.unwrap();

    // A login revoked elsewhere: the connection is refused as unauthorized.
    let revoked = rustydb_client::client_with_options(
        &server.base_url,
        Options {
            keep_credentials: false,
            ..Options::default()
        },
    );
    revoked.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    let token = revoked.session().access_token().await.unwrap();
    let status = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/logout", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    match revoked.graphql().await {
        Err(err) => assert_eq!(err.status(), Some(401), "{err}"),
        Ok(_) => panic!("a revoked token opened a GraphQL connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_ends_the_subscriptions_as_unauthorized_and_a_new_connection_works() {
    // The server closes a GraphQL connection with 4403 when its token expires (here after 1 s: no leeway).
    let config = "[security]\naccess_token_ttl_secs = 1\ntoken_leeway_secs = 0\n";
    let Some(server) = support::start_with_config(config).await else {
        return;
    };
    let client = admin(&server).await;
    let gql = client.graphql().await.unwrap();
    let mut beats = gql
        .subscribe::<Value>(
            "subscription { heartbeat(intervalSeconds: 1) { timestamp } }",
            Value::Null,
        )
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match beats.next().await.expect("an error before the end") {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("closed within 60 s");
    assert_eq!(ended.status(), Some(401), "{ended}");
    assert!(beats.next().await.is_none());
    assert!(matches!(gql.ping().await, Err(Error::Closed)));

    // A new connection takes the session's renewed token: `connect` returning means the server
    // acknowledged its connection_init (the new token lives 1 s too, so nothing more is asked).
    client
        .graphql()
        .await
        .expect("a new connection with the renewed token");
}
