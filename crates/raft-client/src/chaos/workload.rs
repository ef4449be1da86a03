//! The chaos workload: concurrent clients, each a [`SmartClient`] of its own (its own
//! client id, so its writes carry their own request ids), doing random puts, deletes and
//! linearizable reads on a small key space, and with `--stale-reads` reads of one node's own
//! copy. Some linearizable reads go to one node and are answered there, as a client with an
//! out-of-date idea of the leader would send them: while the nemesis isolates or freezes a
//! node, a quarter go to that node; otherwise one in seven to a random member. Every
//! operation is recorded with its invocation and completion time, what the client knows of
//! its outcome, and which node answered it (the id in the reply).
//!
//! Outcomes, as the checker needs them: a read that got no answer tells nothing (`fail`); a
//! write is `fail` only when it certainly was not applied (every attempt was refused at
//! connect or answered "not the leader", which no node proposes), `unknown` when any attempt
//! may have been proposed, `ok` once acknowledged. Values written are unique, so a read
//! names the write it saw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::history::{OpKind, Operation, Outcome};
use crate::client::{ClientError, SmartClient};
use crate::read_from::ReadFrom;
use crate::trace::HopOutcome;

/// How long one operation may take before the client gives up (outcome unknown for a write).
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// What the clients share with the nemesis and the run.
pub struct Shared {
    /// When the run started: times are microseconds since.
    pub start: Instant,
    /// The same moment on the wall clock, µs since the Unix epoch: what maps an operation's
    /// times onto a recording's (the nodes stamp records with their wall clock, on this host).
    pub start_unix_us: u64,
    /// Set to stop the clients.
    pub stop: AtomicBool,
    /// Every operation recorded so far.
    pub history: Mutex<Vec<Operation>>,
    /// Node the nemesis is tormenting now (0: none): stale reads go there half the time,
    /// linearizable reads a quarter of the time.
    pub victim: AtomicU64,
    /// API address of every node, by id (spares waiting to be added included).
    pub nodes: HashMap<u64, String>,
    /// The members, as the nemesis last heard them from the leader (empty: not yet).
    pub members: Mutex<Vec<u64>>,
}

impl Shared {
    /// Microseconds since the start.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Operations recorded so far.
    pub fn ops(&self) -> usize {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn record(&self, op: Operation) {
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(op);
    }
}

/// One client's loop until `shared.stop`.
pub async fn client(
    process: u64,
    peers: Vec<String>,
    keys: usize,
    stale_reads: bool,
    read_from: ReadFrom,
    seed: u64,
    shared: Arc<Shared>,
) {
    // With `ReadFrom::Any` each linearizable get starts at a random member, which answers
    // it itself (a follower with the leader's read index).
    let Ok(client) = SmartClient::new(peers, OP_TIMEOUT) else {
        return;
    };
    let client = client.with_read_from(read_from);
    let mut pinned: HashMap<String, SmartClient> = HashMap::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("k{}", rng.random_range(0..keys.max(1)));
        let roll = rng.random_range(0..100);
        let kind = match roll {
            _ if stale_reads && roll < 20 => OpKind::GetStale,
            0..40 => OpKind::Get,
            40..85 => OpKind::Put,
            _ => OpKind::Delete,
        };
        let value = format!("v{process}.{n}");
        let invoke_us = shared.now_us();
        let (value, (outcome, answered_by)) = match kind {
            OpKind::Put => (
                Some(value.clone()),
                write_outcome(client.put(&key, value.as_bytes()).await),
            ),
            OpKind::Delete => (None, write_outcome(client.delete(&key).await)),
            OpKind::Get => match read_target(&shared, &mut rng) {
                Some(addr) => {
                    let Some(node) = pinned_to(&mut pinned, addr) else {
                        continue;
                    };
                    read(node.get(&key, false).await)
                }
                None => read(client.get(&key, false).await),
            },
            OpKind::GetStale => {
                let addr = stale_target(&shared, &mut rng);
                let Some(node) = addr.and_then(|a| pinned_to(&mut pinned, a)) else {
                    continue;
                };
                read(node.get(&key, true).await)
            }
        };
        shared.record(Operation {
            process,
            kind,
            key,
            value,
            invoke_us,
            complete_us: shared.now_us(),
            outcome,
            answered_by,
        });
    }
}

