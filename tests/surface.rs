//! The router serves exactly the operations of `generated/api-surface.txt`.

use std::path::Path;

use axum::http::{Method, StatusCode};

use crate::support::TestServer;

const NO_ROUTE: &str = "no route for this path";

/// The lines of one section of `generated/api-surface.txt` (the one whose `# ` column header
/// starts with `columns`), each split on spaces into `width` fields (any number for 0).
fn section(columns: &str, width: usize) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/api-surface.txt"),
    )
    .expect("generated/api-surface.txt");
    let mut inside = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            inside = header.starts_with(columns);
            continue;
        }
        if inside {
            let parts: Vec<String> = line.split(' ').map(String::from).collect();
            assert!(
                width == 0 || parts.len() == width,
                "bad surface line `{line}`"
            );
            lines.push(parts);
        }
    }
    assert!(
        !lines.is_empty(),
        "no `{columns}` section in api-surface.txt"
    );
    lines
}

fn surface() -> Vec<(String, String, String, String)> {
    section("METHOD PATH", 4)
        .into_iter()
        .map(|p| (p[0].clone(), p[1].clone(), p[2].clone(), p[3].clone()))
        .collect()
}

fn label(access: &rustydb::api::Access) -> String {
    match access {
        rustydb::api::Access::Public => "public".into(),
        rustydb::api::Access::Authenticated => "authenticated".into(),
        rustydb::api::Access::Requires(p) => p.as_str().into(),
    }
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
            (
                o.method.to_string(),
                o.path.to_string(),
                o.id.to_string(),
                label(&o.access),
            )
        })
        .collect();
    from_catalog.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert_eq!(from_catalog, surface());
}

#[test]
fn websocket_catalog_matches_the_surface_file() {
    let mut from_catalog: Vec<Vec<String>> = rustydb::api::WEBSOCKETS
        .iter()
        .map(|w| {
            let topics = if w.topics.is_empty() {
                "-".to_string()
            } else {
                w.topics.join(",")
            };
            vec![
                "WS".into(),
                w.operation.path.into(),
                w.operation.id.into(),
                topics,
                label(&w.operation.access),
            ]
        })
        .collect();
    from_catalog.sort();
    assert_eq!(from_catalog, section("WS PATH", 5));
}

/// The client messages the protocol decodes are the ones the surface file lists.
#[test]
fn client_message_catalog_matches_the_surface_file() {
    use rustydb::api::websocket_endpoints::CLIENT_MESSAGES;
    let listed = section("WS-CLIENT", 4);
    let names: Vec<&str> = listed.iter().map(|l| l[1].as_str()).collect();
    let declared: Vec<&str> = CLIENT_MESSAGES.iter().map(|m| m.message_type).collect();
    assert_eq!(names, declared);
    for (line, meta) in listed.iter().zip(CLIENT_MESSAGES) {
        let endpoints = if meta.queries { "queries" } else { "all" };
        assert_eq!(line[3], endpoints, "{}", meta.message_type);
    }
    assert_eq!(
        names,
        ["subscribe", "unsubscribe", "ping", "query", "cancel"],
        "the seed's client messages"
    );
}

/// Root, name, topic (for a topic-fed subscription) and permission of every GraphQL field: the
/// served schema's catalog and the surface file list the same ones.
#[test]
fn graphql_catalog_matches_the_surface_file() {
    let mut from_catalog: Vec<(String, String, Option<String>, String)> =
        rustydb::api::graphql::FIELDS
            .iter()
            .map(|f| {
                let root = if f.subscription {
                    "SUBSCRIPTION"
                } else if f.mutation {
                    "MUTATION"
                } else {
                    "QUERY"
                };
                (
                    root.into(),
                    f.name.into(),
                    f.topic.map(String::from),
                    label(&f.access),
                )
            })
            .collect();
    from_catalog.sort();
    let mut from_file: Vec<(String, String, Option<String>, String)> = section("GRAPHQL", 0)
        .into_iter()
        .map(|p| {
            let topic = (p[0] == "SUBSCRIPTION")
                .then(|| p[3].strip_prefix("topic:").map(String::from))
                .flatten();
            (p[0].clone(), p[1].clone(), topic, p[p.len() - 1].clone())
        })
        .collect();
    from_file.sort();
    assert_eq!(from_catalog, from_file);
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
