//! Capped exponential retry delays for failed reconciles.

use std::time::Duration;

/// The delay before retry number `failures` (1 = first retry): `base · 2^(failures-1)`,
/// never more than `cap`. Deterministic: the caller adds jitter if it wants it.
pub fn retry_delay(failures: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    base.checked_mul(1u32 << exponent)
        .map_or(cap, |d| d.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(300));
        let delays: Vec<u64> = (1..=9)
            .map(|n| retry_delay(n, base, cap).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(0, base, cap), base);
        assert_eq!(retry_delay(u32::MAX, base, cap), cap, "no overflow");
    }
}