/// A client that asks only the node at `addr` (made once per node).
fn pinned_to(pinned: &mut HashMap<String, SmartClient>, addr: String) -> Option<&SmartClient> {
    if !pinned.contains_key(&addr) {
        let client = SmartClient::new(vec![addr.clone()], OP_TIMEOUT).ok()?;
        pinned.insert(addr.clone(), client.pinned());
    }
    pinned.get(&addr)
}

/// Where a linearizable read goes instead of through the leader, as a client whose idea of
/// the leader is out of date would send it (a read at any member must be linearizable too):
/// a quarter of the time while the nemesis torments a node, that node itself (an isolated
/// or frozen old leader is where a read that skips confirming its leadership goes wrong);
/// otherwise one read in seven, a random member (where two leaders of one term would each
/// show their own writes).
fn read_target(shared: &Shared, rng: &mut StdRng) -> Option<String> {
    let victim = shared.victim.load(Ordering::Relaxed);
    if victim != 0 {
        return rng
            .random_bool(0.25)
            .then(|| shared.nodes.get(&victim).cloned())
            .flatten();
    }
    if !rng.random_ratio(1, 7) {
        return None;
    }
    random_node(shared, rng)
}

/// A member's address, at random (any node's before the nemesis has heard the members).
fn random_node(shared: &Shared, rng: &mut StdRng) -> Option<String> {
    let mut ids = shared
        .members
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if ids.is_empty() {
        ids = shared.nodes.keys().copied().collect();
    }
    ids.sort_unstable();
    let id = ids.get(rng.random_range(0..ids.len().max(1)))?;
    shared.nodes.get(id).cloned()
}

/// A node to read stale from: the nemesis's current victim half the time (an isolated or
/// frozen old leader is where stale data lives), else any member.
fn stale_target(shared: &Shared, rng: &mut StdRng) -> Option<String> {
    let victim = shared.victim.load(Ordering::Relaxed);
    if victim != 0 && rng.random_bool(0.5) {
        return shared.nodes.get(&victim).cloned();
    }
    random_node(shared, rng)
}

/// The outcome of a write, and the node that acknowledged it (0: none did).
fn write_outcome(
    result: Result<crate::client::Reply<kv_proto::kv::WriteResponse>, ClientError>,
) -> (Outcome, u64) {
    let outcome = match result {
        Ok(reply) => return (Outcome::Ok, reply.value.node_id),
        Err(ClientError::Rejected(_) | ClientError::BadAddress(_)) => Outcome::Fail,
        Err(ClientError::NotLeaderHere { .. }) => Outcome::Fail,
        Err(ClientError::Unavailable { trace, .. }) => {
            let never_proposed = trace.hops.iter().all(|h| {
                matches!(
                    h.outcome,
                    HopOutcome::Refused(_)
                        | HopOutcome::NotLeader { .. }
                        | HopOutcome::NotClientApi
                )
            });
            if never_proposed {
                Outcome::Fail
            } else {
                Outcome::Unknown
            }
        }
        Err(ClientError::Superseded(_)) => Outcome::Unknown,
    };
    (outcome, 0)
}

/// The value read (`None`: not found), the outcome, and the node that answered (0: none).
pub(super) fn read(
    result: Result<crate::client::Reply<kv_proto::kv::GetResponse>, ClientError>,
) -> (Option<String>, (Outcome, u64)) {
    match result {
        Ok(reply) => {
            let value = reply
                .value
                .found
                .then(|| String::from_utf8_lossy(&reply.value.value).into_owned());
            (value, (Outcome::Ok, reply.value.node_id))
        }
        Err(_) => (None, (Outcome::Fail, 0)),
    }
}
