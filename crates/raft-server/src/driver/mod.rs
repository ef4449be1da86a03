//! The node driver: the one owner of the raft-rs `RawNode`.
//!
//! Runs on its own thread (it does blocking fsyncs). Ticks, peer messages, proposals and
//! reads arrive on one channel ([`NodeHandle`]); each loop drains what has arrived, handles
//! the resulting Ready in the order raft-rs documents, answers what finished, and publishes
//! the [`NodeStatus`] view.
//!
//! - `handle`: [`NodeHandle`], the messages it sends, and the request errors.
//! - `pending`: proposals and reads waiting for Raft.
//! - `follower_reads`: linearizable reads at a follower or learner (the leader's read index).
//! - `propose`: writes gathered per loop and proposed together, stamped with the leader's
//!   clock.
//! - `raft_config`: the raft-rs configuration (and why `batch_append` is off).
//! - `lost_log`: a follower that lost entries it had acknowledged is replicated to again.
//! - `snapshot`: taking, installing and reporting snapshots.
//! - `publish`: the events timeline and the status view.
//! - `members`: membership changes (checked, proposed, applied, answered) and removal.
//! - `admin`: operator commands (campaign, transfer leadership) and the time faults (freeze,
//!   thaw, slow motion), which live here because ticks come from here.
//! - `liveness`: elections and leader changes in the last minute, time without a leader.
//! - `lab`: Raft's protections switched on a running node (the client's `lab` command).
//! - `timing`: a timed write's stamps (`put --timing`), on every node that handles it.
//! - `step`: step mode (the clock stopped, every message held for the learner to deliver).

mod admin;
mod follower_reads;
mod handle;
mod idle_poll;
mod lab;
mod liveness;
mod lost_log;
mod members;
mod pending;
mod propose;
mod publish;
mod raft_config;
#[cfg(test)]
mod raft_net;
mod snapshot;
mod step;
mod timing;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kv_proto::watch::watch_record::Kind;
use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::{RawNode, StateRole};
use tokio::sync::watch;

pub use handle::{
    AdminCommand, MAX_SLOW_FACTOR, MemberError, MemberOutcome, MemberRequest, NodeHandle,
    ReadOutcome, RequestError, TimeControl, WriteOutcome,
};
use handle::{DriverMsg, Shared};
pub use liveness::LivenessView;
pub use members::MAX_PROMOTE_LAG;
use pending::{PendingReads, PendingWrites};
pub use step::{StepAnswer, StepControl};

use crate::command::Command;
use crate::config::{NodeConfig, PeerMap};
use crate::membership::{Membership, MembershipView};
use crate::state_machine::KvStateMachine;
use crate::status::{Event, NodeStatus, Role};
use crate::storage::{EngineStorage, Recovered, StorageError};
use crate::transport::Transport;

/// Capacity of the driver's queue: room for [`handle::MAX_QUEUED_REQUESTS`] client requests
/// plus at least as many Raft messages. Beyond it peer messages are dropped.
const QUEUE_CAPACITY: usize = 16 * 1024 + handle::MAX_QUEUED_REQUESTS;
/// Most requests handled before the next Ready, so ticks and replies keep flowing.
const MAX_BATCH: usize = 4096;
/// Most entries kept in the log behind a snapshot (for followers slightly behind).
const KEEP_ENTRIES: u64 = 1000;

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Writing the log failed: the node cannot go on without risking its promises.
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// raft-rs refused the configuration.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A snapshot's data could not be read into the state machine.
    #[error("snapshot: {0}")]
    Snapshot(#[from] crate::state_machine::SnapshotError),
}

