//! REST data API benchmark: point reads, inserts and a filtered row listing over HTTP/1.1
//! keep-alive, so later work can compare against these figures.
//!
//! The server runs in a child process pinned to core 0 (`taskset -c 0`), the clients in this
//! process pinned to core 1. A table `items` (id INTEGER PRIMARY KEY, name, category, price; an
//! index on category) is seeded with 10,000 rows; then each workload runs for a fixed time with
//! C concurrent keep-alive connections, R times, and the medians are printed.
//!
//!   cargo bench --bench rest                       # C=8, 5 runs of 3 s per workload
//!   REST_BENCH_CLIENTS=4 REST_BENCH_RUNS=3 REST_BENCH_SECS=2 cargo bench --bench rest
//!
//! A second server without the change log (`[changes] enabled = false`) runs the insert
//! workload beside the first, as its baseline: the log's cost on the write path.
//!
//! Figures per workload: requests/s, and latency p50/p95/p99 (request written -> response
//! body read, at full load, so it includes queueing behind the other clients).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

const ROLE: &str = "REST_BENCH_ROLE";
/// Set to `off` in a server child that runs without the change log.
const CHANGE_LOG: &str = "REST_BENCH_CHANGE_LOG";
const ROWS: u64 = 10_000;
const CATEGORIES: u64 = 100;
const TABLE: &str = "/api/v1/databases/default/tables/items";

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => server(),
        _ => driver(),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server child process: prints `ready <port> <token>` and serves until stdin closes.
fn server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, token) = runtime.block_on(async {
        let mut config = rustydb::config::Config::for_data_dir(dir.path());
        config.security.admin_password = Some(rustydb::config::Secret::new("bench-password"));
        config.security.requests_per_minute = u32::MAX;
        config.changes.enabled = std::env::var(CHANGE_LOG).as_deref() != Ok("off");
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
        tokio::spawn(server.serve(listener, std::future::pending()));
        let mut client = Client::connect(port, String::new()).await;
        let (status, body) = client
            .request(
                "POST",
                "/api/v1/auth/login",
                Some(r#"{"username":"admin","password":"bench-password"}"#),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let token = v["access_token"].as_str().expect("token").to_string();
        (port, token)
    });
    println!("ready {port} {token}");
    let _ = std::io::stdout().flush();
    // Serve until the driver closes stdin.
    for line in std::io::stdin().lock().lines() {
        if line.map_or(true, |l| l.trim() == "quit") {
            break;
        }
    }
    drop(runtime);
}

/// A minimal HTTP/1.1 keep-alive client: one request at a time, `Content-Length` bodies (what
/// the server sends for JSON).
struct Client {
    stream: AsyncBufReader<TcpStream>,
    token: String,
    request: Vec<u8>,
}

impl Client {
    async fn connect(port: u16, token: String) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream: AsyncBufReader::new(stream),
            token,
            request: Vec::with_capacity(1024),
        }
    }

    /// Sends a request and reads the whole response: (status, body).
    async fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.request.clear();
        let r = &mut self.request;
        write!(r, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("write");
        if !self.token.is_empty() {
            write!(r, "Authorization: Bearer {}\r\n", self.token).expect("write");
        }
        if let Some(body) = body {
            write!(
                r,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
        } else {
            r.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&self.request)
            .await
            .expect("send");
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("status");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content-length");
            }
            assert!(
                !name.eq_ignore_ascii_case("transfer-encoding"),
                "chunked responses are not expected"
            );
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// A server child process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    port: u16,
    token: String,
}

impl Server {
    fn spawn(change_log: bool) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .env(ROLE, "server")
            .env(CHANGE_LOG, if change_log { "on" } else { "off" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server (is taskset installed?)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout: BufReader<ChildStdout> =
            BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("ready"), "{line}");
        let port = parts.next().and_then(|p| p.parse().ok()).expect("port");
        let token = parts.next().expect("token").to_string();
        Server {
            child,
            stdin,
            port,
            token,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    PointRead,
    Insert,
    FilteredList,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PointRead => "point read (GET row by pk)",
            Workload::Insert => "insert (POST row)",
            Workload::FilteredList => "filtered list (eq, limit 20)",
        }
    }
}

