//! `raft-client bench`: a closed-loop load generator that drives this project's cluster or
//! an etcd v3 cluster with the same code, so the two are measured alike.
//!
//! `--clients` clients, each on a connection of its own to the leader, send one request,
//! wait for its answer and send the next, for `--seconds`. Keys are drawn uniformly from
//! `--keys` keys; for `get` and `mixed` a warm-up first writes every key (not measured), so
//! reads find what they look for. Every operation's latency is kept, so the percentiles are
//! exact. Submodules: [`target`] (the two systems and their leaders), [`stats`] (the
//! summary and its printing), [`failover`] (`--op failover`, another kind of benchmark:
//! the time without a leader after the leader crashes, the paper's Figure 16).

pub mod failover;
pub mod stats;
pub mod target;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::client::SmartClient;
use crate::read_from::ReadFrom;
use stats::{RunInfo, Summary};
use target::{Etcd, Playground, Target};

/// Longest run accepted: every latency is kept in memory (4 bytes each).
const MAX_SECONDS: f64 = 3600.0;
/// Most clients accepted: each holds a connection (a file descriptor) and a task.
const MAX_CLIENTS: i64 = 1000;
/// Largest key space accepted: a `get` run writes all of it first.
const MAX_KEYS: i64 = 10_000_000;

/// The `bench` subcommand's flags. Numbers are taken as signed and checked here, not by
/// clap, so that every bad value gets the same one-line error and exit code 2.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// What each client does: put, get (linearizable) or mixed; or failover: no clients,
    /// but the Raft paper's Figure 16 (SIGKILL the leader of a cluster of its own at a
    /// random point of its heartbeat interval, time until a survivor leads; see --timeouts).
    #[arg(long, default_value = "put")]
    pub op: String,
    /// For --op mixed: the percentage of operations that are reads (0-100).
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub read_percent: i64,
    /// Concurrent clients, each with its own connection and one request in flight.
    #[arg(long, default_value_t = 16, allow_negative_numbers = true)]
    pub clients: i64,
    /// How long to measure (the warm-up comes first and is not counted).
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Bytes per value (up to 1 MiB).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pub value_size: i64,
    /// Size of the key space; get and mixed write every key in a warm-up first.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub keys: i64,
    /// playground (this project's cluster) or etcd (an etcd v3 cluster: --peers lists its
    /// client addresses, host:2379,...).
    #[arg(long, default_value = "playground")]
    pub target: String,
    /// For --op failover: leader kills per range [default: 100].
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub trials: Option<i64>,
    /// For --op failover: election timeout ranges MIN-MAX in ms, comma separated
    /// [default: 150-300,150-200,150-155,12-24, the paper's]. Each range gets a cluster
    /// whose nodes tick every 1 ms, draw each election timeout uniformly from [MIN, MAX),
    /// and send heartbeats every MIN/2 ms (as in the paper). The time without a leader runs
    /// from the kill to the first state record (watch stream) of a survivor that says it
    /// leads in a higher term: the survivors' remaining timeouts, pre-vote and vote rounds,
    /// and the winner's fsync of its term.
    #[arg(long, value_name = "RANGES")]
    pub timeouts: Option<String>,
    /// For --op failover: nodes of the cluster it starts for each range (the raft-server
    /// beside raft-client, in a temp dir on free ports; --peers is not used) [default: 5].
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub spawn: Option<i64>,
    /// Print one JSON object: target, op, clients, ops, failed, ops_per_sec, p50_ms,
    /// p99_ms, p999_ms, max_ms (--op failover: one per range: op, timeouts, trials, min_ms,
    /// p50_ms, p90_ms, max_ms).
    #[arg(long)]
    pub json: bool,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A bad flag or address (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The system under test did not answer, or failed during the warm-up (exit 3).
    #[error("{0}")]
    Unavailable(String),
}

impl BenchError {
    /// The contract's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            BenchError::Usage(_) => 2,
            BenchError::Unavailable(_) => 3,
        }
    }
}

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Only puts.
    Put,
    /// Only linearizable gets.
    Get,
    /// Gets with the given percent chance, puts otherwise.
    Mixed(u32),
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Mixed(_) => "mixed",
        }
    }

    fn reads(self) -> bool {
        self != Op::Put
    }
}

/// Which system is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// This project's cluster.
    Playground,
    /// An etcd v3 cluster.
    Etcd,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Playground => "playground",
            TargetKind::Etcd => "etcd",
        }
    }
}

/// Checked flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the clients do.
    pub op: Op,
    /// Concurrent clients.
    pub clients: usize,
    /// How long to measure.
    pub duration: Duration,
    /// Bytes per value.
    pub value_size: usize,
    /// Size of the key space.
    pub keys: u64,
    /// The system measured.
    pub target: TargetKind,
    /// One JSON object instead of the human summary.
    pub json: bool,
}

