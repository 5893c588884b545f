//! The router serves exactly the operations of `generated/api-surface.txt`.

use std::path::Path;

use axum::http::{Method, StatusCode};

use crate::support::TestServer;

const NO_ROUTE: &str = "no route for this path";

fn surface() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/api-surface.txt"),
    )
    .expect("generated/api-surface.txt");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            assert_eq!(parts.len(), 4, "bad surface line `{l}`");
            (
                parts[0].into(),
                parts[1].into(),
                parts[2].into(),
                parts[3].into(),
            )
        })
        .collect()
}

/// A concrete path for a template: every `{param}` becomes a sample segment.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if seg.starts_with('{') { "engine" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn operations_catalog_matches_the_surface_file() {
    let mut from_catalog: Vec<_> = rustydb::api::OPERATIONS
        .iter()
        .map(|o| {
            let perm = match o.access {
                rustydb::api::Access::Public => "public",
                rustydb::api::Access::Authenticated => "authenticated",
                rustydb::api::Access::Requires(p) => p.as_str(),
            };
            (
                o.method.to_string(),
                o.path.to_string(),
                o.id.to_string(),
                perm.to_string(),
            )
        })
        .collect();
    from_catalog.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert_eq!(from_catalog, surface());
}

#[tokio::test]
async fn every_declared_operation_answers_its_method() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let ops = surface();
    assert!(!ops.is_empty());
    for (method, path, id, _) in ops {
        let method: Method = method.parse().expect("method");
        let body =
            matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| "{}".to_string());
        let ct = body.as_ref().map(|_| "application/json");
        let response = admin.send(method.clone(), &concrete(&path), ct, body).await;
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{id}: {method} {path}"
        );
        assert!(
            response.body["error"]["message"] != NO_ROUTE,
            "{id}: {method} {path} is not routed"
        );
        assert!(
            response.status.as_u16() < 500,
            "{id}: {method} {path} answered {}: {}",
            response.status,
            response.body
        );
    }
}

#[tokio::test]
async fn undeclared_paths_are_404_with_the_error_body() {
    let server = TestServer::new().await;
    for path in [
        "/api/v1/nope",
        "/api/v2/health",
        "/",
        "/api/v1/health/liveness/extra",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
        assert_eq!(response.body["error"]["message"], NO_ROUTE);
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_the_error_body() {
    let server = TestServer::new().await;
    let response = server
        .send(Method::DELETE, "/api/v1/health/liveness", None, None)
        .await;
    assert_eq!(
        response.assert_error(StatusCode::METHOD_NOT_ALLOWED),
        "METHOD_NOT_ALLOWED"
    );
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let server = TestServer::new().await;
    let response = server.get("/api/v1/health/liveness").await;
    let id = response.headers.get("x-request-id").expect("x-request-id");
    assert_eq!(id.len(), 36, "a UUID");
}

#[tokio::test]
async fn cors_preflight_is_answered_for_allowed_origins() {
    let server = TestServer::with_config(|c| {
        c.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let response = server
        .anon()
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send(Method::OPTIONS, "/api/v1/auth/login", None, None)
        .await;
    assert!(response.status.is_success(), "{}", response.status);
    assert_eq!(
        response.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let other = server
        .anon()
        .header("origin", "https://evil.example")
        .get("/api/v1/health/liveness")
        .await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
}
