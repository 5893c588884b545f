//! The real binary on a real socket: starts, answers, and shuts down cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A minimal HTTP/1.1 GET; returns the status code and the body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http(port, "GET", path, None)
}

fn http(port: u16, method: &str, path: &str, json: Option<&str>) -> std::io::Result<(u16, String)> {
    http_as(port, method, path, json, None)
}

fn http_as(
    port: u16,
    method: &str,
    path: &str,
    json: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = json.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn binary_serves_and_stops_gracefully_on_sigterm() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustydb"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir.path())
        .args(["--log-format", "json"])
        .env("RUSTYDB_ADMIN_PASSWORD", "serve-test-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rustydb");

    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        match http_get(port, "/api/v1/health/liveness") {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                panic!("server did not come up: {e}");
            }
        }
    };
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"alive\""), "{body}");
    assert!(data_dir.path().join("system.db").exists());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut logs);
    }
    assert!(exit.success(), "exit {exit:?}; logs:\n{logs}");
    // JSON logs: every line is an object.
    let first = logs.lines().next().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(first).expect("JSON log line");
    assert!(line["level"].is_string(), "{first}");
    assert!(logs.contains("shutdown requested"), "{logs}");
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_rustydb"))
        .args(["serve", "--bind", "not-an-address"])
        .output()
        .expect("run rustydb");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not-an-address"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn first_start_prints_a_generated_admin_password_once_and_it_works() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustydb"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env_remove("RUSTYDB_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rustydb");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut password = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while password.is_none() && Instant::now() < deadline {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line.split("with password `").nth(1) {
            password = rest.split('`').next().map(str::to_string);
        }
    }
    let password = password.expect("the generated password is printed on first start");
    assert!(password.len() >= 16, "{password}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = format!(r#"{{"username":"admin","password":"{password}"}}"#);
    let (status, response) = loop {
        match http(port, "POST", "/api/v1/auth/login", Some(&body)) {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("server did not come up: {e}"),
        }
    };
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("access_token"));
    let key = data_dir.path().join("jwt.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("jwt.key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "jwt.key must be private");
    }
    let _ = child.kill();
    let _ = child.wait();

    // A second start on the same data directory creates nobody and prints no password.
    let port = free_port();
    let mut again = Command::new(env!("CARGO_BIN_EXE_rustydb"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env_remove("RUSTYDB_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rustydb");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(port, "/api/v1/health/liveness").is_err() {
        assert!(Instant::now() < deadline, "second start did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = again.kill();
    let _ = again.wait();
    let mut logs = String::new();
    if let Some(mut out) = again.stdout.take() {
        let _ = out.read_to_string(&mut logs);
    }
    assert!(!logs.contains("with password"), "{logs}");
}

/// Starts the binary on `data_dir` and waits until it answers.
fn start_server(data_dir: &std::path::Path) -> (std::process::Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_rustydb"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUSTYDB_ADMIN_PASSWORD", "durability-password")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rustydb");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(port, "/api/v1/health/liveness").is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn login(port: u16) -> String {
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        Some(r#"{"username":"admin","password":"durability-password"}"#),
    )
    .expect("login");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

/// A 2xx answer to a write means it is on disk: SIGKILL during a stream of acknowledged inserts,
/// restart, and every acknowledged row is there.
#[test]
fn acknowledged_writes_survive_sigkill() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (mut child, port) = start_server(data_dir.path());
    let token = login(port);
    let (status, body) = http_as(
        port,
        "POST",
        "/api/v1/sql/execute",
        Some(r#"{"sql":"CREATE TABLE acked (id INTEGER PRIMARY KEY)"}"#),
        Some(&token),
    )
    .expect("create");
    assert_eq!(status, 200, "{body}");
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let writer = {
        let acknowledged = std::sync::Arc::clone(&acknowledged);
        let token = token.clone();
        std::thread::spawn(move || {
            for id in 1.. {
                let body =
                    format!(r#"{{"sql":"INSERT INTO acked (id) VALUES (?)","params":[{id}]}}"#);
                match http_as(
                    port,
                    "POST",
                    "/api/v1/sql/execute",
                    Some(&body),
                    Some(&token),
                ) {
                    Ok((200, _)) => acknowledged.lock().expect("lock").push(id),
                    _ => break,
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = child.wait();
    writer.join().expect("writer");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 5,
        "only {} inserts acknowledged",
        acknowledged.len()
    );

    let (mut child, port) = start_server(data_dir.path());
    let token = login(port);
    let (status, body) = http_as(
        port,
        "POST",
        "/api/v1/sql/query",
        Some(r#"{"sql":"SELECT id FROM acked ORDER BY id","max_rows":100000}"#),
        Some(&token),
    )
    .expect("query");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let stored: std::collections::HashSet<u64> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r[0].as_u64())
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after SIGKILL: {lost:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
