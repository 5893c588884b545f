//! Rust client for RustyDB Server.
//!
//! Generated at build time (build.rs) from the committed documents of `generated/`: the REST
//! client ([`Client`], [`types`]) by progenitor (builder style) from `openapi.json`, and the
//! WebSocket message types ([`events`]) by typify from `events.schema.json`. The hand-written
//! parts are kept apart from them: [`session`] (login, tokens, renewal), `hooks` (bearer token
//! and retry after a 401 on every REST call), [`stream`] (event stream with reconnect and
//! resume), [`graphql`] (subscriptions over graphql-transport-ws) and [`error`] (one typed error).

// progenitor's output is not written for our lint set.
#[allow(clippy::all, clippy::pedantic, dead_code, unused_imports, missing_docs)]
mod rest {
    include!(concat!(env!("OUT_DIR"), "/rest.rs"));
}

pub mod error;
pub mod events;
pub mod graphql;
mod hooks;
pub mod session;
mod socket;
pub mod stream;

pub use error::{ApiError, Error};
pub use events::{Event, Message};
pub use graphql::{GraphQlClient, Subscription};
pub use rest::{Client, builder, types};
pub use session::Options;
pub use stream::EventStream;

/// Builds a client for the server at `base_url` (e.g. `http://127.0.0.1:8080`), not logged in,
/// with the default [`Options`].
pub fn client(base_url: &str) -> Client {
    client_with_options(base_url, Options::default())
}

/// Builds a client for the server at `base_url`, not logged in.
pub fn client_with_options(base_url: &str, options: Options) -> Client {
    let base_url = base_url.trim_end_matches('/');
    Client::new(base_url, session::Session::new(base_url, options))
}

/// What the SDK adds to the generated client: login that keeps the tokens, the event stream
/// and the GraphQL subscription client.
#[allow(async_fn_in_trait)]
pub trait ClientExt {
    /// Logs in and keeps the tokens; later calls carry the access token and renew it.
    async fn authenticate(&self, username: &str, password: &str) -> Result<(), Error>;
    /// The login state shared by every call of this client.
    fn session(&self) -> &session::Session;
    /// An event stream on `/api/v1/ws` authenticated with this client's session (not connected).
    fn events(&self) -> EventStream;
    /// Opens a GraphQL WebSocket on `/graphql` (graphql-transport-ws), authenticated with this
    /// client's access token.
    async fn graphql(&self) -> Result<GraphQlClient, Error>;
}

impl ClientExt for Client {
    async fn authenticate(&self, username: &str, password: &str) -> Result<(), Error> {
        let body = session::login_request(username, password)?;
        let pair = self.login().body(body).send().await?.into_inner();
        self.inner.store(pair, username, password).await;
        Ok(())
    }

    fn session(&self) -> &session::Session {
        &self.inner
    }

    fn events(&self) -> EventStream {
        EventStream::new(self.inner.clone())
    }

    async fn graphql(&self) -> Result<GraphQlClient, Error> {
        GraphQlClient::connect(&self.inner).await
    }
}
