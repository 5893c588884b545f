//! progenitor's `ClientHooks` for the generated client (build.rs asks for them with
//! `HooksMode::Expected`): every request gets the session's bearer token, and a request answered
//! 401 is sent once more with renewed tokens. If the renewal fails too, the first 401 stands and
//! reaches the caller as `Error::Api`.

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Request, Response, StatusCode};

use crate::rest::Client;
use crate::session::Session;

/// Operations that obtain tokens: they carry none, and their 401 is the answer.
const TOKEN_OPERATIONS: [&str; 2] = ["login", "refresh_token"];

impl ClientHooks<Session> for Client {
    async fn pre<E>(
        &self,
        request: &mut Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        if TOKEN_OPERATIONS.contains(&info.operation_id) {
            return Ok(());
        }
        if let Some(token) = self.inner().access_token().await {
            set_bearer(request, &token);
        }
        Ok(())
    }

    async fn exec(&self, request: Request, info: &OperationInfo) -> reqwest::Result<Response> {
        let sent_token = bearer(&request);
        // Bodies are buffered JSON, so a request can be cloned for the retry.
        let retry = request.try_clone();
        let response = self.client().execute(request).await?;
        if info.operation_id == "logout" && response.status().is_success() {
            self.inner().clear().await;
        }
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let (Some(mut retry), Some(sent_token)) = (retry, sent_token) else {
            return Ok(response);
        };
        match self.inner().recover(&sent_token).await {
            Ok(token) => {
                set_bearer(&mut retry, &token);
                self.client().execute(retry).await
            }
            Err(_) => Ok(response),
        }
    }
}

fn bearer(request: &Request) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn set_bearer(request: &mut Request, token: &str) {
    // A token the server issued is always a valid header value; a broken one is left out and
    // the server answers 401.
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        request.headers_mut().insert(AUTHORIZATION, value);
    }
}
