//! Rate limits with governor (GCRA): login attempts per client IP, and requests per user (or per
//! client IP for anonymous callers). Limits come from the configuration.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// What a check says, for the `X-RateLimit-*` headers.
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full quota is available again.
    pub reset_after_secs: u64,
    /// Seconds to wait, when refused.
    pub retry_after_secs: Option<u64>,
}

pub(super) struct Limiter<K: std::hash::Hash + Eq + Clone> {
    inner: Keyed<K>,
    per_minute: u32,
    clock: DefaultClock,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    pub(super) fn per_minute(n: u32) -> Limiter<K> {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Limiter {
            inner: RateLimiter::keyed(Quota::per_minute(n))
                .with_middleware::<StateInformationMiddleware>(),
            per_minute: n.get(),
            clock: DefaultClock::default(),
        }
    }

    pub(super) fn check(&self, key: &K) -> Verdict {
        let per_cell = 60.0 / f64::from(self.per_minute);
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = f64::from(self.per_minute - remaining.min(self.per_minute));
                Verdict {
                    limit: self.per_minute,
                    remaining,
                    reset_after_secs: (missing * per_cell).ceil() as u64,
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let wait = wait.max(Duration::from_secs(1));
                Verdict {
                    limit: self.per_minute,
                    remaining: 0,
                    reset_after_secs: 60,
                    retry_after_secs: Some(wait.as_secs_f64().ceil() as u64),
                }
            }
        }
    }

    /// Drops state of keys whose quota is full again, so memory stays bounded.
    pub(super) fn prune(&self) {
        self.inner.retain_recent();
    }
}

/// The key of the per-user request limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Caller {
    User(String),
    Anonymous(IpAddr),
}