impl BenchArgs {
    /// Checks every flag; the error is one line naming the flag.
    pub fn validate(&self) -> Result<Config, BenchError> {
        let usage = |msg: String| Err(BenchError::Usage(msg));
        for (given, flag) in [
            (self.trials.is_some(), "--trials"),
            (self.timeouts.is_some(), "--timeouts"),
            (self.spawn.is_some(), "--spawn"),
        ] {
            if given {
                return usage(format!("{flag} is for --op failover only"));
            }
        }
        let read_percent = match u32::try_from(self.read_percent) {
            Ok(p) if p <= 100 => p,
            _ => return usage(format!("--read-percent {} is not 0-100", self.read_percent)),
        };
        let op = match self.op.as_str() {
            "put" => Op::Put,
            "get" => Op::Get,
            "mixed" => Op::Mixed(read_percent),
            other => {
                return usage(format!(
                    "--op {other:?} is not one of put, get, mixed, failover"
                ));
            }
        };
        let target = match self.target.as_str() {
            "playground" => TargetKind::Playground,
            "etcd" => TargetKind::Etcd,
            other => {
                return usage(format!("--target {other:?} is not one of playground, etcd"));
            }
        };
        let clients = match usize::try_from(self.clients) {
            Ok(c) if (1..=MAX_CLIENTS).contains(&self.clients) => c,
            _ => {
                return usage(format!(
                    "--clients {} is not between 1 and {MAX_CLIENTS}",
                    self.clients
                ));
            }
        };
        // `!(x > 0)` also refuses NaN.
        if !(self.seconds > 0.0 && self.seconds <= MAX_SECONDS) {
            return usage(format!(
                "--seconds {} is not more than 0 and at most {MAX_SECONDS}",
                self.seconds
            ));
        }
        let value_size = match usize::try_from(self.value_size) {
            Ok(v) if v <= kv_proto::MAX_VALUE_BYTES => v,
            _ => {
                return usage(format!(
                    "--value-size {} is not between 0 and {} (1 MiB, the cluster's limit)",
                    self.value_size,
                    kv_proto::MAX_VALUE_BYTES
                ));
            }
        };
        let keys = match u64::try_from(self.keys) {
            Ok(k) if (1..=MAX_KEYS).contains(&self.keys) => k,
            _ => {
                return usage(format!(
                    "--keys {} is not between 1 and {MAX_KEYS}",
                    self.keys
                ));
            }
        };
        Ok(Config {
            op,
            clients,
            duration: Duration::from_secs_f64(self.seconds),
            value_size,
            keys,
            target,
            json: self.json,
        })
    }
}

/// Runs `raft-client bench` against the addresses and deadline of `client`: prints the
/// summary (or the JSON object) to stdout and errors to stderr; returns the exit code (0, 2
/// for bad flags, 3 when the system is unavailable or every operation failed).
pub async fn run_cli(client: &SmartClient, args: BenchArgs) -> u8 {
    if args.op == "failover" {
        return failover::run_cli(&args).await;
    }
    let config = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let (summary, leader) = match run(client, &config).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    let info = RunInfo {
        target: config.target.name(),
        op: config.op.name(),
        read_percent: match config.op {
            Op::Mixed(p) => Some(p),
            _ => None,
        },
        clients: config.clients,
        value_size: config.value_size,
        keys: config.keys,
        leader: &leader,
    };
    if config.json {
        println!("{}", summary.json(&info));
    } else {
        print!("{}", summary.report(&info));
    }
    if summary.ops() == 0 {
        let last = summary
            .first_error
            .as_deref()
            .unwrap_or("no operation finished");
        eprintln!("error: no operation succeeded (first error: {last})");
        return 3;
    }
    0
}

