//! The SDK against a real server: `target/debug/rustydb serve` on a free port with a temp data
//! directory and a known admin password (scripts/test.sh builds the binary first).

mod support;

use std::time::Duration;

use rustydb_client::events::{TableModified, TableModifiedOperation};
use rustydb_client::{ClientExt, Error, Event, EventStream, types};
use serde_json::json;
use support::{ADMIN_PASSWORD, admin, body, people_table, start};

/// Waits for the `table_modified` event of `operation` on `table`, skipping anything else.
async fn change(
    events: &mut EventStream,
    table: &str,
    operation: TableModifiedOperation,
) -> (u64, TableModified) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = events.next().await.expect("event stream");
            if let Some(Event::TableModified(change)) = message.event
                && change.table == table
                && change.operation == operation
            {
                assert_eq!(message.topic.as_deref(), Some("table_changes"));
                return (
                    message.sequence.expect("bus events carry a sequence"),
                    change,
                );
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {operation:?} event on {table} within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_round_trip_with_table_modified_events_across_a_reconnect() {
    let Some(server) = start().await else { return };
    let client = rustydb_client::client(&server.base_url);
    client.authenticate("admin", ADMIN_PASSWORD).await.unwrap();

    client
        .create_database()
        .body(body::<types::DatabaseCreate>(json!({"name": "sdk_rs"})))
        .send()
        .await
        .unwrap();
    client
        .create_table()
        .name("sdk_rs")
        .body(body::<types::TableCreate>(
            json!({"name": "people", "columns": [
                {"name": "id", "type": "INTEGER", "primary_key": true},
                {"name": "name", "type": "TEXT", "not_null": true},
                {"name": "age", "type": "INTEGER"},
            ]}),
        ))
        .send()
        .await
        .unwrap();

    let mut events = client.events();
    let ack = events
        .subscribe("table_changes", Some(json!({"table": "people"})))
        .await
        .unwrap();
    assert_eq!(ack.topic, "table_changes");
    assert!(ack.subscribed);

    let insert = |name: &'static str, age: i64| {
        client
            .insert_row()
            .name("sdk_rs")
            .table("people")
            .body(body::<types::RowValues>(
                json!({"values": {"name": name, "age": age}}),
            ))
            .send()
    };
    let alice = insert("alice", 30).await.unwrap().into_inner();
    insert("bob", 17).await.unwrap();
    let alice_id = alice.row_id.to_string();
    let (inserted_seq, inserted) =
        change(&mut events, "people", TableModifiedOperation::Insert).await;
    assert_eq!(inserted.row_data["name"], "alice");
    assert_eq!(inserted.database.as_deref(), Some("sdk_rs"));
    assert_eq!(inserted.row_id, alice_id);

    let adults = client
        .list_rows()
        .name("sdk_rs")
        .table("people")
        .filter(json!([{"column": "age", "op": "ge", "value": 18}]).to_string())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(adults.total, 1);
    assert_eq!(adults.rows[0]["name"], "alice");

    // Drop the connection and update while disconnected: the stream reconnects, resubscribes
    // with last_sequence, and the update arrives (once) through the replay.
    events.disconnect().await;
    client
        .update_row()
        .name("sdk_rs")
        .table("people")
        .row_id(alice_id.clone())
        .body(body::<types::RowValues>(json!({"values": {"age": 31}})))
        .send()
        .await
        .unwrap();
    let (updated_seq, updated) =
        change(&mut events, "people", TableModifiedOperation::Update).await;
    assert_eq!(updated.row_data["age"], 31);
    assert!(updated_seq > inserted_seq);

    client
        .delete_row()
        .name("sdk_rs")
        .table("people")
        .row_id(alice_id)
        .send()
        .await
        .unwrap();
    let (deleted_seq, _) = change(&mut events, "people", TableModifiedOperation::Delete).await;
    assert!(deleted_seq > updated_seq);

    let remaining = client
        .list_rows()
        .name("sdk_rs")
        .table("people")
        .send()
        .await
        .unwrap();
    assert_eq!(remaining.total, 1);
    events.close().await;
    assert!(matches!(events.next().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_401_and_analyst_writes_are_403() {
    let Some(server) = start().await else { return };
    let stranger = rustydb_client::client(&server.base_url);
    let err = stranger
        .authenticate("admin", "wrong-password")
        .await
        .unwrap_err();
    let Error::Api(api) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert!(api.is_unauthorized(), "{api}");
    assert_eq!(api.code, "UNAUTHORIZED");

    let admin = rustydb_client::client(&server.base_url);
    admin.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    admin
        .create_database()
        .body(body::<types::DatabaseCreate>(json!({"name": "sdk_rs_ro"})))
        .send()
        .await
        .unwrap();
    admin
        .create_user()
        .body(body::<types::UserCreate>(
            json!({"username": "rs_analyst", "password": "password-123", "roles": ["analyst"]}),
        ))
        .send()
        .await
        .unwrap();

    let analyst = rustydb_client::client(&server.base_url);
    analyst
        .authenticate("rs_analyst", "password-123")
        .await
        .unwrap();
    let databases = analyst.list_databases().send().await.unwrap().into_inner();
    assert!(databases.databases.iter().any(|d| d.name == "sdk_rs_ro"));
    let err: Error = analyst
        .create_table()
        .name("sdk_rs_ro")
        .body(body::<types::TableCreate>(
            json!({"name": "t", "columns": [{"name": "a", "type": "TEXT"}]}),
        ))
        .send()
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.status(), Some(403), "{err}");
    let Error::Api(api) = err else { unreachable!() };
    assert!(api.is_forbidden());
    assert_eq!(api.code, "FORBIDDEN");

    let mut events = analyst.events();
    match events.subscribe("system_metrics", None).await {
        Err(Error::Subscription { code, .. }) => assert_eq!(code, "FORBIDDEN_TOPIC"),
        other => panic!("expected FORBIDDEN_TOPIC, got {other:?}"),
    }
    events.close().await;
}

#[tokio::test]
async fn the_event_stream_needs_a_login() {
    // No server needed: the stream refuses before connecting.
    let client = rustydb_client::client("http://127.0.0.1:9");
    let mut events = client.events();
    assert!(matches!(events.connect().await, Err(Error::NotLoggedIn)));
}

/// Sequences start again at 1 when the server restarts: the stream must not take the new,
/// lower numbers for events it has already seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_across_a_server_restart() {
    let Some(mut server) = start().await else {
        return;
    };
    let client = admin(&server).await;
    people_table(&client, "restart", "people").await;
    let mut events = client.events();
    events
        .subscribe("table_changes", Some(json!({"table": "people"})))
        .await
        .unwrap();
    let insert = |name: &'static str| {
        client
            .insert_row()
            .name("restart")
            .table("people")
            .body(body::<types::RowValues>(json!({"values": {"name": name}})))
            .send()
    };
    for name in ["a", "b", "c"] {
        insert(name).await.unwrap();
        change(&mut events, "people", TableModifiedOperation::Insert).await;
    }
    server.restart().await;
    // More events after the restart than before it: the topic passes the stream's old position
    // before the stream reconnects, which only the epoch in the acknowledgement reveals.
    let after = ["d", "e", "f", "g"];
    for name in after {
        insert(name).await.unwrap();
    }
    for name in after {
        let (_, row) = change(&mut events, "people", TableModifiedOperation::Insert).await;
        assert_eq!(row.row_data["name"], name);
    }
}
