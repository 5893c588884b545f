//! Metric families and samples, the sources that produce them, the collector that renders them for `/metrics`, and the metrics alert rules may name.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::BoxFuture;

use crate::api::TOPICS;
use crate::engine::SystemDb;
use crate::engine::catalog::Engine;
use crate::engine::transactions::Transactions;
use crate::events::Bus;
use crate::events::connections::Registry;
use crate::host::Host;
use crate::process::Process;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One labelled value of a family.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A named metric with its samples (Prometheus: one `# HELP`/`# TYPE` block).
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn value(name: &'static str, kind: Kind, help: &'static str, value: f64) -> Family {
        Family::new(name, kind, help).with(Vec::new(), value)
    }

    pub fn with(mut self, labels: Vec<(&'static str, String)>, value: f64) -> Family {
        self.samples.push(Sample { labels, value });
        self
    }
}

/// A metric alert rules can watch: a short name for a family of the registry; its value is the
/// sum of the family's samples.
pub struct AlertMetricDef {
    pub name: &'static str,
    pub family: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
}

const fn def(
    name: &'static str,
    family: &'static str,
    description: &'static str,
    unit: &'static str,
) -> AlertMetricDef {
    AlertMetricDef {
        name,
        family,
        description,
        unit,
    }
}

pub const ALERT_METRICS: &[AlertMetricDef] = &[
    def(
        "cpu_usage",
        HOST_CPU,
        "Host CPU use, percent of all cores",
        "percent",
    ),
    def("memory_usage", HOST_MEM_USED, "Host memory in use", "bytes"),
    def(
        "memory_percent",
        HOST_MEM_PERCENT,
        "Host memory in use, percent of total",
        "percent",
    ),
    def(
        "process_cpu_usage",
        PROC_CPU_PERCENT,
        "Server process CPU use, percent of one core",
        "percent",
    ),
    def(
        "process_memory_bytes",
        PROC_RSS,
        "Server process resident memory",
        "bytes",
    ),
    def(
        "ws_connections",
        WS_CONNECTIONS,
        "Open WebSocket connections",
        "connections",
    ),
    def(
        "http_requests_in_flight",
        HTTP_IN_FLIGHT,
        "HTTP requests being served now",
        "requests",
    ),
    def(
        "active_transactions",
        TX_ACTIVE,
        "Open explicit transactions",
        "transactions",
    ),
    def(
        "engine_calls_in_flight",
        ENGINE_CALLS,
        "Engine calls executing or queued now (system.db and user databases)",
        "calls",
    ),
    def("databases", DATABASES, "User databases", "databases"),
    def(
        "database_size_bytes",
        DB_SIZE,
        "Size of all user database files, WAL included",
        "bytes",
    ),
];

const HOST_CPU: &str = "rustydb_host_cpu_usage_percent";
const HOST_MEM_USED: &str = "rustydb_host_memory_used_bytes";
const HOST_MEM_PERCENT: &str = "rustydb_host_memory_used_percent";
const PROC_CPU_PERCENT: &str = "rustydb_process_cpu_usage_percent";
const PROC_RSS: &str = "process_resident_memory_bytes";
const WS_CONNECTIONS: &str = "rustydb_ws_connections";
const HTTP_IN_FLIGHT: &str = "rustydb_http_requests_in_flight";
const TX_ACTIVE: &str = "rustydb_transactions_active";
const ENGINE_CALLS: &str = "rustydb_engine_calls_in_flight";
const DATABASES: &str = "rustydb_databases";
const DB_SIZE: &str = "rustydb_database_size_bytes";

/// The alert metric of this name.
pub fn alert_metric(name: &str) -> Option<&'static AlertMetricDef> {
    ALERT_METRICS.iter().find(|m| m.name == name)
}

/// The value of an alert metric in a collection; `None` when its source gave no sample.
pub fn alert_value(families: &[Family], metric: &str) -> Option<f64> {
    let def = alert_metric(metric)?;
    let family = families.iter().find(|f| f.name == def.family)?;
    (!family.samples.is_empty()).then(|| family.samples.iter().map(|s| s.value).sum())
}

/// Families measured by another layer, added to every collection (the composition root
/// registers them, so this registry depends on no subsystem).
pub trait Source: Send + Sync {
    fn collect(&self) -> BoxFuture<'_, Vec<Family>>;
}

/// What the registry measures, as handles passed by the server.
pub struct Collector {
    pub process: Arc<Process>,
    pub bus: Arc<Bus>,
    pub connections: Arc<Registry>,
    pub engine: Arc<Engine>,
    pub system_db: SystemDb,
    pub transactions: Arc<Transactions>,
    pub host: Arc<Host>,
    pub sources: Vec<Arc<dyn Source>>,
}

impl Collector {
    /// Measures every metric now. Host figures need a blocking /proc read.
    pub async fn collect(&self) -> Vec<Family> {
        let mut out = own_families(self).await;
        for source in &self.sources {
            out.extend(source.collect().await);
        }
        out
    }
}

