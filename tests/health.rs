//! Health probes: real checks, real failures.

use axum::http::StatusCode;

use crate::support::TestServer;

#[tokio::test]
async fn liveness_and_startup_answer() {
    let server = TestServer::new().await;
    let live = server.get("/api/v1/health/liveness").await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["status"], "alive");
    let startup = server.get("/api/v1/health/startup").await;
    assert_eq!(startup.status, StatusCode::OK);
    assert_eq!(startup.body["status"], "started");
    assert!(startup.body["startup_duration_ms"].as_f64().expect("ms") >= 0.0);
}

#[tokio::test]
async fn readiness_checks_engine_and_data_directory() {
    let server = TestServer::new().await;
    let ready = server.get("/api/v1/health/readiness").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let names: Vec<&str> = ready.body["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["engine", "data_directory"]);
    for c in ready.body["components"].as_array().expect("components") {
        assert_eq!(c["status"], "healthy");
        assert!(c["response_time_ms"].as_f64().expect("measured") > 0.0);
    }
}

#[tokio::test]
async fn readiness_is_503_with_the_failing_component_when_the_data_dir_is_gone() {
    let server = TestServer::new().await;
    std::fs::remove_dir_all(server.data_dir.path()).expect("remove data dir");
    let ready = server.get("/api/v1/health/readiness").await;
    assert_eq!(
        ready.assert_error(StatusCode::SERVICE_UNAVAILABLE),
        "SERVICE_UNAVAILABLE"
    );
    let failing = ready.body["error"]["details"]["components"]
        .as_array()
        .expect("details.components");
    assert_eq!(failing.len(), 1, "{}", ready.body);
    assert_eq!(failing[0]["name"], "data_directory");
    assert_eq!(failing[0]["status"], "unhealthy");
    assert!(
        failing[0]["message"]
            .as_str()
            .expect("reason")
            .contains("cannot write")
    );

    let summary = server.get("/api/v1/health").await;
    assert_eq!(summary.status, StatusCode::OK);
    assert_eq!(summary.body["status"], "unhealthy");
    let admin = server.admin().await;
    let detailed = admin.get("/api/v1/health/detailed").await;
    assert_eq!(detailed.body["status"], "unhealthy");
    // Liveness checks nothing but the process.
    assert_eq!(
        server.get("/api/v1/health/liveness").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn detailed_health_validates_its_timeout() {
    let server = TestServer::new().await;
    let server = server.admin().await;
    let ok = server.get("/api/v1/health/detailed?timeout_ms=500").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        ok.body["components"].as_array().expect("components").len(),
        2
    );
    for bad in ["timeout_ms=5", "timeout_ms=10001", "timeout_ms=-1"] {
        let r = server.get(&format!("/api/v1/health/detailed?{bad}")).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "INVALID_PARAMETER",
            "{bad}"
        );
        assert_eq!(r.body["error"]["details"]["parameter"], "timeout_ms");
    }
    for bad in ["timeout_ms=abc", "timeout_ms=1.5", "timeout_ms="] {
        let r = server.get(&format!("/api/v1/health/detailed?{bad}")).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "INVALID_QUERY_PARAMETER",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn one_component_by_name_or_404() {
    let server = TestServer::new().await;
    let server = server.admin().await;
    let engine = server.get("/api/v1/health/components/engine").await;
    assert_eq!(engine.status, StatusCode::OK);
    assert_eq!(engine.body["name"], "engine");
    assert_eq!(engine.body["status"], "healthy");
    let missing = server.get("/api/v1/health/components/flux-capacitor").await;
    assert_eq!(missing.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("engine, data_directory")
    );
}
