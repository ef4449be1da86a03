//! [`NodeHandle`]: the cloneable way for everything else to talk to the node driver.
//!
//! Requests go to the driver on a bounded channel and come back on oneshot channels, each
//! with a deadline. Nothing here touches the `RawNode`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use tokio::sync::{oneshot, watch};

use crate::command::Command;
use crate::membership::MembershipView;
use crate::state_machine::KvStateMachine;
use crate::status::NodeStatus;
use crate::storage::EngineStorage;

/// Why a client request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// This node is not the leader; `leader_id` is who is, if known.
    #[error("not the leader")]
    NotLeader {
        /// The leader this node knows of.
        leader_id: Option<u64>,
        /// This node's term.
        term: u64,
    },
    /// Leadership changed while the request was in flight: a write may or may not have been
    /// applied, and a retry with the same request id is safe.
    #[error("leadership changed before the request finished; retry (a write's outcome is unknown)")]
    LeadershipLost,
    /// The node's queue is full or Raft dropped the proposal; retry later.
    #[error("the node is busy; retry")]
    Busy,
    /// The request did not finish within the server's deadline.
    #[error("the request timed out in the server (a write's outcome is unknown)")]
    Timeout,
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The client had already had a newer write applied; this older one was not applied,
    /// and its earlier fate is no longer known.
    #[error(
        "superseded: a newer write of this client was applied first; this one was not applied now \
         and whether it was applied before is unknown"
    )]
    Superseded,
    /// A read at a node that does not lead: it asked the leader for a read index and heard
    /// nothing back in time (cut off from it, or the leader is gone); another node may
    /// answer.
    #[error(
        "asked the leader (node {leader_id}) for a read index and got no answer in time: \
         cut off from it? retry (another node may answer)"
    )]
    NoReadIndex {
        /// The leader this node asked.
        leader_id: u64,
    },
}

/// The result of a committed and applied write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Index of the entry that applied the write.
    pub index: u64,
    /// Term of the entry that carried the write.
    pub term: u64,
    /// Put: a value was replaced. Delete: the key existed.
    pub existed: bool,
    /// The write had been applied before (a retry).
    pub duplicate: bool,
}

/// The result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The value, if the key exists.
    pub value: Option<Vec<u8>>,
    /// The state machine's applied index when it was read.
    pub applied_index: u64,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, RequestError>>;

/// Most client requests (writes, reads, admin) queued for the driver at once. The queue is
/// larger than this, so Raft messages from peers always find room: client load can never
/// crowd out the heartbeats that keep the leader a leader.
pub(crate) const MAX_QUEUED_REQUESTS: usize = 8 * 1024;

/// What the driver is asked to do.
pub(crate) enum DriverMsg {
    /// A Raft message from a peer.
    Raft(Box<Message>),
    /// Propose a write.
    Propose {
        cmd: Command,
        reply: Reply<WriteOutcome>,
        deadline: Instant,
        /// Stamp its journey (`put --timing`).
        timed: bool,
    },
    /// A timed write's stamps on this node, by log index.
    Stamps {
        index: u64,
        reply: oneshot::Sender<Vec<(String, u64)>>,
    },
    /// A linearizable read; with `any_member`, served here even when this node does not
    /// lead (a follower asks the leader for its read index).
    Read {
        key: String,
        any_member: bool,
        reply: Reply<ReadOutcome>,
        deadline: Instant,
    },
    /// The transport could not deliver to this peer.
    Unreachable(u64),
    /// Something was left for the driver (a snapshot report): look now, not at the tick.
    Wake,
    /// An operator command from the dashboard; the reply says what happened.
    Admin {
        cmd: AdminCommand,
        reply: oneshot::Sender<String>,
    },
    /// Freeze, thaw or slow motion; handled even while frozen. The reply says what happened.
    Time {
        ctl: TimeControl,
        reply: oneshot::Sender<String>,
    },
    /// A line for the events timeline (a fault set or cleared elsewhere in the node).
    Note(String),
    /// A membership change, answered once the cluster's configuration is final (or refused).
    Member {
        req: MemberRequest,
        reply: oneshot::Sender<Result<MemberOutcome, MemberError>>,
        deadline: Instant,
    },
    /// Hand leadership to a voter (`None`: the most up-to-date one); answers with its id.
    Transfer {
        to: Option<u64>,
        reply: oneshot::Sender<Result<u64, MemberError>>,
    },
    /// Step mode: on, off, deliver, drop, one tick, or list; handled even while frozen
    /// (refused then, but for a list).
    Step {
        ctl: super::StepControl,
        reply: oneshot::Sender<super::StepAnswer>,
    },
    /// A lab: switch Raft's protections to these from now on (the client's `lab` command);
    /// handled even while frozen. The reply says what changed.
    Protect {
        set: crate::config::Protections,
        reply: oneshot::Sender<String>,
    },
    /// A member said it applied this node's removal at `index`.
    RemovedByPeer { index: u64 },
    /// A node this one has no address for sent from this address.
    LearnAddress { id: u64, addr: String },
    /// Stop the driver.
    Shutdown,
}

