//! Host figures for the storage routes: disks (sysinfo), block-device counters (/proc/diskstats,
//! as the `disk_io` stream reads them) and this process's I/O counters (/proc/self/io).

use std::path::Path;

use sysinfo::{DiskKind, Disks};

use crate::api::events::DiskIoEvent;
use crate::api::types::{DiskInfo, HostIoCounters, IoRates, ProcessIoCounters};
use crate::host::diskstats;

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
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
            let (total, available) = (d.total_space(), d.available_space());
            let used = total.saturating_sub(available);
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
                usage_percent: percent(used, total),
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
    fn parses_proc_self_io() {
        let text = "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = parse_proc_io(text).expect("parses");
        assert_eq!((io.rchar, io.wchar, io.syscr, io.syscw), (6976, 12, 10, 2));
        assert_eq!((io.read_bytes, io.write_bytes), (4096, 8192));
        assert!(parse_proc_io("rchar: 1\n").is_none());
    }
}
