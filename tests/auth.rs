//! Authentication: login, tokens and the JWT attack suite, refresh rotation and reuse, logout,
//! API keys, and what deleting or disabling a user does to its credentials.

use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{ADMIN_PASSWORD, TestServer};

fn server_key(server: &TestServer) -> Vec<u8> {
    let text = std::fs::read_to_string(server.data_dir.path().join("jwt.key")).expect("jwt.key");
    hex::decode(text.trim()).expect("hex key")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims like the server's, for forging tokens.
fn claims(sub: &str, family: &str) -> Value {
    json!({
        "sub": sub, "username": "admin", "roles": ["admin"],
        "exp": now() + 600, "iat": now(), "nbf": now(),
        "jti": "forged", "fam": family, "typ": "access"
    })
}

fn sign(claims: &Value, key: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).expect("sign")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a JWT's payload without verifying it (to learn `sub` and `fam`).
fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn login_returns_the_seed_token_shape_and_validate_describes_the_caller() {
    let server = TestServer::new().await;
    let tokens = server.login_tokens("admin", ADMIN_PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let claims = payload(tokens["access_token"].as_str().expect("token"));
    for c in ["sub", "username", "roles", "exp", "iat", "jti"] {
        assert!(!claims[c].is_null(), "claim {c} missing: {claims}");
    }
    assert_eq!(claims["roles"], json!(["admin"]));
    let me = server
        .bearer(tokens["access_token"].as_str().expect("token"))
        .get("/api/v1/auth/validate")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["auth_method"], "jwt");
    assert!(me.body["permissions"].as_array().expect("perms").len() >= 7);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let server = TestServer::new().await;
    for (user, password) in [("admin", "wrong"), ("nobody", "whatever")] {
        let r = server
            .anon()
            .post_json(
                "/api/v1/auth/login",
                &json!({ "username": user, "password": password }).to_string(),
            )
            .await;
        assert_eq!(r.assert_error(StatusCode::UNAUTHORIZED), "UNAUTHORIZED");
        assert_eq!(r.body["error"]["message"], "invalid username or password");
        assert!(r.headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn protected_routes_need_credentials_and_say_so() {
    let server = TestServer::new().await;
    let r = server.get("/api/v1/system/info").await;
    assert_eq!(r.assert_error(StatusCode::UNAUTHORIZED), "UNAUTHORIZED");
    assert_eq!(
        r.headers.get("www-authenticate").expect("challenge"),
        "Bearer realm=\"rustydb\""
    );
    let r = server
        .anon()
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .get("/api/v1/system/info")
        .await;
    assert_eq!(r.assert_error(StatusCode::UNAUTHORIZED), "UNAUTHORIZED");
}

#[tokio::test]
async fn jwt_attack_suite_is_rejected_with_401() {
    let server = TestServer::new().await;
    let tokens = server.login_tokens("admin", ADMIN_PASSWORD).await;
    let good = tokens["access_token"].as_str().expect("token").to_string();
    let real = payload(&good);
    let (sub, fam) = (
        real["sub"].as_str().expect("sub").to_string(),
        real["fam"].as_str().expect("fam").to_string(),
    );
    let key = server_key(&server);
    // The forging helper is right: a token it signs with the real key is accepted.
    let control = sign(&claims(&sub, &fam), &key, Algorithm::HS256);
    let ok = server.bearer(&control).get("/api/v1/system/info").await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "control token refused: {}",
        ok.body
    );

    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(claims(&sub, &fam).to_string().as_bytes());
    let mut cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{header_none}.{body}.")),
        (
            "signed with another key",
            sign(
                &claims(&sub, &fam),
                b"another-key-another-key-another!!",
                Algorithm::HS256,
            ),
        ),
        (
            "HS512 with the real key (algorithm not pinned)",
            sign(&claims(&sub, &fam), &key, Algorithm::HS512),
        ),
    ];
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let sig = parts[2].clone();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    parts[2] = format!("{flipped}{}", &sig[1..]);
    cases.push(("wrong signature", parts.join(".")));
    let mut tampered = real.clone();
    tampered["roles"] = json!(["admin", "superuser"]);
    tampered["exp"] = json!(now() + 999_999);
    let good_parts: Vec<&str> = good.split('.').collect();
    cases.push((
        "tampered payload",
        format!(
            "{}.{}.{}",
            good_parts[0],
            b64(tampered.to_string().as_bytes()),
            good_parts[2]
        ),
    ));
    let mut expired = claims(&sub, &fam);
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    expired["nbf"] = json!(now() - 7200);
    cases.push(("expired", sign(&expired, &key, Algorithm::HS256)));
    let mut future = claims(&sub, &fam);
    future["nbf"] = json!(now() + 3600);
    cases.push(("not yet valid", sign(&future, &key, Algorithm::HS256)));
    for missing in ["jti", "fam", "sub", "exp", "typ"] {
        let mut c = claims(&sub, &fam);
        c.as_object_mut().expect("object").remove(missing);
        cases.push(("missing claim", sign(&c, &key, Algorithm::HS256)));
    }
    let mut unknown_family = claims(&sub, "no-such-login");
    unknown_family["jti"] = json!("x");
    cases.push((
        "unknown login family",
        sign(&unknown_family, &key, Algorithm::HS256),
    ));
    cases.push((
        "refresh token used as access token",
        tokens["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string(),
    ));
    cases.push(("garbage", "not.a.jwt".to_string()));

    for (what, token) in &cases {
        let r = server.bearer(token).get("/api/v1/system/info").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "UNAUTHORIZED", "{what}");
    }
    // The genuine token still works after all that.
    assert_eq!(
        server.bearer(&good).get("/api/v1/system/info").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_revokes_the_session_tokens() {
    let server = TestServer::new().await;
    let tokens = server.login_tokens("admin", ADMIN_PASSWORD).await;
    let access = tokens["access_token"].as_str().expect("token");
    let other = server.admin().await;
    let r = server
        .bearer(access)
        .post_json("/api/v1/auth/logout", "")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let after = server.bearer(access).get("/api/v1/auth/validate").await;
    assert_eq!(after.assert_error(StatusCode::UNAUTHORIZED), "UNAUTHORIZED");
    let refresh = server
        .anon()
        .post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": tokens["refresh_token"] }).to_string(),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.body);
    // Another login of the same user is a different session and keeps working.
    assert_eq!(
        other.get("/api/v1/auth/validate").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let server = TestServer::new().await;
    let first = server.login_tokens("admin", ADMIN_PASSWORD).await;
    let refresh = |token: Value| {
        let server = &server;
        async move {
            server
                .anon()
                .post_json(
                    "/api/v1/auth/refresh",
                    &json!({ "refresh_token": token }).to_string(),
                )
                .await
        }
    };
    let second = refresh(first["refresh_token"].clone()).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_ne!(second.body["access_token"], first["access_token"]);
    let second_access = second.body["access_token"].as_str().expect("token");
    assert_eq!(
        server
            .bearer(second_access)
            .get("/api/v1/auth/validate")
            .await
            .status,
        StatusCode::OK
    );
    // Replaying the first refresh token: refused, and every token of the login dies.
    let replay = refresh(first["refresh_token"].clone()).await;
    assert_eq!(
        replay.assert_error(StatusCode::UNAUTHORIZED),
        "UNAUTHORIZED"
    );
    for token in [
        second_access,
        first["access_token"].as_str().expect("token"),
    ] {
        let r = server.bearer(token).get("/api/v1/auth/validate").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let rotated = refresh(second.body["refresh_token"].clone()).await;
    assert_eq!(rotated.status, StatusCode::UNAUTHORIZED, "{}", rotated.body);
    let audit = server
        .admin()
        .await
        .get("/api/v1/admin/audit?action=auth.refresh_reuse")
        .await;
    assert_eq!(audit.body["total"], 1, "{}", audit.body);
}

#[tokio::test]
async fn deleted_and_disabled_users_lose_tokens_and_keys() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    for action in ["delete", "disable"] {
        let name = format!("temp-{action}");
        let user = server.user_with_roles(&name, &["developer"]).await;
        let key = user
            .post_json("/api/v1/auth/api-keys", r#"{"name": "k"}"#)
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
        let key = key.body["api_key"].as_str().expect("key").to_string();
        let me = user.get("/api/v1/auth/validate").await;
        let id = me.body["user_id"].as_str().expect("id").to_string();
        let r = match action {
            "delete" => admin.delete(&format!("/api/v1/admin/users/{id}")).await,
            _ => {
                admin
                    .put_json(
                        &format!("/api/v1/admin/users/{id}"),
                        r#"{"disabled": true}"#,
                    )
                    .await
            }
        };
        assert!(r.status.is_success(), "{action}: {}", r.body);
        let by_token = user.get("/api/v1/auth/validate").await;
        assert_eq!(by_token.status, StatusCode::UNAUTHORIZED, "{action} token");
        let by_key = server
            .anon()
            .header("x-api-key", key)
            .get("/api/v1/auth/validate")
            .await;
        assert_eq!(by_key.status, StatusCode::UNAUTHORIZED, "{action} key");
        let login = server
            .anon()
            .post_json(
                "/api/v1/auth/login",
                &json!({ "username": name, "password": "password-123" }).to_string(),
            )
            .await;
        assert_eq!(login.status, StatusCode::UNAUTHORIZED, "{action} login");
    }
}

#[tokio::test]
async fn api_keys_work_once_shown_and_stop_when_revoked_or_expired() {
    let server = TestServer::new().await;
    let admin = server.admin().await;
    let created = admin
        .post_json(
            "/api/v1/auth/api-keys",
            r#"{"name": "Production API Key", "expires_in_days": 90}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["api_key"]
        .as_str()
        .expect("api_key")
        .to_string();
    assert!(key.starts_with("rustydb_") && key.len() == 56, "{key}");
    assert!(created.body["expires_at"].is_string());
    let id = created.body["id"].as_str().expect("id").to_string();

    let by_key = server.anon().header("x-api-key", key.clone());
    let me = by_key.get("/api/v1/auth/validate").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["auth_method"], "api_key");
    assert_eq!(
        by_key.get("/api/v1/system/info").await.status,
        StatusCode::OK
    );

    let list = admin.get("/api/v1/auth/api-keys").await;
    assert_eq!(list.body["total"], 1);
    assert!(
        !list.body.to_string().contains(&key[8..]),
        "list leaks the key"
    );
    assert!(list.body["keys"][0]["api_key"].is_null());
    let one = admin.get(&format!("/api/v1/auth/api-keys/{id}")).await;
    assert_eq!(one.body["prefix"], &key[..14]);

    let wrong = format!(
        "{}{}",
        &key[..55],
        if key.ends_with('0') { "1" } else { "0" }
    );
    for bad in [wrong.as_str(), "rustydb_short", "not-a-key"] {
        let r = server
            .anon()
            .header("x-api-key", bad)
            .get("/api/v1/auth/validate")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    for days in ["0", "3651", "-5"] {
        let r = admin
            .post_json(
                "/api/v1/auth/api-keys",
                &format!(r#"{{"name": "x", "expires_in_days": {days}}}"#),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{days}: {}",
            r.body
        );
    }

    // Expired: move the expiry into the past in system.db.
    let second = admin
        .post_json(
            "/api/v1/auth/api-keys",
            r#"{"name": "short", "expires_in_days": 1}"#,
        )
        .await;
    let second_key = second.body["api_key"].as_str().expect("key").to_string();
    let db = rusqlite::Connection::open(server.data_dir.path().join("system.db")).expect("db");
    db.execute(
        "UPDATE api_keys SET expires_at = '2000-01-01T00:00:00Z' WHERE id = ?1",
        [second.body["id"].as_str().expect("id")],
    )
    .expect("update");
    let r = server
        .anon()
        .header("x-api-key", second_key)
        .get("/api/v1/auth/validate")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("expired")
    );

    let revoke = admin.delete(&format!("/api/v1/auth/api-keys/{id}")).await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.body);
    let r = by_key.get("/api/v1/auth/validate").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .expect("m")
            .contains("revoked")
    );
    // Another user's key id is not found for this caller.
    let other = server.user_with_roles("someone", &["analyst"]).await;
    let r = other.get(&format!("/api/v1/auth/api-keys/{id}")).await;
    assert_eq!(r.assert_error(StatusCode::NOT_FOUND), "NOT_FOUND");
}

#[tokio::test]
async fn the_11th_login_attempt_in_a_minute_from_one_ip_is_429() {
    let server = TestServer::with_config(|c| c.security.login_attempts_per_minute = 10).await;
    let attempt = |ip: &'static str, password: &'static str| {
        let server = &server;
        async move {
            server
                .anon()
                .peer(ip)
                .post_json(
                    "/api/v1/auth/login",
                    &json!({ "username": "admin", "password": password }).to_string(),
                )
                .await
        }
    };
    for i in 0..10 {
        let r = attempt("198.51.100.7", "wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let r = attempt("198.51.100.7", ADMIN_PASSWORD).await;
    assert_eq!(
        r.assert_error(StatusCode::TOO_MANY_REQUESTS),
        "RATE_LIMIT_EXCEEDED"
    );
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("s")
        .parse()
        .expect("n");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.body["error"]["retry_after"], retry);
    // Another address is unaffected.
    let other = attempt("203.0.113.9", ADMIN_PASSWORD).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let server = TestServer::with_config(|c| {
        c.security.login_attempts_per_minute = 2;
        c.security.trusted_proxies = vec!["10.0.0.1".parse().expect("ip")];
    })
    .await;
    let attempt = |peer: &'static str, forwarded: &'static str| {
        let server = &server;
        async move {
            server
                .anon()
                .peer(peer)
                .header("x-forwarded-for", forwarded)
                .post_json(
                    "/api/v1/auth/login",
                    r#"{"username": "admin", "password": "x"}"#,
                )
                .await
                .status
        }
    };
    // Through the trusted proxy, each forwarded client has its own budget.
    assert_eq!(
        attempt("10.0.0.1", "192.0.2.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("10.0.0.1", "192.0.2.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("10.0.0.1", "192.0.2.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt("10.0.0.1", "192.0.2.2").await,
        StatusCode::UNAUTHORIZED
    );
    // An untrusted peer cannot escape its limit by inventing addresses.
    assert_eq!(
        attempt("192.0.2.50", "1.1.1.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("192.0.2.50", "1.1.1.2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("192.0.2.50", "1.1.1.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn requests_per_user_are_limited_with_headers() {
    let server = TestServer::with_config(|c| c.security.requests_per_minute = 5).await;
    let admin = server.admin().await;
    let created = admin
        .post_json(
            "/api/v1/admin/users",
            r#"{"username": "second", "password": "password-123", "roles": ["analyst"]}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mut remaining = vec![
        created.headers["x-ratelimit-remaining"]
            .to_str()
            .expect("n")
            .to_string(),
    ];
    for _ in 0..4 {
        let r = admin.get("/api/v1/auth/validate").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-ratelimit-limit"], "5");
        remaining.push(
            r.headers["x-ratelimit-remaining"]
                .to_str()
                .expect("n")
                .to_string(),
        );
        let reset: i64 = r.headers["x-ratelimit-reset"]
            .to_str()
            .expect("s")
            .parse()
            .expect("n");
        assert!(reset >= now() && reset <= now() + 61, "{reset}");
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    let r = admin.get("/api/v1/auth/validate").await;
    assert_eq!(
        r.assert_error(StatusCode::TOO_MANY_REQUESTS),
        "RATE_LIMIT_EXCEEDED"
    );
    assert!(r.headers.contains_key("retry-after"));
    // Another user has its own budget.
    let second = server.login("second", "password-123").await;
    assert_eq!(
        second.get("/api/v1/auth/validate").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn no_secret_appears_in_config_audit_or_key_listings() {
    let server = TestServer::with_config(|c| {
        c.security.jwt_secret = Some(rustydb::config::Secret::new(
            "a-configured-jwt-secret-of-sufficient-length",
        ));
    })
    .await;
    let admin = server.admin().await;
    let _ = server
        .anon()
        .post_json(
            "/api/v1/auth/login",
            r#"{"username": "admin", "password": "typo-password"}"#,
        )
        .await;
    for path in [
        "/api/v1/system/config",
        "/api/v1/admin/audit",
        "/api/v1/admin/users",
    ] {
        let text = admin.get(path).await.body.to_string();
        for secret in [ADMIN_PASSWORD, "typo-password", "a-configured-jwt-secret"] {
            assert!(!text.contains(secret), "{path} shows a secret");
        }
        assert!(!text.contains("$argon2"), "{path} shows a password hash");
    }
    assert!(
        !server.data_dir.path().join("jwt.key").exists(),
        "a configured secret needs no key file"
    );
}
