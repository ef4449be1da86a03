//! The nemesis: while the clients run, it breaks the cluster one fault at a time through
//! the same commands a learner types (`fault ...`, `transfer`), holds each for a second or
//! three, and heals it before the next; with a spawned cluster it also SIGKILLs and
//! restarts nodes and changes the membership (see `reshape`). Faults go to the members
//! the leader lists. Every fault is logged with its time, for the report.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};

use super::reshape::{self, Reshaper};
use super::workload::Shared;
use crate::admin::Ending;
use crate::client::SmartClient;
use crate::faults::{self, FaultCommand};
use crate::members::{self, MemberCommand};
use crate::spawned::SpawnedCluster;

/// A kind of fault the nemesis may inject (`--faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Cut every link of a node (often the leader).
    Isolate,
    /// Cut the link between two nodes.
    Cut,
    /// A node loses a share of its messages.
    Drop,
    /// A node's messages arrive late.
    Delay,
    /// A node stops, as if paused.
    Freeze,
    /// Leadership moves.
    Transfer,
    /// A node is SIGKILLed and restarted (`--spawn` only).
    Kill,
    /// A spare id is added, a voter removed, a removed id added again (`--spawn` only).
    Membership,
    /// A voter's data dir is lost; it is brought back as the README says (`--spawn` only).
    Wipe,
    /// Step mode on every member; held messages delivered in a random order, some dropped,
    /// nodes ticked by hand (see `stepping`).
    Step,
}

/// How long a membership change may take (a new node catches up first).
const MEMBER_TIMEOUT: Duration = Duration::from_secs(20);

/// Every kind, in the order `--faults` lists them.
pub const ALL: [FaultKind; 10] = [
    FaultKind::Isolate,
    FaultKind::Cut,
    FaultKind::Drop,
    FaultKind::Delay,
    FaultKind::Freeze,
    FaultKind::Transfer,
    FaultKind::Kill,
    FaultKind::Membership,
    FaultKind::Wipe,
    FaultKind::Step,
];

impl FaultKind {
    /// Only a cluster of chaos's own (`--spawn`) can take it.
    pub fn needs_spawn(self) -> bool {
        matches!(
            self,
            FaultKind::Kill | FaultKind::Membership | FaultKind::Wipe
        )
    }
}

impl FaultKind {
    /// Its name in `--faults`.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Isolate => "isolate",
            FaultKind::Cut => "cut",
            FaultKind::Drop => "drop",
            FaultKind::Delay => "delay",
            FaultKind::Freeze => "freeze",
            FaultKind::Transfer => "transfer",
            FaultKind::Kill => "kill",
            FaultKind::Membership => "membership",
            FaultKind::Wipe => "wipe",
            FaultKind::Step => "step",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ALL.iter()
            .copied()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {s:?}: give some of {}", names.join(","))
            })
    }
}

/// One fault the nemesis injected.
#[derive(Debug, Clone)]
pub struct Injected {
    /// When it began, seconds into the run.
    pub at: f64,
    /// What it was, in a few words.
    pub what: String,
    /// How long it was held.
    pub held: f64,
}

/// What the nemesis did: the faults, and any it could not apply.
#[derive(Debug, Default)]
pub struct NemesisLog {
    /// The faults injected, in order.
    pub injected: Vec<Injected>,
    /// Faults refused or that failed (a node refused a fault command, a restart failed).
    pub warnings: Vec<String>,
    /// Membership changes made (`membership`, `wipe`).
    pub membership_changes: usize,
    /// Ids added again after a removal or a wipe.
    pub readds: usize,
}

