//! Log-linear latency histogram in nanoseconds: exact below 128 ns, then 64 sub-buckets per
//! power of two (worst-case relative error 1/64 = 1.6 %). Fixed size, no allocation per sample.

/// Number of buckets: 128 exact + 64 per power of two from 2^7 to 2^63.
const BUCKETS: usize = 128 + 57 * 64;

/// A latency histogram.
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < 128 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // >= 7
    let mant = (v >> (e - 6)) as usize; // 64..128
    128 + (e - 7) * 64 + (mant - 64)
}

fn upper(idx: usize) -> u64 {
    if idx < 128 {
        return idx as u64;
    }
    let k = idx - 128;
    let e = 7 + k / 64;
    let mant = (64 + k % 64) as u64;
    ((mant + 1) << (e - 6)) - 1
}

impl Hist {
    /// An empty histogram.
    pub fn new() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Record one latency in nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Add another histogram into this one.
    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Quantile `q` in 0..=1, as the upper bound of its bucket (ns).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_values() {
        for v in [0u64, 5, 127, 128, 129, 1000, 65_432, 1 << 40, u64::MAX / 3] {
            let i = index(v);
            assert!(upper(i) >= v, "{v}");
            assert!(i == 0 || upper(i - 1) < v, "{v}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((500_000..=508_000).contains(&p50), "{p50}");
        assert_eq!(h.quantile(1.0), 1_000_000);
    }
}