/// Finds the leader, makes the clients, and measures. Returns the summary and who the
/// clients talked to.
pub async fn run(client: &SmartClient, config: &Config) -> Result<(Summary, String), BenchError> {
    let timeout = client.timeout();
    match config.target {
        TargetKind::Playground => {
            let found = target::playground_leader(client).await?;
            // After the status round: it may have learned members beyond --peers.
            let peers = client.peers();
            let read_from = client.read_from();
            let targets = (0..config.clients)
                .map(|_| Playground::new(&peers, timeout, read_from))
                .collect::<Result<Vec<_>, _>>()?;
            let (summary, targets) = drive(targets, config).await?;
            // After the warm-up every client has found the leader by itself; name it as the
            // clients saw it (it may have changed since the status round).
            let mut leader = match targets.iter().find_map(Playground::leader) {
                Some(addr) => format!("the leader at {addr}"),
                None => found.unwrap_or_else(|| "no leader".to_string()),
            };
            if read_from == ReadFrom::Any {
                leader = format!("{leader}; gets at a random member (--read-from any)");
            }
            Ok((summary, leader))
        }
        TargetKind::Etcd => {
            let leader = target::etcd_leader(&client.peers(), timeout).await?;
            // --read-from any: the clients spread over the members, one each in turn, as
            // etcd's own benchmark does with several --endpoints; a member serves a
            // linearizable get by asking the leader for its read index, as ours do.
            let peers = client.peers();
            let spread = client.read_from() == ReadFrom::Any && !peers.is_empty();
            let targets = (0..config.clients)
                .map(|i| {
                    Etcd::new(
                        if spread {
                            &peers[i % peers.len()]
                        } else {
                            &leader.addr
                        },
                        timeout,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (summary, _) = drive(targets, config).await?;
            let talked_to = if spread {
                format!(
                    "every member ({}), {}",
                    peers.join(", "),
                    leader.description
                )
            } else {
                leader.description
            };
            Ok((summary, talked_to))
        }
    }
}

/// The key of number `k`: fixed width, so every key has the same size.
fn key(k: u64) -> String {
    format!("bench-{k:08}")
}

/// One client's measured loop: what it saw.
struct Measured {
    latencies_us: Vec<u32>,
    failed: u64,
    first_error: Option<String>,
}

/// Warms up, then runs the closed loop on every target at once; returns the summary and
/// the targets (for what they learned, such as the leader).
async fn drive<T: Target>(
    targets: Vec<T>,
    config: &Config,
) -> Result<(Summary, Vec<T>), BenchError> {
    let value: Arc<[u8]> = vec![b'v'; config.value_size].into();
    let n = targets.len();
    let progress = std::io::stderr().is_terminal() && !config.json;

    // Warm-up, not measured: each client connects and finds the leader with one put, and
    // for reads the clients write the whole key space between them (client c writes the
    // keys k with k % n == c).
    if progress && config.op.reads() {
        eprint!("warming up: writing {} keys...", config.keys);
    }
    let mut warmups = tokio::task::JoinSet::new();
    for (c, mut t) in targets.into_iter().enumerate() {
        let value = Arc::clone(&value);
        let keys: Vec<u64> = if config.op.reads() && (c as u64) < config.keys {
            (c as u64..config.keys).step_by(n).collect()
        } else {
            vec![c as u64 % config.keys]
        };
        warmups.spawn(async move {
            for k in keys {
                if let Err(e) = t.put(&key(k), &value).await {
                    return Err(format!("warm-up put of {} failed: {e}", key(k)));
                }
            }
            Ok((c, t))
        });
    }
    let mut ready = Vec::with_capacity(n);
    while let Some(joined) = warmups.join_next().await {
        match joined {
            Ok(Ok(t)) => ready.push(t),
            Ok(Err(e)) => return Err(BenchError::Unavailable(e)),
            Err(e) => return Err(BenchError::Unavailable(format!("a client failed: {e}"))),
        }
    }
    ready.sort_by_key(|(c, _)| *c);
    if progress && config.op.reads() {
        eprint!("\r\x1b[2K");
    }

    // The measured loop.
    let start = Instant::now();
    let deadline = start + config.duration;
    let done_ops = Arc::new(AtomicU64::new(0));
    let mut loops = tokio::task::JoinSet::new();
    for (_, mut t) in ready {
        let value = Arc::clone(&value);
        let done_ops = Arc::clone(&done_ops);
        let (op, keys) = (config.op, config.keys);
        // A generator per client: `rand::rng()` cannot be held across an await in a task.
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        loops.spawn(async move {
            let mut m = Measured {
                latencies_us: Vec::new(),
                failed: 0,
                first_error: None,
            };
            while Instant::now() < deadline {
                let k = key(rng.random_range(0..keys));
                let read = match op {
                    Op::Put => false,
                    Op::Get => true,
                    Op::Mixed(p) => rng.random_range(0..100) < p,
                };
                let t0 = Instant::now();
                let result = if read {
                    t.get(&k).await
                } else {
                    t.put(&k, &value).await
                };
                let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                match result {
                    Ok(()) => m.latencies_us.push(us),
                    Err(e) => {
                        m.failed += 1;
                        m.first_error.get_or_insert(e);
                    }
                }
                done_ops.fetch_add(1, Ordering::Relaxed);
            }
            (m, t)
        });
    }
    let ticker = progress.then(|| tokio::spawn(show_progress(start, Arc::clone(&done_ops))));

    let mut latencies_us = Vec::new();
    let mut failed = 0;
    let mut first_error = None;
    let mut targets = Vec::with_capacity(n);
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok((m, t)) => {
                latencies_us.extend(m.latencies_us);
                failed += m.failed;
                if first_error.is_none() {
                    first_error = m.first_error;
                }
                targets.push(t);
            }
            Err(e) => return Err(BenchError::Unavailable(format!("a client failed: {e}"))),
        }
    }
    let elapsed = start.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
        eprint!("\r\x1b[2K");
    }
    Ok((
        Summary::new(latencies_us, failed, elapsed, first_error),
        targets,
    ))
}

/// Once a second, on stderr (a terminal): time so far, operations so far, and the rate
/// over the last second.
async fn show_progress(start: Instant, done_ops: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut before = 0;
    loop {
        tick.tick().await;
        let now = done_ops.load(Ordering::Relaxed);
        eprint!(
            "\r\x1b[2K{:>4.0} s  {now} ops  {} ops/s",
            start.elapsed().as_secs_f64(),
            now - before
        );
        before = now;
    }
}
