//! `raft-client chaos`: Jepsen in a box. Concurrent clients run a random workload while a
//! nemesis breaks the cluster (the fault commands, leader transfers, and with `--spawn` a
//! cluster of its own whose nodes it SIGKILLs); every operation's invocation, completion and
//! outcome is recorded; at the end everything is healed, the cluster converges, every key is
//! read once more, and a linearizability checker decides whether one order of all the
//! operations explains every result.
//!
//! - [`history`]: the recorded operations and their JSON-lines file.
//! - [`checker`]: the per-key register check (Wing & Gong / Lowe, as in Porcupine) and the
//!   smallest failing window.
//! - [`timeline`]: a picture of a violation, one row per client.
//! - [`cause`]: with `--record`, who answered each operation of a failing window, in what
//!   role and term, how far behind the leader, and the `replay --at` command for the moment.
//! - `workload`: the clients. `nemesis`: the faults (`stepping`: the step fault;
//!   `double_vote`: the crash mid-election it stages first).
//!   `--spawn`'s own cluster is [`crate::spawned`].

pub mod cause;
pub mod checker;
mod double_vote;
pub mod history;
mod nemesis;
mod reshape;
mod stepping;
pub mod timeline;
mod workload;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::spawned::{SpawnError, SpawnedCluster};
pub use checker::{Budget, Report, Verdict};
pub use history::{OpKind, Operation, Outcome};
pub use nemesis::{ALL as ALL_FAULTS, FaultKind, Injected};
use serde::Serialize;
use workload::Shared;

use crate::admin::ClusterMap;
use crate::client::SmartClient;
use crate::faults::{self, FaultCommand};
use crate::read_from::ReadFrom;

/// Exit code of a run whose history is not linearizable.
pub const EXIT_VIOLATION: u8 = 5;
/// Exit code of a run the checker could not decide (budget exhausted).
pub const EXIT_UNKNOWN: u8 = 6;
/// How long the cluster may take to converge after the faults are healed.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long the workload waits for the recording to hear from every node.
const RECORDING_READY: Duration = Duration::from_secs(5);
/// Ids beside the initial nodes that the membership fault adds, removes and adds again.
const SPARE_IDS: usize = 2;

/// What `chaos` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosOptions {
    /// How long the workload runs.
    pub seconds: f64,
    /// Concurrent clients.
    pub clients: usize,
    /// Keys (`k0`, `k1`, ...): few keys, much contention.
    pub keys: usize,
    /// The faults to inject; `None`: all that apply (`kill` only with `spawn`).
    pub faults: Option<Vec<FaultKind>>,
    /// Start a cluster of this many nodes of its own (and SIGKILL nodes).
    pub spawn: Option<usize>,
    /// Mix in reads of one node's own copy (expected to fail the check).
    pub stale_reads: bool,
    /// Where linearizable gets go (`any`: a random member, which asks the leader for its
    /// read index and answers itself).
    pub read_from: ReadFrom,
    /// Seed of every random choice (`None`: a random one, printed).
    pub seed: Option<u64>,
    /// Record every member's watch stream here for the whole run (`raft-client record`).
    pub record: Option<std::path::PathBuf>,
    /// With `spawn`: more arguments for every raft-server (a lab's `--read-mode lease`).
    pub server_args: Vec<String>,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        Self {
            seconds: 20.0,
            clients: 5,
            keys: 5,
            faults: None,
            spawn: None,
            stale_reads: false,
            read_from: ReadFrom::Leader,
            seed: None,
            record: None,
            server_args: Vec::new(),
        }
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The options do not make sense (exit 2).
    #[error("{0}")]
    Usage(String),
    /// `--spawn` could not start its cluster.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The cluster had no leader to start with (exit 3).
    #[error("{0}")]
    Unavailable(String),
}