/// Operator commands (the dashboard's `c` and `t` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// Start an election now (pre-vote first), whatever the election timer says.
    Campaign,
    /// On the leader: hand leadership to the most up-to-date follower.
    TransferLeader,
}

/// A membership change asked of the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRequest {
    /// Add a node as a learner, listening for peers at `peer_addr`.
    AddLearner {
        /// Its id.
        id: u64,
        /// Its peer address (a host name or IP address).
        peer_addr: crate::addr::HostPort,
        /// Its data dir's incarnation, as it told the leader (0: not known).
        incarnation: u64,
    },
    /// Make a learner a voter (through a joint configuration).
    Promote(u64),
    /// Remove a member (through a joint configuration when it votes).
    Remove(u64),
}

/// A membership change that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOutcome {
    /// Index of the entry that carried the change.
    pub index: u64,
    /// Index of the entry that left the joint configuration, when there was one.
    pub left_joint_at: Option<u64>,
    /// What happened, in a line.
    pub changed: String,
}

/// Why a membership change or a leader transfer did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// Not allowed now or not at all; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// Removing the leader: it must hand leadership to another voter first.
    #[error("{0}")]
    TransferFirst(String),
    /// Not now, soon: a change is still in progress, or a new leader has not yet applied
    /// its log (raft-rs takes no change until then). Asking again shortly will do.
    #[error("{0}")]
    NotYet(String),
    /// The request did not get through (not the leader, lost leadership, timeout, ...).
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// The time faults: they live in the driver, where ticks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeControl {
    /// Stop ticking and handling Raft messages and client requests; they wait, as on a
    /// paused process. The dashboard, `Status` and the fault commands keep answering.
    Freeze,
    /// Resume after a freeze, handling what waited: the client requests first, then the
    /// peers' messages, each in the order they came (a resumed process may read either
    /// connection first; this order is the one a lease read goes wrong in).
    Thaw,
    /// Multiply the tick interval by this factor (1 = normal); election and heartbeat
    /// timeouts stretch with it.
    Slow(u32),
}

/// Largest slow-motion factor: at 50 ms ticks, elections then take 50-100 s.
pub const MAX_SLOW_FACTOR: u32 = 100;

/// What the handles and the driver share besides the queue.
#[derive(Default)]
pub(crate) struct Shared {
    /// Client requests sent to the driver and not yet taken off the queue.
    pub(crate) queued_requests: AtomicUsize,
    /// Set by [`NodeHandle::shutdown`]; the driver checks it every loop.
    pub(crate) stop: AtomicBool,
    /// Set when this node learns it was removed from the cluster; the transport stops.
    pub(crate) removed: AtomicBool,
    /// Snapshot deliveries reported by the transport, `(peer, delivered)`; the driver
    /// drains them every loop, so none can be lost to a full queue.
    pub(crate) snapshot_reports: std::sync::Mutex<Vec<(u64, bool)>>,
    /// The driver is frozen (written by the driver when it freezes or thaws).
    pub(crate) frozen: AtomicBool,
    /// The slow-motion factor in force; 0 stands for 1 (written by the driver).
    pub(crate) slow_factor: AtomicU32,
    /// Each peer's data dir incarnation, as its accepted batches said (the leader records
    /// the ones the log does not know yet).
    pub(crate) seen_incarnations: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
    /// Why members refuse this node, when they do (its data dir was replaced): said on the
    /// dashboard and in `Status` until a member accepts it again.
    pub(crate) refused: std::sync::Mutex<Option<String>>,
    /// The node's watch stream.
    pub(crate) watch: crate::watch::WatchHub,
}

/// A cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) tx: SyncSender<DriverMsg>,
    pub(crate) status: watch::Receiver<NodeStatus>,
    pub(crate) sm: Arc<RwLock<KvStateMachine>>,
    pub(crate) membership: MembershipView,
    pub(crate) storage: EngineStorage,
    pub(crate) request_timeout: Duration,
    /// What the handles share with the driver besides the queue.
    pub(crate) shared: Arc<Shared>,
}

impl NodeHandle {
    /// Proposes a write; answers once it is committed and applied, or fails.
    pub async fn propose(&self, cmd: Command) -> Result<WriteOutcome, RequestError> {
        self.propose_timed(cmd, false).await
    }

