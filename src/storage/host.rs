//! Host figures for the storage routes: disks (sysinfo), block-device counters (/proc/diskstats,
//! as the `disk_io` stream reads them) and this process's I/O counters (/proc/self/io).

use std::path::Path;

use sysinfo::{DiskKind, Disks};

use crate::api::events::DiskIoEvent;
use crate::api::types::{DiskInfo, HostIoCounters, IoRates, ProcessIoCounters};
use crate::host::diskstats;

/// A filesystem's space as `df` reports it: `used` is what files hold (blocks minus free
/// blocks), `available` what an unprivileged user may still write; the blocks reserved for root
/// are in neither, so `used + available` can be less than `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    pub total: u64,
    pub used: u64,
    pub available: u64,
}

impl Space {
    /// statvfs of the filesystem holding `path` (blocking).
    pub(crate) fn of(path: &Path) -> Option<Space> {
        let s = rustix::fs::statvfs(path).ok()?;
        Some(Space::from_blocks(
            s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail,
        ))
    }

    fn from_blocks(block: u64, blocks: u64, free: u64, available: u64) -> Space {
        Space {
            total: blocks.saturating_mul(block),
            used: blocks.saturating_sub(free).saturating_mul(block),
            available: available.saturating_mul(block),
        }
    }

    /// `df`'s Use%: used over what users can have (used + available), not over the total.
    pub(crate) fn percent(&self) -> f64 {
        let usable = self.used.saturating_add(self.available);
        if usable == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / usable as f64
        }
    }
}

/// The mounted disks (blocking); the one whose mount point is the longest prefix of `data_dir`
/// is marked as holding it. `None` where sysinfo cannot list disks.
pub(crate) fn disks(data_dir: &Path) -> Option<Vec<DiskInfo>> {
    let disks = Disks::new_with_refreshed_list().ok()?;
    let data_dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let holder = disks
        .iter()
        .filter(|d| data_dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().components().count())
        .map(|d| d.mount_point().to_path_buf());
    let list = disks
        .iter()
        .map(|d| {
            let space = Space::of(d.mount_point()).unwrap_or(Space {
                total: d.total_space(),
                used: d.total_space().saturating_sub(d.available_space()),
                available: d.available_space(),
            });
            let (total, used, available) = (space.total, space.used, space.available);
            let usage = d.usage();
            DiskInfo {
                name: d.name().to_string_lossy().into_owned(),
                mount_point: d.mount_point().display().to_string(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                kind: match d.kind() {
                    DiskKind::HDD => "HDD".into(),
                    DiskKind::SSD => "SSD".into(),
                    DiskKind::Unknown(_) => "unknown".into(),
                },
                total_bytes: total,
                available_bytes: available,
                used_bytes: used,
                usage_percent: space.percent(),
                removable: d.is_removable(),
                read_only: d.is_read_only(),
                total_read_bytes: usage.total_read_bytes,
                total_written_bytes: usage.total_written_bytes,
                holds_data_directory: holder.as_deref() == Some(d.mount_point()),
            }
        })
        .collect();
    Some(list)
}

/// Whole-disk counters since boot (blocking).
pub(crate) fn host_counters() -> Option<HostIoCounters> {
    let c = diskstats::read()?;
    Some(HostIoCounters {
        reads: c.reads,
        read_bytes: c.sectors_read * 512,
        read_time_ms: c.ms_reading,
        writes: c.writes,
        written_bytes: c.sectors_written * 512,
        write_time_ms: c.ms_writing,
    })
}

/// Host rates over `interval`, computed by the `disk_io` sampler.
pub(crate) async fn host_rates(interval: std::time::Duration) -> Option<IoRates> {
    let mut sampler = tokio::task::spawn_blocking(diskstats::DiskSampler::new)
        .await
        .ok()??;
    tokio::time::sleep(interval).await;
    let DiskIoEvent::IoStats(s) = tokio::task::spawn_blocking(move || sampler.sample())
        .await
        .ok()??;
    Some(IoRates {
        reads_per_sec: s.reads_per_sec,
        writes_per_sec: s.writes_per_sec,
        read_throughput_mbps: s.read_throughput_mbps,
        write_throughput_mbps: s.write_throughput_mbps,
        avg_read_latency_us: s.avg_read_latency_us,
        avg_write_latency_us: s.avg_write_latency_us,
    })
}

/// This process's counters (blocking).
pub(crate) fn process_counters() -> Option<ProcessIoCounters> {
    parse_proc_io(&std::fs::read_to_string("/proc/self/io").ok()?)
}

pub(crate) fn parse_proc_io(text: &str) -> Option<ProcessIoCounters> {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().parse::<u64>().ok())?
        })
    };
    Some(ProcessIoCounters {
        rchar: field("rchar")?,
        wchar: field("wchar")?,
        syscr: field("syscr")?,
        syscw: field("syscw")?,
        read_bytes: field("read_bytes")?,
        write_bytes: field("write_bytes")?,
        cancelled_write_bytes: field("cancelled_write_bytes")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_computed_as_df_does() {
        // 1,000 blocks of 4 KiB, 600 free of which 550 available (50 reserved for root).
        let s = Space::from_blocks(4096, 1000, 600, 550);
        assert_eq!(
            (s.total, s.used, s.available),
            (4_096_000, 1_638_400, 2_252_800)
        );
        // 400 used of the 950 users can have: 42.1 %, not (1000 - 550) / 1000 = 45 %.
        assert!((s.percent() - 400.0 * 100.0 / 950.0).abs() < 1e-9);
        assert_eq!(Space::from_blocks(4096, 0, 0, 0).percent(), 0.0);
    }

    #[test]
    fn the_data_directory_s_filesystem_matches_statvfs() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Space::of(dir.path()).expect("statvfs");
        assert!(
            s.total > 0 && s.used <= s.total && s.available <= s.total,
            "{s:?}"
        );
    }

    #[test]
    fn parses_proc_self_io() {
        let text = "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = parse_proc_io(text).expect("parses");
        assert_eq!((io.rchar, io.wchar, io.syscr, io.syscw), (6976, 12, 10, 2));
        assert_eq!((io.read_bytes, io.write_bytes), (4096, 8192));
        assert!(parse_proc_io("rchar: 1\n").is_none());
    }
}
