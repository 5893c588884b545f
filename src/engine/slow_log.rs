//! The slow-query log: statements that ran at least the configured threshold, the newest
//! `capacity` kept in memory.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::types::SlowQuery;
use crate::sync::lock;

pub struct SlowLog {
    pub threshold: Duration,
    capacity: usize,
    /// The last id given, and (user id, entry) pairs, oldest first.
    entries: Mutex<(u64, VecDeque<(String, SlowQuery)>)>,
}

impl SlowLog {
    pub fn new(threshold: Duration, capacity: usize) -> SlowLog {
        SlowLog {
            threshold,
            capacity: capacity.max(1),
            entries: Mutex::new((0, VecDeque::new())),
        }
    }

    pub fn is_slow(&self, took: Duration) -> bool {
        took >= self.threshold
    }

    /// Records an entry, numbering it; the oldest goes when the log is full. Returns the entry
    /// as recorded (with its number), for the caller to announce.
    pub fn record(&self, user_id: &str, mut entry: SlowQuery) -> SlowQuery {
        tracing::warn!(
            sql = %entry.sql,
            user = %entry.user,
            database = %entry.database,
            duration_ms = entry.duration_ms,
            "slow query"
        );
        let mut guard = lock(&self.entries);
        let (next, entries) = &mut *guard;
        *next += 1;
        entry.id = *next;
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back((user_id.to_string(), entry.clone()));
        entry
    }

    /// Newest first, at most `limit`, of the users `keep` accepts (by user id).
    /// The newest `limit` entries `keep` lets through, and how many it lets through in all.
    pub fn newest(&self, limit: usize, keep: impl Fn(&str) -> bool) -> (Vec<SlowQuery>, u64) {
        let entries = lock(&self.entries);
        let mut total = 0;
        let mut page = Vec::with_capacity(limit.min(entries.1.len()));
        for (user_id, e) in entries.1.iter().rev() {
            if keep(user_id) {
                total += 1;
                if page.len() < limit {
                    page.push(e.clone());
                }
            }
        }
        (page, total)
    }
}
