//! Middleware written here because it must answer with the seed's error body.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use std::sync::Arc;

use crate::process::Process;

/// Answers 408 with the error body when a request takes longer than the configured timeout.
pub(super) async fn timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            format!("request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Counts requests, in-flight requests and responses by status class.
pub(super) async fn count(
    State(process): State<Arc<Process>>,
    request: Request,
    next: Next,
) -> Response {
    let stats = &process.stats;
    stats.total.fetch_add(1, Ordering::Relaxed);
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    // Decrement even if the request future is dropped (client gone, shutdown).
    let _guard = InFlight(&stats.in_flight);
    let response = next.run(request).await;
    stats.record_status(response.status().as_u16());
    response
}

struct InFlight<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A panic in a handler becomes a 500 with the error body; the panic message is logged only.
pub(super) fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}

/// The tracing span of a request, carrying its request id.
pub(super) fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
}
