//! Soak benchmark of the real-time surfaces: 1,000 `/api/v1/ws` and 200 graphql-ws subscribers
//! to the row changes of one table, through minutes of mixed writes (multi-row INSERT, UPDATE and
//! DELETE statements through `POST /api/v1/sql/execute`, and a large INSERT now and then). On each
//! transport one subscriber stops reading (stalled) and one reads slowly.
//!
//! The server (with the writer, which calls its REST router in-process) runs in a child process
//! pinned to core 0 (`taskset -c 0` when installed), the subscribers in this process on core 1.
//!
//!   cargo bench --bench soak                                # 600 s, 1,000 + 200 subscribers
//!   SOAK_SECS=60 SOAK_WS=200 SOAK_GRAPHQL=50 cargo bench --bench soak
//!
//! Printed: events published; per kind of subscriber (kept up, slow, stalled) the events
//! delivered, the events lost as the server reported them (`gap` / `EVENTS_LOST`), silent losses
//! (a sequence skipped without a notice: must be 0 everywhere) and the close codes seen; the
//! server's memory high-water (VmHWM). A subscriber that kept up must have lost nothing: the
//! bench exits with status 1 otherwise.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ROLE: &str = "SOAK_ROLE";
const PASSWORD: &str = "soak-password";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => server::run(),
        _ => driver(),
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn taskset(core: &str, program: &std::path::Path) -> Command {
    let pinned = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", core]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The server child, driven over stdin/stdout lines.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn spawn() -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut child = taskset("0", &exe)
            .env(ROLE, "server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Server {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("command");
        self.stdin.flush().expect("flush");
        self.line()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reply");
        line.trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    KeptUp,
    Slow,
    Stalled,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    delivered: u64,
    /// Lost as the server reported it (gap notices, EVENTS_LOST).
    reported_lost: u64,
    /// A sequence skipped without a notice.
    silent: u64,
    last: u64,
    /// The close code, `dropped` when the connection ended without one, `open` at the end.
    end: String,
}

impl Tally {
    /// One event of `sequence`: counts what a skip left out without a notice.
    fn event(&mut self, sequence: u64) {
        if sequence > self.last + 1 {
            self.silent += sequence - self.last - 1;
        }
        self.delivered += 1;
        self.last = self.last.max(sequence);
    }

    fn lost(&mut self, from: u64, to: u64) {
        self.reported_lost += to + 1 - from;
        self.last = self.last.max(to);
    }
}

/// What every subscriber task shares: when to stop, and the newest sequence written.
struct Run {
    done: AtomicBool,
    head: AtomicU64,
    ended: std::sync::OnceLock<Instant>,
}

impl Run {
    /// A subscriber stops once it has everything written; a slow or stalled one also after
    /// [`DRAIN`] of reading once the writes ended (it may be far behind).
    fn finished(&self, tally: &Tally, kind: Kind) -> bool {
        if !self.done.load(Ordering::Relaxed) {
            return false;
        }
        let ended = *self.ended.get_or_init(Instant::now);
        tally.last >= self.head.load(Ordering::Relaxed)
            || (kind != Kind::KeptUp && ended.elapsed() >= DRAIN)
    }
}

/// How long slow and stalled subscribers read on after the writes.
const DRAIN: Duration = Duration::from_secs(10);

fn driver() {
    let secs = env_u64("SOAK_SECS", 600);
    let ws_count = env_u64("SOAK_WS", 1000);
    let gql_count = env_u64("SOAK_GRAPHQL", 200);
    let mut server = Server::spawn();
    let ready = server.line();
    let words: Vec<&str> = ready.split_whitespace().collect();
    let ["ready", port, token] = words.as_slice() else {
        panic!("server said {ready}");
    };
    let (addr, token) = (format!("127.0.0.1:{port}"), token.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let run = Arc::new(Run {
        done: AtomicBool::new(false),
        head: AtomicU64::new(0),
        ended: std::sync::OnceLock::new(),
    });
    let kind = |i: u64| match i {
        0 => Kind::Stalled,
        1 => Kind::Slow,
        _ => Kind::KeptUp,
    };
    let (tasks, connected) = runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..ws_count {
            let k = kind(i);
            let t = ws_subscriber(&addr, &token, k, Arc::clone(&run)).await;
            tasks.push(("ws", k, tokio::spawn(t)));
        }
        for i in 0..gql_count {
            let k = kind(i);
            let t = graphql_subscriber(&addr, &token, k, Arc::clone(&run)).await;
            tasks.push(("graphql", k, tokio::spawn(t)));
        }
        let n = tasks.len();
        (tasks, n)
    });
    println!(
        "soak: {connected} subscribers connected ({ws_count} ws, {gql_count} graphql); writing for {secs} s"
    );
    let rss_start = server.ask("hwm");
    let wrote = server.ask(&format!("write {secs}"));
    let head: u64 = server.ask("head").parse().expect("head");
    run.head.store(head, Ordering::Relaxed);
    run.done.store(true, Ordering::Relaxed);
    println!("writer: {wrote}; {head} row changes published");
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for (transport, k, task) in tasks {
            // Stalled and slow subscribers are given a bounded drain at the end.
            let tally = task.await.expect("subscriber");
            results.push((transport, k, tally));
        }
        results
    });
    let hwm = server.ask("hwm");
    let mut ok = true;
    for transport in ["ws", "graphql"] {
        for k in [Kind::KeptUp, Kind::Slow, Kind::Stalled] {
            let group: Vec<&Tally> = results
                .iter()
                .filter(|(t, kk, _)| *t == transport && *kk == k)
                .map(|(_, _, tally)| tally)
                .collect();
            if group.is_empty() {
                continue;
            }
            let mut delivered: Vec<u64> = group.iter().map(|t| t.delivered).collect();
            delivered.sort_unstable();
            let lost: u64 = group.iter().map(|t| t.reported_lost).sum();
            let silent: u64 = group.iter().map(|t| t.silent).sum();
            let short: u64 = group.iter().map(|t| head.saturating_sub(t.last)).sum();
            let mut ends: BTreeMap<&str, u64> = BTreeMap::new();
            for t in &group {
                *ends.entry(t.end.as_str()).or_default() += 1;
            }
            println!(
                "{transport:>7} {k:?} ({n}): delivered min {min} median {median} max {max}; \
                 lost (reported) {lost}; silent {silent}; never received {short}; ends {ends:?}",
                n = group.len(),
                min = delivered[0],
                median = delivered[delivered.len() / 2],
                max = delivered[delivered.len() - 1],
            );
            if k == Kind::KeptUp && (lost > 0 || silent > 0 || short > 0) {
                ok = false;
            }
            if silent > 0 {
                ok = false;
            }
        }
    }
    println!("server memory high-water (VmHWM): {hwm} (after connecting: {rss_start})");
    if !ok {
        println!("FAILED: a subscriber that kept up lost events, or a loss went unreported");
        std::process::exit(1);
    }
    println!("ok: every subscriber that kept up got all {head} changes; every loss was reported");
}

