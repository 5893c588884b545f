//! The Rust example of sdk/README.md, type-checked by clippy --all-targets:
//! `RUSTYDB_ADMIN_PASSWORD=... cargo run -p rustydb-client --example quickstart`
use futures_util::StreamExt;
use rustydb_client::{ClientExt, Error, Event, types};
use serde_json::{Value, json};

fn body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid body")
}

/// A 409 means "exists already", which is fine for a demo run twice.
fn unless_exists<T>(result: Result<T, impl Into<Error>>) -> Result<(), Error> {
    match result.map_err(Into::into) {
        Err(e) if e.status() != Some(409) => Err(e),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let client = rustydb_client::client("http://127.0.0.1:8080");
    let password = std::env::var("RUSTYDB_ADMIN_PASSWORD").expect("RUSTYDB_ADMIN_PASSWORD");
    client.authenticate("admin", &password).await?; // later calls renew the token themselves
    let shop = body::<types::DatabaseCreate>(json!({"name": "shop"}));
    unless_exists(client.create_database().body(shop).send().await)?;
    let items = body::<types::TableCreate>(json!({"name": "items", "columns": [
        {"name": "id", "type": "INTEGER", "primary_key": true},
        {"name": "title", "type": "TEXT", "not_null": true},
        {"name": "price", "type": "REAL"}]}));
    unless_exists(client.create_table().name("shop").body(items).send().await)?;

    // The event stream (/api/v1/ws) and a GraphQL subscription (/graphql), both opened first.
    let mut events = client.events();
    events
        .subscribe("table_changes", Some(json!({"table": "items"})))
        .await?;
    let gql = client.graphql().await?;
    let query = r#"subscription { tableChanges(table: "items", database: "shop") {
        changeType row { id } } }"#;
    let mut changes = gql.subscribe::<Value>(query, Value::Null)?;
    gql.ping().await?; // answered after the server has read the subscribe

    let lamp = body::<types::RowValues>(json!({"values": {"title": "lamp", "price": 25}}));
    client
        .insert_row()
        .name("shop")
        .table("items")
        .body(lamp)
        .send()
        .await?;
    loop {
        let m = events.next().await?;
        if let Some(Event::TableModified(c)) = m.event {
            let seq = m.sequence.unwrap_or_default();
            println!("event #{seq}: {} {} row {}", c.operation, c.table, c.row_id);
            break;
        }
    }
    if let Some(change) = changes.next().await {
        let change = &change?["tableChanges"];
        let (kind, id) = (&change["changeType"], &change["row"]["id"]);
        println!(
            "graphql: {} row {}",
            kind.as_str().unwrap_or("?"),
            id.as_str().unwrap_or("?")
        );
    }
    let cheap = client
        .list_rows()
        .name("shop")
        .table("items")
        .filter(json!([{"column": "price", "op": "lt", "value": 100}]).to_string())
        .send()
        .await?;
    println!("{} item(s) under 100", cheap.total);
    events.close().await;
    Ok(())
}
