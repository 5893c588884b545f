//! Moving a database's file between tablespaces (see `Engine::move_to`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::{Database, Engine};
use crate::error::{Error, Result};
use crate::sync::lock;

impl Engine {
    /// Moves database `name` into the tablespace `tablespace` at `dir` (blocking) and returns the
    /// database in its new place. Refused while a statement or transaction uses it. The WAL is
    /// checkpointed (TRUNCATE) and every connection closed, so the single database file holds
    /// everything; it is renamed, or copied, synced and then removed when `dir` is on another
    /// filesystem. Calls arriving meanwhile are refused (the instance is retired).
    pub fn move_to(&self, name: &str, tablespace: &str, dir: &Path) -> Result<Arc<Database>> {
        let db = self.get(name)?;
        if db.tablespace == tablespace {
            return Err(Error::Conflict(format!(
                "database `{name}` is already in tablespace `{tablespace}`"
            )));
        }
        let target = dir.join(format!("{name}.db"));
        if target.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists",
                target.display()
            )));
        }
        // Retire first, then count users: a call counts itself before it checks `retired`
        // (see `run_as` and `begin`), so either it sees the flag or this sees it.
        if db.retired.swap(true, Ordering::SeqCst) {
            return Err(Error::Conflict(format!("database `{name}` is being moved")));
        }
        let active = db.active.load(Ordering::SeqCst);
        if active > 0 {
            db.retired.store(false, Ordering::SeqCst);
            return Err(Error::Conflict(format!(
                "database `{name}` is in use by {active} statement(s) or transaction(s); retry when idle"
            )));
        }
        match move_file(&db, &target) {
            Ok(()) => {
                let moved = self.new_database(name, tablespace, dir);
                self.lock().insert(name.to_string(), Arc::clone(&moved));
                Ok(moved)
            }
            Err(e) => {
                db.retired.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Empties the WAL into the file, closes every connection, and moves the file to `target`.
fn move_file(db: &Database, target: &Path) -> Result<()> {
    let conn = Connection::open(&db.path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (busy, log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        return Err(Error::Conflict(format!(
            "database `{}`: the WAL could not be emptied ({done} of {log} frames checkpointed); retry",
            db.name
        )));
    }
    // Closed outside the idle lock: closing takes the gauge lock (see `check_out`).
    let idle = std::mem::take(&mut *lock(&db.idle));
    drop(idle);
    // Closing the last connection also removes the -wal and -shm files.
    conn.close().map_err(|(_, e)| e)?;
    let wal = sibling(&db.path, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::Conflict(format!(
            "{} is still in use (another process?)",
            wal.display()
        )));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::DataDir { path, source }
    };
    match std::fs::rename(&db.path, target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            // Another filesystem: copy under a name the scan ignores, sync, then rename into
            // place, so a crash leaves either the old file or both, never a partial `.db`.
            let partial = sibling(target, ".moving");
            let copied = std::fs::copy(&db.path, &partial)
                .and_then(|_| std::fs::File::open(&partial)?.sync_all())
                .and_then(|()| std::fs::rename(&partial, target));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&partial);
                return Err(io(target)(e));
            }
            if let Some(parent) = target.parent() {
                let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
            }
            std::fs::remove_file(&db.path).map_err(io(&db.path))?;
        }
        Err(e) => return Err(io(target)(e)),
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sibling(&db.path, suffix));
    }
    Ok(())
}
