//! Opening an authenticated WebSocket to the server (the event stream and GraphQL share it).

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{ApiError, Error};
use crate::session::Session;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `path` with `Authorization: Bearer <access token>` (and the given subprotocol).
/// Returns the socket and the token it was opened with. A refused upgrade is [`Error::Api`] with
/// the HTTP status (401 for a bad token); [`Error::NotLoggedIn`] without a login.
pub(crate) async fn open(
    session: &Session,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<(Socket, String), Error> {
    let token = session.access_token().await.ok_or(Error::NotLoggedIn)?;
    let url = format!("{}{path}", session.base_url())
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::WebSocket(e.to_string()))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::InvalidInput("access token is not a valid header value".into()))?;
    request.headers_mut().insert("authorization", bearer);
    if let Some(protocol) = subprotocol {
        let value = HeaderValue::from_str(protocol)
            .map_err(|_| Error::InvalidInput(format!("subprotocol {protocol:?}")))?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => Error::Api(Box::new(ApiError {
                status: response.status().as_u16(),
                code: String::new(),
                message: "WebSocket upgrade refused".into(),
                details: None,
                retry_after: None,
            })),
            other => Error::WebSocket(other.to_string()),
        })?;
    Ok((socket, token))
}
