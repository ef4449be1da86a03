//! What a benchmark run measured, and how it is printed: the `bench --json` object of the
//! contract, and a human summary in the manner of etcd's `tools/benchmark` (total, slowest,
//! fastest, average, stddev, requests/sec, a latency histogram and percentiles).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Every successful operation's latency, the failures, and the measured time.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Latencies in microseconds, sorted.
    latencies_us: Vec<u32>,
    /// Operations that failed (not in `latencies_us`).
    pub failed: u64,
    /// From the start of the measured loop until the last client stopped.
    pub elapsed: Duration,
    /// The first failure's description, if any.
    pub first_error: Option<String>,
}

/// The `bench --json` object, in the contract's field order.
#[derive(Debug, Serialize)]
struct Json<'a> {
    target: &'a str,
    op: &'a str,
    clients: usize,
    ops: u64,
    failed: u64,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

/// What was run, for the reports' headers.
#[derive(Debug, Clone)]
pub struct RunInfo<'a> {
    /// `playground` or `etcd`.
    pub target: &'a str,
    /// `put`, `get` or `mixed`.
    pub op: &'a str,
    /// For `mixed`: percent of reads.
    pub read_percent: Option<u32>,
    /// Concurrent clients.
    pub clients: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Size of the key space.
    pub keys: u64,
    /// Who the clients talked to.
    pub leader: &'a str,
}

impl Summary {
    /// A summary of the given latencies (in any order).
    pub fn new(
        mut latencies_us: Vec<u32>,
        failed: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        latencies_us.sort_unstable();
        Self {
            latencies_us,
            failed,
            elapsed,
            first_error,
        }
    }

