//! Alert rules: CRUD, validation, and a rule that fires on a metric the test drives (open
//! transactions), is acknowledged, resolves, and fires again.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, next_event};

async fn fast_server() -> TestServer {
    TestServer::with_config(|c| {
        c.alerts.evaluation_interval = Duration::from_millis(20);
    })
    .await
}

fn rule(name: &str, metric: &str, duration_seconds: u64) -> String {
    json!({
        "name": name,
        "metric": metric,
        "comparison": "gt",
        "threshold": 0,
        "duration_seconds": duration_seconds,
        "severity": "WARNING",
        "category": "database",
    })
    .to_string()
}

#[tokio::test]
async fn a_rule_fires_on_open_transactions_is_acknowledged_resolves_and_fires_again() {
    let server = fast_server().await;
    let admin = server.admin().await;
    let mut events = server.bus().topic("alerts").expect("alerts topic").listen();

    let created = admin
        .post_json(
            "/api/v1/alerts/rules",
            &rule("open transactions", "active_transactions", 0),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let rule_id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.body["enabled"], true);
    // Same condition, but it must hold for an hour: it cannot fire during this test.
    let slow = admin
        .post_json(
            "/api/v1/alerts/rules",
            &rule("long transactions", "active_transactions", 3600),
        )
        .await;
    assert_eq!(slow.status, StatusCode::CREATED, "{}", slow.body);

    // And one that must hold for a second: it fires, but not before.
    let second = admin
        .post_json(
            "/api/v1/alerts/rules",
            &rule("held transactions", "active_transactions", 1),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let second_id = second.body["id"].as_str().expect("id").to_string();

    let none = admin.get("/api/v1/alerts").await;
    assert_eq!(none.body["alerts"], json!([]), "nothing holds yet");

    let began = chrono::Utc::now();
    let tx = begin(&admin).await;
    let mine = |state: &'static str| {
        let id = rule_id.clone();
        move |d: &Value| d["state"] == state && d["rule_id"] == id.as_str()
    };
    let fired = next_event(&mut events, mine("firing")).await;
    assert_eq!(fired["rule_id"], rule_id.as_str());
    assert_eq!(fired["name"], "open transactions");
    assert_eq!(fired["severity"], "WARNING");
    assert_eq!(fired["category"], "database");
    assert_eq!(fired["occurrence_count"], 1);
    assert_eq!(fired["details"]["metric"], "active_transactions");
    assert_eq!(fired["details"]["value"], 1.0);
    let alert_id = fired["alert_id"].as_str().expect("alert id").to_string();

    let firing = admin.get("/api/v1/alerts?state=firing").await;
    assert_eq!(firing.status, StatusCode::OK, "{}", firing.body);
    let list = firing.body["alerts"].as_array().expect("alerts");
    let ours = list
        .iter()
        .find(|a| a["id"] == alert_id.as_str())
        .expect("our alert is listed");
    assert_eq!(ours["value"], 1.0);
    assert!(
        list.iter().all(|a| a["name"] != "long transactions"),
        "{}",
        firing.body
    );
    assert!(ours["triggered_at"].is_string());
    let held = next_event(&mut events, |d| {
        d["state"] == "firing" && d["rule_id"] == second_id.as_str()
    })
    .await;
    let triggered: chrono::DateTime<chrono::Utc> = held["triggered_at"]
        .as_str()
        .expect("time")
        .parse()
        .expect("date-time");
    assert!(
        triggered - began >= chrono::Duration::seconds(1),
        "fired {triggered} before holding a second since {began}"
    );
    let other = admin.get("/api/v1/alerts?severity=CRITICAL").await;
    assert_eq!(other.body["alerts"], json!([]));

    let ack = admin
        .post_json(&format!("/api/v1/alerts/{alert_id}/acknowledge"), "")
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    assert_eq!(ack.body["state"], "acknowledged");
    assert_eq!(ack.body["acknowledged_by"], "admin");
    let acked = next_event(&mut events, mine("acknowledged")).await;
    assert_eq!(acked["alert_id"], alert_id.as_str());
    let again = admin
        .post_json(&format!("/api/v1/alerts/{alert_id}/acknowledge"), "")
        .await;
    assert_eq!(again.assert_error(StatusCode::CONFLICT), "CONFLICT");

    let commit = admin
        .post_json(&format!("/api/v1/transactions/{tx}/commit"), "")
        .await;
    assert_eq!(commit.status, StatusCode::OK, "{}", commit.body);
    let resolved = next_event(&mut events, mine("resolved")).await;
    assert_eq!(resolved["alert_id"], alert_id.as_str());
    assert_eq!(resolved["details"]["value"], 0.0);
    let one = admin.get(&format!("/api/v1/alerts/{alert_id}")).await;
    assert_eq!(one.body["state"], "resolved");
    assert!(one.body["resolved_at"].is_string(), "{}", one.body);
    let resolved_ack = admin
        .post_json(&format!("/api/v1/alerts/{alert_id}/acknowledge"), "")
        .await;
    assert_eq!(resolved_ack.assert_error(StatusCode::CONFLICT), "CONFLICT");

    let tx = begin(&admin).await;
    let refired = next_event(&mut events, mine("firing")).await;
    assert_eq!(
        refired["alert_id"],
        alert_id.as_str(),
        "the same alert fires again"
    );
    assert_eq!(refired["occurrence_count"], 2);
    let r = admin
        .post_json(&format!("/api/v1/transactions/{tx}/rollback"), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    next_event(&mut events, mine("resolved")).await;

    // Deleting the rule takes its alert with it.
    let gone = admin
        .delete(&format!("/api/v1/alerts/rules/{rule_id}"))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let missing = admin.get(&format!("/api/v1/alerts/{alert_id}")).await;
    assert_eq!(missing.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
}

#[tokio::test]
async fn rules_can_be_listed_read_replaced_and_deleted() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin
        .post_json(
            "/api/v1/alerts/rules",
            &rule("many databases", "databases", 5),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(r.body["duration_seconds"], 5);

    let list = admin.get("/api/v1/alerts/rules").await;
    assert_eq!(list.body["rules"].as_array().expect("rules").len(), 1);

    let mut body: Value = serde_json::from_str(&rule("many databases", "databases", 5)).unwrap();
    body["threshold"] = json!(10);
    body["severity"] = json!("CRITICAL");
    body["enabled"] = json!(false);
    let put = admin
        .put_json(&format!("/api/v1/alerts/rules/{id}"), &body.to_string())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["threshold"], 10.0);
    assert_eq!(put.body["severity"], "CRITICAL");
    assert_eq!(put.body["enabled"], false);
    let got = admin.get(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(got.body, put.body);

    let metrics = admin.get("/api/v1/alerts/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.body);
    let databases = metrics.body["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == "databases")
        .expect("databases metric")
        .clone();
    assert_eq!(databases["value"], 1.0, "only `default` exists");

    let del = admin.delete(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let del = admin.delete(&format!("/api/v1/alerts/rules/{id}")).await;
    assert_eq!(del.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
}

#[tokio::test]
async fn bad_rules_and_unknown_ids_get_clear_errors() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin
        .post_json("/api/v1/alerts/rules", &rule("x", "no_such_metric", 0))
        .await;
    assert_eq!(
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY),
        "UNKNOWN_METRIC"
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cpu_usage")
    );

    let mut bad: Value = serde_json::from_str(&rule("x", "cpu_usage", 0)).unwrap();
    bad["severity"] = json!("SEVERE");
    let r = admin
        .post_json("/api/v1/alerts/rules", &bad.to_string())
        .await;
    assert_eq!(
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY),
        "INVALID_REQUEST_BODY"
    );
    bad["severity"] = json!("INFO");
    bad["duration_seconds"] = json!(-1);
    let r = admin
        .post_json("/api/v1/alerts/rules", &bad.to_string())
        .await;
    assert_eq!(
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY),
        "INVALID_REQUEST_BODY"
    );
    bad["duration_seconds"] = json!(0);
    bad["name"] = json!("");
    let r = admin
        .post_json("/api/v1/alerts/rules", &bad.to_string())
        .await;
    assert_eq!(
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY),
        "INVALID_REQUEST_BODY"
    );
    let r = admin.post_json("/api/v1/alerts/rules", "{").await;
    assert_eq!(r.assert_error(StatusCode::BAD_REQUEST), "MALFORMED_JSON");

    let ok = admin
        .post_json("/api/v1/alerts/rules", &rule("cpu", "cpu_usage", 0))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let dup = admin
        .post_json("/api/v1/alerts/rules", &rule("cpu", "memory_usage", 0))
        .await;
    assert_eq!(dup.assert_error(StatusCode::CONFLICT), "CONFLICT");
    let second = admin
        .post_json("/api/v1/alerts/rules", &rule("mem", "memory_usage", 0))
        .await;
    let second_id = second.body["id"].as_str().expect("id");
    let rename = admin
        .put_json(
            &format!("/api/v1/alerts/rules/{second_id}"),
            &rule("cpu", "memory_usage", 0),
        )
        .await;
    assert_eq!(rename.assert_error(StatusCode::CONFLICT), "CONFLICT");

    for path in ["/api/v1/alerts/rules/rul-nope", "/api/v1/alerts/alr-nope"] {
        let r = admin.get(path).await;
        assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND", "{path}");
    }
    let r = admin
        .put_json("/api/v1/alerts/rules/rul-nope", &rule("z", "cpu_usage", 0))
        .await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    let r = admin
        .post_json("/api/v1/alerts/alr-nope/acknowledge", "")
        .await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    let r = admin.get("/api/v1/alerts?state=burning").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // A monitor reads rules and alerts but cannot change them.
    let monitor = server.user_with_roles("watcher", &["monitor"]).await;
    assert_eq!(
        monitor.get("/api/v1/alerts/rules").await.status,
        StatusCode::OK
    );
    assert_eq!(monitor.get("/api/v1/alerts").await.status, StatusCode::OK);
    let r = monitor
        .post_json("/api/v1/alerts/rules", &rule("m", "cpu_usage", 0))
        .await;
    assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
    assert_eq!(
        server
            .get("/api/v1/alerts")
            .await
            .assert_error(StatusCode::UNAUTHORIZED),
        "UNAUTHORIZED"
    );
}

async fn begin(caller: &crate::support::Caller<'_>) -> String {
    let r = caller
        .post_json("/api/v1/transactions", r#"{"database": "default"}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["transaction_id"].as_str().expect("id").to_string()
}