/// A finished run.
#[derive(Debug)]
pub struct ChaosResult {
    /// Every operation, in the order recorded.
    pub ops: Vec<Operation>,
    /// The checker's verdict.
    pub report: Report,
    /// How long the check took.
    pub check_time: Duration,
    /// The faults injected.
    pub faults: Vec<Injected>,
    /// Faults that could not be applied, and other things worth saying.
    pub warnings: Vec<String>,
    /// Keys in the run.
    pub keys: usize,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The seed, to run it again.
    pub seed: u64,
    /// The faults it could inject.
    pub kinds: Vec<FaultKind>,
    /// Whether stale reads were mixed in.
    pub stale_reads: bool,
    /// Membership changes the nemesis made.
    pub membership_changes: usize,
    /// Ids it added again after a removal or a wipe.
    pub readds: usize,
    /// The run's start on the wall clock, µs since the Unix epoch (operation times count
    /// from it).
    pub start_unix_us: u64,
    /// With `--record` and a violation: what the recording says of each failing window
    /// (boxed: a result travels in the TUI's messages, which stay small).
    pub causes: Box<Causes>,
    /// The protections the cluster ran without (`LEASE READS`, ...), as its nodes said.
    pub protections_off: Vec<String>,
}

/// What a recording says of the failing windows ([`cause`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Causes {
    /// Per failing key, the report's lines on who answered its window's operations.
    pub by_key: HashMap<String, Vec<String>>,
    /// Set when the recording could not be read: the one line that says so.
    pub unreadable: Option<String>,
}

impl Causes {
    /// Reads the recording at `path` and explains each failing key's window of `report`.
    fn of(path: &std::path::Path, ops: &[Operation], report: &Report, start_unix_us: u64) -> Self {
        let recording = match crate::record::file::read(path) {
            Ok(r) => r,
            Err(e) => {
                return Self {
                    unreadable: Some(cause::unreadable(&e)),
                    ..Self::default()
                };
            }
        };
        let by_key = report
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Violation)
            .map(|k| {
                let lines =
                    cause::for_window(&recording.records, ops, &k.window, start_unix_us, path);
                (k.key.clone(), lines)
            })
            .collect();
        Self {
            by_key,
            unreadable: None,
        }
    }
}

impl ChaosResult {
    /// The exit code of the contract: 0 linearizable, 5 violation, 6 unknown.
    pub fn exit_code(&self) -> u8 {
        match self.report.verdict {
            Verdict::Linearizable => 0,
            Verdict::Violation => EXIT_VIOLATION,
            Verdict::Unknown => EXIT_UNKNOWN,
        }
    }

    /// The keys the checker found no order for.
    pub fn failing_keys(&self) -> Vec<&str> {
        self.report
            .keys
            .iter()
            .filter(|k| k.verdict == Verdict::Violation)
            .map(|k| k.key.as_str())
            .collect()
    }

