//! What one range of `bench --op failover` measured: the times without a leader of its
//! trials, their summary line for people and the contract's JSON object.

use serde::Serialize;

use super::ranges::TimeoutRange;
use crate::bench::stats::nearest_rank;

/// Every trial's time without a leader, for one range.
#[derive(Debug, Clone)]
pub struct RangeResult {
    /// The range measured.
    pub range: TimeoutRange,
    /// Microseconds from the kill to the new leader, one per trial, sorted.
    times_us: Vec<u64>,
    /// The heartbeat interval as measured on the watch streams (median), in microseconds:
    /// it shows how long the ticks really were.
    pub heartbeat_measured_us: Option<u64>,
}

/// The `bench --op failover --json` object, in the contract's field order.
#[derive(Debug, Serialize)]
struct Json {
    op: &'static str,
    timeouts: String,
    trials: usize,
    min_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    max_ms: f64,
}

impl RangeResult {
    /// The result of `range`'s trials (times in any order).
    pub fn new(
        range: TimeoutRange,
        mut times_us: Vec<u64>,
        heartbeat_measured_us: Option<u64>,
    ) -> Self {
        times_us.sort_unstable();
        Self {
            range,
            times_us,
            heartbeat_measured_us,
        }
    }

    /// The times, sorted, in microseconds.
    pub fn times_us(&self) -> &[u64] {
        &self.times_us
    }

    /// The `p`th percentile (0-100) by nearest rank, in milliseconds (0 with no trials).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        nearest_rank(&self.times_us, p).map_or(0.0, ms)
    }

    /// The mean, in milliseconds (the paper gives means: 35 ms for 12-24 ms).
    pub fn mean_ms(&self) -> f64 {
        if self.times_us.is_empty() {
            return 0.0;
        }
        self.times_us.iter().map(|&t| ms(t)).sum::<f64>() / self.times_us.len() as f64
    }

    /// The contract's one-line JSON object.
    pub fn json(&self) -> String {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let json = Json {
            op: "failover",
            timeouts: self.range.to_string(),
            trials: self.times_us.len(),
            min_ms: round(self.percentile_ms(0.0)),
            p50_ms: round(self.percentile_ms(50.0)),
            p90_ms: round(self.percentile_ms(90.0)),
            max_ms: round(self.percentile_ms(100.0)),
        };
        // A struct of plain numbers and strings: serde_json cannot fail on it.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// One line for people: the range, its heartbeat (as set, and as it was), and the
    /// numbers.
    pub fn line(&self) -> String {
        let measured = self.heartbeat_measured_us.map_or_else(
            || "?".to_string(),
            |us| format!("{:.1}", us as f64 / 1000.0),
        );
        format!(
            "{:>9} ms (heartbeat {:>3} ms, measured {measured:>5})  {:>4} trials  min {:>7.1}  \
             p50 {:>7.1}  p90 {:>7.1}  max {:>7.1}  mean {:>7.1} ms",
            self.range.to_string(),
            self.range.heartbeat_ms(),
            self.times_us.len(),
            self.percentile_ms(0.0),
            self.percentile_ms(50.0),
            self.percentile_ms(90.0),
            self.percentile_ms(100.0),
            self.mean_ms()
        )
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_object_has_the_contracts_fields_in_order() {
        let range = TimeoutRange {
            min_ms: 12,
            max_ms: 24,
        };
        let r = RangeResult::new(
            range,
            vec![30_000, 10_500, 20_250, 40_000, 15_000],
            Some(7_512),
        );
        assert_eq!(
            r.json(),
            r#"{"op":"failover","timeouts":"12-24","trials":5,"min_ms":10.5,"p50_ms":20.25,"p90_ms":40.0,"max_ms":40.0}"#
        );
        assert!((r.mean_ms() - 23.15).abs() < 1e-9);
        assert!(
            r.line()
                .contains("12-24 ms (heartbeat   6 ms, measured   7.5)"),
            "{}",
            r.line()
        );
    }
}
