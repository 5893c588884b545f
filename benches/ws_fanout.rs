//! WebSocket fan-out benchmark: N real clients over loopback subscribed to one topic, a publisher
//! at a set rate, against RustyDB's server and against a minimal raw tokio-tungstenite broadcast
//! (each connection drains its queue and flushes once) as the baseline.
//!
//! The server runs in a child process pinned to core 0 (`taskset -c 0`), the clients in this
//! process pinned to core 1; baseline and RustyDB runs alternate and medians are printed.
//!
//!   cargo bench --bench ws_fanout                 # N=1000, 5 runs each
//!   WS_BENCH_CLIENTS=200 WS_BENCH_RUNS=3 cargo bench --bench ws_fanout
//!
//! Figures: deliveries/s (publisher as fast as it can, without loss counted as delivered),
//! publish->receive latency p50/p95/p99 at 50,000 deliveries/s, RSS per idle connection and per
//! subscription (server process).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const ROLE: &str = "WS_BENCH_ROLE";

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

fn main() {
    if std::env::var_os("WS_BENCH_HEAP").is_some() {
        heap::ON.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    match std::env::var(ROLE).as_deref() {
        Ok("rustydb") => server::rustydb(),
        Ok("baseline") => server::baseline(),
        _ => driver(),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time of this process's threads so far, in nanoseconds (the first field of each thread's
/// schedstat: time on a CPU, with nanosecond resolution, unlike the tick counts of `stat`).
fn cpu_nanos() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A server child process, driven over stdin/stdout lines.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
    token: String,
}

impl Server {
    fn spawn(role: &str) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server (is taskset installed?)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("ready"), "{line}");
        let port = parts.next().and_then(|p| p.parse().ok()).expect("port");
        let token = parts.next().unwrap_or("-").to_string();
        Server {
            child,
            stdin,
            stdout,
            port,
            token,
        }
    }

    fn call(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("command");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reply");
        line.trim().to_string()
    }

    fn rss(&mut self) -> u64 {
        self.call("rss").parse().expect("rss")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

/// A printed figure: its label and how to read it from a run.
type FigureRow = (&'static str, fn(&Figures) -> f64);

#[derive(Default, Clone)]
struct Figures {
    deliveries_per_sec: f64,
    /// Server CPU time per delivery during the throughput run, all threads.
    cpu_ns_per_delivery: f64,
    /// Server CPU time per delivery in the latency run (one event per wake-up of each connection).
    paced_cpu_ns_per_delivery: f64,
    /// Server CPU time over wall time in the throughput run: near 1.0, the server's core was
    /// the limit; well under, the clients were.
    server_busy: f64,
    lost: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    rss_per_connection: f64,
    rss_per_subscription: f64,
    rss_per_further_subscription: f64,
}

struct Clients {
    received: Arc<AtomicU64>,
    latencies: Arc<std::sync::Mutex<Vec<u64>>>,
    record: Arc<std::sync::atomic::AtomicBool>,
}

fn driver() {
    // Clients on core 1, the server child on core 0.
    let _ = Command::new("taskset")
        .args(["-pc", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let n = env_usize("WS_BENCH_CLIENTS", 1000);
    let runs = env_usize("WS_BENCH_RUNS", 5);
    let burst = env_usize("WS_BENCH_EVENTS", 500);
    println!("ws_fanout: {n} clients, {runs} runs each, {burst} events per throughput run");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut baseline = Vec::new();
    let mut rustydb = Vec::new();
    for run in 0..runs {
        for role in ["baseline", "rustydb"] {
            let figures = runtime.block_on(measure(role, n, burst));
            println!(
                "  run {} {role:8} deliveries/s {:>10.0} ({:>4.0} ns cpu each, server busy {:>3.0} %) lost {:>6}  p50 {:>6.2} ms p95 {:>6.2} ms p99 {:>6.2} ms  rss/conn {:>7.0} B rss/sub {:>6.0} B 2nd {:>6.0} B",
                run + 1,
                figures.deliveries_per_sec,
                figures.cpu_ns_per_delivery,
                figures.server_busy * 100.0,
                figures.lost,
                figures.p50_ms,
                figures.p95_ms,
                figures.p99_ms,
                figures.rss_per_connection,
                figures.rss_per_subscription,
                figures.rss_per_further_subscription
            );
            match role {
                "baseline" => baseline.push(figures),
                _ => rustydb.push(figures),
            }
        }
    }
    let median = |v: &[Figures], f: fn(&Figures) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    println!("\nmedians of {runs} runs (N={n}):");
    println!(
        "  {:<26} {:>14} {:>14} {:>8}",
        "figure", "baseline", "rustydb", "ratio"
    );
    let rows: [FigureRow; 10] = [
        ("deliveries/s", |f| f.deliveries_per_sec),
        ("server CPU ns/delivery", |f| f.cpu_ns_per_delivery),
        ("server busy fraction", |f| f.server_busy),
        ("CPU ns/delivery @50k/s", |f| f.paced_cpu_ns_per_delivery),
        ("latency p50 ms @50k/s", |f| f.p50_ms),
        ("latency p95 ms @50k/s", |f| f.p95_ms),
        ("latency p99 ms @50k/s", |f| f.p99_ms),
        ("RSS per idle connection B", |f| f.rss_per_connection),
        ("RSS per subscription B", |f| f.rss_per_subscription),
        ("RSS per 2nd subscription B", |f| {
            f.rss_per_further_subscription
        }),
    ];
    for (name, f) in rows {
        let (b, r) = (median(&baseline, f), median(&rustydb, f));
        let ratio = if b > 0.0 { r / b } else { f64::NAN };
        println!("  {name:<26} {b:>14.2} {r:>14.2} {ratio:>8.2}");
    }
}

async fn measure(role: &str, n: usize, burst: usize) -> Figures {
    let mut server = Server::spawn(role);
    // The server samples host metrics while `system_metrics` has a subscriber: its first
    // subscriber starts the sampler (sysinfo tables, a blocking thread), a cost paid once per
    // topic, not per subscription. A subscriber that matches none of the benchmark's events
    // starts it before anything is measured, and stays for the whole run.
    let _warm = if role == "rustydb" {
        let mut warm = client::Client::connect(server.port, "/api/v1/ws", &server.token).await;
        warm.send_text(r#"{"message_type":"subscribe","data":{"topic":"system_metrics","filter":{"cpu_usage":-1}}}"#).await;
        warm.until_text("subscription_ack").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Some(warm)
    } else {
        None
    };
    let heap_start = server.call("heap");
    let rss_start = server.rss();
    let clients = Clients {
        received: Arc::default(),
        latencies: Arc::default(),
        record: Arc::default(),
    };
    let path = match role {
        "baseline" => "/",
        _ => "/api/v1/ws",
    };
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(client::Client::connect(server.port, path, &server.token).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_connected = server.rss();
    let heap_connected = server.call("heap");
    // Subscribe (the baseline subscribes every connection on accept).
    if role == "rustydb" {
        for ws in &mut sockets {
            // The filter keeps the server's own once-a-second samples out of the figures.
            ws.send_text(r#"{"message_type":"subscribe","data":{"topic":"system_metrics","filter":{"cpu_usage":45.2}}}"#).await;
        }
        for ws in &mut sockets {
            ws.until_text("subscription_ack").await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_subscribed = server.rss();
    let heap_subscribed = server.call("heap");
    let mut rss_subscribed_twice = rss_subscribed;
    // A second subscription on each connection: the cost of a subscription alone, without the
    // buffers of the connection's first read and write (the first subscription pays for those).
    if role == "rustydb" {
        for ws in &mut sockets {
            ws.send_text(r#"{"message_type":"subscribe","data":{"topic":"system_metrics","filter":{"active_queries":12}}}"#).await;
        }
        let mut second = Vec::with_capacity(n);
        for ws in &mut sockets {
            let ack = ws.until_text("subscription_ack").await;
            let ack: serde_json::Value = serde_json::from_str(&ack).expect("ack");
            second.push(
                ack["data"]["subscription_id"]
                    .as_str()
                    .expect("id")
                    .to_string(),
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss_subscribed_twice = server.rss();
        // Gone again, so the throughput run delivers each event once per client as before.
        for (ws, id) in sockets.iter_mut().zip(&second) {
            let unsubscribe =
                serde_json::json!({"message_type": "unsubscribe", "data": {"subscription_id": id}});
            ws.send_text(&unsubscribe.to_string()).await;
        }
        for ws in &mut sockets {
            ws.until_text("subscription_ack").await;
        }
    }
    if std::env::var_os("WS_BENCH_HEAP").is_some() {
        let heap_twice = server.call("heap"); // after the unsubscribe: what a subscription leaves
        eprintln!(
            "  {role} heap per connection {}",
            heap::per_item(&heap_start, &heap_connected, n)
        );
        eprintln!(
            "  {role} heap per first subscription {}",
            heap::per_item(&heap_connected, &heap_subscribed, n)
        );
        eprintln!(
            "  {role} heap left per subscribe+unsubscribe {}",
            heap::per_item(&heap_subscribed, &heap_twice, n)
        );
    }
    let mut server = server;
    let mut tasks = Vec::new();
    let bench_start = now_nanos() - 3_600_000_000_000;
    for mut ws in sockets {
        let received = Arc::clone(&clients.received);
        let latencies = Arc::clone(&clients.latencies);
        let record = Arc::clone(&clients.record);
        tasks.push(tokio::spawn(async move {
            let mut batch = Vec::new();
            while ws
                .read_texts(|t| {
                    // Bench events carry their publish time (nanoseconds since the epoch).
                    if let Some(sent) = sent_at(t).filter(|s| *s > bench_start) {
                        batch.push(sent);
                    }
                })
                .await
            {
                if batch.is_empty() {
                    continue;
                }
                received.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if record.load(Ordering::Relaxed) {
                    let now = now_nanos();
                    let mut all = latencies.lock().expect("lock");
                    all.extend(batch.iter().map(|sent| now.saturating_sub(*sent)));
                }
                batch.clear();
            }
        }));
    }

    // Throughput: publish `burst` events as fast as the server can.
    let expected = (n * burst) as u64;
    let cpu_start: u64 = server.call("cpu").parse().expect("cpu");
    let start = Instant::now();
    let (mut server, reply) = publish(server, burst, 0).await;
    assert_eq!(reply, "done");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        let got = clients.received.load(Ordering::Relaxed);
        if got >= expected || Instant::now() > deadline {
            break;
        }
        if got != last {
            last = got;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_millis(500) {
            break; // the rest was dropped for slow consumers
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let got = clients.received.load(Ordering::Relaxed);
    let cpu = server
        .call("cpu")
        .parse::<u64>()
        .expect("cpu")
        .saturating_sub(cpu_start) as f64;

    // Latency at 50,000 deliveries/s: 50,000 / n events per second for about 3 s.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rate = (50_000 / n).max(1);
    clients.record.store(true, Ordering::Relaxed);
    let before = clients.received.load(Ordering::Relaxed);
    let events = rate * env_usize("WS_BENCH_PACED_SECS", 3);
    let cpu_start: u64 = server.call("cpu").parse().expect("cpu");
    let (mut server, reply) = publish(server, events, rate).await;
    assert_eq!(reply, "done");
    let want = before + (n * events) as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients.received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let paced_cpu = server
        .call("cpu")
        .parse::<u64>()
        .expect("cpu")
        .saturating_sub(cpu_start) as f64;
    let paced_deliveries = clients.received.load(Ordering::Relaxed) - before;
    clients.record.store(false, Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *clients.latencies.lock().expect("lock"));
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1e6
        }
    };
    let figures = Figures {
        deliveries_per_sec: got.min(expected) as f64 / elapsed,
        cpu_ns_per_delivery: cpu / got.max(1) as f64,
        paced_cpu_ns_per_delivery: paced_cpu / paced_deliveries.max(1) as f64,
        server_busy: cpu / 1e9 / elapsed,
        lost: expected.saturating_sub(got),
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        rss_per_connection: rss_connected.saturating_sub(rss_start) as f64 / n as f64,
        rss_per_further_subscription: if role == "rustydb" {
            rss_subscribed_twice.saturating_sub(rss_subscribed) as f64 / n as f64
        } else {
            0.0
        },
        rss_per_subscription: if role == "rustydb" {
            rss_subscribed.saturating_sub(rss_connected) as f64 / n as f64
        } else {
            0.0
        },
    };
    drop(server);
    for t in tasks {
        t.abort();
    }
    figures
}

/// Sends a publish command and waits for the child's reply on a blocking thread, so the client
/// tasks on this runtime keep reading while the server publishes.
async fn publish(server: Server, events: usize, rate: usize) -> (Server, String) {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        let reply = server.call(&format!("publish {events} {rate}"));
        (server, reply)
    })
    .await
    .expect("publisher thread")
}

/// The publish time carried in `memory_usage` of the benchmark's events.
fn sent_at(frame: &[u8]) -> Option<u64> {
    const FIELD: &str = "\"memory_usage\":";
    let frame = std::str::from_utf8(frame).ok()?;
    let i = frame.find(FIELD)? + FIELD.len();
    let end = frame[i..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(frame.len(), |e| i + e);
    frame[i..end].parse().ok()
}

/// A minimal WebSocket client: the handshake, masked text frames out, and frames in parsed in
/// place from one read buffer. The load generator has one core for 1,000 clients; tungstenite's
/// client (a message allocated per frame) made the clients, not the servers, the limit.
mod client {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub struct Client {
        tcp: TcpStream,
        buf: Vec<u8>,
        /// Bytes read and not yet parsed: `buf[start..end]`.
        start: usize,
        end: usize,
    }

    const READ_BUFFER: usize = 64 * 1024;

    impl Client {
        pub async fn connect(port: u16, path: &str, token: &str) -> Client {
            let mut tcp = TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            tcp.set_nodelay(true).expect("nodelay");
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            tcp.write_all(request.as_bytes()).await.expect("handshake");
            let mut client = Client {
                tcp,
                buf: vec![0; READ_BUFFER],
                start: 0,
                end: 0,
            };
            loop {
                client.fill().await;
                let head = &client.buf[..client.end];
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    assert!(
                        head.starts_with(b"HTTP/1.1 101"),
                        "{}",
                        String::from_utf8_lossy(head)
                    );
                    client.start = i + 4;
                    return client;
                }
            }
        }

        async fn fill(&mut self) -> bool {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            assert!(
                self.end < self.buf.len(),
                "a frame larger than the read buffer"
            );
            match self.tcp.read(&mut self.buf[self.end..]).await {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    self.end += n;
                    true
                }
            }
        }

        /// Sends a masked text frame (mask key zero: the XOR leaves the payload as it is).
        pub async fn send_text(&mut self, text: &str) {
            let mut frame = vec![0x81];
            match text.len() {
                n if n < 126 => frame.push(0x80 | n as u8),
                n => {
                    frame.push(0x80 | 126);
                    frame.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            frame.extend_from_slice(&[0; 4]);
            frame.extend_from_slice(text.as_bytes());
            self.tcp.write_all(&frame).await.expect("send");
        }

        /// Passes the payload of every complete text frame read to `each`; `false` once the
        /// connection ended.
        pub async fn read_texts(&mut self, mut each: impl FnMut(&[u8])) -> bool {
            if !self.fill().await {
                return false;
            }
            while let Some((opcode, range)) = self.frame() {
                if opcode == 1 {
                    each(&self.buf[range]);
                }
            }
            true
        }

        /// Reads until a text frame containing `marker`; returns it.
        pub async fn until_text(&mut self, marker: &str) -> String {
            loop {
                while let Some((opcode, range)) = self.frame() {
                    let payload = &self.buf[range];
                    if opcode == 1
                        && payload
                            .windows(marker.len())
                            .any(|w| w == marker.as_bytes())
                    {
                        return String::from_utf8_lossy(payload).into_owned();
                    }
                }
                assert!(self.fill().await, "connection closed before `{marker}`");
            }
        }

        /// The next complete frame (unmasked: it comes from the server), consumed.
        fn frame(&mut self) -> Option<(u8, std::ops::Range<usize>)> {
            let data = &self.buf[self.start..self.end];
            if data.len() < 2 {
                return None;
            }
            let (length, header) = match data[1] & 0x7f {
                126 if data.len() >= 4 => (u16::from_be_bytes([data[2], data[3]]) as usize, 4),
                127 if data.len() >= 10 => {
                    let mut b = [0; 8];
                    b.copy_from_slice(&data[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => return None,
                n => (n as usize, 2),
            };
            if data.len() < header + length {
                return None;
            }
            let payload = self.start + header..self.start + header + length;
            self.start += header + length;
            Some((data[0] & 0x0f, payload))
        }
    }
}

mod server {
    use super::*;

    /// Reads publisher commands from stdin until `quit`.
    fn commands(mut publish: impl FnMut(usize, usize)) {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = line.unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["rss"] => println!("{}", rss_bytes()),
                ["cpu"] => println!("{}", cpu_nanos()),
                ["heap"] => println!("{}", heap::snapshot()),
                ["publish", n, rate] => {
                    publish(n.parse().unwrap_or(0), rate.parse().unwrap_or(0));
                    println!("done");
                }
                ["quit"] | [] => break,
                _ => println!("unknown"),
            }
            let _ = std::io::stdout().flush();
        }
    }

    /// Paces `n` publishes at `rate` per second (0: as fast as possible).
    fn paced(n: usize, rate: usize, mut publish_one: impl FnMut()) {
        let start = Instant::now();
        for i in 0..n {
            if rate > 0 {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            publish_one();
        }
    }

    fn sample() -> rustydb::api::types::SystemMetrics {
        rustydb::api::types::SystemMetrics {
            cpu_usage: 45.2,
            memory_usage: now_nanos(),
            memory_total: Some(17_179_869_184),
            memory_percent: 67.5,
            disk_read_bps: 1_048_576,
            disk_write_bps: 524_288,
            network_rx_bps: 2_097_152,
            network_tx_bps: 1_048_576,
            active_connections: 87,
            active_queries: 12,
        }
    }

    pub fn rustydb() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (bus, port, token) = runtime.block_on(async {
            let mut config = rustydb::config::Config::for_data_dir(dir.path());
            config.security.admin_password = Some(rustydb::config::Secret::new("bench-password"));
            config.security.requests_per_minute = 1_000_000;
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
            let bus = Arc::clone(server.bus());
            let app = server.app();
            tokio::spawn(server.serve(listener, std::future::pending()));
            let token = login(app).await;
            (bus, port, token)
        });
        println!("ready {port} {token}");
        let _ = std::io::stdout().flush();
        let _guard = runtime.enter();
        commands(|n, rate| {
            paced(n, rate, || {
                bus.publish(&sample());
            })
        });
    }

    async fn login(app: axum::Router) -> String {
        use tower::ServiceExt;
        let request = axum::http::Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"username":"admin","password":"bench-password"}"#,
            ))
            .expect("request");
        let response = app.oneshot(request).await.expect("login");
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        v["access_token"].as_str().expect("token").to_string()
    }

    /// The raw baseline: accept, subscribe every connection to one broadcast channel, and per
    /// connection drain what is ready and flush once.
    pub fn baseline() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (tx, _) =
            tokio::sync::broadcast::channel::<tokio_tungstenite::tungstenite::Utf8Bytes>(1000);
        let port = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let mut rx = tx.subscribe();
                    tokio::spawn(async move {
                        // The read buffer RustyDB uses: tungstenite zero-fills its whole read
                        // buffer (128 KiB by default) at every read attempt, which would make
                        // the baseline spend ~40 % of its time in memset.
                        let config =
                            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                                .read_buffer_size(256);
                        let Ok(ws) =
                            tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                        else {
                            return;
                        };
                        let (mut sink, mut incoming) = ws.split();
                        loop {
                            tokio::select! {
                                frame = rx.recv() => {
                                    let Ok(frame) = frame else { continue };
                                    if sink.feed(Message::Text(frame)).await.is_err() { return; }
                                    while let Ok(more) = rx.try_recv() {
                                        if sink.feed(Message::Text(more)).await.is_err() { return; }
                                    }
                                    if sink.flush().await.is_err() { return; }
                                }
                                m = incoming.next() => if !matches!(m, Some(Ok(_))) { return },
                            }
                        }
                    });
                }
            });
            port
        });
        println!("ready {port} -");
        let _ = std::io::stdout().flush();
        let mut sequence = 0u64;
        commands(|n, rate| {
            paced(n, rate, || {
                sequence += 1;
                let frame = serde_json::json!({
                    "message_type": "system_metrics",
                    "data": sample(),
                    "timestamp": chrono::Utc::now().timestamp(),
                    "topic": "system_metrics",
                    "sequence": sequence,
                })
                .to_string();
                let _ = tx.send(frame.into());
            })
        });
    }
}

/// Live heap allocations by size, for finding where per-connection memory goes
/// (`WS_BENCH_HEAP=1` prints them per connection and per subscription; off, it costs one load).
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    const GRAIN: usize = 16;
    const BUCKETS: usize = 4096;
    pub static ON: AtomicBool = AtomicBool::new(false);
    static LIVE: [AtomicI64; BUCKETS] = [const { AtomicI64::new(0) }; BUCKETS];

    fn count(size: usize, delta: i64) {
        if ON.load(Ordering::Relaxed) {
            LIVE[(size / GRAIN).min(BUCKETS - 1)].fetch_add(delta, Ordering::Relaxed);
        }
    }

    pub struct Counting;

    // SAFETY: every call is forwarded to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 1);
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 1);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(layout.size(), -1);
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(layout.size(), -1);
            count(new_size, 1);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// `bucket:count` pairs of live allocations (bucket = size / 16).
    pub fn snapshot() -> String {
        let pairs: Vec<String> = LIVE
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c != 0)
            .map(|(i, c)| format!("{i}:{c}"))
            .collect();
        if pairs.is_empty() {
            "-".into()
        } else {
            pairs.join(",")
        }
    }

    fn parse(s: &str) -> std::collections::BTreeMap<usize, i64> {
        s.split(',')
            .filter_map(|p| p.split_once(':'))
            .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .collect()
    }

    /// Allocations per item between two snapshots, by size: `~size B x count` per item.
    pub fn per_item(before: &str, after: &str, n: usize) -> String {
        let (a, b) = (parse(before), parse(after));
        let mut keys: Vec<usize> = a.keys().chain(b.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut total = 0.0;
        let mut parts = Vec::new();
        for k in keys {
            let per = (b.get(&k).unwrap_or(&0) - a.get(&k).unwrap_or(&0)) as f64 / n as f64;
            if per.abs() >= 0.05 {
                let size = k * GRAIN + GRAIN / 2;
                total += per * size as f64;
                parts.push(format!("{}B x{per:.2}", k * GRAIN));
            }
        }
        format!("~{total:.0} B/item: {}", parts.join(" "))
    }
}
