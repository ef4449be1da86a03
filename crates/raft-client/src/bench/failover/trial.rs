//! One trial of `bench --op failover`, and the watch streams it reads every node's state
//! and messages from.
//!
//! A trial: wait until every node follows one leader and holds its whole log; watch the
//! leader send a heartbeat and SIGKILL it `offset` microseconds later (by the heartbeat's
//! own timestamp, so the lag of the stream does not move the kill; if the stream is late,
//! at the same point of a later interval); then wait for the first `state` record of a
//! surviving node that says it leads, in a higher term. The time without a leader is that
//! record's timestamp minus the kill's. Both are wall clock microseconds of this machine
//! (the nodes are our children, on the same clock), so the time includes the followers'
//! remaining election timeouts, the pre-vote and vote rounds, and the new leader's fsync
//! of its term and vote before it publishes its state; it does not include the time the
//! others take to hear of the new leader, or a client to find it. The killed node is
//! started again (same data dir) before the trial returns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kv_proto::watch::{self as pb, watch_client::WatchClient, watch_record::Kind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use super::ranges::TimeoutRange;
use crate::spawned::SpawnedCluster;

/// How soon a broken stream is tried again (a restarted node is watched again that soon).
const RECONNECT_EVERY: Duration = Duration::from_millis(20);
/// How long the cluster may take to agree on a leader, the restarted node included.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);
/// Records waiting to be read: a few seconds of five nodes at one state a tick.
const FEED_CAPACITY: usize = 1 << 16;

/// What one trial saw.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The leader killed, and its term.
    pub killed: u64,
    /// The term the killed node led.
    pub killed_term: u64,
    /// The first survivor that said it leads, and its term.
    pub leader: u64,
    /// The new leader's term.
    pub term: u64,
    /// From the kill to the new leader's first state record, in microseconds.
    pub without_leader_us: u64,
}

/// Why a trial gave no time.
#[derive(Debug)]
pub enum TrialError {
    /// Leadership changed before the kill (a spurious election): not a failover; run the
    /// trial again.
    Void(String),
    /// The cluster did not settle, or no new leader came within the deadline.
    Failed(String),
}

/// One record, or a stream that broke.
enum Feed {
    Record(u64, Box<pb::WatchRecord>),
    Down(u64),
}

/// A watch stream per node, each reconnecting after [`RECONNECT_EVERY`] when it breaks,
/// and the latest state each node reported. Dropping it ends every stream.
pub struct Streams {
    rx: mpsc::Receiver<Feed>,
    tasks: Vec<JoinHandle<()>>,
    latest: BTreeMap<u64, pb::NodeState>,
    nodes: usize,
    /// The latest heartbeat from each leader to each follower: (from, to) -> (term, t_us).
    last_heartbeat: BTreeMap<(u64, u64), (u64, u64)>,
    /// Microseconds between one leader's successive heartbeats to one follower.
    heartbeat_gaps_us: Vec<u64>,
}

/// The leader every node follows, and its term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leading {
    leader: u64,
    term: u64,
}

impl Streams {
    /// Watches every node of `nodes` (id, client API address).
    pub fn open(nodes: &[(u64, String)]) -> Self {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        let tasks = nodes
            .iter()
            .map(|(id, addr)| tokio::spawn(stream(*id, addr.clone(), tx.clone())))
            .collect();
        Self {
            rx,
            tasks,
            latest: BTreeMap::new(),
            nodes: nodes.len(),
            last_heartbeat: BTreeMap::new(),
            heartbeat_gaps_us: Vec::new(),
        }
    }

