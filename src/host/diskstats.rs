//! Host block-device counters from /proc/diskstats, turned into per-second rates.

use std::time::Instant;

use crate::api::events::DiskIoEvent;
use crate::api::types::IoStats;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub reads: u64,
    pub sectors_read: u64,
    pub ms_reading: u64,
    pub writes: u64,
    pub sectors_written: u64,
    pub ms_writing: u64,
}

/// Sums the counters of whole disks; loop, ram and zram devices and partitions are skipped.
pub fn parse(text: &str, is_disk: impl Fn(&str) -> bool) -> Counters {
    let mut total = Counters::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 11 {
            continue;
        }
        let name = fields[2];
        if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) || !is_disk(name) {
            continue;
        }
        let n = |i: usize| fields[i].parse::<u64>().unwrap_or(0);
        total.reads += n(3);
        total.sectors_read += n(5);
        total.ms_reading += n(6);
        total.writes += n(7);
        total.sectors_written += n(9);
        total.ms_writing += n(10);
    }
    total
}

/// The host's whole-disk counters since boot; `None` where /proc/diskstats cannot be read.
pub fn read() -> Option<Counters> {
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    // Whole disks have a directory in /sys/block; partitions do not.
    Some(parse(&text, |name| {
        std::path::Path::new("/sys/block").join(name).exists()
    }))
}

pub struct DiskSampler {
    last: Counters,
    at: Instant,
}

impl DiskSampler {
    pub fn new() -> Option<DiskSampler> {
        Some(DiskSampler {
            last: read()?,
            at: Instant::now(),
        })
    }

    pub fn sample(&mut self) -> Option<DiskIoEvent> {
        let now = read()?;
        let secs = self.at.elapsed().as_secs_f64().max(0.001);
        self.at = Instant::now();
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let prev = std::mem::replace(&mut self.last, now);
        let (reads, writes) = (d(now.reads, prev.reads), d(now.writes, prev.writes));
        let latency_us = |ms: u64, ops: u64| (ms * 1000).checked_div(ops).unwrap_or(0);
        Some(DiskIoEvent::IoStats(IoStats {
            reads_per_sec: reads as f64 / secs,
            writes_per_sec: writes as f64 / secs,
            read_throughput_mbps: d(now.sectors_read, prev.sectors_read) as f64 * 512.0
                / 1e6
                / secs,
            write_throughput_mbps: d(now.sectors_written, prev.sectors_written) as f64 * 512.0
                / 1e6
                / secs,
            avg_read_latency_us: latency_us(d(now.ms_reading, prev.ms_reading), reads),
            avg_write_latency_us: latency_us(d(now.ms_writing, prev.ms_writing), writes),
            timestamp: chrono::Utc::now().timestamp(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_whole_disks_only() {
        let text = "   7       0 loop0 9 0 9 9 9 0 9 9 0 0 0\n \
                    254       0 vda 412632 16620 25161554 949990 31224 65513 35794944 129143 0 52476 1084303\n \
                    254       1 vda1 5 0 5 5 5 0 5 5 0 0 0\n";
        let c = parse(text, |n| n == "vda");
        assert_eq!(c.reads, 412_632);
        assert_eq!(c.sectors_read, 25_161_554);
        assert_eq!(c.ms_reading, 949_990);
        assert_eq!(c.writes, 31_224);
        assert_eq!(c.sectors_written, 35_794_944);
        assert_eq!(c.ms_writing, 129_143);
    }
}
