//! The HTTP/1.1 WebSocket handshake (RFC 6455, section 4.2), answered here rather than by axum's
//! `WebSocketUpgrade`: a connection needs the upgraded socket itself, not a tungstenite stream,
//! to write its encoded frames without copying them (see the server's `ws::wire`).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The upgraded connection's socket.
pub type Socket = TokioIo<Upgraded>;

/// A checked WebSocket upgrade request.
pub struct WebSocketUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    /// The subprotocols the client offered, in its order.
    offered: Vec<String>,
}

impl WebSocketUpgrade {
    /// Checks that the request asks for a WebSocket upgrade; the error says what is missing.
    pub fn from_parts(parts: &mut Parts) -> Result<WebSocketUpgrade, &'static str> {
        if parts.method != Method::GET {
            return Err("the upgrade request must be a GET");
        }
        if !header_has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return Err("the Connection header must include `upgrade`");
        }
        if !header_has_token(&parts.headers, header::UPGRADE, "websocket") {
            return Err("the Upgrade header must be `websocket`");
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err("Sec-WebSocket-Version must be 13");
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or("the Sec-WebSocket-Key header is missing")?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or("this connection cannot be upgraded")?;
        let offered = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(WebSocketUpgrade {
            key,
            on_upgrade,
            offered,
        })
    }

    /// Answers 101 Switching Protocols, selecting `protocol` if the client offered it, and runs
    /// `connection` on the socket once the upgrade completes.
    pub fn on_upgrade<F, Fut>(self, protocol: &'static str, connection: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => connection(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if self.offered.iter().any(|p| p == protocol) {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        response
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive), as `Connection: keep-alive,
/// Upgrade` does.
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::get("/api/v1/ws");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).expect("request").into_parts().0
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn each_missing_header_is_named() {
        for (i, expected) in [
            "Connection header",
            "Upgrade header",
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Key",
        ]
        .iter()
        .enumerate()
        {
            let headers: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, h)| *h)
                .collect();
            let err = WebSocketUpgrade::from_parts(&mut parts(&headers)).err();
            assert!(err.is_some_and(|e| e.contains(expected)), "{err:?}");
        }
    }

    #[test]
    fn a_request_hyper_cannot_upgrade_is_refused() {
        // Built by hand, the request has no upgrade handle (hyper adds one to served requests).
        let err = WebSocketUpgrade::from_parts(&mut parts(&GOOD)).err();
        assert_eq!(err, Some("this connection cannot be upgraded"));
    }

    #[test]
    fn tokens_are_matched_whole() {
        let headers: HeaderMap = [(header::CONNECTION, HeaderValue::from_static("upgraded"))]
            .into_iter()
            .collect();
        assert!(!header_has_token(&headers, header::CONNECTION, "upgrade"));
    }
}