    /// `--json`: `{"verdict":..,"ops":N,"keys":K,"faults":N,"failing_keys":[...]}`.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Verdict<'a> {
            verdict: &'a str,
            ops: usize,
            keys: usize,
            faults: usize,
            failing_keys: Vec<&'a str>,
        }
        let verdict = Verdict {
            verdict: verdict_name(self.report.verdict),
            ops: self.ops.len(),
            keys: self.keys,
            faults: self.faults.len(),
            failing_keys: self.failing_keys(),
        };
        // Plain strings and integers always serialise.
        serde_json::to_string(&verdict).unwrap_or_else(|_| "{}".to_string())
    }

    /// The report for a person: what ran, what broke, the verdict, and for each failing
    /// key a timeline `width` columns wide.
    pub fn lines(&self, width: usize, color: bool) -> Vec<String> {
        let count = |f: &dyn Fn(&Operation) -> bool| self.ops.iter().filter(|o| f(o)).count();
        let writes = count(&|o| o.kind.is_write());
        let unknown = count(&|o| o.outcome == Outcome::Unknown);
        let failed = count(&|o| o.outcome == Outcome::Fail);
        let stale = count(&|o| o.kind == OpKind::GetStale && o.outcome == Outcome::Ok);
        let mut out = vec![format!(
            "history: {} operations ({writes} writes, {} reads{}; {unknown} outcome unknown, \
             {failed} failed), {} faults",
            self.ops.len(),
            self.ops.len() - writes,
            if self.stale_reads {
                format!(", {stale} of them stale reads")
            } else {
                String::new()
            },
            self.faults.len()
        )];
        if self.membership_changes > 0 {
            out.push(format!(
                "membership: {} changes, {} of them bringing a removed or wiped id back",
                self.membership_changes, self.readds
            ));
        }
        out.extend(self.warnings.iter().map(|w| format!("note: {w}")));
        let off = if self.protections_off.is_empty() {
            String::new()
        } else {
            format!("; protections off: {}", self.protections_off.join(", "))
        };
        let checked = format!(
            "checked {} operations on {} keys in {:.1} ms{off}",
            self.report.ops_checked,
            self.report.keys.len(),
            self.check_time.as_secs_f64() * 1000.0
        );
        match self.report.verdict {
            Verdict::Linearizable => {
                out.push(format!(
                    "verdict: LINEARIZABLE: one order of the operations explains every result \
                     ({checked})"
                ));
                if self.stale_reads {
                    out.push(format!(
                        "no stale read was caught this time ({stale} done): a stale read needs \
                         a node that missed writes (an isolated or frozen old leader); run \
                         longer, or with --faults isolate,freeze"
                    ));
                }
            }
            Verdict::Unknown => out.push(format!(
                "verdict: UNKNOWN: the checker ran out of its search budget before deciding \
                 ({checked})"
            )),
            Verdict::Violation => {
                let keys = self.failing_keys();
                out.push(format!(
                    "verdict: NOT LINEARIZABLE on key{} {}: no order of the operations explains \
                     what the clients saw ({checked})",
                    if keys.len() == 1 { "" } else { "s" },
                    keys.join(", ")
                ));
                // Two pictures tell the story; more would bury the verdict.
                const SHOWN: usize = 2;
                let failing: Vec<_> = self
                    .report
                    .keys
                    .iter()
                    .filter(|k| k.verdict == Verdict::Violation)
                    .collect();
                for key in failing.iter().take(SHOWN) {
                    out.push(String::new());
                    out.extend(
                        timeline::render(&self.ops, &key.window, width, color)
                            .lines()
                            .map(str::to_string),
                    );
                    if let Some(lines) = self.causes.by_key.get(&key.key) {
                        out.extend(cause::fit(lines, width));
                    }
                }
                if let Some(line) = &self.causes.unreadable {
                    out.push(line.clone());
                }
                if failing.len() > SHOWN {
                    out.push(format!(
                        "(and {} more keys like these; --history FILE keeps every operation)",
                        failing.len() - SHOWN
                    ));
                }
                if self.stale_reads {
                    out.push(String::new());
                    out.push(
                        "expected: get --stale answers from one node's own copy, which may be \
                         behind; a linearizable get asks the leader to confirm it still leads"
                            .to_string(),
                    );
                }
            }
        }
        out.push(format!(
            "seed {} (--seed {} runs the same choices)",
            self.seed, self.seed
        ));
        out
    }
}

/// The contract's name of a verdict.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::Violation => "violation",
        Verdict::Unknown => "unknown",
    }
}