/// xorshift64*: cheap, deterministic request keys without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Clone, Copy, Default)]
struct Figures {
    requests_per_sec: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

/// One client's loop until `until`: the latencies of its requests, in nanoseconds.
async fn client_loop(
    mut client: Client,
    workload: Workload,
    seed: u64,
    until: Instant,
) -> Vec<u64> {
    let mut rng = Rng(seed | 1);
    let filter_base = format!("{TABLE}/rows?limit=20&filter=");
    let mut latencies = Vec::with_capacity(16_384);
    while Instant::now() < until {
        let start = Instant::now();
        let (status, body) = match workload {
            Workload::PointRead => {
                let id = rng.below(ROWS) + 1;
                client
                    .request("GET", &format!("{TABLE}/rows/{id}"), None)
                    .await
            }
            Workload::Insert => {
                let category = rng.below(CATEGORIES);
                let body = format!(
                    r#"{{"values":{{"name":"bench-{category}","category":{category},"price":{}.5}}}}"#,
                    rng.below(1000)
                );
                client
                    .request("POST", &format!("{TABLE}/rows"), Some(&body))
                    .await
            }
            Workload::FilteredList => {
                // [{"column":"category","op":"eq","value":N}], percent-encoded.
                let category = rng.below(CATEGORIES);
                let path = format!(
                    "{filter_base}%5B%7B%22column%22%3A%22category%22%2C%22op%22%3A%22eq%22%2C%22value%22%3A{category}%7D%5D"
                );
                client.request("GET", &path, None).await
            }
        };
        latencies.push(start.elapsed().as_nanos() as u64);
        assert!(
            status == 200 || status == 201,
            "{} answered {status}: {body}",
            workload.name()
        );
    }
    latencies
}

async fn measure(server: &Server, workload: Workload, clients: usize, secs: f64) -> Figures {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect(server.port, server.token.clone()).await);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(client_loop(
                c,
                workload,
                0x9e37_79b9 * (i as u64 + 1),
                until,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1e6;
    Figures {
        requests_per_sec: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
    }
}

/// Creates and fills `items` through the SQL and tables APIs.
async fn seed(server: &Server) {
    let mut admin = Client::connect(server.port, server.token.clone()).await;
    let create = r#"{"name":"items","columns":[
        {"name":"id","type":"INTEGER","primary_key":true},
        {"name":"name","type":"TEXT","not_null":true},
        {"name":"category","type":"INTEGER","not_null":true},
        {"name":"price","type":"REAL"}]}"#;
    let (status, body) = admin
        .request("POST", "/api/v1/databases/default/tables", Some(create))
        .await;
    assert_eq!(status, 201, "create table: {body}");
    let (status, body) = admin
        .request(
            "POST",
            &format!("{TABLE}/indexes"),
            Some(r#"{"name":"items_by_category","columns":["category"]}"#),
        )
        .await;
    assert_eq!(status, 201, "create index: {body}");
    let fill = format!(
        r#"{{"sql":"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {ROWS}) INSERT INTO items (id, name, category, price) SELECT x, 'item-' || x, x % {CATEGORIES}, x * 0.25 FROM n"}}"#
    );
    let (status, body) = admin
        .request("POST", "/api/v1/sql/execute", Some(&fill))
        .await;
    assert_eq!(status, 200, "seed: {body}");
    let (status, body) = admin
        .request("POST", &format!("{TABLE}/analyze"), None)
        .await;
    assert_eq!(status, 200, "analyze: {body}");
}

fn driver() {
    // Clients on core 1, the server child on core 0.
    let _ = Command::new("taskset")
        .args(["-pc", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let clients = env_usize("REST_BENCH_CLIENTS", 8);
    let runs = env_usize("REST_BENCH_RUNS", 5);
    let secs = env_usize("REST_BENCH_SECS", 3) as f64;
    println!(
        "rest: {clients} keep-alive clients, {runs} runs of {secs} s per workload, {ROWS} seeded rows"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // (server, workload, label): server 1 is the baseline without the change log.
    let workloads = [
        (0, Workload::PointRead, Workload::PointRead.name()),
        (0, Workload::Insert, Workload::Insert.name()),
        (1, Workload::Insert, "insert, no change log"),
        (0, Workload::FilteredList, Workload::FilteredList.name()),
    ];
    let mut results: Vec<Vec<Figures>> = vec![Vec::new(); workloads.len()];
    // One server of each kind for all runs (one runs while the other idles); workloads
    // interleave so that drift on the shared machine spreads over all of them. Inserts grow the
    // table by a few percent per run.
    let servers = [Server::spawn(true), Server::spawn(false)];
    for server in &servers {
        runtime.block_on(seed(server));
    }
    for run in 0..runs {
        for (i, (server, workload, label)) in workloads.iter().enumerate() {
            let f = runtime.block_on(measure(&servers[*server], *workload, clients, secs));
            println!(
                "  run {} {:<30} {:>9.0} req/s  p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms",
                run + 1,
                label,
                f.requests_per_sec,
                f.p50_ms,
                f.p95_ms,
                f.p99_ms
            );
            results[i].push(f);
        }
    }
    drop(servers);
    let median = |v: &[Figures], f: fn(&Figures) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    println!("\nmedians of {runs} runs ({clients} clients):");
    println!(
        "  {:<30} {:>10} {:>9} {:>9} {:>9}",
        "workload", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for ((_, _, label), figures) in workloads.iter().zip(&results) {
        println!(
            "  {:<30} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            label,
            median(figures, |f| f.requests_per_sec),
            median(figures, |f| f.p50_ms),
            median(figures, |f| f.p95_ms),
            median(figures, |f| f.p99_ms)
        );
    }
    let rate = |i: usize| median(&results[i], |f| f.requests_per_sec);
    println!(
        "\ninsert req/s with the change log / without: {:.2}",
        rate(1) / rate(2)
    );
}