    /// [`Self::propose`], stamping its journey on every node when `timed`.
    pub async fn propose_timed(
        &self,
        cmd: Command,
        timed: bool,
    ) -> Result<WriteOutcome, RequestError> {
        self.request(|reply, deadline| DriverMsg::Propose {
            cmd,
            reply,
            deadline,
            timed,
        })
        .await
    }

    /// The stamps this node kept for the timed write at `index` (step, µs since the epoch).
    pub async fn stamps(&self, index: u64) -> Result<Vec<(String, u64)>, RequestError> {
        self.ask(|reply| DriverMsg::Stamps { index, reply }).await
    }

    /// A linearizable read through ReadIndex on the leader; with `any_member` a follower or
    /// learner serves it too, with the leader's read index (refused when it knows no
    /// leader).
    pub async fn read(&self, key: String, any_member: bool) -> Result<ReadOutcome, RequestError> {
        self.request(|reply, deadline| DriverMsg::Read {
            key,
            any_member,
            reply,
            deadline,
        })
        .await
    }

    /// A read of this node's own state machine, possibly stale. A frozen node answers only
    /// once thawed (within the request deadline), like a paused process.
    pub async fn stale_read(&self, key: &str) -> Result<ReadOutcome, RequestError> {
        if self.shared.frozen.load(Ordering::Relaxed) {
            let mut status = self.status.clone();
            let thawed = status.wait_for(|s| !s.frozen);
            match tokio::time::timeout(self.request_timeout, thawed).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(RequestError::ShuttingDown),
                Err(_) => return Err(RequestError::Timeout),
            }
        }
        let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
        Ok(ReadOutcome {
            value: sm.get(key).map(<[u8]>::to_vec),
            applied_index: sm.applied(),
        })
    }

    /// Hands a peer's Raft message to the driver; dropped when the driver is overloaded
    /// (Raft recovers from lost messages).
    pub fn step(&self, msg: Message) {
        let _ = self.tx.try_send(DriverMsg::Raft(Box::new(msg)));
    }

    /// Sends the driver the request `make` builds around a reply channel, and waits for
    /// its answer (the driver answers these within a loop; 2 s covers a slow fsync).
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> DriverMsg,
    ) -> Result<T, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(make(reply))?;
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RequestError::ShuttingDown),
            Err(_) => Err(RequestError::Timeout),
        }
    }

    /// Runs an operator command; the answer is a line for the operator.
    pub async fn admin(&self, cmd: AdminCommand) -> String {
        let (reply, rx) = oneshot::channel();
        if self.enqueue(DriverMsg::Admin { cmd, reply }).is_err() {
            return "the node is busy or stopping; try again".to_string();
        }
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(answer)) => answer,
            _ => "no answer from the node driver".to_string(),
        }
    }

    /// Freezes, thaws or slows the node; the answer is a line for the operator.
    pub async fn time_control(&self, ctl: TimeControl) -> Result<String, RequestError> {
        self.ask(|reply| DriverMsg::Time { ctl, reply }).await
    }

    /// A lab: runs with these protections from now on, as if started with their flags.
    pub async fn set_protections(
        &self,
        set: crate::config::Protections,
    ) -> Result<String, RequestError> {
        self.ask(|reply| DriverMsg::Protect { set, reply }).await
    }

    /// Step mode: the answer says what happened and what is held.
    pub async fn step_control(
        &self,
        ctl: super::StepControl,
    ) -> Result<super::StepAnswer, RequestError> {
        self.ask(|reply| DriverMsg::Step { ctl, reply }).await
    }

    /// `(frozen, slow-motion factor)` as the driver last applied them.
    pub fn time_faults(&self) -> (bool, u32) {
        let slow = self.shared.slow_factor.load(Ordering::Relaxed).max(1);
        (self.shared.frozen.load(Ordering::Relaxed), slow)
    }

    /// Adds a line to the node's events timeline (dropped if the queue is full).
    pub fn note(&self, text: String) {
        let _ = self.tx.try_send(DriverMsg::Note(text));
    }

    /// A fault change for the events timeline, and a `fault` record for the watchers.
    pub fn note_fault(&self, text: String) {
        self.shared
            .watch
            .publish(kv_proto::watch::watch_record::Kind::Fault(
                kv_proto::watch::FaultChange { text: text.clone() },
            ));
        self.note(text);
    }

    /// Asks the leader for a membership change; answers once the configuration is final.
    pub async fn change_members(&self, req: MemberRequest) -> Result<MemberOutcome, MemberError> {
        let deadline = Instant::now() + self.request_timeout;
        let (reply, rx) = oneshot::channel();
        self.enqueue(DriverMsg::Member {
            req,
            reply,
            deadline,
        })?;
        let grace = Duration::from_millis(200);
        match tokio::time::timeout(self.request_timeout + grace, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::ShuttingDown.into()),
            Err(_) => Err(RequestError::Timeout.into()),
        }
    }

    /// Asks the leader to hand leadership to `to` (or the most up-to-date voter); answers
    /// with the node chosen once the transfer has started.
    pub async fn transfer_leader(&self, to: Option<u64>) -> Result<u64, MemberError> {
        let (reply, rx) = oneshot::channel();
        self.enqueue(DriverMsg::Transfer { to, reply })?;
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::ShuttingDown.into()),
            Err(_) => Err(RequestError::Timeout.into()),
        }
    }

    /// A member told the transport it applied this node's removal at `index`.
    pub fn removed_by_peer(&self, index: u64) {
        let _ = self.tx.try_send(DriverMsg::RemovedByPeer { index });
    }

    /// A node this one has no address for sent a batch from `addr`: worth knowing, to
    /// answer it (it may be a member added while this node was cut off).
    pub fn learn_address(&self, id: u64, addr: &str) {
        let _ = self.tx.try_send(DriverMsg::LearnAddress {
            id,
            addr: addr.to_string(),
        });
    }

    /// This node's watch stream (records only while someone watches).
    pub fn watch(&self) -> &crate::watch::WatchHub {
        &self.shared.watch
    }

    /// This node's data dir incarnation, which its batches carry.
    pub fn incarnation(&self) -> u64 {
        self.storage.incarnation()
    }

    /// A peer's batch was accepted: it came from data dir `incarnation`. Two different ones
    /// for one id (a wiped node and its old self, or a forged batch) make it ambiguous (0):
    /// no incarnation is recorded for it then, rather than possibly the wrong one.
    pub fn note_incarnation(&self, peer: u64, incarnation: u64) {
        let mut seen = self
            .shared
            .seen_incarnations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match seen.get(&peer) {
            None => {
                seen.insert(peer, incarnation);
            }
            Some(&known) if known != incarnation && known != 0 => {
                seen.insert(peer, 0);
            }
            Some(_) => {}
        }
    }

    /// A member refuses this node for `why` (`None`: a member accepted it again). A new
    /// reason goes on the events timeline and in the log once.
    pub fn refused_by_peer(&self, why: Option<String>) {
        let mut refused = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *refused == why {
            return;
        }
        if let Some(text) = &why {
            tracing::warn!("{text}");
            let _ = self.tx.try_send(DriverMsg::Note(text.clone()));
        }
        *refused = why;
    }

    /// Why members refuse this node now, if they do.
    pub fn refused(&self) -> Option<String> {
        self.shared
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True once this node knows it was removed from the cluster.
    pub fn is_removed(&self) -> bool {
        self.shared.removed.load(Ordering::Relaxed)
    }

    /// Who is in the cluster and where.
    pub fn membership(&self) -> &MembershipView {
        &self.membership
    }

    /// Tells Raft whether a snapshot for `peer` went out (raft-rs holds the peer until it
    /// hears).
    pub fn report_snapshot(&self, peer: u64, ok: bool) {
        self.shared
            .snapshot_reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((peer, ok));
        let _ = self.tx.try_send(DriverMsg::Wake);
    }

    /// Tells Raft that a message to `peer` could not be delivered.
    pub fn report_unreachable(&self, peer: u64) {
        let _ = self.tx.try_send(DriverMsg::Unreachable(peer));
    }

    /// Asks the driver to stop. Never blocks: the flag is seen within a tick, and the
    /// message (if the queue has room) wakes the driver at once.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(DriverMsg::Shutdown);
    }

    /// The published status view.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// The state machine, for read-only views.
    pub fn state_machine(&self) -> Arc<RwLock<KvStateMachine>> {
        Arc::clone(&self.sm)
    }

    /// The log storage, for read-only views.
    pub fn storage(&self) -> &EngineStorage {
        &self.storage
    }

    /// Queues a client request, within its share of the queue.
    fn enqueue(&self, msg: DriverMsg) -> Result<(), RequestError> {
        if self.shared.queued_requests.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_REQUESTS {
            self.shared.queued_requests.fetch_sub(1, Ordering::Relaxed);
            return Err(RequestError::Busy);
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.queued_requests.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => RequestError::Busy,
                    TrySendError::Disconnected(_) => RequestError::ShuttingDown,
                })
            }
        }
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(Reply<T>, Instant) -> DriverMsg,
    ) -> Result<T, RequestError> {
        let deadline = Instant::now() + self.request_timeout;
        let (reply, rx) = oneshot::channel();
        self.enqueue(make(reply, deadline))?;
        // The driver also expires requests at their deadline; this bound keeps the caller
        // safe even if the driver stalls.
        let grace = Duration::from_millis(200);
        match tokio::time::timeout(self.request_timeout + grace, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RequestError::ShuttingDown),
            Err(_) => Err(RequestError::Timeout),
        }
    }
}
