//! Reading SQLite's WAL state without running a checkpoint, from the two places SQLite keeps it
//! (https://www.sqlite.org/walformat.html):
//! - the `-wal` file header (32 bytes, big-endian): magic, format, page size, checkpoint sequence;
//! - the WAL-index header at the start of the `-shm` file (native byte order): two copies of the
//!   `WalIndexHdr` (48 bytes each), then `WalCkptInfo` with `nBackfill` and the reader marks.
//!
//! The `-shm` file is shared memory that connections update in place. SQLite itself reads the
//! header copies and trusts them only when both match; so does this, retrying a few times.

use std::io::Read;
use std::path::Path;

/// The first 32 bytes of a `-wal` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    pub page_size: u32,
    pub checkpoint_sequence: u32,
}

/// What the WAL-index says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalIndex {
    /// `mxFrame`: the last valid frame of the log (committed transactions).
    pub max_frame: u32,
    /// `nPage`: database size in pages as of the last commit.
    pub database_pages: u32,
    /// `nBackfill`: frames already copied back into the database file.
    pub backfilled: u32,
    /// `aReadMark[0..5]` that are set (not `READMARK_NOT_USED`). A mark outlives its reader until
    /// the slot is reused; whether a reader holds it is a lock, not in the file.
    pub read_marks: Vec<u32>,
}

const WAL_MAGIC: [u32; 2] = [0x377f_0682, 0x377f_0683];
const WAL_INDEX_VERSION: u32 = 3_007_000;
const READMARK_NOT_USED: u32 = 0xffff_ffff;
/// Two header copies (2 x 48) and `WalCkptInfo` (40).
const WAL_INDEX_PREFIX: usize = 136;

fn read_prefix(path: &Path, len: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    std::fs::File::open(path)
        .ok()?
        .take(len as u64)
        .read_to_end(&mut buf)
        .ok()?;
    (buf.len() == len).then_some(buf)
}

/// The `-wal` file's header; `None` when the file is missing, empty or not a WAL.
pub fn read_header(wal: &Path) -> Option<WalHeader> {
    parse_header(&read_prefix(wal, 32)?)
}

pub fn parse_header(bytes: &[u8]) -> Option<WalHeader> {
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
    if bytes.len() < 32 || !WAL_MAGIC.contains(&be(0)) {
        return None;
    }
    Some(WalHeader {
        page_size: be(8),
        checkpoint_sequence: be(12),
    })
}

/// The WAL-index of a database's `-shm` file; `None` when it is missing, not initialised, or
/// kept changing under five reads in a row.
pub fn read_index(shm: &Path) -> Option<WalIndex> {
    (0..5).find_map(|_| parse_index(&read_prefix(shm, WAL_INDEX_PREFIX)?))
}

pub fn parse_index(bytes: &[u8]) -> Option<WalIndex> {
    if bytes.len() < WAL_INDEX_PREFIX {
        return None;
    }
    let ne = |i: usize| u32::from_ne_bytes(bytes[i..i + 4].try_into().unwrap_or_default());
    // A torn read (a writer updating the header meanwhile) shows as two different copies.
    if bytes[0..48] != bytes[48..96] || ne(0) != WAL_INDEX_VERSION || bytes[12] != 1 {
        return None;
    }
    Some(WalIndex {
        max_frame: ne(16),
        database_pages: ne(20),
        backfilled: ne(96),
        read_marks: (0..5)
            .map(|i| ne(100 + 4 * i))
            .filter(|&m| m != READMARK_NOT_USED)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(max_frame: u32, backfilled: u32) -> Vec<u8> {
        let mut hdr = vec![0u8; 48];
        hdr[0..4].copy_from_slice(&WAL_INDEX_VERSION.to_ne_bytes());
        hdr[12] = 1;
        hdr[16..20].copy_from_slice(&max_frame.to_ne_bytes());
        hdr[20..24].copy_from_slice(&7u32.to_ne_bytes());
        let mut bytes = [hdr.clone(), hdr].concat();
        bytes.extend_from_slice(&backfilled.to_ne_bytes());
        for mark in [
            0,
            max_frame,
            READMARK_NOT_USED,
            READMARK_NOT_USED,
            READMARK_NOT_USED,
        ] {
            bytes.extend_from_slice(&mark.to_ne_bytes());
        }
        bytes.resize(WAL_INDEX_PREFIX, 0);
        bytes
    }

    #[test]
    fn reads_the_index_header_and_unused_marks_are_dropped() {
        let parsed = parse_index(&index(12, 4)).expect("valid");
        assert_eq!(parsed.max_frame, 12);
        assert_eq!(parsed.backfilled, 4);
        assert_eq!(parsed.database_pages, 7);
        assert_eq!(parsed.read_marks, vec![0, 12]);
    }

    #[test]
    fn a_torn_or_uninitialised_index_is_refused() {
        let mut torn = index(12, 4);
        torn[16] = 13;
        assert_eq!(parse_index(&torn), None);
        let mut uninit = index(12, 4);
        uninit[12] = 0;
        uninit[60] = 0;
        assert_eq!(parse_index(&uninit), None);
        assert_eq!(parse_index(&[0u8; 10]), None);
    }

    #[test]
    fn reads_the_wal_file_header() {
        let mut bytes = vec![0u8; 32];
        bytes[0..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
        bytes[8..12].copy_from_slice(&4096u32.to_be_bytes());
        bytes[12..16].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(
            parse_header(&bytes),
            Some(WalHeader {
                page_size: 4096,
                checkpoint_sequence: 3
            })
        );
        bytes[0] = 0;
        assert_eq!(parse_header(&bytes), None);
    }
}
