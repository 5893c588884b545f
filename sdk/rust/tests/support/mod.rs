//! Shared by the live tests: `target/debug/rustydb serve` on a free port with a temp data
//! directory, a known admin password and, optionally, extra config file settings
//! (scripts/test.sh builds the binary first; without it the tests skip, saying why).

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ADMIN_PASSWORD: &str = "admin-password-for-sdk-tests";

pub struct Server {
    pub base_url: String,
    child: Child,
    bin: PathBuf,
    data_dir: tempfile::TempDir,
}

impl Server {
    /// Stops the server and starts it again on the same address and data directory.
    pub async fn restart(&mut self) {
        self.child.kill().await.unwrap();
        let bind = self.base_url.trim_start_matches("http://").to_owned();
        // The port was just freed; retry briefly in case the old socket lingers.
        for attempt in 0.. {
            let (child, address) = spawn(&self.bin, &bind, self.data_dir.path()).await;
            if let Some(address) = address {
                assert_eq!(address, self.base_url);
                self.child = child;
                return;
            }
            assert!(attempt < 20, "could not restart the server on {bind}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("RUSTYDB_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug/rustydb")
}

/// Starts the server with the default settings.
pub async fn start() -> Option<Server> {
    start_with_config("").await
}

/// Starts the server with `config` as its TOML config file, or `None` (the test then skips,
/// saying why) when the binary is not built.
pub async fn start_with_config(config: &str) -> Option<Server> {
    let bin = server_binary();
    if !bin.exists() {
        eprintln!(
            "SKIPPED: {} not found; run `cargo build --bin rustydb` first",
            bin.display()
        );
        return None;
    }
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join("rustydb.toml"), config).unwrap();
    let (child, address) = spawn(&bin, "127.0.0.1:0", data_dir.path()).await;
    Some(Server {
        base_url: address.expect("server exited before reporting its address"),
        child,
        bin,
        data_dir,
    })
}

/// Runs `rustydb serve` on `bind` with `dir`'s config file and data; the address it reports, or
/// `None` when it exits first (e.g. the port is taken).
async fn spawn(bin: &PathBuf, bind: &str, dir: &std::path::Path) -> (Child, Option<String>) {
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--bind",
            bind,
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("rustydb.toml"))
        .env("RUSTYDB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for output in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(output).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = rx.recv().await {
            if line.contains("rustydb listening")
                && let Some(rest) = line.split("\"address\":\"").nth(1)
            {
                return Some(rest.split('"').next().unwrap().to_owned());
            }
        }
        None
    })
    .await
    .expect("server did not report its address within 60 s");
    (child, address)
}

pub fn body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid request body")
}

/// A logged-in admin client.
pub async fn admin(server: &Server) -> rustydb_client::Client {
    use rustydb_client::ClientExt;
    let client = rustydb_client::client(&server.base_url);
    client.authenticate("admin", ADMIN_PASSWORD).await.unwrap();
    client
}

/// Creates database `database` with a table `table` (id, name, age).
pub async fn people_table(client: &rustydb_client::Client, database: &str, table: &str) {
    use rustydb_client::types;
    client
        .create_database()
        .body(body::<types::DatabaseCreate>(json!({"name": database})))
        .send()
        .await
        .unwrap();
    client
        .create_table()
        .name(database)
        .body(body::<types::TableCreate>(
            json!({"name": table, "columns": [
                {"name": "id", "type": "INTEGER", "primary_key": true},
                {"name": "name", "type": "TEXT", "not_null": true},
                {"name": "age", "type": "INTEGER"},
            ]}),
        ))
        .send()
        .await
        .unwrap();
}

/// Creates a user with one role and returns a client logged in as it.
pub async fn user(
    server: &Server,
    admin: &rustydb_client::Client,
    username: &str,
    role: &str,
) -> rustydb_client::Client {
    use rustydb_client::{ClientExt, types};
    admin
        .create_user()
        .body(body::<types::UserCreate>(
            json!({"username": username, "password": "password-123", "roles": [role]}),
        ))
        .send()
        .await
        .unwrap();
    let client = rustydb_client::client(&server.base_url);
    client.authenticate(username, "password-123").await.unwrap();
    client
}

pub const WAIT: Duration = Duration::from_secs(30);
