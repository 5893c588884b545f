//! SQLite's per-connection page-cache counters (`sqlite3_db_status`), which rusqlite does not
//! wrap. This is the one place in the workspace with `unsafe` code, kept apart so the server
//! crate can `forbid(unsafe_code)`.

use std::os::raw::c_int;

use rusqlite::{Connection, ffi};

/// A counter of `sqlite3_db_status` about the connection's page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheCounter {
    /// Heap bytes used by the connection's page caches (a gauge).
    Used,
    /// Page requests served from the cache.
    Hit,
    /// Page requests that read from the file.
    Miss,
    /// Dirty pages written to the file (or WAL).
    Write,
    /// Dirty pages written in the middle of a transaction because the cache was full.
    Spill,
}

impl CacheCounter {
    fn op(self) -> c_int {
        match self {
            CacheCounter::Used => ffi::SQLITE_DBSTATUS_CACHE_USED,
            CacheCounter::Hit => ffi::SQLITE_DBSTATUS_CACHE_HIT,
            CacheCounter::Miss => ffi::SQLITE_DBSTATUS_CACHE_MISS,
            CacheCounter::Write => ffi::SQLITE_DBSTATUS_CACHE_WRITE,
            CacheCounter::Spill => ffi::SQLITE_DBSTATUS_CACHE_SPILL,
        }
    }
}

/// The counter's current value; with `reset`, a cumulative counter starts again from zero
/// (SQLite resets hit, miss, write and spill; `Used` is a gauge and is not reset).
pub fn cache_counter(
    conn: &Connection,
    counter: CacheCounter,
    reset: bool,
) -> rusqlite::Result<i64> {
    let (mut current, mut highwater): (c_int, c_int) = (0, 0);
    // SAFETY: the handle is valid for the borrow of `conn`, which cannot be used from another
    // thread meanwhile (`Connection` is not `Sync`); sqlite3_db_status only reads the
    // connection's counters and writes the two integers we own.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            conn.handle(),
            counter.op(),
            &mut current,
            &mut highwater,
            c_int::from(reset),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(i64::from(current))
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_with_reads_and_reset() {
        let dir = std::env::temp_dir().join(format!("sqlite-status-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let conn = Connection::open(&dir).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(a); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000)
             INSERT INTO t SELECT randomblob(200) FROM n;",
        )
        .unwrap();
        assert!(cache_counter(&conn, CacheCounter::Used, false).unwrap() > 0);
        assert!(cache_counter(&conn, CacheCounter::Write, false).unwrap() > 0);
        cache_counter(&conn, CacheCounter::Hit, true).unwrap();
        assert_eq!(cache_counter(&conn, CacheCounter::Hit, false).unwrap(), 0);
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap();
        assert!(cache_counter(&conn, CacheCounter::Hit, false).unwrap() > 0);
        drop(conn);
        let _ = std::fs::remove_file(&dir);
    }
}
