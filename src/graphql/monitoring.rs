//! Sources of the monitoring subscriptions: host metrics (the `system_metrics` samples, thinned to
//! the subscriber's interval), disk I/O (/proc/diskstats, read by the subscription at its own
//! interval), storage use (the storage status measurement, repeated at the interval) and the
//! buffer pool (the buffer-pool measurement, repeated at the interval).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, StreamExt};

use super::sources::{Sources, now, seconds, spawned};
use crate::api::ApiError;
use crate::api::graphql::*;
use crate::api::graphql_runtime::{Caller, SourceResult};
use crate::api::types::{
    BufferPoolSample, IoStatistics, StorageUsage, SystemMetricType, SystemMetrics,
    SystemMetricsSample,
};
use crate::engine::page_cache;
use crate::host::diskstats;

/// Samples arrive once a second; one this close to the interval counts as on time.
const SAMPLE_SLACK: Duration = Duration::from_millis(500);

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn system_metrics(
    mut samples: BoxStream<'static, Result<SystemMetrics, ApiError>>,
    args: SystemMetricsArgs,
) -> SourceResult<SystemMetricsSample> {
    let every = seconds("intervalSeconds", args.interval_seconds, 5)?;
    let wanted = args.metric_types;
    let has = move |t: SystemMetricType| wanted.as_ref().is_none_or(|w| w.contains(&t));
    Ok(spawned(move |tx| async move {
        let mut last: Option<Instant> = None;
        while let Some(sample) = samples.next().await {
            let m = match sample {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if last.is_some_and(|at| at.elapsed() + SAMPLE_SLACK < every) {
                continue;
            }
            last = Some(Instant::now());
            let (cpu, memory) = (has(SystemMetricType::Cpu), has(SystemMetricType::Memory));
            let (disk, network) = (has(SystemMetricType::Disk), has(SystemMetricType::Network));
            let sample = SystemMetricsSample {
                cpu_usage: cpu.then_some(m.cpu_usage),
                memory_usage: memory.then(|| int(m.memory_usage)),
                memory_total: m.memory_total.filter(|_| memory).map(int),
                disk_read_bps: disk.then(|| int(m.disk_read_bps)),
                disk_write_bps: disk.then(|| int(m.disk_write_bps)),
                network_rx_bps: network.then(|| int(m.network_rx_bps)),
                network_tx_bps: network.then(|| int(m.network_tx_bps)),
                active_connections: int(m.active_connections),
                active_queries: int(m.active_queries),
                timestamp: now(),
            };
            if tx.send(Ok(sample)).await.is_err() {
                return;
            }
        }
    }))
}

pub(super) fn io_statistics_stream(
    _s: &Sources,
    args: IoStatisticsStreamArgs,
) -> SourceResult<IoStatistics> {
    let every = seconds("intervalSeconds", args.interval_seconds, 10)?;
    let mut last = diskstats::read()
        .ok_or_else(|| ApiError::unavailable("disk I/O cannot be read on this host"))?;
    Ok(spawned(move |tx| async move {
        let mut at = Instant::now();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            let Some(counters) = diskstats::read() else {
                let _ = tx
                    .send(Err(ApiError::unavailable("disk I/O is no longer readable")))
                    .await;
                return;
            };
            let secs = at.elapsed().as_secs_f64().max(0.001);
            at = Instant::now();
            let prev = std::mem::replace(&mut last, counters);
            let d = |a: u64, b: u64| a.saturating_sub(b);
            let (reads, writes) = (
                d(counters.reads, prev.reads),
                d(counters.writes, prev.writes),
            );
            let bytes_read = d(counters.sectors_read, prev.sectors_read) * 512;
            let bytes_written = d(counters.sectors_written, prev.sectors_written) * 512;
            let latency_us = |ms: u64, ops: u64| int((ms * 1000).checked_div(ops).unwrap_or(0));
            let stats = IoStatistics {
                reads: int(reads),
                writes: int(writes),
                bytes_read: int(bytes_read),
                bytes_written: int(bytes_written),
                avg_read_latency_us: latency_us(d(counters.ms_reading, prev.ms_reading), reads),
                avg_write_latency_us: latency_us(d(counters.ms_writing, prev.ms_writing), writes),
                read_throughput_bps: (bytes_read as f64 / secs).round() as i64,
                write_throughput_bps: (bytes_written as f64 / secs).round() as i64,
                timestamp: now(),
            };
            if tx.send(Ok(stats)).await.is_err() {
                return;
            }
        }
    }))
}

pub(super) fn storage_status_changes(
    s: &Sources,
    args: StorageStatusChangesArgs,
) -> SourceResult<StorageUsage> {
    let every = seconds("intervalSeconds", args.interval_seconds, 60)?;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let usage = crate::storage::measure(&state.storage)
                .await
                .map(|m| StorageUsage {
                    total_bytes: int(m.total_bytes),
                    used_bytes: int(m.used_bytes),
                    available_bytes: int(m.available_bytes),
                    usage_percent: m.usage_percent,
                    data_size: int(m.data_bytes),
                    index_size: int(m.index_bytes),
                    wal_size: int(m.wal_bytes),
                    timestamp: m.timestamp,
                });
            let failed = usage.is_err();
            if tx.send(usage).await.is_err() || failed {
                return;
            }
        }
    }))
}

pub(super) fn buffer_pool_metrics(
    s: &Sources,
    args: BufferPoolMetricsArgs,
) -> SourceResult<BufferPoolSample> {
    let every = seconds("intervalSeconds", args.interval_seconds, 10)?;
    let state = Arc::clone(&s.backends);
    Ok(spawned(move |tx| async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sampler = Arc::clone(&state);
            // The measurement behind GET /api/v1/storage/buffer-pool and the `buffer_pool`
            // topic; reading the WAL-indexes is file I/O, so off the async workers.
            let sample = tokio::task::spawn_blocking(move || page_cache::measure(&sampler.engine))
                .await
                .map_err(ApiError::internal)
                .map(|(total, dirty, _)| BufferPoolSample {
                    size_bytes: int(total.capacity_bytes),
                    total_pages: int(total.total_pages),
                    free_pages: int(total.total_pages.saturating_sub(total.used_pages)),
                    dirty_pages: int(dirty),
                    hit_ratio: total.hit_rate(),
                    cache_hits: int(total.hits),
                    cache_misses: int(total.misses),
                    evictions: None,
                    timestamp: now(),
                });
            let failed = sample.is_err();
            if tx.send(sample).await.is_err() || failed {
                return;
            }
        }
    }))
}

impl MonitoringFields for Sources {
    fn system_metrics(
        &self,
        _caller: Caller,
        args: SystemMetricsArgs,
        events: BoxStream<'static, Result<SystemMetrics, ApiError>>,
    ) -> SourceResult<SystemMetricsSample> {
        system_metrics(events, args)
    }

    fn io_statistics_stream(
        &self,
        _caller: Caller,
        args: IoStatisticsStreamArgs,
    ) -> SourceResult<IoStatistics> {
        io_statistics_stream(self, args)
    }

    fn storage_status_changes(
        &self,
        _caller: Caller,
        args: StorageStatusChangesArgs,
    ) -> SourceResult<StorageUsage> {
        storage_status_changes(self, args)
    }

    fn buffer_pool_metrics(
        &self,
        _caller: Caller,
        args: BufferPoolMetricsArgs,
    ) -> SourceResult<BufferPoolSample> {
        buffer_pool_metrics(self, args)
    }
}
