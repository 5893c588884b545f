//! Counts, from a database's WAL-index (the `-shm` file, format documented at
//! <https://www.sqlite.org/walformat.html>), the pages whose newest version is in the WAL but
//! not yet in the database file: the pages a checkpoint still has to write back, which is what
//! RustyDB reports as the buffer pool's dirty pages. The index header is read by `wal`; this
//! adds the page-number arrays that follow it.

use std::collections::HashSet;
use std::path::Path;

/// Bytes of the WAL-index header (see `wal`), where the first block's page numbers begin.
const HEADER: usize = 136;
/// Page numbers in the first index block (which also holds the header) and in later ones.
const FIRST_BLOCK_FRAMES: u32 = 4062;
const BLOCK_FRAMES: u32 = 4096;
const BLOCK_BYTES: usize = 32768;

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    // The WAL-index is shared memory in the host's byte order.
    Some(u32::from_ne_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

/// Byte offset of frame `frame`'s page number (frames count from 1).
fn page_number_offset(frame: u32) -> usize {
    if frame <= FIRST_BLOCK_FRAMES {
        HEADER + (frame as usize - 1) * 4
    } else {
        let after = (frame - FIRST_BLOCK_FRAMES - 1) as usize;
        let block = 1 + after / BLOCK_FRAMES as usize;
        block * BLOCK_BYTES + (after % BLOCK_FRAMES as usize) * 4
    }
}

/// Distinct pages in the WAL frames after the last checkpointed one (`nBackfill`) up to the
/// last committed one (`mxFrame`). `None` when the WAL-index kept changing under five reads (a
/// writer was updating it); 0 when the database has no WAL-index (no WAL in use).
pub fn uncheckpointed_pages(shm: &Path) -> Option<u64> {
    (0..5).find_map(|_| read_once(shm))
}

fn read_once(shm: &Path) -> Option<u64> {
    let bytes = match std::fs::read(shm) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(0),
        Err(_) => return None,
    };
    if bytes.len() < HEADER {
        return Some(0);
    }
    let index = super::wal::parse_index(&bytes)?;
    let mut pages = HashSet::new();
    for frame in index.backfilled.saturating_add(1)..=index.max_frame {
        pages.insert(u32_at(&bytes, page_number_offset(frame))?);
    }
    Some(pages.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_number_offsets_follow_the_documented_blocks() {
        assert_eq!(page_number_offset(1), 136);
        assert_eq!(page_number_offset(4062), 136 + 4061 * 4);
        assert_eq!(page_number_offset(4063), 32768);
        assert_eq!(page_number_offset(4063 + 4096), 2 * 32768);
    }

    #[test]
    fn counts_pages_written_since_the_last_checkpoint() {
        let dir = tempfile_dir();
        let path = dir.join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let shm = dir.join("t.db-shm");
        conn.execute_batch("CREATE TABLE t(a)").unwrap();
        let after_create = uncheckpointed_pages(&shm).unwrap();
        assert!(after_create >= 1, "{after_create}");
        // Rewriting the same page adds frames, not pages.
        for i in 0..20 {
            conn.execute("INSERT INTO t VALUES (?)", [i]).unwrap();
        }
        let small = uncheckpointed_pages(&shm).unwrap();
        assert!(small <= after_create + 1, "{small}");
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT randomblob(500) FROM n",
        )
        .unwrap();
        let big = uncheckpointed_pages(&shm).unwrap();
        assert!(big > 200, "{big}");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert_eq!(uncheckpointed_pages(&shm), Some(0));
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rustydb-wal-index-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
