//! The status view a node publishes after each Ready: what the dashboard and the `Status`
//! RPC show. Plain data, cheap to clone; the driver is its only writer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::addr::HostPort;

/// How many recent events the view keeps.
pub const EVENT_HISTORY: usize = 200;

/// A node's Raft role, named as in the `status --json` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Asking for pre-votes before starting a real election.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Accepts writes and replicates them.
    Leader,
}

impl Role {
    /// The contract's name for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "Follower",
            Role::PreCandidate => "PreCandidate",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<raft::StateRole> for Role {
    fn from(r: raft::StateRole) -> Self {
        match r {
            raft::StateRole::Follower => Role::Follower,
            raft::StateRole::PreCandidate => Role::PreCandidate,
            raft::StateRole::Candidate => Role::Candidate,
            raft::StateRole::Leader => Role::Leader,
        }
    }
}

/// A leader's view of one follower's replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be replicated on the peer.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// `Probe`, `Replicate` or `Snapshot`.
    pub state: &'static str,
    /// Append messages sent and not yet acknowledged.
    pub inflight: usize,
}

/// The last joint configuration this node went through, for the dashboard: it lasts a
/// few milliseconds, too short to see while it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JointSpan {
    /// The voters before and after, as `1,2,3`.
    pub old: String,
    pub new: String,
    /// The entries that entered and left it.
    pub entered_at: u64,
    pub left_at: u64,
    /// How long it was in force here, and when it ended.
    pub lasted: Duration,
    pub ended: Instant,
}

/// One member of the cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Raft id.
    pub id: u64,
    /// Peer transport address.
    pub peer_addr: HostPort,
    /// Client API address.
    pub api_addr: HostPort,
    /// True for this node's own entry.
    pub is_self: bool,
    /// Its part in the configuration (`None`: an address from `--peers`, not a member).
    pub role: Option<crate::membership::Role>,
    /// When a Raft message from this peer last arrived. Followers rarely hear from each
    /// other: in Raft only the leader (and candidates) send to followers.
    pub last_heard: Option<Instant>,
    /// Whether our link to the peer is up (`None` for ourselves or when unknown).
    pub link_up: Option<bool>,
    /// Replication progress, on the leader only.
    pub progress: Option<Progress>,
}

/// Something that happened to this node, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Wall-clock time.
    pub at: SystemTime,
    /// What happened, in a line.
    pub text: String,
}

/// What a node shows of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// This node's id.
    pub id: u64,
    /// Current role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// Who this node voted for in `term` (0: nobody).
    pub vote: u64,
    /// The leader this node knows of (0: unknown).
    pub leader_id: u64,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// Last index in the log.
    pub last_index: u64,
    /// Last index on disk.
    pub persisted_index: u64,
    /// First index in the log (entries before it live on in the snapshot).
    pub first_index: u64,
    /// Index of the latest snapshot (0: none).
    pub snapshot_index: u64,
    /// Number of keys in the state machine.
    pub key_count: usize,
    /// Bytes of keys and values in the state machine.
    pub data_bytes: u64,
    /// The index of the snapshot being written beside the driver, if one is.
    pub snapshot_in_progress: Option<u64>,
    /// Time the driver's own thread spent on the latest snapshot it took (capturing the
    /// state, recording the written file), in microseconds: what a snapshot stalls it.
    pub snapshot_stall_us: u64,
    /// Bytes of log entries kept in memory (the storage's entry cache) and of snapshot
    /// data read for followers.
    pub log_cache_bytes: u64,
    /// Every member, by ascending id.
    pub peers: Vec<PeerView>,
    /// Recent events, oldest first; shared so publishing the view stays cheap.
    pub events: Arc<VecDeque<Event>>,
    /// Frozen by a fault: no ticks, no messages, no requests until thawed.
    pub frozen: bool,
    /// Slow-motion factor on the tick interval (1: normal speed).
    pub slow_factor: u32,
    /// A joint configuration (old and new voters both needed) is in force.
    pub joint: bool,
    /// The last joint configuration that ended here, if any.
    pub last_joint: Option<JointSpan>,
    /// Not a member yet: started with `--join`, waiting to be added.
    pub joining: bool,
    /// Removed from the cluster by the change at this index.
    pub removed_at: Option<u64>,
    /// This node's data dir incarnation.
    pub incarnation: u64,
    /// raft-rs's timers, in ticks: elapsed since the last heartbeat (a follower) or check
    /// (a leader), the randomized timeout it fires at, and the heartbeat's.
    pub election_elapsed: u64,
    pub election_timeout: u64,
    pub heartbeat_elapsed: u64,
    pub heartbeat_timeout: u64,
    /// Milliseconds per tick, slow motion included.
    pub tick_ms: u64,
    /// The configuration as raft-rs has it (voters_outgoing not empty while joint).
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub voters_outgoing: Vec<u64>,
    /// Why the members refuse this node, when they do (its data dir was replaced).
    pub refused: Option<String>,
    /// Step mode: the clock stopped, every Raft message held; the oldest held (a few) and
    /// how many.
    pub step_mode: bool,
    pub held: Vec<kv_proto::watch::HeldMessage>,
    pub held_count: usize,
    /// Raft's protections as this node runs.
    pub protections: crate::config::Protections,
    /// Elections and leader changes in the last minute, time without a leader.
    pub liveness: crate::driver::LivenessView,
}

impl NodeStatus {
    /// The member entry of `id`.
    pub fn peer(&self, id: u64) -> Option<&PeerView> {
        self.peers.iter().find(|p| p.id == id)
    }
}

/// `512 B`, `4.0 KiB`, `1.0 MiB`.
pub fn human_size(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

/// Resident memory of this process (`VmRSS` in `/proc/self/status`), where the OS says.
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