/// Owns the `RawNode`, the state machine's writes and the pending requests.
pub struct NodeDriver {
    raw: RawNode<EngineStorage>,
    storage: EngineStorage,
    sm: Arc<RwLock<KvStateMachine>>,
    transport: Box<dyn Transport>,
    /// How the loop waits for its next message.
    idle: idle_poll::IdlePoll,
    rx: Receiver<DriverMsg>,
    status_tx: watch::Sender<NodeStatus>,
    /// `--peers`: fills in addresses the log does not know.
    seed: PeerMap,
    /// Who is in the cluster and where (this driver is its only writer).
    membership: MembershipView,
    /// The membership change this leader proposed, until its configuration is final.
    pending_change: Option<members::PendingChange>,
    /// Set once this node knows it was removed (the index of the change).
    removed: Option<u64>,
    /// When this leader last proposed to record members' incarnations, and since when it
    /// waits to have heard from every member whose incarnation is unknown.
    incarnations_proposed: Option<Instant>,
    incarnations_wait: Option<Instant>,
    /// The last event given by `note_once`.
    said_once: Option<String>,
    /// The last state record the watchers got (a new one only when it differs).
    watched_state: Option<kv_proto::watch::NodeState>,
    /// The joint configuration in force (entered at this index, then, voters before and
    /// after), and the last one that ended.
    joint_since: Option<(u64, Instant, String, String)>,
    last_joint: Option<crate::status::JointSpan>,
    /// The leader and term the wiped-log warning was last given for.
    warned_wiped: Option<(u64, u64)>,
    /// The configured tick interval; slow motion multiplies it.
    tick: Duration,
    /// Raft's protections, as the flags left them.
    protections: crate::config::Protections,
    liveness: liveness::Liveness,
    /// Slow-motion factor (1: normal speed).
    slow_factor: u32,
    /// While frozen, only time controls, notes and shutdown are handled; everything else
    /// waits in `held`, as it would in the socket buffers of a paused process.
    frozen: Option<Instant>,
    held: VecDeque<DriverMsg>,
    /// After a thaw, how many of the client requests at the front of `held` are still to
    /// be handled: they get a loop of their own (answered, a lease read included) before
    /// the peers' messages that waited behind them are read.
    thawed_requests: usize,
    /// Once the last of those is taken: the batch ends after it, and this many loops take
    /// nothing new, until they have answered what those requests asked (a lease read's
    /// read state comes in the next Ready).
    settling: u8,
    /// Step mode, while it is on: no ticks, sent messages held (see `step`).
    step: Option<step::Stepping>,
    writes: PendingWrites,
    reads: PendingReads,
    /// Timed writes' stamps (`put --timing`); empty unless one was asked for.
    timing: timing::Timing,
    /// Writes taken in this loop, proposed together at its end.
    proposals: propose::Proposals,
    /// Stamps commands with this leader's time (sessions expire by it).
    leader_clock: propose::LeaderClock,
    last_heard: HashMap<u64, Instant>,
    events: Arc<VecDeque<Event>>,
    seen: Seen,
    shared: Arc<Shared>,
    snapshot_every: u64,
    /// Index of the latest snapshot, taken or installed.
    last_snapshot: u64,
    /// The snapshot being written, if any.
    snapshot_task: Option<snapshot::SnapshotTask>,
    /// After a failed snapshot: not before this.
    snapshot_retry: Option<Instant>,
    /// Time the driver's own thread spent on the latest snapshot it took.
    snapshot_stall: Duration,
    /// Wakes this driver (a snapshot thread that finished). The transport holds a handle
    /// anyway, so the queue never disconnects while the driver runs: it stops on shutdown.
    wake: SyncSender<DriverMsg>,
}

/// What the driver last reported, to turn changes into events.
#[derive(Default)]
struct Seen {
    role: Role,
    term: u64,
    leader: u64,
    peers_up: HashMap<u64, bool>,
    /// The last (pre-)vote request of each candidate: its last log term and index.
    vote_asks: HashMap<u64, (u64, u64)>,
}

