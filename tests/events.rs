//! Contract tests for event wire shapes: the seed's example messages and the schema's examples
//! come back unchanged through the generated types, and bus frames carry the seed's envelope.

use std::path::Path;

use rustydb::api::types::SystemMetrics;
use rustydb::api::{TOPICS, events};
use rustydb::events::Bus;
use serde_json::Value;

fn declared_message_types() -> Vec<&'static str> {
    TOPICS
        .iter()
        .flat_map(|t| t.message_types.iter().copied())
        .collect()
}

#[test]
fn schema_examples_round_trip_through_the_generated_types() {
    let api = rustydb_codegen::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schema"))
        .expect("schema");
    let mut checked = 0;
    for family in &api.events {
        for message in &family.messages {
            for example in &message.examples {
                assert_eq!(example["message_type"], message.message_type.as_str());
                assert!(example["timestamp"].is_i64(), "envelope timestamp");
                let data = example["data"].clone();
                let again = events::reencode(&message.message_type, data.clone())
                    .expect("declared type")
                    .expect("parses");
                assert_eq!(again, data, "{} changed shape", message.message_type);
                checked += 1;
            }
        }
    }
    assert!(checked >= 1, "no examples declared");
}

/// Every ```json block of the seed whose `message_type` is declared here must parse into the
/// generated type and serialize back to the same `data`.
#[test]
fn seed_examples_of_declared_messages_round_trip() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/websocket-integration-guide.md");
    let Ok(text) = std::fs::read_to_string(&seed) else {
        eprintln!("seed not found at {}; nothing to compare", seed.display());
        return;
    };
    let declared = declared_message_types();
    let mut checked = Vec::new();
    for block in text.split("```json").skip(1) {
        let json = block.split("```").next().unwrap_or_default();
        let Ok(message) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let Some(message_type) = message["message_type"].as_str() else {
            continue;
        };
        if !declared.contains(&message_type) {
            continue;
        }
        let data = message["data"].clone();
        let again = events::reencode(message_type, data.clone())
            .expect("declared type")
            .unwrap_or_else(|e| panic!("seed example of {message_type} does not parse: {e}"));
        assert_eq!(again, data, "seed example of {message_type} changed shape");
        checked.push(message_type.to_string());
    }
    assert!(
        checked.contains(&"system_metrics".to_string()),
        "{checked:?}"
    );
}

#[test]
fn bus_frames_carry_the_envelope_and_sequence() {
    let bus = Bus::new(4);
    let sample = SystemMetrics {
        cpu_usage: 45.2,
        memory_usage: 8_589_934_592,
        memory_total: Some(17_179_869_184),
        memory_percent: 67.5,
        disk_read_bps: 1_048_576,
        disk_write_bps: 524_288,
        network_rx_bps: 2_097_152,
        network_tx_bps: 1_048_576,
        active_connections: 87,
        active_queries: 12,
    };
    assert_eq!(bus.publish(&sample), Some(1));
    assert_eq!(bus.publish(&sample), Some(2));
    let topic = bus.topic("system_metrics").expect("topic");
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut subscribed = topic.subscribe(Some(0), &wake);
    let mut replay = Vec::new();
    subscribed
        .cursor
        .read(usize::MAX, |e| replay.push(std::sync::Arc::clone(e)));
    assert_eq!(replay.len(), 2);
    let frame: Value = serde_json::from_str(replay[1].frame.text_payload()).expect("json");
    assert_eq!(frame["message_type"], "system_metrics");
    assert_eq!(frame["topic"], "system_metrics");
    assert_eq!(frame["sequence"], 2);
    assert!(frame["timestamp"].is_i64());
    assert_eq!(frame["data"]["memory_usage"], 8_589_934_592u64);
    // Capacity 4: after 6 more, sequences 1..=4 are gone and reported as a gap.
    for _ in 0..6 {
        bus.publish(&sample);
    }
    let mut late = topic.subscribe(Some(0), &wake);
    let gap = late.gap.expect("gap");
    assert_eq!(
        (gap.from_sequence, gap.to_sequence, gap.missed()),
        (1, 4, 4)
    );
    let mut seqs = Vec::new();
    let taken = late.cursor.read(usize::MAX, |e| seqs.push(e.sequence));
    assert_eq!(seqs, [5, 6, 7, 8]);
    assert_eq!(taken.lost, None, "the gap was reported at subscribe");
    // A subscriber that falls behind by more than the capacity loses the oldest, told once.
    for _ in 0..6 {
        bus.publish(&sample);
    }
    assert_eq!(subscribed.cursor.pending(), 12);
    let mut seqs = Vec::new();
    let taken = subscribed.cursor.read(2, |e| seqs.push(e.sequence));
    assert_eq!(
        taken.lost,
        Some(rustydb::events::Gap {
            from_sequence: 3,
            to_sequence: 10
        })
    );
    assert_eq!(seqs, [11, 12], "oldest held first, at most `max`");
    assert_eq!(subscribed.cursor.pending(), 2);
    assert_eq!(topic.subscribers(), 2);
    drop(late);
    assert_eq!(topic.subscribers(), 1, "a dropped cursor stops listening");
    // Protocol families are not topics.
    assert!(bus.topic("ws_protocol").is_none());
    assert_eq!(
        bus.resolve("system_metrics").map(|t| t.name()),
        Some("system_metrics")
    );
}

