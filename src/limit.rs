//! Per-source limits as pure state: token buckets keyed by source IP, a
//! per-source counter of held things (connections, calls), and "say it once per
//! source per minute" for the log. Time is a parameter; nothing here reads the
//! clock, and every map is bounded so that a spray of spoofed sources cannot
//! grow it without end.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources tracked at most; past this, idle ones are forgotten first, and a
/// table still full of busy sources refuses the newcomer (fail closed).
pub const MAX_SOURCES: usize = 65_536;

/// How long a bucket may sit full and untouched before it is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key: `rate` per second, holding at most `burst`.
#[derive(Debug)]
pub struct RateLimiter<K: Hash + Eq + Copy = IpAddr> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, Bucket>,
    swept: Option<Instant>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate_per_s.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            swept: None,
        }
    }

    /// Takes one token for `key`; false when the key is over its rate.
    pub fn allow(&mut self, now: Instant, key: K) -> bool {
        self.sweep(now);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_SOURCES {
            return false;
        }
        let (rate, burst) = (self.rate, self.burst);
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sources being tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Drops buckets that have refilled and sat idle (at most once a second).
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let idle = now.saturating_duration_since(b.at);
            b.tokens + idle.as_secs_f64() * rate < burst || idle < FORGET_AFTER
        });
    }
}

/// Counts what each source holds (connections, calls) against a per-source
/// and a total cap.
#[derive(Debug)]
pub struct Holdings<K: Hash + Eq + Copy = IpAddr> {
    per: HashMap<K, usize>,
    total: usize,
}

impl<K: Hash + Eq + Copy> Default for Holdings<K> {
    fn default() -> Self {
        Holdings {
            per: HashMap::new(),
            total: 0,
        }
    }
}

/// Why [`Holdings::try_take`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This source holds its share.
    Source,
    /// The whole engine holds its share.
    Total,
}

impl<K: Hash + Eq + Copy> Holdings<K> {
    pub fn try_take(&mut self, key: K, per_source: usize, total: usize) -> Result<(), Refused> {
        if self.total >= total {
            return Err(Refused::Total);
        }
        let n = self.per.entry(key).or_insert(0);
        if *n >= per_source {
            return Err(Refused::Source);
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// Takes one without checking the per-source cap (a trusted trunk).
    pub fn take_exempt(&mut self, key: K) {
        *self.per.entry(key).or_insert(0) += 1;
        self.total += 1;
    }

    pub fn release(&mut self, key: K) {
        if let Some(n) = self.per.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per.remove(&key);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    pub fn of(&self, key: &K) -> usize {
        self.per.get(key).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

/// Remembers when each (source, what) was last logged: a limit hit is logged
/// once per source per minute, with how many were refused meanwhile.
#[derive(Debug)]
pub struct LogOnce<K: Hash + Eq + Clone = (IpAddr, &'static str)> {
    last: HashMap<K, (Instant, u64)>,
}

impl<K: Hash + Eq + Clone> Default for LogOnce<K> {
    fn default() -> Self {
        LogOnce {
            last: HashMap::new(),
        }
    }
}

pub const LOG_EVERY: Duration = Duration::from_secs(60);

impl<K: Hash + Eq + Clone> LogOnce<K> {
    /// Counts one event for `key`; returns the number of events since the last
    /// log line when one is due now (the caller logs it), `None` otherwise.
    pub fn hit(&mut self, now: Instant, key: K) -> Option<u64> {
        if self.last.len() >= MAX_SOURCES {
            self.last
                .retain(|_, (t, _)| now.saturating_duration_since(*t) < LOG_EVERY);
        }
        match self.last.get_mut(&key) {
            Some((t, n)) if now.saturating_duration_since(*t) < LOG_EVERY => {
                *n = n.saturating_add(1);
                None
            }
            Some((t, n)) => {
                let count = n.saturating_add(1);
                *t = now;
                *n = 0;
                Some(count)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 20);
        let a = ip("127.0.0.66");
        let b = ip("127.0.0.1");
        let allowed = (0..100).filter(|_| r.allow(t0, a)).count();
        assert_eq!(allowed, 20, "the burst");
        assert!(r.allow(t0, b), "another source is not affected");
        assert!(!r.allow(t0 + Duration::from_millis(50), a));
        assert!(
            r.allow(t0 + Duration::from_millis(100), a),
            "one token per 100 ms"
        );
        assert!(!r.allow(t0 + Duration::from_millis(110), a));
        // Over 10 s at 100/s offered, 10/s pass.
        let passed = (0..1000)
            .filter(|i| r.allow(t0 + Duration::from_millis(200 + 10 * i), a))
            .count();
        assert!((99..=102).contains(&passed), "{passed}");
    }

    #[test]
    fn idle_buckets_are_forgotten_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1, 1);
        for i in 0..1000u32 {
            r.allow(t0, IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(r.len(), 1000);
        r.allow(t0 + Duration::from_secs(120), ip("10.0.0.1"));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn holdings_cap_per_source_and_in_all() {
        let mut h = Holdings::default();
        let a = ip("127.0.0.66");
        assert_eq!(h.try_take(a, 2, 3), Ok(()));
        assert_eq!(h.try_take(a, 2, 3), Ok(()));
        assert_eq!(h.try_take(a, 2, 3), Err(Refused::Source));
        assert_eq!(h.try_take(ip("127.0.0.1"), 2, 3), Ok(()));
        assert_eq!(h.try_take(ip("127.0.0.2"), 2, 3), Err(Refused::Total));
        h.release(a);
        h.release(a);
        h.release(a); // one too many: ignored
        assert_eq!(h.of(&a), 0);
        assert_eq!(h.total(), 1);
    }

    #[test]
    fn logged_once_per_minute_with_the_count() {
        let t0 = Instant::now();
        let mut l = LogOnce::default();
        let k = (ip("127.0.0.66"), "invite rate");
        assert_eq!(l.hit(t0, k), Some(1));
        for s in 1..60 {
            assert_eq!(l.hit(t0 + Duration::from_secs(s), k), None);
        }
        assert_eq!(l.hit(t0 + Duration::from_secs(60), k), Some(60));
    }
}
