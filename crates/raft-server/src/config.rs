//! Node configuration: the `--peers` list, the node's own addresses and the Raft timing.
//!
//! Owns parsing and validation of what the command line says about the cluster, so that a
//! bad `--peers` or `--id` becomes one clear error before anything binds a port or touches
//! the data dir. It does not parse the command line itself (that is `main.rs`, with clap),
//! and it does not look names up: a host name in `--peers` is resolved when it is used
//! (see [`crate::addr`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::addr::{AddrError, HostPort};

/// The default `--peers`: three nodes on loopback.
pub const DEFAULT_PEERS: &str = "1=127.0.0.1:6001,2=127.0.0.1:6002,3=127.0.0.1:6003";
/// The client API listens on the peer port plus this offset.
pub const API_PORT_OFFSET: u16 = 1000;

/// What is wrong with a `--peers` list or `--id`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// An entry is not of the form `id=host:port`.
    #[error("--peers entry {0:?} is not of the form id=host:port (e.g. 1=127.0.0.1:6001)")]
    MalformedPeer(String),
    /// An entry's address is not `host:port`.
    #[error("--peers entry {entry:?} is not of the form id=host:port: {why}")]
    BadAddr {
        /// The entry.
        entry: String,
        /// What is wrong with its address.
        why: AddrError,
    },
    /// An id is zero or not a number.
    #[error("--peers entry {0:?} has an invalid id: ids are positive integers")]
    BadId(String),
    /// The same id appears twice.
    #[error("--peers lists id {0} more than once: give each node one id")]
    DuplicateId(u64),
    /// The same address appears twice.
    #[error("--peers lists address {0} more than once: give each node its own port")]
    DuplicateAddr(HostPort),
    /// The peer port leaves no room for the API port (peer port + 1000).
    #[error("peer port {0} is too high: the client API needs port + {API_PORT_OFFSET} <= 65535")]
    PortTooHigh(u16),
    /// `--peers` is empty.
    #[error("--peers is empty: list every node as id=host:port, separated by commas")]
    NoPeers,
    /// `--id` is not one of the ids in `--peers`.
    #[error(
        "--id {id} is not in --peers (known ids: {known}): pick one of them or add it to --peers"
    )]
    UnknownId {
        /// The id given.
        id: u64,
        /// The ids in `--peers`, comma separated.
        known: String,
    },
}

/// The client API address of a node whose peer address is `peer_addr` (the same host,
/// port + 1000), if that port exists.
pub fn api_addr_of(peer_addr: &HostPort) -> Option<HostPort> {
    let port = peer_addr.port().checked_add(API_PORT_OFFSET)?;
    Some(peer_addr.with_port(port))
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Raft id of the node.
    pub id: u64,
    /// Where the other nodes reach it (a name is resolved when they connect).
    pub peer_addr: HostPort,
    /// Where clients reach it: the same host, peer port + 1000.
    pub api_addr: HostPort,
}

impl Peer {
    /// Node `id` at `peer_addr`, if its API port (peer port + 1000) exists.
    pub fn new(id: u64, peer_addr: HostPort) -> Result<Self, ConfigError> {
        let api_addr = api_addr_of(&peer_addr).ok_or(ConfigError::PortTooHigh(peer_addr.port()))?;
        Ok(Self {
            id,
            peer_addr,
            api_addr,
        })
    }
}

/// Every voter of the cluster, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMap {
    peers: BTreeMap<u64, Peer>,
}

