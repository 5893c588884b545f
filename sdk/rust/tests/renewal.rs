//! Keeping a login alive against a real server: an access token the server no longer accepts
//! is renewed after the 401 and the request is sent again, through the refresh token or, when
//! that is refused too, a new login with the kept credentials.

mod support;

use std::time::Duration;

use rustydb_client::{ClientExt, Error, Options};
use support::{ADMIN_PASSWORD, Server, start, start_with_config};

/// Waits until the server refuses `token` (a plain request, so the SDK cannot renew it).
async fn wait_until_refused(server: &Server, token: &str) {
    let http = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let status = http
                .get(format!("{}/api/v1/databases", server.base_url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status();
            if status == 401 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the server still accepts the token after 120 s");
}

async fn logout_elsewhere(server: &Server, token: &str) {
    let status = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/logout", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "logout: {status}");
}

async fn token(client: &rustydb_client::Client) -> String {
    client.session().access_token().await.expect("logged in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_after_the_401_and_the_request_retried() {
    // One-second access tokens (with no clock leeway, refused after 1 s).
    let config = "[security]\naccess_token_ttl_secs = 1\ntoken_leeway_secs = 0\n";
    let Some(server) = start_with_config(config).await else {
        return;
    };
    // No renewal ahead of time and no kept password: only the 401 path with the refresh
    // token can make the second call succeed.
    let options = Options {
        refresh_ahead: None,
        keep_credentials: false,
    };
    let client = rustydb_client::client_with_options(&server.base_url, options);
    client.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    let expired = token(&client).await;
    client.list_databases().send().await.unwrap();
    // The default client renews ahead of time (at half the 1 s lifetime here), so its request
    // never meets the 401; it works the same.
    let eager = rustydb_client::client(&server.base_url);
    eager.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    let eager_first = token(&eager).await;

    // One wait for both: the later login's token is refused last.
    wait_until_refused(&server, &expired).await;
    wait_until_refused(&server, &eager_first).await;
    client
        .list_databases()
        .send()
        .await
        .expect("refreshed after the 401 and retried");
    assert_ne!(token(&client).await, expired);
    eager.list_databases().send().await.unwrap();
    assert_ne!(token(&eager).await, eager_first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_is_replaced_by_a_new_login_with_the_kept_credentials() {
    let Some(server) = start().await else { return };
    let client = rustydb_client::client(&server.base_url);
    client.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    let revoked = token(&client).await;
    // Logging out with the same token elsewhere revokes access and refresh token.
    logout_elsewhere(&server, &revoked).await;
    client
        .list_databases()
        .send()
        .await
        .expect("logged in again and retried");
    assert_ne!(token(&client).await, revoked);

    // Without the credentials, the 401 reaches the caller as the typed error.
    let forgetful = rustydb_client::client_with_options(
        &server.base_url,
        Options {
            keep_credentials: false,
            ..Options::default()
        },
    );
    forgetful
        .authenticate("admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    logout_elsewhere(&server, &token(&forgetful).await).await;
    let err: Error = forgetful.list_databases().send().await.unwrap_err().into();
    let Error::Api(api) = &err else {
        panic!("expected the API error, got {err:?}")
    };
    assert!(api.is_unauthorized(), "{api}");
    assert_eq!(api.code, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_through_the_sdk_forgets_the_login() {
    let Some(server) = start().await else { return };
    let client = rustydb_client::client(&server.base_url);
    client.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    client.logout().send().await.unwrap();
    assert_eq!(client.session().access_token().await, None);
    // Not logged in any more: no silent new login with the password.
    let err: Error = client.list_databases().send().await.unwrap_err().into();
    assert_eq!(err.status(), Some(401), "{err}");
}