/// Runs the nemesis until `shared.stop`; returns what it did. Heals what it did before
/// returning, also when stopped in the middle of a fault.
pub async fn run(
    client: Arc<SmartClient>,
    kinds: Vec<FaultKind>,
    seed: u64,
    shared: Arc<Shared>,
    mut spawned: Option<&mut SpawnedCluster>,
    on_fault: &mut (dyn FnMut(&Injected) + Send),
) -> NemesisLog {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973);
    let mut log = NemesisLog::default();
    let mut reshaper = Reshaper::default();
    // Membership changes wait for catching up: they get longer than a client request.
    let slow_client = SmartClient::new(client.peers().to_vec(), MEMBER_TIMEOUT).ok();
    let mut ids: Vec<u64> = shared.nodes.keys().copied().collect();
    ids.sort_unstable();
    if kinds.is_empty() || ids.is_empty() {
        return log;
    }
    loop {
        if pause(&shared, rng.random_range(400..1200)).await {
            break;
        }
        let Some(&kind) = kinds.choose(&mut rng) else {
            break;
        };
        // Faults go to members only, as the leader lists them (a removed node that still
        // runs is no target, and a node added since is one).
        if let Ok(members) = reshape::members_of(&client).await {
            let now: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
            if !now.is_empty() {
                *shared
                    .members
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now.clone();
                ids = now;
            }
        }
        let warnings = &mut log.warnings;
        let at = shared.start.elapsed().as_secs_f64();
        let hold = rng.random_range(800..2500);
        let leader = leader_of(&client).await;
        let victim = match leader {
            // The leader half the time: that is where faults teach the most.
            Some(l) if rng.random_bool(0.5) => l,
            _ => *ids.choose(&mut rng).unwrap_or(&ids[0]),
        };
        let what = match kind {
            FaultKind::Isolate => {
                shared.victim.store(victim, Ordering::Relaxed);
                fault(warnings, &client, FaultCommand::Isolate(victim)).await;
                pause(&shared, hold).await;
                fault(warnings, &client, FaultCommand::Heal(Some(victim))).await;
                format!("isolate node {victim}{}", leader_mark(victim, leader))
            }
            FaultKind::Cut => {
                let other = *ids
                    .iter()
                    .filter(|id| **id != victim)
                    .collect::<Vec<_>>()
                    .choose(&mut rng)
                    .map_or(&victim, |id| *id);
                if other == victim {
                    continue;
                }
                fault(warnings, &client, FaultCommand::Cut(victim, other)).await;
                pause(&shared, hold).await;
                fault(warnings, &client, FaultCommand::Heal(Some(victim))).await;
                format!("cut nodes {victim} and {other}")
            }
            FaultKind::Drop => {
                let percent = rng.random_range(20..60);
                fault(warnings, &client, FaultCommand::Drop(victim, percent)).await;
                pause(&shared, hold).await;
                fault(warnings, &client, FaultCommand::Heal(Some(victim))).await;
                format!("node {victim} drops {percent}%")
            }
            FaultKind::Delay => {
                let ms = rng.random_range(50..300);
                fault(warnings, &client, FaultCommand::Delay(victim, ms)).await;
                pause(&shared, hold).await;
                fault(warnings, &client, FaultCommand::Heal(Some(victim))).await;
                format!("node {victim} delays {ms} ms")
            }
            FaultKind::Freeze => {
                shared.victim.store(victim, Ordering::Relaxed);
                fault(warnings, &client, FaultCommand::Freeze(victim)).await;
                // Longer than the others: a frozen leader's clients give up on it after
                // 1.5 s, then write at the new leader while the old one still sleeps (what
                // a lease read at the old leader then misses).
                pause(&shared, hold * 2).await;
                fault(warnings, &client, FaultCommand::Thaw(victim)).await;
                format!("freeze node {victim}{}", leader_mark(victim, leader))
            }
            FaultKind::Transfer => {
                let _ = members::run(&client, &MemberCommand::Transfer(None), &mut |_| {}).await;
                "transfer leadership".to_string()
            }
            FaultKind::Step => {
                let stopped = || shared.stop.load(Ordering::Relaxed);
                let hold = Duration::from_millis(hold);
                let cluster = spawned.as_deref_mut();
                let s = super::stepping::run(&client, &mut rng, hold, cluster, &stopped).await;
                warnings.extend(s.warnings);
                let staged = s
                    .staged
                    .map(|said| format!("; a crash mid-election: {said}"))
                    .unwrap_or_default();
                format!(
                    "step mode: {} held messages delivered out of order, {} dropped, {} ticks{staged}",
                    s.delivered, s.dropped, s.ticks
                )
            }
            FaultKind::Kill => {
                let Some(cluster) = spawned.as_deref_mut() else {
                    continue;
                };
                cluster.kill(victim);
                pause(&shared, hold).await;
                if let Err(e) = cluster.spawn(victim) {
                    warnings.push(format!("cannot restart node {victim}: {e}"));
                }
                format!(
                    "SIGKILL node {victim}{}, restart",
                    leader_mark(victim, leader)
                )
            }
            FaultKind::Membership | FaultKind::Wipe => {
                let (Some(cluster), Some(slow)) = (spawned.as_deref_mut(), slow_client.as_ref())
                else {
                    continue;
                };
                let done = if kind == FaultKind::Membership {
                    reshaper.step(slow, cluster, &mut rng, leader).await
                } else {
                    reshaper.wipe(slow, cluster, &mut rng, leader).await
                };
                match done {
                    Ok(what) => what,
                    Err(why) => {
                        warnings.push(format!("{kind} did not finish: {why}"));
                        format!("{kind}: did not finish ({why})")
                    }
                }
            }
        };
        shared.victim.store(0, Ordering::Relaxed);
        let injected = Injected {
            at,
            what,
            held: shared.start.elapsed().as_secs_f64() - at,
        };
        on_fault(&injected);
        log.injected.push(injected);
    }
    log.membership_changes = reshaper.changes;
    log.readds = reshaper.readds;
    log
}

/// Sleeps `ms` or until the run stops; true when it stopped.
async fn pause(shared: &Shared, ms: u64) -> bool {
    let end = tokio::time::Instant::now() + Duration::from_millis(ms);
    while tokio::time::Instant::now() < end {
        if shared.stop.load(Ordering::Relaxed) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.load(Ordering::Relaxed)
}

/// Applies a fault; a node it could not reach (killed meanwhile) is not an error here, a
/// refusal is noted.
async fn fault(warnings: &mut Vec<String>, client: &SmartClient, cmd: FaultCommand) {
    let report = faults::run(client, &cmd).await;
    if report.ending == Ending::Refused {
        let lines: Vec<&str> = report.lines.iter().map(|l| l.text.as_str()).collect();
        warnings.push(lines.join("; "));
    }
}

/// The leader the reachable nodes agree on (highest term), if any.
pub async fn leader_of(client: &SmartClient) -> Option<u64> {
    let reports = client.status_all_within(Duration::from_millis(500)).await;
    reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .filter(|s| s.role == "Leader" && !s.frozen)
        .max_by_key(|s| s.term)
        .map(|s| s.id)
}

fn leader_mark(id: u64, leader: Option<u64>) -> &'static str {
    if leader == Some(id) {
        " (the leader)"
    } else {
        ""
    }
}