impl NodeDriver {
    /// Builds the driver and its handle. `recovered` describes the opened storage.
    pub fn new(
        cfg: &NodeConfig,
        storage: EngineStorage,
        recovered: Recovered,
        transport_for: impl FnOnce(NodeHandle) -> Box<dyn Transport>,
    ) -> Result<(Self, NodeHandle), DriverError> {
        // Decided by what is on disk, not by whether the dir was just made: a crash between
        // writing the marker and this snapshot leaves a dir that is not new and still empty.
        let empty = storage.snapshot_metadata().is_none()
            && recovered.last_index == 0
            && storage.hard_state() == raft::eraftpb::HardState::default();
        let bootstrap = empty && !cfg.join && recovered.cluster_id != 0;
        if bootstrap {
            // A new cluster starts from a snapshot of its initial membership at index 1, as
            // raft-rs's examples do: a node that joins later then always gets a snapshot
            // first (entry 1 is never in anyone's log), never a log whose conf changes would
            // apply on top of an empty configuration.
            let (snap, hard_state) = snapshot::bootstrap(&cfg.peers);
            storage.apply_snapshot(&snap, Some(&hard_state))?;
        }
        let snapshot = storage.latest_snapshot()?;
        let snapshot_index = snapshot.as_ref().map_or(0, |s| s.get_metadata().index);
        let raft_cfg =
            raft_config::raft_config(cfg.id, &cfg.timing, snapshot_index, &cfg.protections);
        raft_cfg.validate()?;
        let mut sm = KvStateMachine::new();
        let membership = match snapshot.as_ref() {
            Some(snap) => {
                let (restored, book) = snapshot::decode(snap.get_data())?;
                sm = restored;
                Membership::from_snapshot(
                    snap.get_metadata().get_conf_state(),
                    book.as_ref(),
                    &cfg.peers,
                )
            }
            None => {
                let conf = raft::Storage::initial_state(&storage)?.conf_state;
                Membership::from_snapshot(&conf, None, &cfg.peers)
            }
        };
        storage.set_snapshot_floors(membership.snapshot_floors());
        let membership = MembershipView::new(membership);
        let logger = crate::raft_logger::raft_logger(cfg.id);
        let mut raw = RawNode::new(&raft_cfg, storage.clone(), &logger)?;
        // A leader tells followers a new commit index with its next append or heartbeat
        // (every 100 ms) rather than with an append of its own each time the index moves:
        // under load that halves the messages between nodes, and idle followers still learn
        // it within a heartbeat. Writes are answered by the leader, so none waits for it.
        raw.skip_bcast_commit(true);
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let wake = tx.clone();
        let shared = Arc::new(handle::Shared {
            watch: crate::watch::WatchHub::new(cfg.id),
            ..handle::Shared::default()
        });
        let (status_tx, status_rx) = watch::channel(NodeStatus::default());
        let handle = NodeHandle {
            tx,
            status: status_rx,
            sm: Arc::new(RwLock::new(sm)),
            membership: membership.clone(),
            storage: storage.clone(),
            request_timeout: cfg.request_timeout,
            shared,
        };
        let transport = transport_for(handle.clone());
        let tick = cfg.timing.tick;
        let mut driver = Self {
            raw,
            storage,
            sm: Arc::clone(&handle.sm),
            transport,
            rx,
            status_tx,
            seed: cfg.peers.clone(),
            membership,
            pending_change: None,
            removed: None,
            incarnations_proposed: None,
            incarnations_wait: None,
            said_once: None,
            watched_state: None,
            joint_since: None,
            last_joint: None,
            warned_wiped: None,
            tick,
            protections: cfg.protections,
            liveness: liveness::Liveness::default(),
            idle: idle_poll::IdlePoll::new(idle_poll::budget()),
            slow_factor: 1,
            frozen: None,
            held: VecDeque::new(),
            thawed_requests: 0,
            settling: 0,
            step: None,
            writes: PendingWrites::default(),
            reads: PendingReads::new(cfg.id),
            timing: timing::Timing::default(),
            proposals: propose::Proposals::default(),
            leader_clock: propose::LeaderClock::default(),
            last_heard: HashMap::new(),
            events: Arc::new(VecDeque::new()),
            seen: Seen::default(),
            shared: Arc::clone(&handle.shared),
            snapshot_every: cfg.snapshot_every,
            last_snapshot: snapshot_index,
            snapshot_task: None,
            snapshot_retry: None,
            snapshot_stall: Duration::ZERO,
            wake,
        };
        driver.seen.term = recovered.term;
        let me = cfg.id;
        let waiting = driver.membership.with(|m| m.is_empty());
        driver.event(if waiting {
            let at = cfg
                .peers
                .get(me)
                .map_or("<its peer address>".to_string(), |p| {
                    p.peer_addr.to_string()
                });
            format!("waiting to be added: run `raft-client member add {me} {at}`")
        } else if bootstrap {
            format!("started fresh, voters {:?}", cfg.peers.ids())
        } else {
            format!(
                "restarted: recovered log to index {}, term {}, commit {}, snapshot {}",
                recovered.last_index, recovered.term, recovered.commit, recovered.snapshot_index
            )
        });
        let off = cfg.protections.badges();
        if !off.is_empty() {
            driver.event(format!(
                "running with Raft's protections off (a lab): {}",
                off.join(", ")
            ));
        }
        driver.publish();
        Ok((driver, handle))
    }

