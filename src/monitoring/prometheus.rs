//! `GET /metrics` (declared in `schema/routes/metrics.yaml`): the registry in the Prometheus
//! text exposition format (version 0.0.4). The generated router checks `system:read` and sets the
//! declared content type; this renders the text.

use std::fmt::Write;
use std::sync::Arc;

use super::{Collector, Family, Kind};
use crate::api::runtime::RequestContext;
use crate::api::{ApiError, MetricsApi};

/// The `metrics` subsystem: the scrape, over the server's one metric registry.
pub struct MetricsExposition {
    collector: Arc<Collector>,
}

impl MetricsExposition {
    pub fn new(collector: Arc<Collector>) -> MetricsExposition {
        MetricsExposition { collector }
    }
}

impl MetricsApi for MetricsExposition {
    async fn get_prometheus_metrics(&self, _ctx: RequestContext) -> Result<String, ApiError> {
        let families = self.collector.collect().await;
        render(&families).map_err(ApiError::internal)
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