    /// The next record (a node's latest state kept on the way), or `None` at `deadline`.
    async fn next(&mut self, deadline: Instant) -> Option<(u64, Box<pb::WatchRecord>)> {
        loop {
            let feed = tokio::time::timeout_at(deadline.into(), self.rx.recv())
                .await
                .ok()
                .flatten()?;
            match feed {
                Feed::Down(id) => {
                    self.latest.remove(&id);
                }
                Feed::Record(id, record) => {
                    match &record.kind {
                        Some(Kind::State(s)) => {
                            self.latest.insert(id, s.clone());
                        }
                        Some(Kind::Send(m)) if m.msg_type == "MsgHeartbeat" => {
                            let last = self
                                .last_heartbeat
                                .insert((m.from, m.to), (m.term, record.t_us));
                            if let Some((term, t)) = last
                                && term == m.term
                            {
                                self.heartbeat_gaps_us.push(record.t_us.saturating_sub(t));
                            }
                        }
                        _ => {}
                    }
                    return Some((id, record));
                }
            }
        }
    }

    /// The time between a leader's heartbeats as it was, in microseconds (the median, over
    /// every leader and follower so far): `heartbeat_ms` ticks, each a little longer than
    /// a tick's interval on a loaded machine.
    pub fn heartbeat_interval_us(&self) -> Option<u64> {
        let mut gaps = self.heartbeat_gaps_us.clone();
        gaps.sort_unstable();
        crate::bench::stats::nearest_rank(&gaps, 50.0)
    }

    /// One leader that every node follows in its term, every node holding its whole log.
    fn agreed(&self) -> Option<Leading> {
        if self.latest.len() < self.nodes {
            return None;
        }
        let mut leaders = self.latest.iter().filter(|(_, s)| s.role == "Leader");
        let (&leader, ls) = leaders.next()?;
        if leaders.next().is_some() {
            return None;
        }
        let follows = self.latest.iter().all(|(&id, s)| {
            id == leader
                || (s.role == "Follower"
                    && s.leader == leader
                    && s.term == ls.term
                    && s.commit == ls.commit
                    && s.last_index == ls.last_index)
        });
        follows.then_some(Leading {
            leader,
            term: ls.term,
        })
    }

    /// Every node still in `leading`'s term under its leader (their logs may differ for a
    /// moment).
    fn still_led_by(&self, leading: Leading) -> bool {
        self.latest.len() == self.nodes
            && self.latest.iter().all(|(&id, s)| {
                s.term == leading.term
                    && if id == leading.leader {
                        s.role == "Leader"
                    } else {
                        s.leader == leading.leader
                    }
            })
    }

    /// Waits (up to `deadline`) until [`Streams::agreed`].
    async fn settle(&mut self, deadline: Instant) -> Result<Leading, String> {
        loop {
            if let Some(leading) = self.agreed() {
                return Ok(leading);
            }
            if self.next(deadline).await.is_none() {
                return Err(format!(
                    "the nodes did not agree on a leader within {} s; last seen: {}",
                    SETTLE_WITHIN.as_secs(),
                    self.describe()
                ));
            }
        }
    }