/// Runs chaos against the cluster at `peers` (or one of its own with `--spawn`);
/// `progress` sees a line now and then (faults as they happen, counts each few seconds).
/// `stop` ends the workload early (the TUI's Esc); the cluster is healed either way.
pub async fn run(
    peers: Vec<String>,
    opts: &ChaosOptions,
    stop: Arc<AtomicBool>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ChaosResult, ChaosError> {
    check(opts)?;
    let seed = opts.seed.unwrap_or_else(rand::random);
    let kinds: Vec<FaultKind> = opts
        .faults
        .clone()
        .unwrap_or_else(|| ALL_FAULTS.to_vec())
        .into_iter()
        .filter(|k| !k.needs_spawn() || opts.spawn.is_some())
        .collect();
    // Room for the ids the membership fault adds (two spares beside the initial nodes).
    let spares = if kinds.contains(&FaultKind::Membership) {
        SPARE_IDS
    } else {
        0
    };
    let mut spawned = match opts.spawn {
        Some(n) => Some(SpawnedCluster::start(n, spares, &opts.server_args)?),
        None => None,
    };
    let peers = spawned.as_ref().map_or(peers, SpawnedCluster::api_addrs);
    let admin = Arc::new(
        SmartClient::new(peers.clone(), Duration::from_secs(5))
            .map_err(|e| ChaosError::Usage(e.to_string()))?,
    );
    if let Some(n) = opts.spawn {
        let (started, spare) = peers.split_at(n.min(peers.len()));
        progress(&format!(
            "started {} nodes of its own ({}){}",
            started.len(),
            started.join(", "),
            if spare.is_empty() {
                String::new()
            } else {
                format!(
                    ", and ids for {} spares ({})",
                    spare.len(),
                    spare.join(", ")
                )
            }
        ));
    }
    if let Err(e) = wait_leader(&admin, Duration::from_secs(20)).await {
        if let Some((id, line)) = spawned.as_mut().and_then(SpawnedCluster::exited) {
            return Err(ChaosError::Usage(format!(
                "node {id} did not start: {line}"
            )));
        }
        return Err(e);
    }
    // A lab's cluster: the protections it runs without, for the verdict line.
    let mut protections_off: Vec<String> = admin
        .status_all()
        .await
        .iter()
        .filter_map(|r| r.status.as_ref().ok()?.protections.as_ref())
        .flat_map(kv_proto::kv::Protections::off)
        .collect();
    protections_off.sort();
    protections_off.dedup();
    let mut map = ClusterMap::discover(&admin).await;
    if let Some(cluster) = &spawned {
        // The spares too: stale reads may go to them once they are members.
        for (id, addr) in cluster.ids().into_iter().zip(cluster.api_addrs()) {
            map.nodes.entry(id).or_insert(addr);
        }
    }
    let member_ids: Vec<u64> = reshape::members_of(&admin)
        .await
        .map(|m| m.iter().map(|(id, _)| *id).collect())
        .unwrap_or_default();
    let members = if member_ids.is_empty() {
        map.reachable.len()
    } else {
        member_ids.len()
    };
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    progress(&format!(
        "chaos: {} nodes, {} clients, {} keys, {:.0} s, faults {}, seed {seed}",
        members,
        opts.clients,
        opts.keys,
        opts.seconds,
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        }
    ));

    // The recording follows the membership (the view's source), faults and all.
    // The workload waits until the recording holds every node's state, so that no
    // operation falls before it (a window explained by "no state by then").
    let mut early_warnings = Vec::new();
    let (end_recording, recording) = match &opts.record {
        Some(path) => {
            let (end, ended) = tokio::sync::oneshot::channel::<()>();
            let (ready, heard_all) = tokio::sync::oneshot::channel::<()>();
            let (client, path) = (Arc::clone(&admin), path.clone());
            let task = tokio::spawn(async move {
                let stop = async {
                    let _ = ended.await;
                };
                crate::record::record(client, &path, None, stop, Some(ready)).await
            });
            if !matches!(
                tokio::time::timeout(RECORDING_READY, heard_all).await,
                Ok(Ok(()))
            ) {
                early_warnings.push(format!(
                    "the recording had not heard from every node within {} s; the run started anyway",
                    RECORDING_READY.as_secs()
                ));
            }
            (Some(end), Some(task))
        }
        None => (None, None),
    };

    let shared = Arc::new(Shared {
        start: Instant::now(),
        start_unix_us: crate::view::now_us(),
        stop: AtomicBool::new(false),
        history: Mutex::new(Vec::new()),
        victim: AtomicU64::new(0),
        nodes: map.nodes.clone().into_iter().collect(),
        members: Mutex::new(member_ids),
    });
    let mut clients = tokio::task::JoinSet::new();
    for process in 1..=opts.clients as u64 {
        clients.spawn(workload::client(
            process,
            peers.clone(),
            opts.keys,
            opts.stale_reads,
            opts.read_from,
            seed.wrapping_add(process),
            Arc::clone(&shared),
        ));
    }
    let timer = {
        let shared = Arc::clone(&shared);
        let run_for = Duration::from_secs_f64(opts.seconds);
        async move {
            let mut said = Instant::now();
            while shared.start.elapsed() < run_for && !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if said.elapsed() >= Duration::from_secs(3) {
                    said = Instant::now();
                    progress(&format!(
                        "  {:>5.1} s: {} operations so far",
                        shared.start.elapsed().as_secs_f64(),
                        shared.ops()
                    ));
                }
            }
            shared.stop.store(true, Ordering::Relaxed);
        }
    };
    // Said when the fault ends (with when it began), so the lines stay in time order.
    let mut on_fault = |f: &Injected| {
        progress(&format!(
            "  {:>5.1} s: {} (from {:.1} s, {:.1} s)",
            f.at + f.held,
            f.what,
            f.at,
            f.held
        ));
    };
    let (log, ()) = tokio::join!(
        nemesis::run(
            Arc::clone(&admin),
            kinds.clone(),
            seed,
            Arc::clone(&shared),
            spawned.as_mut(),
            &mut on_fault,
        ),
        timer
    );
    while clients.join_next().await.is_some() {}

    // Everything healed, every node back, and the same log everywhere before the last reads.
    let mut warnings = early_warnings;
    warnings.extend(log.warnings);
    let _ = faults::run(&admin, &FaultCommand::Heal(None)).await;
    if let Some(cluster) = spawned.as_mut() {
        // Every member back (a removed node stays down).
        let members = reshape::members_of(&admin).await.unwrap_or_default();
        for (id, _) in members {
            if !cluster.is_running(id)
                && let Err(e) = cluster.spawn(id)
            {
                warnings.push(format!("cannot restart node {id}: {e}"));
            }
        }
    }
    progress("healed every fault; waiting for the cluster to converge");
    if let Err(why) = converge(&admin).await {
        warnings.push(why);
    }
    final_reads(&peers, opts, &shared).await;
    if let (Some(end), Some(task), Some(path)) = (end_recording, recording, &opts.record) {
        let _ = end.send(());
        match task.await {
            Ok(Ok(s)) => progress(&format!(
                "recorded {} records of {} nodes into {} ({})",
                s.records,
                s.nodes,
                path.display(),
                s.size()
            )),
            Ok(Err(e)) => warnings.push(format!("the recording failed: {e}")),
            Err(e) => warnings.push(format!("the recording failed: {e}")),
        }
    }

    let ops = std::mem::take(
        &mut *shared
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let started = Instant::now();
    let report = checker::check(&ops, Budget::default());
    let check_time = started.elapsed();
    let causes = match &opts.record {
        Some(path) if report.verdict == Verdict::Violation => {
            Box::new(Causes::of(path, &ops, &report, shared.start_unix_us))
        }
        _ => Box::default(),
    };
    Ok(ChaosResult {
        ops,
        report,
        check_time,
        faults: log.injected,
        warnings,
        keys: opts.keys,
        nodes: members,
        seed,
        kinds,
        stale_reads: opts.stale_reads,
        membership_changes: log.membership_changes,
        readds: log.readds,
        start_unix_us: shared.start_unix_us,
        causes,
        protections_off,
    })
}