    /// Runs until [`NodeHandle::shutdown`].
    pub fn run(mut self) -> Result<(), DriverError> {
        let result = self.run_loop();
        let err = RequestError::ShuttingDown;
        self.writes.fail_all(&err);
        self.reads.fail_all(&err);
        let flushed = self.storage.flush();
        result?;
        flushed?;
        Ok(())
    }

    fn run_loop(&mut self) -> Result<(), DriverError> {
        let mut next_tick = Instant::now() + self.tick_interval();
        loop {
            if self.frozen.is_some() {
                if !self.wait_frozen()? {
                    return Ok(());
                }
                // Thawed (or still frozen after a control): no burst of missed ticks.
                next_tick = Instant::now() + self.tick_interval();
                continue;
            }
            let wait = if self.raw.has_ready() || !self.held.is_empty() {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            let first = if self.settling > 0 {
                self.settling -= 1;
                None
            } else {
                match self.pop_held() {
                    Some(msg) => Some(msg),
                    None => match self.idle.recv(&self.rx, wait) {
                        Ok(msg) => Some(msg),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    },
                }
            };
            let mut handled = 0;
            if let Some(msg) = first {
                handled += 1;
                if !self.handle(msg) {
                    return Ok(());
                }
                for _ in 0..MAX_BATCH {
                    // A freeze stops the batch: what follows it waits. So does the end of
                    // the requests that waited through a freeze.
                    if self.frozen.is_some() || self.settling > 0 {
                        break;
                    }
                    let next = self.pop_held().or_else(|| self.rx.try_recv().ok());
                    let Some(msg) = next else { break };
                    handled += 1;
                    if !self.handle(msg) {
                        return Ok(());
                    }
                }
            }
            // The loop's writes, as one proposal (one append per follower).
            self.flush_proposals();
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.take_snapshot_reports();
            let now = Instant::now();
            if now >= next_tick && self.frozen.is_none() {
                // A removed node takes no part: no elections. Its clock still moves on, so
                // the loop keeps sleeping between ticks rather than spinning. In step mode
                // only the learner ticks Raft (requests still expire by the real clock).
                if self.removed.is_none() && !self.stepping() {
                    self.tick_raft();
                }
                self.expire_change(now, false);
                self.record_incarnations(now);
                // A whole interval from this tick to the next, as raft-rs's examples do: a
                // stall (a slow fsync, a loaded machine) delays ticks but never bunches
                // them, so a timeout of N ticks always spans at least N - 1 intervals of
                // silence (what slow motion promises a learner, and what its test checks).
                next_tick = now + self.tick_interval();
                self.writes.expire(now);
                self.reads.expire(now);
            }
            self.on_ready()?;
            self.send_waiting_reads();
            self.maybe_snapshot()?;
            self.publish();
            self.idle
                .loop_done(handled, self.writes.len() + self.reads.len());
        }
    }

    /// The next message that waited (through a freeze, or behind a batch), counting down
    /// the requests a thaw put first.
    fn pop_held(&mut self) -> Option<DriverMsg> {
        let msg = self.held.pop_front()?;
        if self.thawed_requests > 0 {
            self.thawed_requests -= 1;
            if self.thawed_requests == 0 {
                self.settling = 2;
            }
        }
        Some(msg)
    }

    /// One Raft tick; an election timer that fires starts an election (counted for the
    /// liveness line: raft-rs sets the timer back to 0 as it campaigns).
    fn tick_raft(&mut self) {
        self.raw.tick();
        let raft = &self.raw.raft;
        if matches!(raft.state, StateRole::PreCandidate | StateRole::Candidate)
            && raft.election_elapsed == 0
        {
            self.liveness.campaign(Instant::now());
        }
    }

    /// The tick interval in force (slow motion stretches it).
    fn tick_interval(&self) -> Duration {
        self.tick.saturating_mul(self.slow_factor.max(1))
    }

    /// One wait while frozen: handles time controls, notes and shutdown, holds the rest.
    /// False means stop.
    fn wait_frozen(&mut self) -> Result<bool, DriverError> {
        let msg = match self.rx.recv_timeout(Duration::from_millis(100)) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(false),
        };
        if self.shared.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match msg {
            Some(
                msg @ (DriverMsg::Time { .. }
                | DriverMsg::Note(_)
                | DriverMsg::Protect { .. }
                | DriverMsg::Shutdown),
            ) => {
                if !self.handle(msg) {
                    return Ok(false);
                }
            }
            // What step mode holds is the network's, not the paused process's: it can be
            // delivered, dropped or released while the node is frozen. A tick is the
            // node's own clock, which a freeze stops: refused.
            Some(DriverMsg::Step { ctl, reply }) => {
                self.shared.queued_requests.fetch_sub(1, Ordering::Relaxed);
                let answer = if ctl == StepControl::Tick {
                    self.step_refused("frozen: thaw it first, a frozen node does not tick")
                } else {
                    self.step_and_say(ctl)
                };
                let _ = reply.send(answer);
            }
            // A full socket buffer of a paused process loses what comes after; Raft
            // resends. Client requests are bounded by their share of the queue.
            Some(DriverMsg::Raft(_)) if self.held.len() >= QUEUE_CAPACITY => {}
            Some(DriverMsg::Wake) | None => {}
            Some(other) => self.held.push_back(other),
        }
        self.publish();
        Ok(true)
    }

