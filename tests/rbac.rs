//! The permission matrix, generated from the schema's operation catalog: for every declared
//! operation and every built-in role (and a user with no role), a caller lacking the permission
//! gets 403 and one holding it does not; public operations work anonymously.

use axum::http::{Method, StatusCode};
use rustydb::api::{Access, OPERATIONS, ROLES};

use crate::support::{Caller, TestServer};

/// A concrete path and body for an operation; ids that exist nowhere, so calls change nothing.
fn request_for(path: &str, method: &str) -> (Method, String, Option<String>) {
    let concrete = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "matrix-probe"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let method: Method = method.parse().expect("method");
    let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| "{}".into());
    (method, concrete, body)
}

async fn call(caller: &Caller<'_>, op: &rustydb::api::OperationMeta) -> StatusCode {
    let (method, path, body) = request_for(op.path, op.method);
    let ct = body.as_ref().map(|_| "application/json");
    caller.send(method, &path, ct, body).await.status
}

/// Logout ends the caller's session, so it runs last.
fn ordered_operations() -> Vec<&'static rustydb::api::OperationMeta> {
    let mut ops: Vec<_> = OPERATIONS.iter().collect();
    ops.sort_by_key(|o| o.id == "logout");
    ops
}

#[tokio::test]
async fn every_operation_enforces_its_permission_for_every_role() {
    let server = TestServer::new().await;
    let mut callers = Vec::new();
    for role in ROLES {
        callers.push((
            role.name,
            role.permissions.to_vec(),
            server
                .user_with_roles(&format!("matrix-{}", role.name), &[role.name])
                .await,
        ));
    }
    callers.push((
        "no role",
        Vec::new(),
        server.user_with_roles("matrix-none", &[]).await,
    ));

    let mut checked = 0;
    for (role, permissions, caller) in &callers {
        for op in ordered_operations() {
            let status = call(caller, op).await;
            match op.access {
                Access::Requires(p) if !permissions.contains(&p) => {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{role} -> {} needs {}",
                        op.id,
                        p.as_str()
                    );
                }
                _ => {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{role} -> {} answered {status}",
                        op.id
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, OPERATIONS.len() * (ROLES.len() + 1));
}

#[tokio::test]
async fn anonymous_callers_reach_public_operations_only() {
    let server = TestServer::new().await;
    let anon = server.anon();
    for op in OPERATIONS {
        let status = call(&anon, op).await;
        if op.access == Access::Public {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{} is public", op.id);
            assert_ne!(status, StatusCode::FORBIDDEN, "{} is public", op.id);
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} needs credentials",
                op.id
            );
        }
    }
}

#[tokio::test]
async fn denials_are_audited() {
    let server = TestServer::new().await;
    let analyst = server.user_with_roles("auditee", &["analyst"]).await;
    let r = analyst.get("/api/v1/system/config").await;
    assert_eq!(r.assert_error(StatusCode::FORBIDDEN), "FORBIDDEN");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("system:admin")
    );
    let audit = server
        .admin()
        .await
        .get("/api/v1/admin/audit?action=access.denied")
        .await;
    assert_eq!(audit.body["total"], 1, "{}", audit.body);
    let entry = &audit.body["entries"][0];
    assert_eq!(entry["actor"], "auditee");
    assert_eq!(entry["target"], "get_config");
    assert_eq!(entry["outcome"], "denied");
    assert_eq!(entry["details"]["permission"], "system:admin");
}