async fn ws_subscriber(
    addr: &str,
    token: &str,
    kind: Kind,
    run: Arc<Run>,
) -> impl std::future::Future<Output = Tally> + use<> {
    let mut request = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("ws connect");
    let subscribe = json!({"message_type": "subscribe", "data": {"topic": "table_changes", "filter": {"table": "soak"}}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    loop {
        let m = next_text(&mut ws).await.expect("ack");
        if m["message_type"] == "subscription_ack" {
            break;
        }
    }
    read(ws, kind, run, |m, tally| match m["message_type"].as_str() {
        Some("table_modified") => {
            tally.event(m["sequence"].as_u64().unwrap_or(0));
            true
        }
        Some("gap") => {
            tally.lost(
                m["data"]["from_sequence"].as_u64().unwrap_or(0),
                m["data"]["to_sequence"].as_u64().unwrap_or(0),
            );
            true
        }
        _ => true,
    })
}

async fn graphql_subscriber(
    addr: &str,
    token: &str,
    kind: Kind,
    run: Arc<Run>,
) -> impl std::future::Future<Output = Tally> + use<> {
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("graphql connect");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    ))
    .await
    .expect("init");
    let ack = next_text(&mut ws).await.expect("ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(send(json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { tableModifications(tables: [\"soak\"]) { sequence } }"}})))
        .await
        .expect("subscribe");
    ws.send(send(json!({"type": "ping"}))).await.expect("ping");
    loop {
        let m = next_text(&mut ws).await.expect("pong");
        if m["type"] == "pong" {
            break;
        }
    }
    read(ws, kind, run, |m, tally| match m["type"].as_str() {
        Some("next") => {
            let payload = &m["payload"];
            if let Some(errors) = payload["errors"].as_array() {
                let details = &errors[0]["extensions"]["details"];
                tally.lost(
                    details["from_sequence"].as_u64().unwrap_or(0),
                    details["to_sequence"].as_u64().unwrap_or(0),
                );
            } else {
                let s = &payload["data"]["tableModifications"]["sequence"];
                tally.event(s.as_u64().unwrap_or(0));
            }
            true
        }
        Some("complete") => {
            tally.end = "subscription completed".into();
            false
        }
        _ => true,
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One subscriber's reading, whatever its protocol: a stalled one waits for the end of the
/// writes, a slow one pauses before each frame; `message` counts a text frame into the tally
/// and says whether to go on. Ends at everything written, a close, or 30 s without a frame.
async fn read(
    mut ws: Socket,
    kind: Kind,
    run: Arc<Run>,
    mut message: impl FnMut(&Value, &mut Tally) -> bool + Send + 'static,
) -> Tally {
    let mut tally = Tally::default();
    if kind == Kind::Stalled {
        while !run.done.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    loop {
        if run.finished(&tally, kind) {
            tally.end = "open".into();
            break;
        }
        if kind == Kind::Slow {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Err(_) => {
                tally.end = "open (no more events in 30 s)".into();
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let m: Value = serde_json::from_str(&text).unwrap_or_default();
                if !message(&m, &mut tally) {
                    break;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                tally.end = frame.map_or("closed without a code".into(), |f| {
                    u16::from(f.code).to_string()
                });
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => {
                tally.end = "dropped".into();
                break;
            }
        }
    }
    tally
}

async fn next_text<S>(ws: &mut S) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

mod server {
    use super::*;

    /// The server and the writer: `write SECS` runs the mixed writes, `head` prints the newest
    /// `table_changes` sequence, `hwm` the process's memory high-water.
    pub fn run() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (bus, app, port, token) = runtime.block_on(async {
            let mut config = rustydb::config::Config::for_data_dir(dir.path());
            config.security.admin_password = Some(rustydb::config::Secret::new(PASSWORD));
            config.security.requests_per_minute = 10_000_000;
            config.websocket.max_connections_per_user = 100_000;
            config.websocket.max_connections = 100_000;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let server = rustydb::server::Server::start(
                config,
                rustydb::telemetry::LogControl::detached(),
                Instant::now(),
            )
            .await
            .expect("start");
            let app = server.app();
            let bus = Arc::clone(server.bus());
            tokio::spawn(server.serve(listener, std::future::pending()));
            let token = login(&app).await;
            sql(
                &app,
                &token,
                "CREATE TABLE soak (id INTEGER PRIMARY KEY, v INTEGER, body TEXT)",
            )
            .await;
            (bus, app, port, token)
        });
        println!("ready {port} {token}");
        let _ = std::io::stdout().flush();
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = line.unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["write", secs] => {
                    let secs = secs.parse().unwrap_or(10);
                    println!("{}", runtime.block_on(write(&app, &token, secs)));
                }
                ["head"] => println!("{}", bus.topic("table_changes").map_or(0, |t| t.head())),
                ["hwm"] => println!("{}", high_water()),
                _ => break,
            }
            let _ = std::io::stdout().flush();
        }
    }

    /// Every 100 ms: a 10-row INSERT, an UPDATE of 5 rows and a DELETE of 5 (~200 changes a
    /// second); every 30 s a 2,000-row INSERT (one transaction larger than the ring).
    async fn write(app: &axum::Router, token: &str, secs: u64) -> String {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let (mut next_id, mut statements, mut last_burst) = (1u64, 0u64, Instant::now());
        while start.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let values: Vec<String> = (next_id..next_id + 10)
                .map(|i| format!("({i}, {i}, 'row {i}')"))
                .collect();
            sql(
                app,
                token,
                &format!(
                    "INSERT INTO soak (id, v, body) VALUES {}",
                    values.join(", ")
                ),
            )
            .await;
            sql(
                app,
                token,
                &format!(
                    "UPDATE soak SET v = v + 1 WHERE id BETWEEN {} AND {}",
                    next_id,
                    next_id + 4
                ),
            )
            .await;
            sql(
                app,
                token,
                &format!(
                    "DELETE FROM soak WHERE id BETWEEN {} AND {}",
                    next_id + 5,
                    next_id + 9
                ),
            )
            .await;
            next_id += 10;
            statements += 3;
            if last_burst.elapsed() >= Duration::from_secs(30) {
                last_burst = Instant::now();
                sql(
                    app,
                    token,
                    &format!(
                        "WITH RECURSIVE c(x) AS (SELECT {next_id} UNION ALL SELECT x + 1 FROM c \
                         WHERE x < {}) INSERT INTO soak (id, v, body) SELECT x, x, 'burst' FROM c",
                        next_id + 1999
                    ),
                )
                .await;
                next_id += 2000;
                statements += 1;
            }
        }
        format!(
            "{statements} statements in {:.0} s",
            start.elapsed().as_secs_f64()
        )
    }

    async fn sql(app: &axum::Router, token: &str, statement: &str) {
        let (status, body) = call(
            app,
            "/api/v1/sql/execute",
            Some(token),
            json!({"sql": statement}),
        )
        .await;
        assert_eq!(status, 200, "{statement}: {body}");
    }

    async fn login(app: &axum::Router) -> String {
        let (_, body) = call(
            app,
            "/api/v1/auth/login",
            None,
            json!({"username": "admin", "password": PASSWORD}),
        )
        .await;
        body["access_token"].as_str().expect("token").to_string()
    }

    async fn call(
        app: &axum::Router,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        use tower::ServiceExt;
        let mut request =
            axum::http::Request::post(path).header("content-type", "application/json");
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request
            .body(axum::body::Body::from(body.to_string()))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("call");
        let status = response.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// VmHWM of this process, as /proc reports it.
    fn high_water() -> String {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .map_or("unknown".into(), |v| v.trim().to_string())
    }
}