    /// The latest state of every node, in a few words.
    fn describe(&self) -> String {
        if self.latest.is_empty() {
            return "no node's state".to_string();
        }
        self.latest
            .iter()
            .map(|(id, s)| {
                format!(
                    "node {id} {} term {} leader {} commit {}",
                    s.role, s.term, s.leader, s.commit
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Runs one trial on `cluster` (see the module doc): kills the leader `offset_us` into its
/// heartbeat interval and restarts it once a survivor leads.
pub async fn run(
    cluster: &mut SpawnedCluster,
    streams: &mut Streams,
    range: &TimeoutRange,
    offset_us: u64,
) -> Result<Outcome, TrialError> {
    let settled = streams
        .settle(Instant::now() + SETTLE_WITHIN)
        .await
        .map_err(TrialError::Failed)?;
    let t_kill = kill_after_heartbeat(cluster, streams, range, settled, offset_us).await?;
    let outcome = new_leader(streams, range, settled, t_kill).await;
    // Every trial starts with every node: the killed one comes back with its data.
    if let Err(e) = cluster.spawn(settled.leader) {
        return Err(TrialError::Failed(format!(
            "cannot start node {} again: {e}",
            settled.leader
        )));
    }
    outcome
}

/// Waits for a heartbeat of the leader and SIGKILLs it `offset_us` after it was sent;
/// returns the kill's time (µs since the Unix epoch).
async fn kill_after_heartbeat(
    cluster: &mut SpawnedCluster,
    streams: &mut Streams,
    range: &TimeoutRange,
    settled: Leading,
    offset_us: u64,
) -> Result<u64, TrialError> {
    let interval_us = range.heartbeat_ms() * 1000;
    let deadline = Instant::now() + Duration::from_secs(5) + Duration::from_micros(4 * interval_us);
    let sent_us = loop {
        let Some((id, record)) = streams.next(deadline).await else {
            return Err(TrialError::Failed(format!(
                "node {} sent no heartbeat within 5 s",
                settled.leader
            )));
        };
        if let Some(Kind::State(_)) = record.kind
            && !streams.still_led_by(settled)
        {
            return Err(TrialError::Void(format!(
                "leadership moved before the kill: {}",
                streams.describe()
            )));
        }
        if id == settled.leader
            && let Some(Kind::Send(m)) = &record.kind
            && m.msg_type == "MsgHeartbeat"
        {
            break record.t_us;
        }
    };
    let mut target = sent_us + offset_us;
    let now = now_us();
    if target <= now && interval_us > 0 {
        // The stream was late: the same point of the first interval still to come.
        target += (now - target).div_ceil(interval_us) * interval_us;
    }
    let wait = Duration::from_micros(target.saturating_sub(now_us()));
    // A thread's sleep, not tokio's timer (whole milliseconds): a 12-24 ms range has a
    // heartbeat interval of 6 ms.
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(wait)).await;
    let t_kill = now_us();
    cluster.kill(settled.leader);
    Ok(t_kill)
}

/// Waits for the first survivor to say it leads in a term above the killed leader's.
async fn new_leader(
    streams: &mut Streams,
    range: &TimeoutRange,
    settled: Leading,
    t_kill: u64,
) -> Result<Outcome, TrialError> {
    let within = Duration::from_secs(5) + Duration::from_millis(20 * range.max_ms);
    let deadline = Instant::now() + within;
    loop {
        let Some((id, record)) = streams.next(deadline).await else {
            return Err(TrialError::Failed(format!(
                "no new leader within {:.1} s of killing node {} (term {}); last seen: {}",
                within.as_secs_f64(),
                settled.leader,
                settled.term,
                streams.describe()
            )));
        };
        let Some(Kind::State(s)) = &record.kind else {
            continue;
        };
        if id == settled.leader || s.role != "Leader" || s.term <= settled.term {
            continue;
        }
        if record.t_us < t_kill {
            return Err(TrialError::Void(format!(
                "node {id} led term {} before the kill",
                s.term
            )));
        }
        return Ok(Outcome {
            killed: settled.leader,
            killed_term: settled.term,
            leader: id,
            term: s.term,
            without_leader_us: record.t_us - t_kill,
        });
    }
}

/// Microseconds since the Unix epoch, as the nodes stamp their records.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Node `id`'s stream at `addr`, forever: its records to `tx`, a `Down` when it breaks.
async fn stream(id: u64, addr: String, tx: mpsc::Sender<Feed>) {
    loop {
        watch_once(id, &addr, &tx).await;
        if tx.send(Feed::Down(id)).await.is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

async fn watch_once(id: u64, addr: &str, tx: &mpsc::Sender<Feed>) {
    let Ok(endpoint) = Endpoint::from_shared(format!("http://{addr}")) else {
        return;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
    else {
        return;
    };
    // One entry of the log's tail: only the state and the messages matter here.
    let request = pb::WatchRequest { log_tail: 1 };
    let Ok(response) = WatchClient::new(channel).watch(request).await else {
        return;
    };
    let mut batches = response.into_inner();
    while let Ok(Some(batch)) = batches.message().await {
        for record in batch.records {
            if tx.send(Feed::Record(id, Box::new(record))).await.is_err() {
                return;
            }
        }
    }
}
