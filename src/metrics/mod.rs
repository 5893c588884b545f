//! Producers of the monitoring topics, sampled once a second and only while someone is
//! subscribed: a sample costs a sysinfo refresh or a /proc read.

pub mod buffer_pool;
mod producers;

pub use producers::*;
