//! TLS round trip: a self-signed certificate made here, the server on a real socket, a rustls
//! client trusting only that certificate.

use std::sync::Arc;
use std::time::Instant;

use rustydb::config::{Config, Secret, TlsFiles};
use rustydb::server::{Server, tls};
use rustydb::telemetry::LogControl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

async fn https_get(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn https_round_trip_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).expect("write cert");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("write key");

    let mut config = Config::for_data_dir(&dir.path().join("data"));
    config.security.admin_password = Some(Secret::new("tls-test-password"));
    let files = TlsFiles {
        cert: cert_path,
        key: key_path,
    };
    let acceptor = tls::acceptor(&files).expect("acceptor");
    config.tls = Some(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::start(config, LogControl::detached(), Instant::now())
        .await
        .expect("start");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(
        tls::TlsListener::new(listener, acceptor).expect("tls listener"),
        async {
            let _ = stop_rx.await;
        },
    ));

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(generated.cert.der().to_vec()))
        .expect("root");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));

    let response = https_get(&connector, addr, "/api/v1/health/liveness")
        .await
        .expect("https request");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"alive\""), "{response}");

    // Plain HTTP to the TLS port gets no HTTP answer, and the server keeps serving TLS.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /api/v1/health/liveness HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // A client that does not trust the certificate refuses the connection.
    let untrusting = TlsConnector::from(Arc::new(
        ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth(),
    ));
    assert!(
        https_get(&untrusting, addr, "/api/v1/health/liveness")
            .await
            .is_err()
    );

    let again = https_get(&connector, addr, "/api/v1/system/version")
        .await
        .expect("https request");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");

    let _ = stop_tx.send(());
    serving.await.expect("join").expect("serve");
}

#[test]
fn tls_needs_both_files_and_readable_pem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not pem").expect("write");
    let err = match tls::acceptor(&TlsFiles {
        cert: bad.clone(),
        key: bad,
    }) {
        Ok(_) => panic!("garbage PEM accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("no certificate") || err.contains("bad.pem"),
        "{err}"
    );
    let missing = tls::acceptor(&TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    });
    assert!(missing.is_err());
}