fn check(opts: &ChaosOptions) -> Result<(), ChaosError> {
    let usage = |m: String| Err(ChaosError::Usage(m));
    if !(opts.seconds > 0.0 && opts.seconds <= 3600.0) {
        return usage(format!(
            "--seconds {} is out of range: give more than 0, up to 3600",
            opts.seconds
        ));
    }
    if !(1..=100).contains(&opts.clients) {
        return usage(format!(
            "--clients {} is out of range: give 1 to 100",
            opts.clients
        ));
    }
    if !(1..=10_000).contains(&opts.keys) {
        return usage(format!(
            "--keys {} is out of range: give 1 to 10000",
            opts.keys
        ));
    }
    if let Some(n) = opts.spawn
        && !(1..=7).contains(&n)
    {
        return usage(format!("--spawn {n} is out of range: give 1 to 7 nodes"));
    }
    let needs_spawn: Vec<&str> = opts
        .faults
        .iter()
        .flatten()
        .filter(|k| k.needs_spawn())
        .map(|k| k.name())
        .collect();
    if !opts.server_args.is_empty() && opts.spawn.is_none() {
        return usage(
            "--server-args needs --spawn N: they go to the raft-servers chaos starts itself"
                .to_string(),
        );
    }
    if !needs_spawn.is_empty() && opts.spawn.is_none() {
        return usage(format!(
            "--faults {} needs --spawn N: only a cluster of its own can be SIGKILLed, wiped \
             or given spare nodes",
            needs_spawn.join(",")
        ));
    }
    Ok(())
}

