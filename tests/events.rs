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
