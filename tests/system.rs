//! System routes: measured figures, configuration, the log filter and bad input to a body route.

use axum::http::{Method, StatusCode};

use crate::support::TestServer;

#[tokio::test]
async fn info_version_and_host_are_read_from_the_running_process() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let info = admin.get("/api/v1/system/info").await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["pid"], std::process::id());
    assert_eq!(info.body["os"], std::env::consts::OS);
    let version = admin.get("/api/v1/system/version").await;
    assert_eq!(version.body["sqlite_version"], rusqlite::version());
    assert_eq!(version.body["version"], env!("CARGO_PKG_VERSION"));
    let host = admin.get("/api/v1/system/host").await;
    assert_eq!(host.status, StatusCode::OK, "{}", host.body);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
    assert!(host.body["cpu_count"].as_u64().expect("cpu_count") >= cpus.min(1));
    let total = host.body["total_memory_bytes"].as_u64().expect("total");
    assert!(total > 0);
    assert!(host.body["used_memory_bytes"].as_u64().expect("used") <= total);
}

#[tokio::test]
async fn runtime_stats_count_requests_by_status_class() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let before = admin.get("/api/v1/system/stats").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    admin.get("/api/v1/health/liveness").await;
    admin.get("/api/v1/health/liveness").await;
    admin.get("/api/v1/does-not-exist").await;
    let after = admin.get("/api/v1/system/stats").await;
    let delta = |field: &str, class: Option<&str>| {
        let pick = |v: &serde_json::Value| match class {
            Some(c) => v["responses"][c].as_u64().expect("count"),
            None => v[field].as_u64().expect("count"),
        };
        pick(&after.body) - pick(&before.body)
    };
    // Three requests plus the second stats request itself, which is still in flight.
    assert_eq!(delta("requests_total", None), 4);
    assert_eq!(after.body["requests_in_flight"], 1);
    // The first stats request and two probes completed with 2xx; the unknown path with 4xx.
    assert_eq!(delta("", Some("success")), 3);
    assert_eq!(delta("", Some("client_error")), 1);
    assert!(after.body["process_memory_bytes"].as_u64().expect("rss") > 0);
}

#[tokio::test]
async fn config_reports_the_effective_settings() {
    let server = TestServer::with_config(|c| c.request_timeout_secs = 7).await;
    let admin = server.admin().await;
    let config = admin.get("/api/v1/system/config").await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.body["request_timeout_secs"], 7);
    assert_eq!(
        config.body["data_dir"],
        server.data_dir.path().display().to_string()
    );
}

#[tokio::test]
async fn log_filter_can_be_read_and_replaced() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let before = admin.get("/api/v1/system/log-filter").await;
    assert_eq!(before.body["filter"], "info");
    assert!(before.body["updated_at"].is_null());
    let set = admin
        .put_json(
            "/api/v1/system/log-filter",
            r#"{"filter": "warn,rustydb=debug"}"#,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    // The filter comes back normalized, as tracing prints it.
    assert_eq!(set.body["filter"], "rustydb=debug,warn");
    let after = admin.get("/api/v1/system/log-filter").await;
    assert_eq!(after.body["filter"], "rustydb=debug,warn");
    assert!(after.body["updated_at"].is_string());
}

#[tokio::test]
async fn a_filter_that_does_not_parse_is_422_and_the_old_one_stays() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin
        .put_json("/api/v1/system/log-filter", r#"{"filter": "rustydb=loud"}"#)
        .await;
    assert_eq!(
        r.assert_error(StatusCode::UNPROCESSABLE_ENTITY),
        "INVALID_LOG_FILTER"
    );
    let after = admin.get("/api/v1/system/log-filter").await;
    assert_eq!(after.body["filter"], "info");
}

#[tokio::test]
async fn bad_bodies_get_the_right_status_and_the_error_body() {
    let server = TestServer::with_config(|c| c.body_limit_bytes = 1024).await;
    let admin = server.admin().await;
    let path = "/api/v1/system/log-filter";
    let cases: &[(&str, Option<&str>, &str, StatusCode, &str)] = &[
        (
            "bad JSON",
            Some("application/json"),
            "{\"filter\": ",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "not JSON at all",
            Some("application/json"),
            "filter=info",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "empty body",
            Some("application/json"),
            "",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "missing field",
            Some("application/json"),
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
        (
            "wrong type",
            Some("application/json"),
            "{\"filter\": 42}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
        (
            "array body",
            Some("application/json"),
            "[]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
        (
            "below minLength",
            Some("application/json"),
            "{\"filter\": \"\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
        ),
        (
            "no content type",
            None,
            "{\"filter\": \"info\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "text content type",
            Some("text/plain"),
            "{\"filter\": \"info\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (what, ct, body, status, code) in cases {
        let r = admin
            .send(Method::PUT, path, *ct, Some(body.to_string()))
            .await;
        assert_eq!(r.assert_error(*status), *code, "{what}: {}", r.body);
    }
    let huge = format!("{{\"filter\": \"{}\"}}", "a".repeat(4096));
    let r = admin.put_json(path, &huge).await;
    assert_eq!(
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE),
        "PAYLOAD_TOO_LARGE"
    );
    // None of it changed the filter.
    assert_eq!(admin.get(path).await.body["filter"], "info");
}

#[tokio::test]
async fn charset_parameter_on_json_is_accepted() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin
        .send(
            Method::PUT,
            "/api/v1/system/log-filter",
            Some("application/json; charset=utf-8"),
            Some(r#"{"filter": "info"}"#.into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
