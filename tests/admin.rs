//! Users, roles, the permission catalog and the audit log.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn users_can_be_created_listed_updated_and_deleted() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let created = admin
        .post_json(
            "/api/v1/admin/users",
            r#"{"username": "alice", "password": "correct-horse", "roles": ["developer"]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["roles"], json!(["developer"]));
    assert!(created.body.get("password").is_none());
    let id = created.body["id"].as_str().expect("id").to_string();

    let dup = admin
        .post_json(
            "/api/v1/admin/users",
            r#"{"username": "ALICE", "password": "correct-horse"}"#,
        )
        .await;
    assert_eq!(dup.assert_error(StatusCode::CONFLICT), "CONFLICT");

    let list = admin.get("/api/v1/admin/users?limit=1&offset=1").await;
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["users"].as_array().expect("users").len(), 1);

    let updated = admin
        .put_json(
            &format!("/api/v1/admin/users/{id}/roles"),
            r#"{"roles": ["analyst", "monitor"]}"#,
        )
        .await;
    assert_eq!(updated.body["roles"], json!(["analyst", "monitor"]));
    let alice = server.login("alice", "correct-horse").await;
    assert_eq!(
        alice.get("/api/v1/system/stats").await.status,
        StatusCode::OK
    );

    // A password change revokes existing tokens.
    let r = admin
        .put_json(
            &format!("/api/v1/admin/users/{id}"),
            r#"{"password": "new-password-1"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        alice.get("/api/v1/auth/validate").await.status,
        StatusCode::UNAUTHORIZED
    );
    server.login("alice", "new-password-1").await;

    assert_eq!(
        admin
            .delete(&format!("/api/v1/admin/users/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = admin.get(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(gone.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
}

#[tokio::test]
async fn bad_user_input_is_refused() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let cases = [
        (
            r#"{"username": "../etc", "password": "long-enough"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"username": "bob", "password": "short"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"username": "bob", "password": "long-enough", "roles": ["wizard"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"username": "bob"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"username": 7, "password": "long-enough"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let r = admin.post_json("/api/v1/admin/users", body).await;
        r.assert_error(status);
    }
    let list = admin.get("/api/v1/admin/users").await;
    assert_eq!(list.body["total"], 1, "nothing was created");
    let r = admin.get("/api/v1/admin/users?limit=0").await;
    r.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let me = admin.get("/api/v1/auth/validate").await;
    let id = me.body["user_id"].as_str().expect("id").to_string();
    let r = admin.delete(&format!("/api/v1/admin/users/{id}")).await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");
    let r = admin
        .put_json(
            &format!("/api/v1/admin/users/{id}"),
            r#"{"disabled": true}"#,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");
    let r = admin
        .put_json(
            &format!("/api/v1/admin/users/{id}/roles"),
            r#"{"roles": ["monitor"]}"#,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");
    assert_eq!(
        admin.get("/api/v1/auth/validate").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_roles_grant_their_permissions_and_built_ins_are_fixed() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let roles = admin.get("/api/v1/admin/roles").await;
    let names: Vec<&str> = roles.body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["admin", "analyst", "developer", "monitor"]);
    let monitor = admin.get("/api/v1/admin/roles/monitor").await;
    assert_eq!(
        monitor.body["permissions"],
        json!(["cluster:read", "system:read"])
    );
    assert_eq!(monitor.body["built_in"], true);

    let r = admin
        .put_json(
            "/api/v1/admin/roles/monitor",
            r#"{"permissions": ["system:admin"]}"#,
        )
        .await;
    assert_eq!(r.assert_error(StatusCode::CONFLICT), "CONFLICT");
    assert_eq!(
        admin.delete("/api/v1/admin/roles/admin").await.status,
        StatusCode::CONFLICT
    );

    let created = admin
        .post_json(
            "/api/v1/admin/roles",
            r#"{"name": "ops", "description": "Operators", "permissions": ["system:read"]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let bad = admin
        .post_json(
            "/api/v1/admin/roles",
            r#"{"name": "x", "permissions": ["root:all"]}"#,
        )
        .await;
    bad.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let ops = server.user_with_roles("operator", &["ops"]).await;
    assert_eq!(ops.get("/api/v1/system/info").await.status, StatusCode::OK);
    assert_eq!(
        ops.get("/api/v1/system/config").await.status,
        StatusCode::FORBIDDEN
    );

    // Granting a permission to the role applies to tokens already issued.
    let r = admin
        .put_json(
            "/api/v1/admin/roles/ops",
            r#"{"permissions": ["system:read", "system:admin"]}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        ops.get("/api/v1/system/config").await.status,
        StatusCode::OK
    );

    assert_eq!(
        admin.delete("/api/v1/admin/roles/ops").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ops.get("/api/v1/system/info").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn permission_catalog_lists_the_schema_permissions() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let r = admin.get("/api/v1/admin/permissions").await;
    let names: Vec<&str> = r.body["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    let expected: Vec<&str> = rustydb::api::Permission::ALL
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn audit_log_records_logins_and_changes_with_filters_and_paging() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let _ = server
        .anon()
        .post_json(
            "/api/v1/auth/login",
            r#"{"username": "admin", "password": "nope"}"#,
        )
        .await;
    admin
        .post_json(
            "/api/v1/admin/users",
            r#"{"username": "carol", "password": "password-123"}"#,
        )
        .await;
    let all = admin.get("/api/v1/admin/audit").await;
    let actions: Vec<&str> = all.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["user.create", "auth.login", "auth.login"],
        "newest first"
    );
    let failed = admin
        .get("/api/v1/admin/audit?action=auth.login&outcome=failure")
        .await;
    assert_eq!(failed.body["total"], 1);
    assert_eq!(
        failed.body["entries"][0]["details"]["reason"],
        "wrong password"
    );
    let page = admin.get("/api/v1/admin/audit?limit=1&offset=1").await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["entries"][0]["action"], "auth.login");
    let bad = admin.get("/api/v1/admin/audit?outcome=maybe").await;
    bad.assert_error(StatusCode::BAD_REQUEST);
}
