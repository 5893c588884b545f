//! The server crate's error type for startup and subsystems; API failures use `api::ApiError`.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("engine: {0}")]
    Engine(#[from] rusqlite::Error),
    #[error("engine task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A named thing does not exist (answered 404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (answered 409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but not acceptable (answered 422).
    #[error("{0}")]
    Invalid(String),
    /// A row key in the path that does not fit the table's primary key (answered 400).
    #[error("{0}")]
    BadRowKey(String),
    /// SQLite refused a statement: bad SQL, constraint, unknown table... (answered 400).
    #[error("{0}")]
    Sql(String),
    /// The authorizer refused part of a statement for the caller's permissions (answered 403).
    #[error("{0}")]
    SqlDenied(String),
    /// A statement ran past its timeout and was interrupted (answered 408).
    #[error("{0}")]
    Timeout(String),
    /// No connection of the database's pool became free in time (answered 503).
    #[error("{0}")]
    PoolExhausted(String),
    /// A lock request was not granted within its wait (answered 409 LOCK_TIMEOUT).
    #[error("{0}")]
    LockTimeout(String),
    /// A lock request was the victim of a deadlock (answered 409 DEADLOCK, with the cycle).
    #[error("{message}")]
    Deadlock {
        message: String,
        deadlock: Box<crate::api::types::Deadlock>,
    },
}

impl From<Error> for crate::api::ApiError {
    fn from(e: Error) -> Self {
        use axum::http::StatusCode;
        match e {
            Error::NotFound(m) => crate::api::ApiError::not_found(m),
            Error::Conflict(m) => crate::api::ApiError::new(StatusCode::CONFLICT, "CONFLICT", m),
            Error::Invalid(m) => {
                crate::api::ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_REQUEST", m)
            }
            Error::BadRowKey(m) => {
                crate::api::ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", m)
                    .with_details(serde_json::json!({ "parameter": "row_id" }))
            }
            Error::Sql(m) => crate::api::ApiError::new(StatusCode::BAD_REQUEST, "SQL_ERROR", m),
            Error::SqlDenied(m) => {
                crate::api::ApiError::new(StatusCode::FORBIDDEN, "SQL_NOT_AUTHORIZED", m)
            }
            Error::Timeout(m) => {
                crate::api::ApiError::new(StatusCode::REQUEST_TIMEOUT, "QUERY_TIMEOUT", m)
            }
            Error::PoolExhausted(m) => {
                crate::api::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "POOL_EXHAUSTED", m)
            }
            Error::LockTimeout(m) => {
                crate::api::ApiError::new(StatusCode::CONFLICT, "LOCK_TIMEOUT", m)
            }
            Error::Deadlock { message, deadlock } => {
                crate::api::ApiError::new(StatusCode::CONFLICT, "DEADLOCK", message)
                    .with_details(serde_json::to_value(*deadlock).unwrap_or_default())
            }
            other => crate::api::ApiError::internal(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
