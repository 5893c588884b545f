//! The change log: the events of durable topics (row and schema changes) kept on disk, in
//! `changes.db` beside `system.db`. The bus writes a batch here before any subscriber can see
//! it, so a subscriber that falls behind the in-memory ring reads on from the log instead of
//! losing events; only what retention removed is lost, and the subscriber is told exactly how
//! much. Each topic's newest sequence and the log's epoch are stored too, so sequences go on
//! across restarts and a client's `last_sequence` stays meaningful.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::Event;
use super::config::ChangesConfig;
use crate::error::{Error, Result};
use crate::sync::lock;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    message_type TEXT NOT NULL,
    frame TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (topic, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    head INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// A pruning pass removes down to this share of a limit, so a full log is not pruned again at
/// every append.
const PRUNE_TO_PERCENT: u64 = 90;

/// One event read back from the log.
#[derive(Debug)]
pub struct Stored {
    pub sequence: u64,
    pub message_type: String,
    /// The complete WebSocket payload, exactly as first sent.
    pub frame: String,
}

/// What the log holds for one topic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub events: u64,
    pub bytes: u64,
}

pub struct ChangeLog {
    /// Appends and pruning; the bus serializes a topic's publishers, so this is rarely
    /// contended.
    writer: Mutex<Connection>,
    /// Catch-up reads of lagging subscribers, beside the writer (WAL lets them overlap).
    reader: Mutex<Connection>,
    retention: ChangesConfig,
    epoch: String,
    kept: Mutex<HashMap<String, Kept>>,
}

