//! What build.rs generates, pinned and checked without a server: committed copies of the
//! progenitor and typify output under `tests/snapshots/` (a change in `generated/` shows up there
//! as a reviewed diff; `cargo codegen` rewrites them, by running this test with
//! `RUSTYDB_REGENERATE=1`), and real messages parsed into the generated event types.

use rustydb_client::events::{
    BufferPoolEvent, DiskIoEvent, Event, Message, ProtocolErrorCode, TableModifiedOperation,
};

#[test]
fn the_progenitor_rest_client_is_pinned() {
    pinned(
        "rest_client.rs.txt",
        include_str!(concat!(env!("OUT_DIR"), "/rest.rs")),
    );
}

#[test]
fn the_typify_event_types_are_pinned() {
    pinned(
        "event_types.rs.txt",
        include_str!(concat!(env!("OUT_DIR"), "/events.rs")),
    );
}

/// Compares what build.rs generated with its committed copy; under `RUSTYDB_REGENERATE=1` (set
/// by `cargo codegen`) rewrites the copy instead. The failure names the one command that fixes
/// it, as the other drift tests do.
fn pinned(name: &str, generated: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var_os("RUSTYDB_REGENERATE").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
        + 1;
    panic!(
        "sdk/rust/tests/snapshots/{name} is stale (first difference at line {line}); \
         run `cargo codegen` and commit the result"
    );
}

fn parse(frame: &str) -> Message {
    Message::parse(frame).expect("a frame with a message_type")
}

/// The seed's example (websocket-integration-guide.md, "Database Events").
#[test]
fn the_seed_table_modified_example_parses() {
    let message = parse(
        r#"{
  "message_type": "table_modified",
  "data": {
    "table": "users",
    "operation": "INSERT",
    "row_id": "uuid-1234",
    "row_data": {"id": 1234, "username": "alice", "created_at": "2025-12-14T00:00:00Z"},
    "transaction_id": "tx-5678"
  },
  "timestamp": 1702569600
}"#,
    );
    assert_eq!(message.timestamp, 1_702_569_600);
    assert_eq!((message.topic, message.sequence), (None, None));
    let Some(Event::TableModified(change)) = message.event else {
        panic!("not typed: {:?}", message.raw_data)
    };
    assert_eq!(change.table, "users");
    assert_eq!(change.operation, TableModifiedOperation::Insert);
    assert_eq!(change.row_id, "uuid-1234");
    assert_eq!(change.row_data["username"], "alice");
    assert_eq!(change.transaction_id, "tx-5678");
}

/// A frame as the server sends it on `/api/v1/ws` (envelope with topic and sequence, the
/// database, the old row of an UPDATE).
#[test]
fn a_served_table_modified_parses_with_its_envelope() {
    let message = parse(
        r#"{"message_type":"table_modified","data":{"table":"people","operation":"UPDATE",
        "row_id":"1","row_data":{"id":1,"age":31},"old_row_data":{"id":1,"age":30},
        "transaction_id":"7f0c","database":"shop"},"timestamp":1764230000,
        "topic":"table_changes","sequence":42}"#,
    );
    assert_eq!(message.topic.as_deref(), Some("table_changes"));
    assert_eq!(message.sequence, Some(42));
    let Some(Event::TableModified(change)) = message.event else {
        panic!("not typed: {:?}", message.raw_data)
    };
    assert_eq!(change.operation, TableModifiedOperation::Update);
    assert_eq!(change.old_row_data["age"], 30);
    assert_eq!(change.database.as_deref(), Some("shop"));
}

/// The seed's storage examples: the data is an enum keyed by the event kind.
#[test]
fn the_seed_buffer_pool_and_disk_io_examples_parse() {
    let pool = parse(
        r#"{"message_type":"buffer_pool_event","data":{"PoolStats":{"hit_rate":0.95,
        "total_pages":10000,"used_pages":7500,"dirty_pages":500,"timestamp":1702569604}},
        "timestamp":1702569604}"#,
    );
    let Some(Event::BufferPoolEvent(BufferPoolEvent::PoolStats { used_pages, .. })) = pool.event
    else {
        panic!("not typed: {:?}", pool.raw_data)
    };
    assert_eq!(used_pages, 7500);

    let io = parse(
        r#"{"message_type":"disk_io_event","data":{"IoStats":{"reads_per_sec":1500.0,
        "writes_per_sec":800.0,"read_throughput_mbps":150.5,"write_throughput_mbps":120.3,
        "avg_read_latency_us":2500,"avg_write_latency_us":3200,"timestamp":1702569604}},
        "timestamp":1702569604}"#,
    );
    let Some(Event::DiskIoEvent(DiskIoEvent::IoStats { reads_per_sec, .. })) = io.event else {
        panic!("not typed: {:?}", io.raw_data)
    };
    assert_eq!(reads_per_sec, 1500.0);
}

#[test]
fn protocol_messages_parse() {
    let ack = parse(
        r#"{"message_type":"subscription_ack","data":{"topic":"table_changes",
        "subscription_id":"s-1","subscribed":true,"last_sequence":3,"epoch":"0123456789abcdef"},
        "timestamp":1}"#,
    );
    assert!(
        matches!(ack.event, Some(Event::SubscriptionAck(a)) if a.last_sequence == 3 && a.epoch == "0123456789abcdef")
    );
    let error = parse(
        r#"{"message_type":"error","data":{"code":"FORBIDDEN_TOPIC","message":"no"},"timestamp":1}"#,
    );
    assert!(
        matches!(error.event, Some(Event::Error(e)) if e.code == ProtocolErrorCode::ForbiddenTopic)
    );
}

/// A message type this SDK does not know, or one whose data does not match, is kept raw rather
/// than failing the stream.
#[test]
fn unknown_or_mismatched_messages_keep_their_raw_data() {
    let unknown = parse(r#"{"message_type":"lsm_event","data":{"x":1},"timestamp":5}"#);
    assert_eq!(unknown.message_type, "lsm_event");
    assert!(unknown.event.is_none());
    assert_eq!(unknown.raw_data, Some(serde_json::json!({"x": 1})));

    let mismatched = parse(r#"{"message_type":"table_modified","data":{"table":1},"timestamp":5}"#);
    assert!(mismatched.event.is_none());
    assert!(mismatched.raw_data.is_some());

    assert!(Message::parse("not json").is_none());
    assert!(Message::parse(r#"{"data":{}}"#).is_none());
}
