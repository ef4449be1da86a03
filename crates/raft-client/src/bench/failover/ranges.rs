//! `--timeouts`: the election timeout ranges of `bench --op failover`, parsed and checked
//! (every bad range gets one line saying what is wrong and what to give instead), and the
//! `raft-server` flags that make a cluster run with one of them.
//!
//! A range `MIN-MAX` (milliseconds) runs the servers with 1 ms ticks, election timeouts
//! drawn by raft-rs from `[MIN, MAX)` ticks, and a heartbeat every `MIN / 2` ticks, as in
//! the paper's measurements ("the leader was crashed uniformly randomly within its
//! heartbeat interval, which was half of the minimum election timeout").

use std::fmt;

/// The ranges measured when `--timeouts` is not given: the paper's Figure 16, top and bottom.
pub const DEFAULT_TIMEOUTS: &str = "150-300,150-200,150-155,12-24";

/// Milliseconds per Raft tick in every range: fine enough for 12-24 ms and 150-155 ms.
pub const TICK_MS: u64 = 1;
/// The least minimum timeout: its half, the heartbeat interval, must be a whole tick.
const MIN_TIMEOUT_MS: u64 = 2;
/// The largest minimum timeout (`raft-server --election-ticks` takes up to 1000 ticks).
const MAX_MIN_TIMEOUT_MS: u64 = 1000;
/// The largest maximum (`raft-server --max-election-ticks` takes up to 10000 ticks).
const MAX_MAX_TIMEOUT_MS: u64 = 10_000;

/// One election timeout range: every timeout is drawn uniformly from `[min_ms, max_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutRange {
    /// The least timeout, in milliseconds.
    pub min_ms: u64,
    /// The end of the range (exclusive), in milliseconds.
    pub max_ms: u64,
}

impl TimeoutRange {
    /// The leader's heartbeat interval: half the least timeout, in whole ticks.
    pub fn heartbeat_ms(&self) -> u64 {
        self.min_ms / 2
    }

    /// The flags every `raft-server` of this range's cluster gets.
    pub fn server_args(&self) -> Vec<String> {
        let ticks = |ms: u64| (ms / TICK_MS).to_string();
        vec![
            "--tick-ms".into(),
            TICK_MS.to_string(),
            "--election-ticks".into(),
            ticks(self.min_ms),
            "--max-election-ticks".into(),
            ticks(self.max_ms),
            "--heartbeat-ticks".into(),
            ticks(self.heartbeat_ms()),
        ]
    }
}

impl fmt::Display for TimeoutRange {
    /// `12-24`, as given and as the JSON's `timeouts` says it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min_ms, self.max_ms)
    }
}

/// Parses `--timeouts` (`150-300,12-24`); the error is one line naming the bad range.
pub fn parse_timeouts(text: &str) -> Result<Vec<TimeoutRange>, String> {
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let range =
            parse_range(part.trim()).map_err(|why| format!("--timeouts {text:?}: {why}"))?;
        if ranges.contains(&range) {
            return Err(format!(
                "--timeouts {text:?}: {range} is given twice: give each range once"
            ));
        }
        ranges.push(range);
    }
    Ok(ranges)
}

fn parse_range(part: &str) -> Result<TimeoutRange, String> {
    let example = "give MIN-MAX in milliseconds, e.g. 150-300";
    if part.is_empty() {
        return Err(format!(
            "an empty range: {example}, ranges separated by commas"
        ));
    }
    let Some((min, max)) = part.split_once('-') else {
        return Err(format!("{part:?} is not a range: {example}"));
    };
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("{part:?}: {:?} is not a whole number: {example}", s.trim()))
    };
    let (min_ms, max_ms) = (number(min)?, number(max)?);
    if min_ms == 0 {
        return Err(format!(
            "{part:?}: a timeout of 0 ms would elect all the time: {example}"
        ));
    }
    if min_ms >= max_ms {
        return Err(format!(
            "{part:?}: the minimum must be less than the maximum (timeouts are drawn from \
             [MIN, MAX)): e.g. {min_ms}-{}",
            min_ms + min_ms.max(2)
        ));
    }
    if min_ms < MIN_TIMEOUT_MS {
        return Err(format!(
            "{part:?}: the heartbeat (half the minimum, in whole {TICK_MS} ms ticks) would \
             be 0 ms and cannot fit below the timeout: give a minimum of at least \
             {MIN_TIMEOUT_MS} ms"
        ));
    }
    if min_ms > MAX_MIN_TIMEOUT_MS {
        return Err(format!(
            "{part:?}: the minimum may be at most {MAX_MIN_TIMEOUT_MS} ms (raft-server \
             --election-ticks, in {TICK_MS} ms ticks)"
        ));
    }
    if max_ms > MAX_MAX_TIMEOUT_MS {
        return Err(format!(
            "{part:?}: the maximum may be at most {MAX_MAX_TIMEOUT_MS} ms (raft-server \
             --max-election-ticks, in {TICK_MS} ms ticks)"
        ));
    }
    Ok(TimeoutRange { min_ms, max_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ranges_are_the_papers() {
        let ranges = parse_timeouts(DEFAULT_TIMEOUTS).expect("defaults parse");
        let texts: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["150-300", "150-200", "150-155", "12-24"]);
        assert_eq!(ranges[3].heartbeat_ms(), 6);
        assert_eq!(
            ranges[3].server_args().join(" "),
            "--tick-ms 1 --election-ticks 12 --max-election-ticks 24 --heartbeat-ticks 6"
        );
    }

    #[test]
    fn spaces_around_ranges_and_numbers_are_fine() {
        let ranges = parse_timeouts(" 12 - 24 , 3-4").expect("parses");
        assert_eq!(
            ranges[0],
            TimeoutRange {
                min_ms: 12,
                max_ms: 24
            }
        );
        assert_eq!(ranges[1].heartbeat_ms(), 1);
    }

    #[test]
    fn every_bad_range_says_what_is_wrong_in_one_line() {
        for (text, needle) in [
            ("300-150", "less than the maximum"),
            ("150-150", "less than the maximum"),
            ("0-10", "0 ms"),
            ("1-5", "heartbeat"),
            ("a-b", "not a whole number"),
            ("150", "not a range"),
            ("-5-10", "not a whole number"),
            ("150-300,", "empty range"),
            ("", "empty range"),
            ("2000-3000", "at most 1000"),
            ("100-20000", "at most 10000"),
            ("12-24,12-24", "twice"),
        ] {
            let err = parse_timeouts(text).expect_err(text);
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{text:?}: {err}");
        }
    }
}