impl ChangeLog {
    /// Opens (creating if needed) `changes.db` in `data_dir`, applying retention at once.
    pub fn open(data_dir: &Path, retention: ChangesConfig) -> Result<ChangeLog> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("changes.db");
        let writer = Connection::open(&path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // Same durability as the user databases: a commit survives a process crash; the last
        // commits may go with the machine, as theirs would.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        writer.execute_batch(SCHEMA)?;
        let epoch: String = match writer
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .optional()?
        {
            Some(epoch) => epoch,
            None => {
                let epoch = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
                writer.execute(
                    "INSERT INTO meta (key, value) VALUES ('epoch', ?1)",
                    params![epoch],
                )?;
                epoch
            }
        };
        let mut kept = HashMap::new();
        {
            let mut stmt = writer.prepare(
                "SELECT topic, count(*), total(length(frame)) FROM events GROUP BY topic",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, f64>(2)?,
                ))
            })?;
            for row in rows {
                let (topic, events, bytes) = row?;
                kept.insert(
                    topic,
                    Kept {
                        events: events as u64,
                        bytes: bytes as u64,
                    },
                );
            }
        }
        let reader = Connection::open(&path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let log = ChangeLog {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            retention,
            epoch,
            kept: Mutex::new(kept),
        };
        log.prune_expired()?;
        Ok(log)
    }

    /// The epoch the log's sequences are counted in: the same across restarts, new when the
    /// log is new.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The newest sequence ever written for `topic` (0 before the first), pruned or not.
    pub fn head(&self, topic: &str) -> Result<u64> {
        let head: Option<i64> = lock(&self.reader)
            .query_row(
                "SELECT head FROM topics WHERE topic = ?1",
                params![topic],
                |r| r.get(0),
            )
            .optional()?;
        Ok(head.unwrap_or(0) as u64)
    }

    /// What the log holds for `topic` now.
    pub fn kept(&self, topic: &str) -> Kept {
        lock(&self.kept).get(topic).copied().unwrap_or_default()
    }

    /// Writes `events` (consecutive, ascending) in one transaction, then applies the count and
    /// size limits.
    pub fn append(&self, topic: &str, events: &[Arc<Event>]) -> Result<()> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let now = chrono::Utc::now().timestamp();
        let mut conn = lock(&self.writer);
        let tx = conn.transaction()?;
        let mut bytes = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO events (topic, sequence, message_type, frame, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for event in events {
                let frame = event.frame.text_payload();
                bytes += frame.len() as u64;
                insert.execute(params![
                    topic,
                    event.sequence as i64,
                    event.message_type,
                    frame,
                    now
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO topics (topic, head) VALUES (?1, ?2)
             ON CONFLICT (topic) DO UPDATE SET head = excluded.head",
            params![topic, last.sequence as i64],
        )?;
        tx.commit()?;
        let kept = {
            let mut all = lock(&self.kept);
            let kept = all.entry(topic.to_string()).or_default();
            kept.events += events.len() as u64;
            kept.bytes += bytes;
            *kept
        };
        if kept.events > self.retention.retention_events
            || kept.bytes > self.retention.retention_bytes
        {
            self.prune(&conn, topic, kept)?;
        }
        Ok(())
    }

    /// Up to `max` events of `topic` after sequence `after`, oldest first.
    pub fn read_after(&self, topic: &str, after: u64, max: usize) -> Result<Vec<Stored>> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT sequence, message_type, frame FROM events
             WHERE topic = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![topic, after as i64, max.min(i64::MAX as usize) as i64],
            |r| {
                Ok(Stored {
                    sequence: r.get::<_, i64>(0)? as u64,
                    message_type: r.get(1)?,
                    frame: r.get(2)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The oldest sequence kept for `topic`.
    pub fn oldest(&self, topic: &str) -> Result<Option<u64>> {
        let oldest: Option<i64> = lock(&self.reader).query_row(
            "SELECT min(sequence) FROM events WHERE topic = ?1",
            params![topic],
            |r| r.get(0),
        )?;
        Ok(oldest.map(|s| s as u64))
    }

    /// Applies the age limit every minute until shutdown (appends apply the others).
    pub fn spawn_pruner(self: &Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let log = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = crate::process::shutting_down(&mut shutdown) => break,
                }
                let log = Arc::clone(&log);
                match tokio::task::spawn_blocking(move || log.prune_expired()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "change log pruning failed"),
                    Err(e) => tracing::error!(error = %e, "change log pruning panicked"),
                }
            }
        });
    }

    /// Removes every topic's events older than the retention age.
    pub fn prune_expired(&self) -> Result<()> {
        let cutoff = chrono::Utc::now().timestamp()
            - i64::try_from(self.retention.retention_age.as_secs()).unwrap_or(i64::MAX);
        let conn = lock(&self.writer);
        let topics: Vec<String> = lock(&self.kept).keys().cloned().collect();
        for topic in topics {
            // Sequences grow with time, so the first event young enough bounds what goes; the
            // scan touches only the events it removes.
            let keep_from: Option<i64> = conn
                .query_row(
                    "SELECT sequence FROM events WHERE topic = ?1 AND at >= ?2
                     ORDER BY sequence LIMIT 1",
                    params![topic, cutoff],
                    |r| r.get(0),
                )
                .optional()?;
            self.remove_before(&conn, &topic, keep_from.map_or(i64::MAX, |s| s))?;
        }
        Ok(())
    }

    /// Removes the oldest events of `topic` until it is within both limits (with margin).
    fn prune(&self, conn: &Connection, topic: &str, kept: Kept) -> Result<()> {
        let target_events = self.retention.retention_events * PRUNE_TO_PERCENT / 100;
        let target_bytes = self.retention.retention_bytes * PRUNE_TO_PERCENT / 100;
        let mut excess_events = kept.events.saturating_sub(target_events);
        let mut excess_bytes = kept.bytes.saturating_sub(target_bytes);
        let mut stmt = conn.prepare_cached(
            "SELECT sequence, length(frame) FROM events WHERE topic = ?1 ORDER BY sequence",
        )?;
        let mut rows = stmt.query(params![topic])?;
        let mut keep_from = i64::MAX;
        while let Some(row) = rows.next()? {
            let sequence: i64 = row.get(0)?;
            if excess_events == 0 && excess_bytes == 0 {
                keep_from = sequence;
                break;
            }
            excess_events = excess_events.saturating_sub(1);
            excess_bytes = excess_bytes.saturating_sub(row.get::<_, i64>(1)? as u64);
        }
        drop(rows);
        self.remove_before(conn, topic, keep_from)
    }

    /// Deletes `topic`'s events before sequence `keep_from`, keeping the figures true.
    fn remove_before(&self, conn: &Connection, topic: &str, keep_from: i64) -> Result<()> {
        let (events, bytes): (i64, f64) = conn.query_row(
            "SELECT count(*), total(length(frame)) FROM events
             WHERE topic = ?1 AND sequence < ?2",
            params![topic, keep_from],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if events == 0 {
            return Ok(());
        }
        conn.execute(
            "DELETE FROM events WHERE topic = ?1 AND sequence < ?2",
            params![topic, keep_from],
        )?;
        let mut all = lock(&self.kept);
        let kept = all.entry(topic.to_string()).or_default();
        kept.events = kept.events.saturating_sub(events as u64);
        kept.bytes = kept.bytes.saturating_sub(bytes as u64);
        Ok(())
    }
}