/// Waits for a leader, or says the cluster is unavailable: at once when no node has answered
/// at all for a few seconds (nothing is running there), else after `within`.
async fn wait_leader(admin: &SmartClient, within: Duration) -> Result<u64, ChaosError> {
    let started = Instant::now();
    let deadline = started + within;
    let mut anyone = false;
    loop {
        if let Some(l) = nemesis::leader_of(admin).await {
            return Ok(l);
        }
        if !anyone {
            let reports = admin.status_all_within(Duration::from_millis(500)).await;
            anyone = reports.iter().any(|r| r.status.is_ok());
        }
        let nobody = !anyone && started.elapsed() >= Duration::from_secs(3);
        if nobody || Instant::now() >= deadline {
            return Err(ChaosError::Unavailable(format!(
                "no leader at {} within {within:?}: is the cluster running? (the client API is \
                 on peer port + 1000; or use --spawn 3)",
                admin.peers().join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every member (as the leader lists them) answers, one of them leads, and
/// all have applied the same index: no member left behind, none inert.
async fn converge(admin: &SmartClient) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE;
    let mut last = String::new();
    while Instant::now() < deadline {
        let members: Vec<u64> = match reshape::members_of(admin).await {
            Ok(m) => m.into_iter().map(|(id, _)| id).collect(),
            Err(why) => {
                last = format!("no member list: {why}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let reports = admin.status_all_within(Duration::from_secs(1)).await;
        let up: Vec<_> = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok())
            .filter(|s| members.contains(&s.id))
            .collect();
        let leaders = up.iter().filter(|s| s.role == "Leader").count();
        let applied: Vec<(u64, u64)> = up.iter().map(|s| (s.id, s.applied_index)).collect();
        let same = applied.windows(2).all(|w| w[0].1 == w[1].1);
        if up.len() >= members.len() && leaders == 1 && same {
            return Ok(());
        }
        last = format!(
            "{} of {} members answer, {leaders} leader(s), applied (node, index) {applied:?}",
            up.len(),
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "the cluster did not converge within {CONVERGE:?} after healing ({last})"
    ))
}

/// One linearizable read of every key, recorded: it pins down what the unknown writes did.
async fn final_reads(peers: &[String], opts: &ChaosOptions, shared: &Shared) {
    let Ok(client) = SmartClient::new(peers.to_vec(), Duration::from_secs(10)) else {
        return;
    };
    let process = opts.clients as u64 + 1;
    let mut reads = HashMap::new();
    for k in 0..opts.keys {
        let key = format!("k{k}");
        let invoke_us = shared.now_us();
        let (value, outcome) = workload::read(client.get(&key, false).await);
        reads.insert(key.clone(), (value, outcome, invoke_us, shared.now_us()));
    }
    let mut history = shared
        .history
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut keys: Vec<_> = reads.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, (value, (outcome, answered_by), invoke_us, complete_us)) in keys {
        history.push(Operation {
            process,
            kind: OpKind::Get,
            key,
            value,
            invoke_us,
            complete_us,
            outcome,
            answered_by,
        });
    }
}
