//! A server built in-process over a temporary data directory, driven without a socket.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use rustydb::config::Config;
use rustydb::server::Server;
use rustydb::telemetry::LogControl;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub app: Router,
    pub data_dir: tempfile::TempDir,
    /// Held so the shutdown channel stays open while the app is in use.
    _server: Server,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestServer {
    pub fn new() -> TestServer {
        TestServer::with_config(|_| {})
    }

    pub fn with_config(edit: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(data_dir.path());
        edit(&mut config);
        let server = Server::start(config, LogControl::detached(), Instant::now()).expect("start");
        TestServer {
            app: server.app(),
            data_dir,
            _server: server,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn put_json(&self, path: &str, body: &str) -> TestResponse {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            Some(body.to_string()),
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
        let request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
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
