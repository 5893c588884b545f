//! A server built in-process over a temporary data directory, driven without a socket.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use rustydb::config::{Config, Secret};
use rustydb::server::Server;
use rustydb::telemetry::LogControl;
use serde_json::{Value, json};
use tower::ServiceExt;

pub mod graphql;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestServer {
    pub app: Router,
    pub data_dir: tempfile::TempDir,
    /// Held so the shutdown channel stays open while the app is in use.
    _server: Server,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Requests made with one set of credentials (or none).
#[derive(Clone)]
pub struct Caller<'a> {
    server: &'a TestServer,
    headers: Vec<(&'static str, String)>,
    from: Option<IpAddr>,
}

impl TestServer {
    pub async fn new() -> TestServer {
        TestServer::with_config(|_| {}).await
    }

    pub async fn with_config(edit: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(data_dir.path());
        config.security.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        // Tests log in often from one address; the login limit has a test of its own.
        config.security.login_attempts_per_minute = 10_000;
        edit(&mut config);
        let server = Server::start(config, LogControl::detached(), Instant::now())
            .await
            .expect("start");
        TestServer {
            app: server.app(),
            data_dir,
            _server: server,
        }
    }

    /// The running server's event bus.
    pub fn bus(&self) -> &std::sync::Arc<rustydb::events::Bus> {
        self._server.bus()
    }

    /// Stops this server and starts a new one on the same data directory.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            app,
            data_dir,
            _server,
        } = self;
        drop(app);
        drop(_server);
        let mut config = Config::for_data_dir(data_dir.path());
        config.security.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.security.login_attempts_per_minute = 10_000;
        let server = Server::start(config, LogControl::detached(), Instant::now())
            .await
            .expect("restart");
        TestServer {
            app: server.app(),
            data_dir,
            _server: server,
        }
    }

    /// A caller without credentials.
    pub fn anon(&self) -> Caller<'_> {
        Caller {
            server: self,
            headers: Vec::new(),
            from: None,
        }
    }

    /// Logs in and returns the token pair's JSON.
    pub async fn login_tokens(&self, username: &str, password: &str) -> Value {
        let r = self
            .anon()
            .post_json(
                "/api/v1/auth/login",
                &json!({ "username": username, "password": password }).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {username}: {}", r.body);
        r.body
    }

    pub async fn login(&self, username: &str, password: &str) -> Caller<'_> {
        let tokens = self.login_tokens(username, password).await;
        self.bearer(tokens["access_token"].as_str().expect("access_token"))
    }

    pub async fn admin(&self) -> Caller<'_> {
        self.login("admin", ADMIN_PASSWORD).await
    }

    pub fn bearer(&self, token: &str) -> Caller<'_> {
        self.anon()
            .header("authorization", format!("Bearer {token}"))
    }

    /// Creates a user holding `roles` (as admin) and logs it in.
    pub async fn user_with_roles(&self, username: &str, roles: &[&str]) -> Caller<'_> {
        let admin = self.admin().await;
        let r = admin
            .post_json(
                "/api/v1/admin/users",
                &json!({ "username": username, "password": "password-123", "roles": roles })
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        self.login(username, "password-123").await
    }

    // Anonymous shorthands.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.anon().get(path).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> TestResponse {
        self.anon().send(method, path, content_type, body).await
    }
}

impl<'a> Caller<'a> {
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Caller<'a> {
        self.headers.push((name, value.into()));
        self
    }

    /// Makes the requests come from this client address (the socket peer).
    pub fn peer(mut self, ip: &str) -> Caller<'a> {
        self.from = Some(ip.parse().expect("ip"));
        self
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(Method::DELETE, path, None, None).await
    }

    pub async fn post_json(&self, path: &str, body: &str) -> TestResponse {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            Some(body.into()),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &str) -> TestResponse {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            Some(body.into()),
        )
        .await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let mut request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        if let Some(ip) = self.from {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
        }
        let response = self
            .server
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// Waits (up to 20 s, so a loaded machine does not make it flaky) for the next event on `topic`
/// that satisfies `pick`, and returns its data.
pub async fn next_event(
    rx: &mut rustydb::events::Listener,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(event) if pick(&event.data) => return event.data.clone(),
                Some(_) => {}
                None => panic!("bus closed"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), wait)
        .await
        .expect("no matching event within 20 s")
}

impl TestResponse {
    /// Asserts the status and the seed's error body, and returns the error code.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "body: {}", self.body);
        let error = &self.body["error"];
        assert!(
            error["message"].is_string(),
            "no error.message: {}",
            self.body
        );
        error["code"].as_str().expect("error.code")
    }
}
