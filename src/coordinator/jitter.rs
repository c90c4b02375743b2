//! Spreading retries in time. After a coordinator outage every Island retries at once; with
//! plain exponential backoff they would come back in lock-step, each wave as large as the
//! last. Each pause here is a random share of its backoff ("full jitter"), so a thousand
//! Islands that lost the coordinator together return spread over the backoff window.

use std::time::Duration;

/// A random duration from zero to `d`.
pub(super) fn full(d: Duration) -> Duration {
    d.mul_f64(fastrand::f64())
}

/// The client's pause before reconnect attempt `attempts` (1 = the first): none for the
/// first, so a failover to another node of a cluster is immediate; then a random share of
/// 100 ms doubled per attempt, never above `max` (`coordinator.reconnect_max_delay`).
pub(super) fn reconnect_delay(attempts: usize, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    full(Duration::from_millis(100).saturating_mul(1 << doublings).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_grow_stay_bounded_and_spread() {
        let max = Duration::from_secs(10);
        assert_eq!(reconnect_delay(1, max), Duration::ZERO, "the first attempt is immediate");
        assert!((0..100).all(|_| reconnect_delay(2, max) <= Duration::from_millis(100)));
        let late: Vec<Duration> = (0..2000).map(|_| reconnect_delay(30, max)).collect();
        assert!(late.iter().all(|d| *d <= max), "bounded by reconnect_max_delay");
        // Spread over the whole window: no tenth of it holds more than a fifth of the tries.
        let mut buckets = [0usize; 10];
        late.iter().for_each(|d| buckets[((d.as_secs_f64() / max.as_secs_f64()) * 10.0).min(9.0) as usize] += 1);
        assert!(buckets.iter().all(|&n| n > 100 && n < 400), "{buckets:?}");
    }
}
