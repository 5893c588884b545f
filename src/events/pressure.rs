//! The seed's backpressure rules for one subscriber's queue, shared by /api/v1/ws and GraphQL:
//! warn at 80 % depth, drop the oldest (the topic's ring does), and give up on a subscriber whose
//! queue has stayed full for the slow-client timeout.
//!
//! "Stayed full" has to survive bursts: a reader that loses part of every burst but drains in
//! between would otherwise be forgiven each time and never disconnected. So the queue counts as
//! full from its first overflow until it has been below half, with nothing lost, for [`CALM`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a queue must stay below half, losing nothing, before an overflow is forgiven.
const CALM: Duration = Duration::from_secs(5);

/// One subscriber's backpressure state: 12 bytes (it is per subscriber; clock in whole seconds).
#[derive(Debug, Default, Clone, Copy)]
pub struct Pressure {
    /// [`clock`] second of the first overflow not forgiven; 0 = not full.
    full_since: u32,
    /// [`clock`] second since which the queue has been calm; 0 = not calm.
    calm_since: u32,
    warned: bool,
}

/// What one observation asks of the transport.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Send the subscriber a backpressure warning (once per episode).
    pub warn: bool,
    /// The queue has stayed full for the limit: close the connection.
    pub too_slow: bool,
}

impl Pressure {
    /// A measurement of the queue: `depth` of `capacity`, and whether it is overflowing (events
    /// are being or were dropped).
    pub fn observe(
        &mut self,
        depth: u64,
        capacity: u64,
        overflowing: bool,
        limit: Duration,
    ) -> Verdict {
        // The common case on the fan-out path: a calm queue with no episode to end needs no
        // clock (calm time only matters for forgiving one).
        let calm = !overflowing && depth.saturating_mul(2) < capacity;
        if calm && self.full_since == 0 && !self.warned {
            return Verdict::default();
        }
        self.observe_at(clock(), depth, capacity, overflowing, limit)
    }

    /// Events were dropped: the queue is full now. True when a warning is due (the subscriber
    /// should hear of its queue before it hears of the loss).
    pub fn overflowed(&mut self) -> bool {
        self.overflowed_at(clock())
    }

    fn overflowed_at(&mut self, now: u32) -> bool {
        self.forgive_if_calm(now);
        self.calm_since = 0;
        if self.full_since == 0 {
            self.full_since = now;
        }
        !std::mem::replace(&mut self.warned, true)
    }

    fn observe_at(
        &mut self,
        now: u32,
        depth: u64,
        capacity: u64,
        overflowing: bool,
        limit: Duration,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let calm = !overflowing && depth.saturating_mul(2) < capacity;
        if calm {
            if self.calm_since == 0 {
                self.calm_since = now;
            }
            self.forgive_if_calm(now);
            return verdict;
        }
        // Calm until this measurement: an episode that ended long enough ago is forgiven.
        self.forgive_if_calm(now);
        self.calm_since = 0;
        if overflowing && self.full_since == 0 {
            self.full_since = now;
        }
        if depth.saturating_mul(5) > capacity.saturating_mul(4) && !self.warned {
            self.warned = true;
            verdict.warn = true;
        }
        verdict.too_slow =
            self.full_since != 0 && u64::from(now - self.full_since) >= limit.as_secs();
        verdict
    }

    fn forgive_if_calm(&mut self, now: u32) {
        if self.calm_since != 0 && u64::from(now - self.calm_since) >= CALM.as_secs() {
            self.full_since = 0;
            self.warned = false;
        }
    }
}

/// Seconds since the first call, from 1 (0 means "never" in [`Pressure`]).
fn clock() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u32::try_from(start.elapsed().as_secs())
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(60);

    #[test]
    fn warns_once_at_eighty_percent_and_again_after_recovering() {
        let mut p = Pressure::default();
        assert!(!p.observe_at(1, 79, 100, false, LIMIT).warn);
        assert!(p.observe_at(2, 81, 100, false, LIMIT).warn);
        assert!(!p.observe_at(3, 90, 100, false, LIMIT).warn);
        // Below half for the calm period: a new episode warns again.
        p.observe_at(4, 10, 100, false, LIMIT);
        p.observe_at(10, 10, 100, false, LIMIT);
        assert!(p.observe_at(11, 85, 100, false, LIMIT).warn);
    }

    #[test]
    fn a_queue_full_for_the_limit_is_too_slow() {
        let mut p = Pressure::default();
        assert!(!p.observe_at(1, 100, 100, true, LIMIT).too_slow);
        assert!(!p.observe_at(60, 100, 100, true, LIMIT).too_slow);
        assert!(p.observe_at(61, 100, 100, true, LIMIT).too_slow);
    }

    #[test]
    fn a_reader_losing_part_of_every_burst_is_not_forgiven_between_bursts() {
        let mut p = Pressure::default();
        for second in (1..=59).step_by(2) {
            // A burst overflows, then the reader drains it before the next one.
            p.overflowed_at(second);
            assert!(!p.observe_at(second, 100, 100, true, LIMIT).too_slow);
            p.observe_at(second + 1, 0, 100, false, LIMIT);
        }
        assert!(p.observe_at(61, 100, 100, true, LIMIT).too_slow);
    }

    #[test]
    fn an_overflow_long_past_is_forgiven() {
        let mut p = Pressure::default();
        p.observe_at(1, 100, 100, true, LIMIT);
        p.observe_at(2, 0, 100, false, LIMIT);
        // Quiet for minutes, then a busy moment: not closed for the old overflow.
        let later = p.observe_at(300, 90, 100, false, LIMIT);
        assert!(!later.too_slow);
        assert!(later.warn, "a new episode");
    }

    #[test]
    fn a_reader_between_half_and_full_keeps_its_episode() {
        let mut p = Pressure::default();
        p.observe_at(1, 100, 100, true, LIMIT);
        // Never below half: still the same episode at the limit, once it overflows again.
        p.observe_at(30, 70, 100, false, LIMIT);
        assert!(p.observe_at(61, 100, 100, true, LIMIT).too_slow);
    }
}
