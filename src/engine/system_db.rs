//! `system.db`: the server's own tables (users, roles, keys, audit, settings), migrated in order.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::sync::lock;

/// Schema migrations of `system.db`, applied in order; `PRAGMA user_version` records how many ran.
/// Never edit a released migration; add the next one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_settings.sql"),
    include_str!("migrations/0002_auth.sql"),
    include_str!("migrations/0003_tablespaces.sql"),
    include_str!("migrations/0004_alerts.sql"),
];

/// The server's own database, `system.db` in the data directory.
#[derive(Clone)]
pub struct SystemDb {
    conn: Arc<Mutex<Connection>>,
    in_flight: Arc<AtomicU64>,
}

impl SystemDb {
    /// Opens (creating if needed) `system.db` in WAL mode and applies pending migrations.
    pub fn open(data_dir: &Path) -> Result<SystemDb> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("system.db");
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (version, sql) in (1_i64..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(applied).unwrap_or(0))
        {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(SystemDb {
            conn: Arc::new(Mutex::new(conn)),
            in_flight: Arc::default(),
        })
    }

    /// Runs `f` on the connection off the async runtime.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let in_flight = Arc::clone(&self.in_flight);
        in_flight.fetch_add(1, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the connection itself is still usable.
            let mut guard = lock(&conn);
            f(&mut guard)
        })
        .await;
        in_flight.fetch_sub(1, Ordering::Relaxed);
        result?
    }

    /// Engine calls queued or executing now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The readiness check: the engine answers a real query against the catalog.
    pub async fn check(&self) -> Result<()> {
        self.call(|c| {
            c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
    }
}

/// The embedded SQLite library's version.
pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}