impl PeerMap {
    /// Parses `1=127.0.0.1:6001,2=node2:6001,...` (hosts are names or IP addresses).
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let mut peers = BTreeMap::new();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = raw
                .split_once('=')
                .ok_or_else(|| ConfigError::MalformedPeer(raw.to_string()))?;
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ConfigError::BadId(raw.to_string()))?;
            let peer_addr: HostPort = addr.parse().map_err(|why| ConfigError::BadAddr {
                entry: raw.to_string(),
                why,
            })?;
            // Names are compared as written (in lower case): `node1:6001` and the address
            // it resolves to are not caught here, as nothing is looked up yet.
            if peers.values().any(|p: &Peer| p.peer_addr == peer_addr) {
                return Err(ConfigError::DuplicateAddr(peer_addr));
            }
            let peer = Peer::new(id, peer_addr)?;
            if peers.insert(id, peer).is_some() {
                return Err(ConfigError::DuplicateId(id));
            }
        }
        if peers.is_empty() {
            return Err(ConfigError::NoPeers);
        }
        Ok(Self { peers })
    }

    /// The member with this id.
    pub fn get(&self, id: u64) -> Option<&Peer> {
        self.peers.get(&id)
    }

    /// Every voter id, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.peers.keys().copied().collect()
    }

    /// Every member, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// A stable id for the cluster described by this list, so that nodes of another
    /// cluster (another `--peers`) are told apart. FNV-1a over the canonical form,
    /// `1=127.0.0.1:6001,2=node2:6001,...`: for IP addresses the same text as before host
    /// names were allowed, so existing data dirs keep their cluster id.
    pub fn cluster_id(&self) -> u64 {
        let canonical: Vec<String> = self
            .iter()
            .map(|p| format!("{}={}", p.id, p.peer_addr))
            .collect();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in canonical.join(",").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    /// Checks that `id` is a member.
    pub fn require(&self, id: u64) -> Result<&Peer, ConfigError> {
        self.get(id).ok_or_else(|| ConfigError::UnknownId {
            id,
            known: self
                .ids()
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        })
    }
}

/// Raft timing: one tick every `tick`, elections after a timeout that raft-rs draws at
/// random from `[election_ticks, max_election_ticks)` (twice `election_ticks` unless
/// given), heartbeats every `heartbeat_ticks`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Interval between `RawNode::tick` calls.
    pub tick: Duration,
    /// Ticks without a heartbeat before a follower campaigns.
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// The end (exclusive) of the election timeout's range; `None`: `2 * election_ticks`.
    pub max_election_ticks: Option<usize>,
}

impl Default for Timing {
    /// 50 ms ticks, 10-tick elections: a dead leader is noticed 0.5-1 s after its last
    /// heartbeat, so a new leader is usually up in about a second.
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_election_ticks: None,
        }
    }
}

/// How a leader confirms it still leads before it answers a linearizable read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// ReadIndex: a heartbeat round to a majority for each batch of reads (raft-rs `Safe`).
    #[default]
    Safe,
    /// A lease: no round, as long as the leader heard from a majority within the election
    /// timeout (raft-rs `LeaseBased`); wrong when a leader is paused past it.
    Lease,
}

impl ReadMode {
    /// `safe` or `lease`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Safe => "safe",
            ReadMode::Lease => "lease",
        }
    }
}

/// Raft's protections, each of which a lab may switch off (`--no-pre-vote`,
/// `--no-check-quorum`, `--read-mode lease`, `--unsafe ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protections {
    /// raft-rs's `pre_vote`: a node asks whether it could win before it raises its term.
    pub pre_vote: bool,
    /// raft-rs's `check_quorum`: a leader that has not heard from a majority within an
    /// election timeout steps down, and a follower that heard from its leader within one
    /// ignores (pre-)vote requests.
    pub check_quorum: bool,
    /// How linearizable reads are confirmed.
    pub read_mode: ReadMode,
    /// UNSAFE: the vote is not written to disk (restarted, the node may vote again in a
    /// term it already voted in).
    pub forget_vote: bool,
    /// UNSAFE: a write is acknowledged once the leader has appended it, before it commits.
    pub ack_on_append: bool,
}

impl Default for Protections {
    fn default() -> Self {
        Self {
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::Safe,
            forget_vote: false,
            ack_on_append: false,
        }
    }
}