    /// Handles one request; false means stop.
    fn handle(&mut self, msg: DriverMsg) -> bool {
        if matches!(
            msg,
            DriverMsg::Propose { .. }
                | DriverMsg::Stamps { .. }
                | DriverMsg::Read { .. }
                | DriverMsg::Admin { .. }
                | DriverMsg::Time { .. }
                | DriverMsg::Member { .. }
                | DriverMsg::Transfer { .. }
                | DriverMsg::Step { .. }
                | DriverMsg::Protect { .. }
        ) {
            self.shared.queued_requests.fetch_sub(1, Ordering::Relaxed);
        }
        // What changes leadership, time or membership comes after the writes taken before
        // it, as it would without the loop's gathering.
        if matches!(
            msg,
            DriverMsg::Admin { .. }
                | DriverMsg::Time { .. }
                | DriverMsg::Member { .. }
                | DriverMsg::Transfer { .. }
                | DriverMsg::Protect { .. }
                | DriverMsg::Shutdown
        ) {
            self.flush_proposals();
        }
        match msg {
            // A removed node takes no part any more.
            DriverMsg::Raft(_) if self.removed.is_some() => {}
            DriverMsg::Raft(mut m) => {
                self.last_heard.insert(m.from, Instant::now());
                self.timing
                    .received(&m, self.raw.raft.state == StateRole::Leader);
                self.note_vote_traffic(&m, true);
                self.clamp_heartbeat_commit(&mut m);
                let lost = self.forget_lost_progress(&m);
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!("dropped a peer message: {e}");
                }
                if let Some(peer) = lost {
                    self.raw.raft.send_append(peer);
                }
            }
            DriverMsg::Propose {
                cmd,
                reply,
                deadline,
                timed,
            } => self.propose(cmd, reply, deadline, timed),
            DriverMsg::Stamps { index, reply } => {
                let _ = reply.send(self.timing.get(index));
            }
            DriverMsg::Read {
                key,
                any_member,
                reply,
                deadline,
            } => {
                if reply.is_closed() || deadline <= Instant::now() {
                    // Waited out its deadline in the queue (e.g. while frozen).
                    let _ = reply.send(Err(RequestError::Timeout));
                } else if let Err(e) = self.may_read(any_member) {
                    let _ = reply.send(Err(e));
                } else {
                    self.reads.insert(key, reply, deadline);
                }
            }
            DriverMsg::Unreachable(peer) => self.raw.report_unreachable(peer),
            DriverMsg::Wake => {}
            DriverMsg::Admin { cmd, reply } => {
                let answer = self.admin(cmd);
                self.event(answer.clone());
                let _ = reply.send(answer);
            }
            DriverMsg::Time { ctl, reply } => {
                let before = (self.frozen.is_some(), self.slow_factor);
                let answer = self.time_control(ctl);
                if before != (self.frozen.is_some(), self.slow_factor) {
                    self.shared
                        .watch
                        .publish(Kind::Fault(kv_proto::watch::FaultChange {
                            text: answer.clone(),
                        }));
                }
                self.event(answer.clone());
                let _ = reply.send(answer);
            }
            DriverMsg::Note(text) => self.event(text),
            DriverMsg::Member {
                req,
                reply,
                deadline,
            } => self.change_members(req, reply, deadline),
            DriverMsg::Transfer { to, reply } => {
                let _ = reply.send(self.transfer(to));
            }
            DriverMsg::Step { ctl, reply } => {
                let _ = reply.send(self.step_and_say(ctl));
            }
            DriverMsg::Protect { set, reply } => {
                let answer = self.set_protections(set);
                self.event(answer.clone());
                let _ = reply.send(answer);
            }
            DriverMsg::RemovedByPeer { index } => {
                let me = self.raw.raft.id;
                let (waiting, added_at) = self.membership.with(|m| (m.is_empty(), m.added_at(me)));
                if waiting {
                } else if added_at > index {
                    // A member that applied our earlier removal but not our addition since.
                    self.note_once(format!(
                        "a member still refuses this node as removed at index {index}: it has \
                         not applied the change that added it back (index {added_at}) yet"
                    ));
                } else {
                    self.mark_removed(index);
                }
            }
            DriverMsg::LearnAddress { id, addr } => self.learn_address(id, &addr),
            DriverMsg::Shutdown => return false,
        }
        true
    }

    /// A leader's heartbeat carries its commit index capped at what it has matched in our
    /// log, and raft-rs commits whatever it says (panicking past our last index). That is
    /// only as good as our log: a node whose data dir was wiped lost what it acknowledged,
    /// and may since have taken entries from a stale leader. So the commit is let through
    /// only where our log is provably this leader's: when our last entry is of the leader's
    /// term, log matching makes every entry up to it the leader's. Otherwise it is dropped;
    /// appends, which raft-rs checks entry by entry, bring the commit once the leader's
    /// probe has repaired our log.
    fn clamp_heartbeat_commit(&mut self, m: &mut Message) {
        let log = &self.raw.raft.raft_log;
        if m.get_msg_type() != MessageType::MsgHeartbeat || m.commit <= log.committed {
            return;
        }
        let (last, committed) = (log.last_index(), log.committed);
        let proven = log.term(last).is_ok_and(|term| term == m.term);
        // Said once per leader and term, not on every heartbeat.
        if m.commit > last && self.warned_wiped != Some((m.from, m.term)) {
            self.warned_wiped = Some((m.from, m.term));
            let me = self.raw.raft.id;
            let text = format!(
                "node {} says index {} is committed here, but our log ends at {last}: was this \
                 node's data dir wiped? Raft needs a node's log and vote to survive. To bring \
                 it back: `raft-client member remove {me}`, restart it with an empty data dir \
                 and --join, then `raft-client member add {me} <its peer address>`",
                m.from, m.commit
            );
            tracing::warn!("{text}");
            self.event(text);
        }
        m.commit = if proven {
            m.commit.min(last)
        } else {
            committed
        };
    }

    /// See [`lost_log::forget_lost_progress`]; said on the timeline.
    fn forget_lost_progress(&mut self, m: &Message) -> Option<u64> {
        let lost = lost_log::forget_lost_progress(&mut self.raw.raft, m)?;
        self.note_once(format!(
            "node {} has lost entries: its log ends at {} but it had acknowledged {}; \
             replicating to it again from index {}",
            lost.peer, lost.log_ends_at, lost.had, lost.from_index
        ));
        Some(lost.peer)
    }

    /// Sends messages, noting vote traffic for the timeline.
    fn send(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        for m in &msgs {
            self.note_vote_traffic(m, false);
        }
        self.timing.sending(&msgs);
        self.hold(msgs);
    }

    fn require_leader(&self) -> Result<(), RequestError> {
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader && raft.lead_transferee.is_none() {
            return Ok(());
        }
        Err(RequestError::NotLeader {
            leader_id: (raft.leader_id != 0 && raft.leader_id != raft.id).then_some(raft.leader_id),
            term: raft.term,
        })
    }

    /// Hands reads to Raft once this leader has committed an entry of its own term; at a
    /// node that does not lead, see `follower_reads`.
    fn send_waiting_reads(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            self.send_follower_reads();
        } else if self.reads.has_unsent() && self.raw.raft.commit_to_current_term() {
            for ctx in self.reads.take_unsent(None) {
                self.raw.read_index(ctx);
            }
        }
    }

    /// Handles one Ready, in the order raft-rs documents.
    fn on_ready(&mut self) -> Result<(), DriverError> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // A role change the messages below follow from is said first ("became
        // PreCandidate" before "asks node 2 for a pre-vote").
        self.observe_leadership();

        // 1. Messages that need nothing of ours on disk first (a leader's appends and
        //    heartbeats) go out now, so followers write while we write.
        self.send(ready.take_messages());

        // 2. A snapshot from the leader (we were too far behind): it replaces the log and
        //    the state machine, before any entry that follows it.
        if !ready.snapshot().is_empty() {
            let hs = ready.hs().map(|hs| self.written_hard_state(hs));
            self.install_snapshot(ready.snapshot(), hs.as_ref())?;
        }

        // 3. Apply committed entries (raft-rs only hands out entries already on our disk).
        self.apply(ready.take_committed_entries())?;

        // 4+5. Append new entries and record the hard state: one synced write. When only
        //      the commit index moved (`must_sync` is false), raft-rs allows it to reach
        //      disk later: it rides with the next write (a restart learns it again), and
        //      no fsync is spent on it.
        self.note_replaced(ready.entries());
        if ready.entries().is_empty() && !ready.must_sync() {
            if let Some(hs) = ready.hs() {
                self.storage.set_commit(hs.commit);
            }
        } else {
            let hs = ready.hs().map(|hs| self.written_hard_state(hs));
            self.storage.persist(ready.entries(), hs.as_ref())?;
            self.idle.stored(ready.entries().len());
            let step = if self.raw.raft.state == StateRole::Leader {
                "appended and fsynced"
            } else {
                "stored and fsynced"
            };
            self.timing.stamp_entries(ready.entries(), step);
            self.acknowledge_early(ready.entries());
        }
        // Told to the watchers once stored: a watcher that starts now reads its log's tail
        // from the storage, so an entry is either in that tail or in a record it gets.
        self.watch_entries(ready.entries());

        // ReadIndex confirmations: answered once the state machine reaches them.
        for rs in ready.take_read_states() {
            self.reads.confirmed(&rs.request_ctx, rs.index);
        }

        // 6. Messages that must follow the write (votes, append acks).
        self.send(ready.take_persisted_messages());

        // 7. Advance, then the light ready: a new commit index, its messages and entries.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();

        self.reads
            .answer_ready(&self.sm.read().unwrap_or_else(PoisonError::into_inner));
        self.observe_leadership();
        Ok(())
    }

    /// The hard state as it goes to disk: raft-rs's, but for `--unsafe forget-vote`, which
    /// writes no vote (restarted, the node has voted for nobody in its term).
    fn written_hard_state(&self, hs: &raft::eraftpb::HardState) -> raft::eraftpb::HardState {
        let mut hs = hs.clone();
        if self.protections.forget_vote {
            hs.vote = 0;
        }
        hs
    }

    /// `--unsafe ack-on-append`: a leader answers the writes it just appended (and wrote)
    /// as done, before a majority has them.
    fn acknowledge_early(&mut self, entries: &[Entry]) {
        if !self.protections.ack_on_append || self.raw.raft.state != StateRole::Leader {
            return;
        }
        if let Some(last) = entries.last() {
            self.writes
                .acknowledge_appended(last.index, self.raw.raft.term);
        }
    }

    /// Entries that start at or before our last stored index replace a conflicting suffix
    /// (entries a deposed leader appended and never committed): worth a line on the timeline.
    fn note_replaced(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let last = self.storage.last_index_stored();
        if first.index > last {
            return;
        }
        let old_term = raft::Storage::term(&self.storage, first.index).unwrap_or(0);
        let range = if first.index == last {
            format!("entry {last}")
        } else {
            format!("entries {}-{last}", first.index)
        };
        self.event(format!(
            "uncommitted {range} (term {old_term}) replaced by the leader's (term {})",
            first.term
        ));
        if self.shared.watch.active() {
            self.shared
                .watch
                .publish(Kind::Truncate(kv_proto::watch::Truncate {
                    from_index: first.index,
                }));
        }
    }

    /// Entries appended, for the watchers (described as the dashboard's log panel does).
    fn watch_entries(&self, entries: &[Entry]) {
        if entries.is_empty() || !self.shared.watch.active() {
            return;
        }
        for e in entries {
            self.shared
                .watch
                .publish(Kind::Entry(crate::watch::entry_of(e)));
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), DriverError> {
        if entries.is_empty() {
            return Ok(());
        }
        if !self.timing.is_empty() {
            let step = if self.raw.raft.state == StateRole::Leader {
                "committed"
            } else {
                "learned it is committed"
            };
            let last = entries.last().map_or(0, |e| e.index);
            self.timing.stamp_upto(last, step);
        }
        let sm_lock = Arc::clone(&self.sm);
        let mut sm = sm_lock.write().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    // A new leader's empty entry (it may have taken a proposal's slot), or
                    // one that records members' incarnations in its context.
                    if !entry.context.is_empty() {
                        self.apply_incarnations(&entry);
                    }
                    sm.apply_noop(entry.index);
                    self.writes.applied(entry.index, entry.term, None);
                }
                EntryType::EntryNormal => match Command::decode(&entry.data) {
                    Ok(cmd) => {
                        let result = sm.apply(entry.index, entry.term, &cmd);
                        if !self.timing.is_empty() {
                            self.timing.stamp(entry.index, "applied");
                        }
                        self.writes.applied(entry.index, entry.term, Some(result));
                    }
                    Err(e) => {
                        tracing::error!("entry {} is not a command ({e}); skipped", entry.index);
                        sm.apply_noop(entry.index);
                        self.writes.applied(entry.index, entry.term, None);
                    }
                },
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_entry(&entry);
                    sm.apply_noop(entry.index);
                    // It may have taken the slot of a write proposed by an earlier leader.
                    self.writes.applied(entry.index, entry.term, None);
                }
            }
        }
        Ok(())
    }
}
