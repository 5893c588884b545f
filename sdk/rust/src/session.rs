//! Login state shared by the REST client, the event stream and the GraphQL client: the token
//! pair and, unless told otherwise, the credentials of the last login.
//!
//! Two ways keep the access token valid: shortly before it expires it is renewed ahead of the
//! request (`refresh_ahead`), and a request answered 401 is retried once with renewed tokens
//! ([`Session::recover`], called by the client hooks in src/hooks.rs). Renewing uses the refresh
//! token and, when the server refuses it (expired, or its login revoked), logs in again with the
//! stored credentials. Refresh tokens rotate and the server revokes a login whose refresh token
//! is reused, so renewals are serialized by one lock: concurrent callers wait for the renewal in
//! flight and then use its result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::error::{ApiError, Error};
use crate::types::{LoginRequest, RefreshRequest, TokenPair};

/// How a client keeps its login alive.
#[derive(Clone, Debug)]
pub struct Options {
    /// Renew the access token this long before it expires (capped at half its lifetime);
    /// `None` renews only after a request is answered 401. Default: 30 s.
    pub refresh_ahead: Option<Duration>,
    /// Keep username and password in memory after `authenticate`, to log in again when the
    /// refresh token is refused. Default: true.
    pub keep_credentials: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            refresh_ahead: Some(Duration::from_secs(30)),
            keep_credentials: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    http: reqwest::Client,
    options: Options,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tokens: Option<Tokens>,
    credentials: Option<Credentials>,
}

#[derive(Debug)]
struct Tokens {
    access: String,
    refresh: String,
    lifetime: Duration,
    access_expires_at: Instant,
}

#[derive(Clone)]
struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

impl Tokens {
    fn from_pair(pair: TokenPair) -> Self {
        let lifetime = Duration::from_secs(pair.expires_in.max(0).unsigned_abs());
        Self {
            access: pair.access_token,
            refresh: pair.refresh_token,
            lifetime,
            access_expires_at: Instant::now() + lifetime,
        }
    }

    fn due(&self, refresh_ahead: Option<Duration>) -> bool {
        refresh_ahead.is_some_and(|ahead| {
            let ahead = ahead.min(self.lifetime / 2);
            self.access_expires_at <= Instant::now() + ahead
        })
    }
}

impl Session {
    pub fn new(base_url: &str, options: Options) -> Self {
        Self {
            shared: Arc::new(Shared {
                base_url: base_url.trim_end_matches('/').to_owned(),
                http: reqwest::Client::new(),
                options,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Keeps the tokens of a login (and its credentials, if [`Options::keep_credentials`]).
    pub(crate) async fn store(&self, pair: TokenPair, username: &str, password: &str) {
        let mut state = self.shared.state.lock().await;
        state.tokens = Some(Tokens::from_pair(pair));
        state.credentials = self.shared.options.keep_credentials.then(|| Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }

    /// Forgets tokens and credentials (done after a successful `logout`); later calls go out
    /// without credentials.
    pub async fn clear(&self) {
        *self.shared.state.lock().await = State::default();
    }

    /// The current access token, renewed first when it is due (see [`Options::refresh_ahead`]);
    /// `None` when not logged in. A failed renewal keeps the current token: the server then
    /// decides, and a 401 goes through [`Session::recover`].
    pub async fn access_token(&self) -> Option<String> {
        let mut state = self.shared.state.lock().await;
        let tokens = state.tokens.as_ref()?;
        if tokens.due(self.shared.options.refresh_ahead)
            && let Ok(fresh) = self.renew(&state).await
        {
            state.tokens = Some(fresh);
        }
        state.tokens.as_ref().map(|t| t.access.clone())
    }

    /// After the server refused `rejected` (401, or a WebSocket closed with 4001/4403): renews
    /// the tokens, unless another caller already did since `rejected` was handed out, and returns
    /// the access token to retry with.
    pub async fn recover(&self, rejected: &str) -> Result<String, Error> {
        let mut state = self.shared.state.lock().await;
        let current = state.tokens.as_ref().ok_or(Error::NotLoggedIn)?;
        if current.access != rejected {
            return Ok(current.access.clone());
        }
        let fresh = self.renew(&state).await?;
        let access = fresh.access.clone();
        state.tokens = Some(fresh);
        Ok(access)
    }

    /// Renews now, whatever the expiry.
    pub async fn refresh(&self) -> Result<(), Error> {
        let mut state = self.shared.state.lock().await;
        let fresh = self.renew(&state).await?;
        state.tokens = Some(fresh);
        Ok(())
    }

    /// The refresh token first; a refused one (401) falls back to a new login when the
    /// credentials are kept. Called with the state lock held.
    async fn renew(&self, state: &State) -> Result<Tokens, Error> {
        let tokens = state.tokens.as_ref().ok_or(Error::NotLoggedIn)?;
        let refreshed = self.exchange(&tokens.refresh).await;
        match (refreshed, &state.credentials) {
            (Err(Error::Api(e)), Some(credentials)) if e.is_unauthorized() => {
                self.login(credentials).await
            }
            (result, _) => result,
        }
    }

    /// `POST /api/v1/auth/refresh` with a plain request: going through the generated client would
    /// re-enter the hooks and this lock.
    async fn exchange(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let body = RefreshRequest {
            refresh_token: refresh_token
                .parse()
                .map_err(|e| Error::InvalidInput(format!("refresh token: {e}")))?,
        };
        self.post_for_tokens("refresh", &body).await
    }

    async fn login(&self, credentials: &Credentials) -> Result<Tokens, Error> {
        let body = login_request(&credentials.username, &credentials.password)?;
        self.post_for_tokens("login", &body).await
    }

    async fn post_for_tokens(
        &self,
        endpoint: &str,
        body: &impl serde::Serialize,
    ) -> Result<Tokens, Error> {
        let response = self
            .shared
            .http
            .post(format!("{}/api/v1/auth/{endpoint}", self.shared.base_url))
            .json(body)
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

/// The generated login body, checked against the schema's constraints.
pub(crate) fn login_request(username: &str, password: &str) -> Result<LoginRequest, Error> {
    Ok(LoginRequest {
        username: username
            .parse()
            .map_err(|e| Error::InvalidInput(format!("username: {e}")))?,
        password: password
            .parse()
            .map_err(|e| Error::InvalidInput(format!("password: {e}")))?,
    })
}