impl Protections {
    /// The unsafe modes on, by their flag names.
    pub fn unsafe_modes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.forget_vote {
            out.push("forget-vote");
        }
        if self.ack_on_append {
            out.push("ack-on-append");
        }
        out
    }

    /// As the `Status` RPC reports them.
    pub fn to_pb(&self) -> kv_proto::kv::Protections {
        kv_proto::kv::Protections {
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            read_mode: self.read_mode.as_str().to_string(),
            r#unsafe: self
                .unsafe_modes()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// Refuses the combination that cannot work: a lease needs check-quorum.
    pub fn check(&self) -> Result<(), String> {
        if self.read_mode == ReadMode::Lease && !self.check_quorum {
            return Err(
                "--read-mode lease needs check-quorum (a lease holds only while a leader \
                        that loses its majority steps down): drop --no-check-quorum or use \
                        --read-mode safe"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// From the `SetProtections` request (the client's `lab` command), checked as the
    /// server's flags are.
    pub fn from_pb(pb: &kv_proto::kv::Protections) -> Result<Self, String> {
        let read_mode = match pb.read_mode.as_str() {
            "" | "safe" => ReadMode::Safe,
            "lease" => ReadMode::Lease,
            other => return Err(format!("unknown read mode {other:?}: give safe or lease")),
        };
        let mut p = Self {
            pre_vote: pb.pre_vote,
            check_quorum: pb.check_quorum,
            read_mode,
            forget_vote: false,
            ack_on_append: false,
        };
        for mode in &pb.r#unsafe {
            match mode.as_str() {
                "forget-vote" => p.forget_vote = true,
                "ack-on-append" => p.ack_on_append = true,
                other => {
                    return Err(format!(
                        "unknown unsafe mode {other:?}: give forget-vote or ack-on-append"
                    ));
                }
            }
        }
        p.check()?;
        Ok(p)
    }

    /// What is off, as the dashboard's header and the cluster view say it (red):
    /// `NO PRE-VOTE`, `NO CHECK-QUORUM`, `LEASE READS`, `UNSAFE: forget-vote`.
    pub fn badges(&self) -> Vec<String> {
        // Every publish asks while someone watches: nothing to build in the usual case.
        if *self == Self::default() {
            return Vec::new();
        }
        self.to_pb().off()
    }
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (a key of `peers`).
    pub id: u64,
    /// Every voter of the cluster.
    pub peers: PeerMap,
    /// Where raft-engine keeps the log and hard state.
    pub data_dir: PathBuf,
    /// Raft timing.
    pub timing: Timing,
    /// Longest a client request may wait inside the server.
    pub request_timeout: Duration,
    /// Take a snapshot and compact the log every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// Accept fault commands (`--no-faults` turns this off).
    pub faults_enabled: bool,
    /// New to an existing cluster (`--join`): start with no membership and wait to be added.
    pub join: bool,
    /// Where to listen for peers (`--listen`), when not at this node's own `--peers`
    /// address (behind NAT, in a container: `0.0.0.0:6001`). The client API listens on the
    /// same host at port + 1000. The others keep reaching the node at its `--peers` address.
    pub listen: Option<HostPort>,
    /// Raft's protections (all on unless a lab switches one off).
    pub protections: Protections,
}

/// The default of [`NodeConfig::snapshot_every`].
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

impl NodeConfig {
    /// This node's own entry in `peers`.
    pub fn me(&self) -> Result<&Peer, ConfigError> {
        self.peers.require(self.id)
    }

    /// Where this node listens: for peers, and for clients (same host, port + 1000).
    pub fn listen_addrs(&self) -> Result<(HostPort, HostPort), ConfigError> {
        let peer = match &self.listen {
            Some(listen) => listen.clone(),
            None => self.me()?.peer_addr.clone(),
        };
        let api = api_addr_of(&peer).ok_or(ConfigError::PortTooHigh(peer.port()))?;
        Ok((peer, api))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_default_peers() {
        let peers = PeerMap::parse(DEFAULT_PEERS).expect("default parses");
        assert_eq!(peers.ids(), vec![1, 2, 3]);
        let p2 = peers.get(2).expect("peer 2");
        assert_eq!(p2.peer_addr.to_string(), "127.0.0.1:6002");
        assert_eq!(p2.api_addr.to_string(), "127.0.0.1:7002");
    }

    #[test]
    fn rejects_bad_lists() {
        assert!(matches!(
            PeerMap::parse("1=127.0.0.1:6001,1=127.0.0.1:6002"),
            Err(ConfigError::DuplicateId(1))
        ));
        assert!(matches!(
            PeerMap::parse("1=127.0.0.1:6001,2=127.0.0.1:6001"),
            Err(ConfigError::DuplicateAddr(_))
        ));
        assert!(matches!(
            PeerMap::parse("1:127.0.0.1:6001"),
            Err(ConfigError::MalformedPeer(_))
        ));
        assert!(matches!(
            PeerMap::parse("0=127.0.0.1:6001"),
            Err(ConfigError::BadId(_))
        ));
        assert!(matches!(
            PeerMap::parse("x=127.0.0.1:6001"),
            Err(ConfigError::BadId(_))
        ));
        assert!(matches!(
            PeerMap::parse("1=localhost"),
            Err(ConfigError::BadAddr {
                why: AddrError::NoPort(_),
                ..
            })
        ));
        assert!(matches!(
            PeerMap::parse("1=node1:6001,2=NODE1:6001"),
            Err(ConfigError::DuplicateAddr(_))
        ));
        assert!(matches!(
            PeerMap::parse("1=127.0.0.1:65000"),
            Err(ConfigError::PortTooHigh(65000))
        ));
        assert_eq!(PeerMap::parse(" , "), Err(ConfigError::NoPeers));
    }

    #[test]
    fn parses_host_names() {
        let peers = PeerMap::parse("1=node1:6001, 2=localhost:6002,3=[::1]:6003").expect("parses");
        let p1 = peers.get(1).expect("peer 1");
        assert_eq!(p1.peer_addr.to_string(), "node1:6001");
        assert_eq!(p1.api_addr.to_string(), "node1:7001");
        assert_eq!(
            peers.get(2).map(|p| p.api_addr.to_string()).as_deref(),
            Some("localhost:7002")
        );
        assert_eq!(
            peers.get(3).map(|p| p.api_addr.to_string()).as_deref(),
            Some("[::1]:7003")
        );
        let err = PeerMap::parse("1=node1:6001,2=node 2:6001").expect_err("a space");
        assert_eq!(
            err.to_string(),
            "--peers entry \"2=node 2:6001\" is not of the form id=host:port: \"node 2\" is not \
             a host name or IP address (names use letters, digits, '-', '.' and '_'; IPv6 \
             addresses go in brackets, e.g. [::1]:6001)"
        );
    }

    #[test]
    fn listen_defaults_to_the_own_entry() {
        let mut cfg = NodeConfig {
            id: 2,
            peers: PeerMap::parse("1=node1:6001,2=node2:6001").expect("parses"),
            data_dir: PathBuf::from("unused"),
            timing: Timing::default(),
            request_timeout: Duration::from_secs(1),
            snapshot_every: 0,
            faults_enabled: true,
            join: false,
            listen: None,
            protections: Default::default(),
        };
        let shown = |cfg: &NodeConfig| {
            let (peer, api) = cfg.listen_addrs().expect("addresses");
            (peer.to_string(), api.to_string())
        };
        assert_eq!(shown(&cfg), ("node2:6001".into(), "node2:7001".into()));
        cfg.listen = Some("0.0.0.0:16001".parse().expect("parses"));
        assert_eq!(
            shown(&cfg),
            ("0.0.0.0:16001".into(), "0.0.0.0:17001".into())
        );
        cfg.listen = Some("0.0.0.0:65000".parse().expect("parses"));
        assert_eq!(cfg.listen_addrs(), Err(ConfigError::PortTooHigh(65000)));
    }

    #[test]
    fn unknown_id_names_the_known_ones() {
        let peers = PeerMap::parse(DEFAULT_PEERS).expect("default parses");
        let err = peers.require(7).expect_err("7 is not a member");
        assert_eq!(
            err.to_string(),
            "--id 7 is not in --peers (known ids: 1,2,3): pick one of them or add it to --peers"
        );
    }

    #[test]
    fn cluster_id_depends_on_members() {
        let a = PeerMap::parse(DEFAULT_PEERS).expect("parses");
        let b =
            PeerMap::parse("3=127.0.0.1:6003,2=127.0.0.1:6002,1=127.0.0.1:6001").expect("parses");
        let c =
            PeerMap::parse("1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003").expect("parses");
        assert_eq!(a.cluster_id(), b.cluster_id());
        assert_ne!(a.cluster_id(), c.cluster_id());
        // The value existing data dirs were made with, before host names (FNV-1a of
        // "1=127.0.0.1:6001,2=127.0.0.1:6002,3=127.0.0.1:6003").
        assert_eq!(a.cluster_id(), 0xa067_d445_c33b_e441);
        assert_eq!(a.cluster_id(), fnv1a(DEFAULT_PEERS));
        let named = PeerMap::parse("1=Node1:6001,2=node2:6001").expect("parses");
        assert_eq!(named.cluster_id(), fnv1a("1=node1:6001,2=node2:6001"));
    }

    fn fnv1a(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}