    /// Successful operations.
    pub fn ops(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Successful operations per second of measured time.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops() as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`th percentile (0-100) of the latencies by nearest rank, in microseconds;
    /// 0 when nothing succeeded.
    pub fn percentile_us(&self, p: f64) -> u32 {
        nearest_rank(&self.latencies_us, p).unwrap_or(0)
    }

    fn mean_us(&self) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        self.latencies_us.iter().map(|&l| f64::from(l)).sum::<f64>() / n as f64
    }

    fn stddev_us(&self) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let mean = self.mean_us();
        let var = self
            .latencies_us
            .iter()
            .map(|&l| (f64::from(l) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        var.sqrt()
    }

    /// The contract's one-line JSON object.
    pub fn json(&self, info: &RunInfo<'_>) -> String {
        let ms = |us: u32| round3(f64::from(us) / 1000.0);
        let json = Json {
            target: info.target,
            op: info.op,
            clients: info.clients,
            ops: self.ops(),
            failed: self.failed,
            ops_per_sec: round3(self.ops_per_sec()),
            p50_ms: ms(self.percentile_us(50.0)),
            p99_ms: ms(self.percentile_us(99.0)),
            p999_ms: ms(self.percentile_us(99.9)),
            max_ms: ms(self.percentile_us(100.0)),
        };
        // A struct of numbers and strings always serializes; the fallback is never used.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// The human summary.
    pub fn report(&self, info: &RunInfo<'_>) -> String {
        let mut s = String::new();
        let op = match info.read_percent {
            Some(r) => format!("{} ({r}% reads)", info.op),
            None => info.op.to_string(),
        };
        let _ = writeln!(
            s,
            "{} {op}: {} client{}, {}-byte values, {} keys; talking to {}",
            info.target,
            info.clients,
            if info.clients == 1 { "" } else { "s" },
            info.value_size,
            info.keys,
            info.leader,
        );
        let _ = writeln!(s, "\nSummary:");
        let _ = writeln!(s, "  Total:        {:.4} secs", self.elapsed.as_secs_f64());
        let _ = writeln!(s, "  Operations:   {}", self.ops());
        let _ = writeln!(s, "  Failed:       {}", self.failed);
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  First error:  {e}");
        }
        let _ = writeln!(
            s,
            "  Slowest:      {}",
            ms(f64::from(self.percentile_us(100.0)))
        );
        let _ = writeln!(
            s,
            "  Fastest:      {}",
            ms(f64::from(self.percentile_us(0.0)))
        );
        let _ = writeln!(s, "  Average:      {}", ms(self.mean_us()));
        let _ = writeln!(s, "  Stddev:       {}", ms(self.stddev_us()));
        let _ = writeln!(s, "  Requests/sec: {:.1}", self.ops_per_sec());
        if self.latencies_us.is_empty() {
            return s;
        }
        let _ = writeln!(s, "\nResponse time histogram:");
        s.push_str(&self.histogram());
        let _ = writeln!(s, "\nLatency distribution:");
        for p in [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9] {
            let _ = writeln!(s, "  {p}% in {}", ms(f64::from(self.percentile_us(p))));
        }
        s
    }

    /// Counts per power-of-two bucket of milliseconds, from the fastest bucket to the
    /// slowest: a linear scale (etcd's) puts nearly everything in its first bucket when the
    /// tail is long.
    fn histogram(&self) -> String {
        const WIDTH: usize = 40;
        // Bucket i holds latencies below 2^i * 250 us (the last one: everything else).
        let bound = |i: u32| 250u64 << i;
        let bucket = |us: u32| (0..24).find(|&i| u64::from(us) < bound(i)).unwrap_or(24);
        let mut counts = [0u64; 25];
        for &l in &self.latencies_us {
            counts[bucket(l) as usize] += 1;
        }
        let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        let most = counts.iter().copied().max().unwrap_or(1).max(1);
        let mut s = String::new();
        for (i, &count) in counts.iter().enumerate().take(last + 1).skip(first) {
            // `i` is below 25, so it fits the shift.
            let label = format!("< {}", ms(bound(i as u32) as f64));
            let bar = "∎".repeat((count as usize * WIDTH).div_ceil(most as usize));
            let _ = writeln!(s, "  {label:>12} {count:>9} |{bar}");
        }
        s
    }
}

/// The `p`th percentile (0-100) of `sorted` by nearest rank: the smallest value with at
/// least p% of them at or below it (0: the least); `None` when it is empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let n = sorted.len();
    // The epsilon keeps 99.9% of 1000 (999.0000000000001 in binary floating point) at 999.
    let rank = (p * n as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted.get(rank.clamp(1, n.max(1)) - 1).copied()
}

/// Microseconds as milliseconds for people.
fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(lat: &[u32]) -> Summary {
        Summary::new(lat.to_vec(), 0, Duration::from_secs(2), None)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summary(&(1..=1000).rev().collect::<Vec<_>>());
        assert_eq!(s.percentile_us(50.0), 500);
        assert_eq!(s.percentile_us(99.0), 990);
        assert_eq!(s.percentile_us(99.9), 999);
        assert_eq!(s.percentile_us(100.0), 1000);
        assert_eq!(s.percentile_us(0.0), 1);
        assert_eq!(summary(&[7]).percentile_us(99.9), 7);
        assert_eq!(summary(&[]).percentile_us(50.0), 0);
    }

    #[test]
    fn json_has_the_contract_fields_in_order() {
        let s = summary(&[1000, 2000, 3000, 4000]);
        let info = RunInfo {
            target: "etcd",
            op: "get",
            read_percent: None,
            clients: 4,
            value_size: 100,
            keys: 10,
            leader: "x",
        };
        assert_eq!(
            s.json(&info),
            r#"{"target":"etcd","op":"get","clients":4,"ops":4,"failed":0,"ops_per_sec":2.0,"p50_ms":2.0,"p99_ms":4.0,"p999_ms":4.0,"max_ms":4.0}"#
        );
    }

    #[test]
    fn the_report_has_a_histogram_and_percentiles() {
        let s = summary(&[300, 900, 1500, 1600, 40_000]);
        let info = RunInfo {
            target: "playground",
            op: "mixed",
            read_percent: Some(50),
            clients: 1,
            value_size: 100,
            keys: 10,
            leader: "node 1 at 127.0.0.1:7001",
        };
        let text = s.report(&info);
        assert!(
            text.starts_with("playground mixed (50% reads): 1 client,"),
            "{text}"
        );
        let count = |label: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
            line[line.find(label)? + label.len()..]
                .split('|')
                .next()?
                .trim()
                .parse()
                .ok()
        };
        assert_eq!(count("< 0.250 ms"), None, "{text}");
        assert_eq!(count("< 0.500 ms"), Some(1), "{text}");
        assert_eq!(count("< 1.000 ms"), Some(1), "{text}");
        assert_eq!(count("< 2.000 ms"), Some(2), "{text}");
        assert_eq!(count("< 32.000 ms"), Some(0), "{text}");
        assert_eq!(count("< 64.000 ms"), Some(1), "{text}");
        assert_eq!(count("< 128.000 ms"), None, "{text}");
        assert!(text.contains("99.9% in 40.000 ms"), "{text}");
        assert!(text.contains("Requests/sec: 2.5"), "{text}");
    }
}
