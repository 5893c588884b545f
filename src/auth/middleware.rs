//! Authentication and the request rate limit, as one middleware in front of every route: it
//! resolves the client address and the principal, refuses callers over their limit with 429, and
//! adds the `X-RateLimit-*` headers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Auth;
use super::ratelimit::Verdict;
use crate::api::ApiError;
use crate::api::runtime::ClientIp;

pub async fn authenticate(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = auth.client_ip(peer, request.headers());
    if let Some(ip) = ip {
        request.extensions_mut().insert(ClientIp(ip));
    }
    let principal = auth.authenticate(request.headers()).await;
    let verdict = auth.check_request_rate(&principal, ip);
    let mut response = match verdict.retry_after_secs {
        Some(wait) => ApiError::rate_limited(wait).into_response(),
        None => {
            if let crate::api::runtime::Principal::User(identity) = &principal {
                auth.record_activity(identity, ip).await;
            }
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
    };
    rate_headers(response.headers_mut(), &verdict);
    response
}

fn rate_headers(headers: &mut HeaderMap, verdict: &Verdict) {
    let reset = chrono::Utc::now().timestamp() as u64 + verdict.reset_after_secs;
    headers.insert("x-ratelimit-limit", HeaderValue::from(verdict.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(verdict.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
}
