//! `GET /metrics` (Prometheus text format) and the health watcher's status-change events.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::http::StatusCode;

use crate::support::{TestServer, next_event};

/// Parses the exposition text: every line is `# HELP name text`, `# TYPE name counter|gauge`
/// or `name{label="value",...} number`; every sample's family has HELP and TYPE before it.
/// Returns each sample (name plus its label text) with its value.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut helped = HashSet::new();
    let mut typed = HashSet::new();
    let mut samples = HashMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a name and text");
            assert!(valid_name(name) && !help.is_empty(), "bad HELP: {line}");
            helped.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a name and kind");
            assert!(valid_name(name), "bad TYPE: {line}");
            assert!(["counter", "gauge"].contains(&kind), "bad kind: {line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            typed.insert(name.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let name = series.split('{').next().unwrap();
            assert!(valid_name(name), "bad metric name: {line}");
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("bad label set: {line}"));
                for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                    let (label, quoted) = pair.split_once('=').expect("label=value");
                    assert!(valid_name(label), "bad label name: {line}");
                    assert!(quoted.starts_with('"'), "unquoted label value: {line}");
                }
            }
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            assert!(value.is_finite(), "{line}");
            assert!(typed.contains(name), "sample without TYPE: {line}");
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "repeated: {line}"
            );
        }
    }
    samples
}

#[tokio::test]
async fn prometheus_output_parses_and_its_values_move() {
    let server = TestServer::new().await;
    let monitor = server.user_with_roles("scraper", &["monitor"]).await;
    let first = monitor.get("/metrics").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        first.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let before = parse(first.body.as_str().expect("text"));
    for name in [
        "rustydb_http_requests_total",
        "rustydb_http_requests_in_flight",
        "rustydb_http_responses_total{class=\"2xx\"}",
        "rustydb_bus_events_published_total{topic=\"transactions\"}",
        "rustydb_bus_subscribers{topic=\"alerts\"}",
        "rustydb_ws_connections",
        "rustydb_databases",
        "rustydb_database_size_bytes{database=\"default\"}",
        "rustydb_transactions_active",
        "rustydb_engine_calls_in_flight",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "rustydb_host_cpu_usage_percent",
        "rustydb_alerts_open{state=\"firing\"}",
    ] {
        assert!(before.contains_key(name), "missing {name}");
    }
    // The scrape itself is a request in flight.
    assert!(before["rustydb_http_requests_in_flight"] >= 1.0);
    assert!(before["process_resident_memory_bytes"] > 0.0);
    assert!(before["rustydb_database_size_bytes{database=\"default\"}"] > 0.0);

    // Drive a few figures: a transaction (bus event, open transaction) and more requests.
    let admin = server.admin().await;
    let r = admin
        .post_json("/api/v1/transactions", r#"{"database": "default"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let after = parse(monitor.get("/metrics").await.body.as_str().expect("text"));
    assert!(after["rustydb_http_requests_total"] > before["rustydb_http_requests_total"]);
    assert_eq!(
        after["rustydb_bus_events_published_total{topic=\"transactions\"}"],
        before["rustydb_bus_events_published_total{topic=\"transactions\"}"] + 1.0
    );
    assert_eq!(after["rustydb_transactions_active"], 1.0);
    assert_eq!(before["rustydb_transactions_active"], 0.0);
    assert!(after["rustydb_database_active_statements{database=\"default\"}"] >= 1.0);
}

#[tokio::test]
async fn metrics_need_system_read_and_an_api_key_works_for_a_scraper() {
    let server = TestServer::new().await;
    assert_eq!(
        server
            .get("/metrics")
            .await
            .assert_error(StatusCode::UNAUTHORIZED),
        "UNAUTHORIZED"
    );
    let analyst = server.user_with_roles("reader", &["analyst"]).await;
    assert_eq!(
        analyst
            .get("/metrics")
            .await
            .assert_error(StatusCode::FORBIDDEN),
        "FORBIDDEN"
    );
    let monitor = server.user_with_roles("prom", &["monitor"]).await;
    let key = monitor
        .post_json("/api/v1/auth/api-keys", r#"{"name": "prometheus"}"#)
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key = key.body["api_key"].as_str().expect("key").to_string();
    let scrape = server.anon().header("x-api-key", key).get("/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK, "{}", scrape.body);
    assert!(!parse(scrape.body.as_str().expect("text")).is_empty());
}

#[tokio::test]
async fn a_component_status_change_is_published_with_the_changed_component() {
    let server = TestServer::with_config(|c| {
        c.health.watch_interval = Duration::from_millis(20);
    })
    .await;
    let mut events = server.bus().topic("health").expect("health topic").listen();
    let dir = server.data_dir.path().to_path_buf();
    // Without its data directory the probe cannot write: the component turns unhealthy.
    std::fs::remove_dir_all(&dir).expect("remove data dir");
    let down = next_event(&mut events, |d| d["status"] == "unhealthy").await;
    assert_eq!(down["previous_status"], "healthy");
    let changed = down["changed_components"].as_array().expect("changed");
    assert_eq!(changed.len(), 1, "{down}");
    assert_eq!(changed[0]["name"], "data_directory");
    assert_eq!(changed[0]["status"], "unhealthy");
    assert_eq!(changed[0]["previous_status"], "healthy");
    assert!(
        changed[0]["details"]
            .as_str()
            .expect("why")
            .contains("cannot write")
    );
    assert!(
        down["errors"][0]
            .as_str()
            .expect("error")
            .starts_with("data_directory")
    );

    std::fs::create_dir_all(&dir).expect("recreate data dir");
    let up = next_event(&mut events, |d| d["status"] == "healthy").await;
    assert_eq!(up["previous_status"], "unhealthy");
    assert_eq!(up["changed_components"][0]["name"], "data_directory");
    assert_eq!(up["errors"], serde_json::json!([]));
}
