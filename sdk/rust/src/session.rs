//! Login state shared by the REST client and the event stream: the token pair, and a refresh
//! 30 s before the access token expires. Refresh tokens rotate and the server revokes a login
//! whose refresh token is reused, so refreshes are serialized by one lock: concurrent callers
//! wait for the refresh in flight and then use its result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::error::{ApiError, Error};
use crate::types::{RefreshRequest, TokenPair};

/// How long before expiry the access token is renewed.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Session {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    http: reqwest::Client,
    tokens: Mutex<Option<Tokens>>,
}

#[derive(Debug)]
struct Tokens {
    access: String,
    refresh: String,
    access_expires_at: Instant,
}

impl Tokens {
    fn from_pair(pair: TokenPair) -> Self {
        let ttl = Duration::from_secs(pair.expires_in.max(0).unsigned_abs());
        Self {
            access: pair.access_token,
            refresh: pair.refresh_token,
            access_expires_at: Instant::now() + ttl,
        }
    }
}

impl Session {
    pub fn new(base_url: &str) -> Self {
        Self {
            shared: Arc::new(Shared {
                base_url: base_url.trim_end_matches('/').to_owned(),
                http: reqwest::Client::new(),
                tokens: Mutex::new(None),
            }),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub(crate) async fn store(&self, pair: TokenPair) {
        *self.shared.tokens.lock().await = Some(Tokens::from_pair(pair));
    }

    /// Forgets the tokens (after a logout, say); later calls go out without credentials.
    pub async fn clear(&self) {
        *self.shared.tokens.lock().await = None;
    }

    /// The current access token, refreshed first when it expires within [`REFRESH_MARGIN`];
    /// `None` when not logged in.
    pub async fn access_token(&self) -> Result<Option<String>, Error> {
        let mut guard = self.shared.tokens.lock().await;
        let Some(tokens) = guard.as_ref() else {
            return Ok(None);
        };
        if tokens.access_expires_at > Instant::now() + REFRESH_MARGIN {
            return Ok(Some(tokens.access.clone()));
        }
        let fresh = self.exchange(&tokens.refresh).await?;
        let access = fresh.access.clone();
        *guard = Some(fresh);
        Ok(Some(access))
    }

    /// Refreshes now, whatever the expiry (after the server closed a WebSocket with 4001).
    pub async fn refresh(&self) -> Result<(), Error> {
        let mut guard = self.shared.tokens.lock().await;
        let refresh = guard.as_ref().ok_or(Error::NotLoggedIn)?.refresh.clone();
        *guard = Some(self.exchange(&refresh).await?);
        Ok(())
    }

    /// `POST /api/v1/auth/refresh` with a plain request: going through the generated client would
    /// re-enter [`authorize`] and this lock.
    async fn exchange(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let body = RefreshRequest {
            refresh_token: refresh_token
                .parse()
                .map_err(|e| Error::InvalidInput(format!("refresh token: {e}")))?,
        };
        let response = self
            .shared
            .http
            .post(format!("{}/api/v1/auth/refresh", self.shared.base_url))
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(Error::Api(Box::new(
                ApiError::from_response(response).await,
            )));
        }
        Ok(Tokens::from_pair(response.json::<TokenPair>().await?))
    }
}

/// progenitor's async pre-hook: adds `Authorization: Bearer` to every request but the two that
/// obtain tokens.
pub async fn authorize(session: &Session, request: &mut reqwest::Request) -> Result<(), Error> {
    let path = request.url().path();
    if path.ends_with("/auth/login") || path.ends_with("/auth/refresh") {
        return Ok(());
    }
    if let Some(token) = session.access_token().await? {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Error::InvalidInput("access token is not a valid header value".into()))?;
        request
            .headers_mut()
            .insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(())
}