async fn own_families(state: &Collector) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let mut out = Vec::new();

    let stats = &state.process.stats;
    out.push(Family::value(
        "rustydb_http_requests_total",
        Counter,
        "HTTP requests received",
        stats.total.load(Ordering::Relaxed) as f64,
    ));
    out.push(Family::value(
        HTTP_IN_FLIGHT,
        Gauge,
        "HTTP requests being served now",
        stats.in_flight.load(Ordering::Relaxed) as f64,
    ));
    let mut responses = Family::new(
        "rustydb_http_responses_total",
        Counter,
        "HTTP responses by status class",
    );
    for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        responses = responses.with(vec![("class", (*class).into())], stats.class(i) as f64);
    }
    out.push(responses);
    out.push(Family::value(
        "rustydb_uptime_seconds",
        Gauge,
        "Seconds since the process started",
        state.process.started.elapsed().as_secs_f64(),
    ));

    let mut published = Family::new(
        "rustydb_bus_events_published_total",
        Counter,
        "Events published on each bus topic (the topic's head sequence)",
    );
    let mut subscribers = Family::new(
        "rustydb_bus_subscribers",
        Gauge,
        "Live subscribers of each bus topic",
    );
    for topic in TOPICS.iter().filter_map(|t| state.bus.topic(t.name)) {
        let labels = vec![("topic", topic.name().to_string())];
        published = published.with(labels.clone(), topic.head() as f64);
        subscribers = subscribers.with(labels, topic.subscribers() as f64);
    }
    out.push(published);
    out.push(subscribers);

    let registry = &state.connections;
    let connections = registry.list();
    let (sent, received) = connections.iter().fold((0u64, 0u64), |(s, r), c| {
        (
            s + c.messages_sent.load(Ordering::Relaxed),
            r + c.messages_received.load(Ordering::Relaxed),
        )
    });
    out.push(Family::value(
        WS_CONNECTIONS,
        Gauge,
        "Open WebSocket connections",
        connections.len() as f64,
    ));
    out.push(Family::value(
        "rustydb_ws_connections_accepted_total",
        Counter,
        "WebSocket connections accepted since start",
        registry.total_accepted.load(Ordering::Relaxed) as f64,
    ));
    out.push(Family::value(
        "rustydb_graphql_connections",
        Gauge,
        "Open GraphQL WebSocket connections (graphql-transport-ws and legacy graphql-ws)",
        state.process.stats.graphql_sockets.load(Ordering::Relaxed) as f64,
    ));
    out.push(
        Family::new(
            "rustydb_ws_open_connection_messages",
            Gauge,
            "Messages sent and received by the connections open now",
        )
        .with(vec![("direction", "sent".into())], sent as f64)
        .with(vec![("direction", "received".into())], received as f64),
    );

    let databases = state.engine.list();
    let mut size = Family::new(
        DB_SIZE,
        Gauge,
        "Size of each user database file plus its WAL",
    );
    let mut active = Family::new(
        "rustydb_database_active_statements",
        Gauge,
        "Statements and held transactions using each database now",
    );
    let mut engine_calls = state.system_db.in_flight();
    for db in &databases {
        let file_size = |suffix: &str| {
            std::fs::metadata(format!("{}{suffix}", db.path.display())).map_or(0, |m| m.len())
        };
        let labels = vec![("database", db.name.clone())];
        size = size.with(labels.clone(), (file_size("") + file_size("-wal")) as f64);
        let n = db.active.load(Ordering::Acquire);
        engine_calls += n;
        active = active.with(labels, n as f64);
    }
    out.push(Family::value(
        DATABASES,
        Gauge,
        "User databases",
        databases.len() as f64,
    ));
    out.push(size);
    out.push(active);
    out.push(Family::value(
        ENGINE_CALLS,
        Gauge,
        "Engine calls executing or queued now (system.db and user databases)",
        engine_calls as f64,
    ));
    out.push(Family::value(
        TX_ACTIVE,
        Gauge,
        "Open explicit transactions",
        state.transactions.list().len() as f64,
    ));

    let host = Arc::clone(&state.host);
    if let Ok(Some(h)) = tokio::task::spawn_blocking(move || host.sample()).await {
        out.push(Family::value(
            HOST_CPU,
            Gauge,
            "Host CPU use, percent of all cores",
            h.cpu_percent,
        ));
        out.push(Family::value(
            HOST_MEM_USED,
            Gauge,
            "Host memory in use",
            h.memory_used_bytes as f64,
        ));
        out.push(Family::value(
            "rustydb_host_memory_total_bytes",
            Gauge,
            "Host memory installed",
            h.memory_total_bytes as f64,
        ));
        out.push(Family::value(
            HOST_MEM_PERCENT,
            Gauge,
            "Host memory in use, percent of total",
            h.memory_percent(),
        ));
        out.push(Family::value(
            PROC_CPU_PERCENT,
            Gauge,
            "Server process CPU use since the previous sample, percent of one core",
            h.process_cpu_percent,
        ));
        out.push(Family::value(
            "process_cpu_seconds_total",
            Counter,
            "CPU time used by the server process",
            h.process_cpu_seconds,
        ));
        out.push(Family::value(
            PROC_RSS,
            Gauge,
            "Resident memory of the server process",
            h.process_resident_bytes as f64,
        ));
    }

    out
}