fn row_change(n: u64) -> rustydb::api::types::TableModified {
    rustydb::api::types::TableModified {
        table: "t".into(),
        operation: rustydb::api::types::TableModifiedOperation::Insert,
        row_id: n.to_string(),
        row_data: serde_json::from_value(serde_json::json!({ "n": n })).expect("row"),
        transaction_id: "q-1".into(),
        database: Some("main".into()),
        old_row_data: Default::default(),
    }
}

fn sequences(cursor: &mut rustydb::events::Cursor, batch: usize) -> (Vec<u64>, Vec<Gap>) {
    let (mut seqs, mut gaps) = (Vec::new(), Vec::new());
    loop {
        let taken = cursor.read(batch, |e| seqs.push(e.sequence));
        gaps.extend(taken.lost);
        if taken.events == 0 && taken.lost.is_none() {
            return (seqs, gaps);
        }
    }
}

fn changes(events: u64) -> ChangesConfig {
    ChangesConfig {
        enabled: true,
        retention_events: events,
        retention_bytes: 1 << 30,
        retention_age: std::time::Duration::from_secs(3600),
    }
}

use rustydb::events::Gap;
use rustydb::events::change_log::ChangeLog;
use rustydb::events::config::ChangesConfig;

#[test]
fn a_durable_topic_lets_a_lagging_subscriber_catch_up_from_the_change_log() {
    let dir = tempfile::tempdir().expect("dir");
    let log = std::sync::Arc::new(ChangeLog::open(dir.path(), changes(1_000_000)).expect("log"));
    let bus = Bus::with_log(4, Some(log));
    let topic = bus.topic("table_changes").expect("topic");
    assert!(topic.durable());
    assert!(!bus.topic("system_metrics").expect("topic").durable());
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut early = topic.subscribe(None, &wake).cursor;
    let payloads = (1..=5_000).map(|n| serde_json::to_value(row_change(n)).expect("json"));
    assert_eq!(topic.publish_all("table_modified", payloads), 5_000);
    // The ring holds 4; the 4,996 before them come from the log, in order, none lost.
    let (seqs, gaps) = sequences(&mut early, 700);
    assert_eq!(gaps, []);
    assert_eq!(seqs, (1..=5_000).collect::<Vec<_>>());
    // A late subscriber resumes from any sequence still logged, with the payload intact.
    let late = topic.subscribe(Some(4_990), &wake);
    assert_eq!(late.gap, None);
    let mut cursor = late.cursor;
    let mut rows = Vec::new();
    cursor.read(3, |e| rows.push(e.data["row_data"]["n"].as_u64()));
    assert_eq!(rows, [Some(4_991), Some(4_992), Some(4_993)]);
}

#[test]
fn what_retention_removed_is_reported_exactly_and_sequences_survive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let epoch;
    {
        let log = std::sync::Arc::new(ChangeLog::open(dir.path(), changes(100)).expect("log"));
        let bus = Bus::with_log(4, Some(std::sync::Arc::clone(&log)));
        let topic = bus.topic("table_changes").expect("topic");
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut stalled = topic.subscribe(None, &wake).cursor;
        for n in 1..=250 {
            bus.publish(&row_change(n));
        }
        let kept = log.kept("table_changes");
        assert!((90..=100).contains(&kept.events), "{kept:?}");
        let oldest = 250 - kept.events + 1;
        // The stalled subscriber is told exactly what retention removed, then gets the rest.
        let (seqs, gaps) = sequences(&mut stalled, 64);
        assert_eq!(
            gaps,
            [Gap {
                from_sequence: 1,
                to_sequence: oldest - 1
            }]
        );
        assert_eq!(seqs, (oldest..=250).collect::<Vec<_>>());
        epoch = topic.epoch().to_string();
        assert_ne!(
            epoch,
            bus.topic("system_metrics").expect("topic").epoch(),
            "in-memory topics count in this run's epoch"
        );
    }
    // Restarted: the same epoch, sequences go on, and a client resumes from the log.
    let log = std::sync::Arc::new(ChangeLog::open(dir.path(), changes(100)).expect("log"));
    let bus = Bus::with_log(4, Some(log));
    let topic = bus.topic("table_changes").expect("topic");
    assert_eq!(topic.epoch(), epoch);
    assert_eq!(topic.head(), 250);
    assert_eq!(bus.publish(&row_change(251)), Some(251));
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let resumed = topic.subscribe(Some(240), &wake);
    assert_eq!(resumed.gap, None);
    let (seqs, gaps) = sequences(&mut { resumed.cursor }, 4);
    assert_eq!(gaps, []);
    assert_eq!(seqs, (241..=251).collect::<Vec<_>>());
    let too_old = topic.subscribe(Some(0), &wake);
    let gap = too_old.gap.expect("gap");
    assert_eq!(gap.from_sequence, 1);
    assert_eq!(gap.to_sequence + 1, log_oldest(&bus));
}

fn log_oldest(bus: &Bus) -> u64 {
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut cursor = bus
        .topic("table_changes")
        .expect("topic")
        .subscribe(Some(0), &wake)
        .cursor;
    let mut first = None;
    cursor.read(1, |e| first = first.or(Some(e.sequence)));
    first.expect("an event")
}
