//! The crate's one error type. A non-2xx answer becomes [`Error::Api`] with the server's error body
//! (`{"error": {"code", "message", "details"?, "retry_after"?}}`), so callers match on the status.
//! The WebSocket clients use the same variants: a refused login is a 401, a refused permission a
//! 403, whichever transport carried it.

use crate::types::ErrorBody;

/// A refused request: the HTTP status and the server's error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// e.g. `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND` (empty when the body was not the standard one).
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
    pub fn is_forbidden(&self) -> bool {
        self.status == 403
    }
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
    pub fn is_conflict(&self) -> bool {
        self.status == 409
    }

    fn from_body(status: u16, body: ErrorBody) -> Self {
        Self {
            status,
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
            retry_after: body.error.retry_after,
        }
    }

    /// Reads a raw response's standard error body (used where the generated client is bypassed).
    pub(crate) async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        match response.json::<ErrorBody>().await {
            Ok(body) => Self::from_body(status, body),
            Err(e) => Self::bare(status, format!("unreadable error body: {e}")),
        }
    }

    fn bare(status: u16, message: String) -> Self {
        Self {
            status,
            code: String::new(),
            message,
            details: None,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status (boxed: it is the large variant).
    #[error("server refused the request: {0}")]
    Api(Box<ApiError>),
    /// The request never got a usable answer (connection, timeout, undecodable body).
    #[error("transport: {0}")]
    Transport(String),
    /// A value the server's schema would refuse, caught before sending.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A call that needs a login was made without one.
    #[error("not logged in")]
    NotLoggedIn,
    /// The WebSocket failed or the server sent something outside the protocol.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The server refused a `subscribe` (protocol error code such as `FORBIDDEN_TOPIC`).
    #[error("subscription refused: {code}: {message}")]
    Subscription { code: String, message: String },
    /// A GraphQL operation failed (`errors` of an `error` or `next` message); a refusal for the
    /// field's permission is [`Error::Api`] with status 403 instead.
    #[error("GraphQL: {message}")]
    GraphQl {
        /// `extensions.code` of the first error, when there is one.
        code: Option<String>,
        message: String,
        /// The whole `errors` list as sent.
        errors: serde_json::Value,
    },
    /// The stream was closed for good (by `close`, or by an administrator with 4009).
    #[error("event stream closed")]
    Closed,
}

impl Error {
    /// The HTTP status of a refused request.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }
}

impl From<progenitor_client::Error<ErrorBody>> for Error {
    fn from(e: progenitor_client::Error<ErrorBody>) -> Self {
        use progenitor_client::Error as P;
        match e {
            P::ErrorResponse(r) => {
                let status = r.status().as_u16();
                Error::Api(Box::new(ApiError::from_body(status, r.into_inner())))
            }
            P::UnexpectedResponse(r) => Error::Api(Box::new(ApiError::bare(
                r.status().as_u16(),
                "status not declared by the API".into(),
            ))),
            P::InvalidRequest(m) => Error::InvalidInput(m),
            // Our hooks never fail a request; a custom error would be a message only.
            P::Custom(m) => Error::Transport(m),
            other => Error::Transport(other.to_string()),
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::Transport(e.to_string())
    }
}
