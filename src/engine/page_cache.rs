//! The buffer pool's figures: SQLite keeps one page cache per connection, so the pool of a
//! database is the caches of its open connections. Hits, misses, writes and spills are SQLite's
//! own counters (`sqlite3_db_status`), collected from each connection when a call on it ends;
//! `used` and `capacity` are each connection's figures as of its last call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rustydb_sqlite_status::{CacheCounter, cache_counter};

use crate::engine::catalog::Engine;
use crate::sync::lock;

/// Bytes SQLite counts per cached page beyond the page itself (the page header, the b-tree's
/// per-page state and five pointers, about 256 bytes on 64-bit builds; see
/// `sqlite3PagerMemUsed`). `used_pages` is derived from the cache's bytes with it.
const PAGE_OVERHEAD_BYTES: i64 = 256;

#[derive(Debug, Clone, Copy, Default)]
struct Cached {
    used_bytes: i64,
    capacity_pages: i64,
    page_size: i64,
}

/// The page caches of one database's open connections.
#[derive(Default)]
pub struct PageCache {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    spills: AtomicU64,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Cached>>,
}

/// One connection's place in the figures; dropped with the connection.
pub struct Member {
    id: u64,
    cache: Arc<PageCache>,
}

impl Drop for Member {
    fn drop(&mut self) {
        lock(&self.cache.connections).remove(&self.id);
    }
}

/// A database's (or the whole server's) buffer pool at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub hits: u64,
    pub misses: u64,
    pub writes: u64,
    pub spills: u64,
    /// Pages the caches hold (estimated from their bytes, see `PAGE_OVERHEAD_BYTES`).
    pub used_pages: u64,
    /// Pages the caches may hold (`PRAGMA cache_size` of each open connection).
    pub total_pages: u64,
    /// Those pages' bytes (each connection's capacity times its page size).
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub connections: u64,
}

impl Figures {
    /// Share of page requests served from a cache since the server started; 0 before the first.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }

    pub fn add(&mut self, other: &Figures) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.writes += other.writes;
        self.spills += other.spills;
        self.used_pages += other.used_pages;
        self.total_pages += other.total_pages;
        self.capacity_bytes += other.capacity_bytes;
        self.used_bytes += other.used_bytes;
        self.connections += other.connections;
    }
}

impl PageCache {
    /// Registers a newly opened connection.
    pub fn join(self: &Arc<Self>, conn: &Connection) -> Member {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096);
        let cache_size: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap_or(-2000);
        // A negative cache_size is a budget in KiB, a positive one a number of pages.
        let capacity_pages = if cache_size < 0 {
            cache_size.saturating_neg().saturating_mul(1024) / page_size.max(1)
        } else {
            cache_size
        };
        lock(&self.connections).insert(
            id,
            Cached {
                used_bytes: cache_counter(conn, CacheCounter::Used, false).unwrap_or(0),
                capacity_pages,
                page_size,
            },
        );
        Member {
            id,
            cache: Arc::clone(self),
        }
    }

    /// Collects a connection's counters (resetting them) after a call on it.
    pub fn harvest(&self, member: &Member, conn: &Connection) {
        let take = |counter| cache_counter(conn, counter, true).unwrap_or(0).max(0) as u64;
        self.hits
            .fetch_add(take(CacheCounter::Hit), Ordering::Relaxed);
        self.misses
            .fetch_add(take(CacheCounter::Miss), Ordering::Relaxed);
        self.writes
            .fetch_add(take(CacheCounter::Write), Ordering::Relaxed);
        self.spills
            .fetch_add(take(CacheCounter::Spill), Ordering::Relaxed);
        if let Some(c) = lock(&self.connections).get_mut(&member.id) {
            c.used_bytes = cache_counter(conn, CacheCounter::Used, false).unwrap_or(c.used_bytes);
        }
    }

    pub fn figures(&self) -> Figures {
        let connections = lock(&self.connections);
        let mut f = Figures {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            spills: self.spills.load(Ordering::Relaxed),
            connections: connections.len() as u64,
            ..Figures::default()
        };
        for c in connections.values() {
            // The cache's bytes include one page and the pager itself beyond the cached pages.
            let pages = (c.used_bytes - c.page_size).max(0) / (c.page_size + PAGE_OVERHEAD_BYTES);
            f.used_pages += pages.min(c.capacity_pages).max(0) as u64;
            f.total_pages += c.capacity_pages.max(0) as u64;
            f.capacity_bytes += c.capacity_pages.saturating_mul(c.page_size).max(0) as u64;
            f.used_bytes += c.used_bytes.max(0) as u64;
        }
        f
    }
}

/// The whole server's buffer pool now: the figures of every database, and their dirty pages.
pub fn measure(engine: &Engine) -> (Figures, u64, Vec<(String, Figures, u64)>) {
    let mut total = Figures::default();
    let mut dirty = 0;
    let mut databases = Vec::new();
    for db in engine.list() {
        let (figures, db_dirty) = db.buffer_pool();
        // A WAL-index that kept changing under every read counts as none for this sample.
        let db_dirty = db_dirty.unwrap_or(0);
        total.add(&figures);
        dirty += db_dirty;
        databases.push((db.name.clone(), figures, db_dirty));
    }
    (total, dirty, databases)
}
