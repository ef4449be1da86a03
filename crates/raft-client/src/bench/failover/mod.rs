//! `raft-client bench --op failover`: the Raft paper's Figure 16 (§9.3), the time a cluster
//! is without a leader after its leader crashes, for several election timeout ranges.
//!
//! For each range it starts a cluster of its own ([`crate::spawned`], `--spawn` nodes,
//! default 5) whose servers run with that range (see [`ranges`]), watches every node's
//! watch stream, and `--trials` times: waits until every node follows one leader, SIGKILLs
//! the leader at a uniformly random point of its heartbeat interval, times until a survivor
//! says it leads in a higher term, and starts the killed node again (see [`trial`]). It
//! prints a line per range (min, median, p90, max, mean) and the cumulative distribution
//! of every range in text ([`plot`]); `--json`, one object per range instead ([`report`]).
//! It owns the command's flags and its loop over ranges; it does not own the cluster's
//! processes, the timing flags of a range, or the measurement itself.

pub mod plot;
pub mod ranges;
pub mod report;
pub mod trial;

use std::io::IsTerminal as _;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use super::{BenchArgs, BenchError};
use crate::spawned::SpawnedCluster;
use ranges::{DEFAULT_TIMEOUTS, TICK_MS, TimeoutRange};
use report::RangeResult;
use trial::{Streams, TrialError};

/// Trials per range when `--trials` is not given (the paper ran 1,000).
pub const DEFAULT_TRIALS: i64 = 100;
/// Most trials per range accepted.
const MAX_TRIALS: i64 = 100_000;
/// Nodes when `--spawn` is not given: the paper's five.
pub const DEFAULT_NODES: i64 = 5;
/// Fewest and most nodes: a leader killed in a cluster of two leaves no majority.
const NODES: std::ops::RangeInclusive<i64> = 3..=9;
/// Spurious elections before the kill that one range may redo before giving up.
const MAX_VOID: usize = 50;
/// The exit code when Ctrl+C or SIGTERM stops the run (the cluster is removed first).
const EXIT_INTERRUPTED: u8 = 130;

/// Checked flags of `bench --op failover`.
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// Nodes of each range's cluster.
    pub nodes: usize,
    /// Trials per range.
    pub trials: usize,
    /// The ranges, in the order given.
    pub ranges: Vec<TimeoutRange>,
    /// One JSON object per range instead of the lines and the plot.
    pub json: bool,
}

impl FailoverConfig {
    /// Checks `--spawn`, `--trials` and `--timeouts`; the error is one line naming the flag.
    pub fn from_args(args: &BenchArgs) -> Result<Self, BenchError> {
        let usage = |msg: String| Err(BenchError::Usage(msg));
        let nodes = args.spawn.unwrap_or(DEFAULT_NODES);
        let Ok(nodes_n) = usize::try_from(nodes) else {
            return usage(format!("--spawn {nodes} is not 3 to 9 nodes"));
        };
        if !NODES.contains(&nodes) {
            return usage(format!(
                "--spawn {nodes} is not 3 to 9 nodes (with fewer than 3, the survivors of a \
                 killed leader are no majority)"
            ));
        }
        let trials = args.trials.unwrap_or(DEFAULT_TRIALS);
        let trials_n = match usize::try_from(trials) {
            Ok(t) if (1..=MAX_TRIALS).contains(&trials) => t,
            _ => {
                return usage(format!(
                    "--trials {trials} is not between 1 and {MAX_TRIALS}"
                ));
            }
        };
        let ranges = ranges::parse_timeouts(args.timeouts.as_deref().unwrap_or(DEFAULT_TIMEOUTS))
            .map_err(BenchError::Usage)?;
        Ok(Self {
            nodes: nodes_n,
            trials: trials_n,
            ranges,
            json: args.json,
        })
    }
}

/// Runs `bench --op failover`: the lines and plot (or the JSON objects) on stdout, a line
/// per trial on stderr; returns the exit code (0; 2 bad flags; 3 a cluster that could not
/// start or did not elect; 130 interrupted, after removing the cluster).
pub async fn run_cli(args: &BenchArgs) -> u8 {
    let config = match FailoverConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    // Dropping the run (on a signal) drops its cluster, which kills and removes it.
    tokio::select! {
        code = run(&config) => code,
        () = interrupted() => {
            eprintln!("interrupted: the cluster is stopped and removed");
            EXIT_INTERRUPTED
        }
    }
}

async fn run(config: &FailoverConfig) -> u8 {
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "failover: {} nodes of its own per range, {} trials each; {TICK_MS} ms ticks, \
         heartbeat every half minimum timeout, the leader SIGKILLed at a random point of it",
        config.nodes, config.trials
    );
    let mut results = Vec::new();
    for range in &config.ranges {
        let progress = |line: &str| {
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        };
        let result = run_range(config, *range, &progress).await;
        if terminal {
            eprint!("\r\x1b[2K");
        }
        match result {
            Ok(r) => {
                if config.json {
                    println!("{}", r.json());
                } else {
                    println!("{}", r.line());
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return e.exit_code();
            }
        }
    }
    if !config.json {
        let series: Vec<plot::Series<'_>> = results
            .iter()
            .map(|r| plot::Series {
                label: format!("{} ms", r.range),
                times_us: r.times_us(),
            })
            .collect();
        println!();
        print!("{}", plot::cdf(&series));
    }
    0
}

/// Every trial of one range, on a cluster of its own.
async fn run_range(
    config: &FailoverConfig,
    range: TimeoutRange,
    progress: &dyn Fn(&str),
) -> Result<RangeResult, BenchError> {
    let unavailable = |why: String| BenchError::Unavailable(format!("{range} ms: {why}"));
    let mut cluster = SpawnedCluster::start(config.nodes, 0, &range.server_args())
        .map_err(|e| unavailable(e.to_string()))?;
    let nodes: Vec<(u64, String)> = cluster
        .ids()
        .into_iter()
        .map(|id| (id, cluster.api_addr(id)))
        .collect();
    let mut streams = Streams::open(&nodes);
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut times_us = Vec::with_capacity(config.trials);
    let mut void = 0;
    while times_us.len() < config.trials {
        let n = times_us.len() + 1;
        // Uniform over the heartbeat interval, as the paper crashed its leaders.
        let offset_us = rng.random_range(0..range.heartbeat_ms() * 1000);
        match trial::run(&mut cluster, &mut streams, &range, offset_us).await {
            Ok(o) => {
                progress(&format!(
                    "{range} ms trial {n}/{}: node {} killed in term {}, {:.1} ms into its \
                     heartbeat interval; node {} leader in term {} after {:.3} ms",
                    config.trials,
                    o.killed,
                    o.killed_term,
                    offset_us as f64 / 1000.0,
                    o.leader,
                    o.term,
                    o.without_leader_us as f64 / 1000.0
                ));
                times_us.push(o.without_leader_us);
            }
            Err(TrialError::Void(why)) => {
                void += 1;
                if void > MAX_VOID {
                    return Err(unavailable(format!(
                        "leadership moved by itself {void} times before a kill (the machine \
                         may be too loaded for this range): {why}"
                    )));
                }
                progress(&format!("{range} ms trial {n}: again, {why}"));
            }
            Err(TrialError::Failed(why)) => {
                let exited = cluster
                    .exited()
                    .map(|(id, line)| format!(" (node {id} exited: {line})"))
                    .unwrap_or_default();
                return Err(unavailable(format!("trial {n}: {why}{exited}")));
            }
        }
    }
    Ok(RangeResult::new(
        range,
        times_us,
        streams.heartbeat_interval_us(),
    ))
}

/// Ctrl+C or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
