//! Logging: human-readable by default, one JSON object per line with `--log-format json`.
//! `RUST_LOG` sets the initial filter (default `info`); the filter can be replaced at run time
//! through `PUT /api/v1/system/log-filter`, hence the reload layer.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

use crate::sync::lock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

/// Reads and replaces the filter of the installed subscriber.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<(String, Option<DateTime<Utc>>)>,
    /// Keeps a subscriber alive when none was installed globally (tests, embedding), so the
    /// handle stays usable.
    _detached: Option<Box<dyn tracing::Subscriber + Send + Sync>>,
}

impl LogControl {
    /// The filter in force and when it was last changed through the API.
    pub fn current(&self) -> (String, Option<DateTime<Utc>>) {
        self.lock().clone()
    }

    /// Parses and installs a new filter; on a parse error the old filter stays.
    pub fn set(&self, directives: &str) -> Result<(String, DateTime<Utc>), String> {
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        let text = filter.to_string();
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        let now = Utc::now();
        *self.lock() = (text.clone(), Some(now));
        Ok((text, now))
    }

    /// A control over a subscriber that is not the global one.
    pub fn detached() -> LogControl {
        let (layer, handle) = reload::Layer::new(EnvFilter::new("info"));
        let subscriber = Registry::default().with(layer);
        LogControl::new(handle, "info".into(), Some(Box::new(subscriber)))
    }

    fn new(
        handle: reload::Handle<EnvFilter, Registry>,
        text: String,
        detached: Option<Box<dyn tracing::Subscriber + Send + Sync>>,
    ) -> LogControl {
        LogControl {
            handle,
            current: Mutex::new((text, None)),
            _detached: detached,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (String, Option<DateTime<Utc>>)> {
        lock(&self.current)
    }
}

/// Installs the global subscriber. If one is already installed (tests), that one stays and the
/// returned control is detached.
pub fn init(format: LogFormat) -> LogControl {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = filter.to_string();
    let (filter_layer, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Human => fmt::layer().boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).boxed(),
    };
    match Registry::default()
        .with(filter_layer)
        .with(output)
        .try_init()
    {
        Ok(()) => LogControl::new(handle, text, None),
        Err(_) => LogControl::detached(),
    }
}
