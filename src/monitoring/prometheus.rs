//! `GET /metrics`: the registry in the Prometheus text exposition format (version 0.0.4).
//!
//! The route is mounted beside the generated router, not declared in `schema/`: the schema
//! format only describes JSON operations under `/api/`, and Prometheus expects plain text at
//! `/metrics`. It still goes through the same access policy as a generated handler (the
//! operation below, `system:read`), so a scraper authenticates with an API key header
//! (`X-API-Key`) or a bearer token like any other client.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Collector, Family, Kind};
use crate::api::{Access, ApiError, OperationMeta, Permission, runtime};

pub const METRICS_PATH: &str = "/metrics";

/// The route's metadata for the access policy (and its audit of refusals).
pub static METRICS_OPERATION: OperationMeta = OperationMeta {
    id: "get_prometheus_metrics",
    subsystem: "monitoring",
    method: "GET",
    path: METRICS_PATH,
    access: Access::Requires(Permission::SystemRead),
};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router(collector: Arc<Collector>) -> Router {
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .with_state(collector)
}

async fn metrics(State(collector): State<Arc<Collector>>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if let Err(e) = runtime::authorize(&mut parts, &METRICS_OPERATION).await {
        return e.into_response();
    }
    let families = collector.collect().await;
    match render(&families) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Renders families as `# HELP`, `# TYPE` and one `name{labels} value` line per sample.
pub fn render(families: &[Family]) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        writeln!(out, "# HELP {} {}", family.name, escape_help(family.help))?;
        writeln!(out, "# TYPE {} {kind}", family.name)?;
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write!(out, "{name}=\"{}\"", escape_label(value))?;
                }
                out.push('}');
            }
            writeln!(out, " {}", number(sample.value))?;
        }
    }
    Ok(out)
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust prints whole floats without a fraction (`3`), which Prometheus accepts.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::Sample;

    #[test]
    fn renders_help_type_labels_and_escapes() {
        let families = vec![
            Family {
                name: "x_total",
                help: "Things\ncounted",
                kind: Kind::Counter,
                samples: vec![Sample {
                    labels: vec![("topic", "a\"b\\c".into()), ("k", "v".into())],
                    value: 3.0,
                }],
            },
            Family {
                name: "empty",
                help: "No samples, not rendered",
                kind: Kind::Gauge,
                samples: Vec::new(),
            },
            Family {
                name: "g",
                help: "g",
                kind: Kind::Gauge,
                samples: vec![Sample {
                    labels: Vec::new(),
                    value: 0.5,
                }],
            },
        ];
        assert_eq!(
            render(&families).unwrap(),
            "# HELP x_total Things\\ncounted\n# TYPE x_total counter\n\
             x_total{topic=\"a\\\"b\\\\c\",k=\"v\"} 3\n# HELP g g\n# TYPE g gauge\ng 0.5\n"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
