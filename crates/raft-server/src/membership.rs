//! Who is in the cluster and where: the one place that knows every member's role and
//! addresses.
//!
//! Membership is replicated state, derived like the key-value state: from the latest
//! snapshot (which carries the conf state and a [`pb::MemberBook`] of addresses) plus the
//! conf-change entries applied after it, whose context carries the addresses of the nodes
//! they add. `--peers` only seeds it: on a first start it is the initial membership, on a
//! restart it fills in addresses the log does not know. The node driver is the only writer;
//! the transport, the services and the dashboard read a shared [`MembershipView`].

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use kv_proto::kv as pb;
use prost::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};

use crate::addr::HostPort;
use crate::config::{Peer, PeerMap};

/// A member's part in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Votes (in the only configuration, or in both halves of a joint one).
    Voter,
    /// While joint: votes in the new configuration only (being added).
    VoterIncoming,
    /// While joint: votes in the old configuration only (being removed or demoted).
    VoterOutgoing,
    /// Receives the log, does not vote.
    Learner,
}

impl Role {
    /// The contract's name (`member list --json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::VoterIncoming => "voter_incoming",
            Role::VoterOutgoing => "voter_outgoing",
            Role::Learner => "learner",
        }
    }
}

/// A membership change as the dashboard's log panel shows it.
pub fn describe_change(cc: &ConfChangeV2, context: &[u8]) -> String {
    if cc.changes.is_empty() {
        return "leave joint".to_string();
    }
    let addrs: BTreeMap<u64, String> = decode_context(context)
        .into_iter()
        .map(|m| (m.id, m.peer_addr))
        .collect();
    let parts: Vec<String> = cc
        .changes
        .iter()
        .map(|c| {
            let at = addrs
                .get(&c.node_id)
                .map(|a| format!(" @{a}"))
                .unwrap_or_default();
            match c.get_change_type() {
                ConfChangeType::AddNode => format!("promote {}", c.node_id),
                ConfChangeType::AddLearnerNode => format!("add learner {}{at}", c.node_id),
                ConfChangeType::RemoveNode => format!("remove {}", c.node_id),
            }
        })
        .collect();
    parts.join(", ")
}

/// The members in an entry's context (none when it has none).
pub fn decode_context(context: &[u8]) -> Vec<pb::MemberAddr> {
    pb::MemberContext::decode(context)
        .map(|c| c.members)
        .unwrap_or_default()
}

/// The context of a change that adds node `id` at `peer_addr` (as written: a name travels
/// as a name, and every node resolves it itself when it connects), whose data dir has
/// `incarnation`.
pub fn encode_context(id: u64, peer_addr: &HostPort, incarnation: u64) -> Vec<u8> {
    pb::MemberContext {
        members: vec![pb::MemberAddr {
            id,
            peer_addr: peer_addr.to_string(),
            incarnation,
            added_at: 0,
        }],
    }
    .encode_to_vec()
}

/// The context of the empty entry by which a leader records members' incarnations.
pub fn encode_incarnations(incarnations: &[(u64, u64)]) -> Vec<u8> {
    pb::MemberContext {
        members: incarnations
            .iter()
            .map(|&(id, incarnation)| pb::MemberAddr {
                id,
                incarnation,
                ..pb::MemberAddr::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

/// A single-node change of kind `kind` for `id`, entering and automatically leaving a joint
/// configuration, so every change is visibly two steps (raft-rs's `Implicit` transition).
pub fn single_change(kind: ConfChangeType, id: u64) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = id;
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![single].into());
    cc.set_transition(raft::eraftpb::ConfChangeTransition::Implicit);
    cc
}

/// What the log says of one member besides its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MemberInfo {
    /// Its data dir's incarnation (0: not known yet).
    incarnation: u64,
    /// The index of the change that added it (0: an initial member).
    added_at: u64,
}

/// A node removed by an applied change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// The index of the change.
    pub index: u64,
    /// The incarnation removed (0: not known).
    pub incarnation: u64,
}

/// Why this node refuses a peer's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The sender was removed by the change at this index.
    Removed(u64),
    /// The sender's data dir is not the one the log knows (this incarnation): it was wiped
    /// and lost its log and vote.
    Replaced {
        /// The incarnation the log knows.
        known: u64,
    },
}

/// The membership of the cluster as of the entries applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    conf: ConfState,
    /// Every address known, by id: members, and `--peers` entries that are not (yet).
    book: BTreeMap<u64, Peer>,
    /// Incarnation and addition of each member the log knows of.
    info: BTreeMap<u64, MemberInfo>,
    /// Nodes removed by an applied change.
    removed: BTreeMap<u64, Removed>,
}

impl Membership {
    /// The membership of a snapshot (its conf state and address book), with `--peers`
    /// filling in addresses the book does not have.
    pub fn from_snapshot(conf: &ConfState, book: Option<&pb::MemberBook>, seed: &PeerMap) -> Self {
        let mut m = Self {
            conf: conf.clone(),
            ..Self::default()
        };
        if let Some(book) = book {
            for a in &book.members {
                if let Some(peer) = peer_at(a.id, &a.peer_addr) {
                    m.book.insert(a.id, peer);
                }
                let info = MemberInfo {
                    incarnation: a.incarnation,
                    added_at: a.added_at,
                };
                if info != MemberInfo::default() {
                    m.info.insert(a.id, info);
                }
            }
            m.removed = book
                .removed
                .iter()
                .map(|r| {
                    let removed = Removed {
                        index: r.index,
                        incarnation: r.incarnation,
                    };
                    (r.id, removed)
                })
                .collect();
        }
        for p in seed.iter() {
            if !m.removed.contains_key(&p.id) {
                m.book.entry(p.id).or_insert_with(|| p.clone());
            }
        }
        m
    }

    /// The book to store in a snapshot: the members' addresses and the removed nodes.
    pub fn to_book(&self) -> pb::MemberBook {
        pb::MemberBook {
            members: self
                .book
                .values()
                .filter(|p| self.role(p.id).is_some())
                .map(|p| {
                    let info = self.info.get(&p.id).copied().unwrap_or_default();
                    pb::MemberAddr {
                        id: p.id,
                        peer_addr: p.peer_addr.to_string(),
                        incarnation: info.incarnation,
                        added_at: info.added_at,
                    }
                })
                .collect(),
            removed: self
                .removed
                .iter()
                .map(|(id, r)| pb::RemovedMember {
                    id: *id,
                    index: r.index,
                    incarnation: r.incarnation,
                })
                .collect(),
        }
    }

    /// Takes in a conf change applied at `index` with its entry's `context`, and the conf
    /// state raft-rs reached by applying it.
    pub fn apply(&mut self, index: u64, context: &[u8], conf: ConfState) {
        for a in decode_context(context) {
            if let Some(peer) = peer_at(a.id, &a.peer_addr) {
                self.book.insert(a.id, peer);
                // Added (again): whatever removed this id before is about another node.
                self.removed.remove(&a.id);
                let info = MemberInfo {
                    incarnation: a.incarnation,
                    added_at: index,
                };
                self.info.insert(a.id, info);
            }
        }
        let before: Vec<u64> = self.ids();
        self.conf = conf;
        for id in before {
            if self.role(id).is_none() {
                let incarnation = self.info.remove(&id).unwrap_or_default().incarnation;
                self.removed.insert(id, Removed { index, incarnation });
            }
        }
    }

    /// Takes in the incarnations a leader recorded (an empty entry's context) for members
    /// whose incarnation the log did not know; a known one never changes. True if any did.
    pub fn record_incarnations(&mut self, context: &[u8]) -> bool {
        let mut changed = false;
        for a in decode_context(context) {
            if a.incarnation == 0 || self.role(a.id).is_none() {
                continue;
            }
            let info = self.info.entry(a.id).or_default();
            if info.incarnation == 0 {
                info.incarnation = a.incarnation;
                changed = true;
            }
        }
        changed
    }

    /// The incarnation the log knows for member `id`, if it knows one.
    pub fn incarnation(&self, id: u64) -> Option<u64> {
        self.info
            .get(&id)
            .map(|i| i.incarnation)
            .filter(|i| *i != 0)
    }

    /// Members whose incarnation the log does not know yet.
    pub fn unknown_incarnations(&self) -> Vec<u64> {
        self.members()
            .into_iter()
            .map(|(id, _, _)| id)
            .filter(|id| self.incarnation(*id).is_none())
            .collect()
    }

    /// The index of the change that (last) added member `id` (0: an initial member).
    pub fn added_at(&self, id: u64) -> u64 {
        self.info.get(&id).map_or(0, |i| i.added_at)
    }

    /// For each member, the oldest snapshot it may be sent: the index of its addition.
    pub fn snapshot_floors(&self) -> BTreeMap<u64, u64> {
        self.info
            .iter()
            .filter(|(_, i)| i.added_at > 0)
            .map(|(id, i)| (*id, i.added_at))
            .collect()
    }

    /// Why batches from node `from`, of data dir `incarnation`, are refused, if they are.
    /// Not being a member (yet, as far as this node knows) is no reason: a node that
    /// missed changes must still hear the leader they made, to learn them.
    pub fn refusal(&self, from: u64, incarnation: u64) -> Option<Refusal> {
        if let Some(r) = self.removed.get(&from) {
            // A later incarnation of the id is a node added again since, not the one
            // removed.
            if r.incarnation == 0 || r.incarnation == incarnation {
                return Some(Refusal::Removed(r.index));
            }
        }
        match self.incarnation(from) {
            Some(known) if known != incarnation && self.role(from).is_some() => {
                Some(Refusal::Replaced { known })
            }
            _ => None,
        }
    }

    /// Replaces everything with a snapshot's membership (installing the leader's snapshot).
    pub fn restore(&mut self, conf: &ConfState, book: Option<&pb::MemberBook>, seed: &PeerMap) {
        *self = Self::from_snapshot(conf, book, seed);
    }

    /// The role of `id`, if it is a member. A node marked removed is none, even while its
    /// own conf state (a removed node that missed its removal) still lists it.
    pub fn role(&self, id: u64) -> Option<Role> {
        if self.removed.contains_key(&id) {
            return None;
        }
        let incoming = self.conf.voters.contains(&id);
        let outgoing = self.conf.voters_outgoing.contains(&id);
        let joint = !self.conf.voters_outgoing.is_empty();
        match (incoming, outgoing) {
            (true, true) => Some(Role::Voter),
            (true, false) if joint => Some(Role::VoterIncoming),
            (true, false) => Some(Role::Voter),
            (false, true) => Some(Role::VoterOutgoing),
            (false, false) => {
                let learner =
                    self.conf.learners.contains(&id) || self.conf.learners_next.contains(&id);
                learner.then_some(Role::Learner)
            }
        }
    }

    /// Every member id, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .conf
            .voters
            .iter()
            .chain(&self.conf.voters_outgoing)
            .chain(&self.conf.learners)
            .chain(&self.conf.learners_next)
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Every member with its role and address (if known), ascending.
    pub fn members(&self) -> Vec<(u64, Role, Option<&Peer>)> {
        self.ids()
            .into_iter()
            .filter_map(|id| Some((id, self.role(id)?, self.book.get(&id))))
            .collect()
    }

    /// Where node `id` listens, if known (members and `--peers` entries).
    pub fn addr(&self, id: u64) -> Option<&Peer> {
        self.book.get(&id)
    }

    /// The nodes the transport keeps links to: every address known and not removed. For a
    /// node still waiting to be added that is its `--peers`, so it can answer the leader.
    pub fn links(&self) -> Vec<Peer> {
        self.book
            .values()
            .filter(|p| !self.removed.contains_key(&p.id))
            .cloned()
            .collect()
    }

    /// True while a joint configuration is in force.
    pub fn is_joint(&self) -> bool {
        !self.conf.voters_outgoing.is_empty()
    }

    /// True when nobody is a member: a node started with `--join`, not added yet.
    pub fn is_empty(&self) -> bool {
        self.ids().is_empty()
    }

    /// The index of the change that removed `id`, if one did.
    pub fn removed_at(&self, id: u64) -> Option<u64> {
        self.removed.get(&id).map(|r| r.index)
    }

    /// The conf state.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// Takes the address of a node the log has not told of (learned from its messages:
    /// a member added while this node was cut off). True if it was new.
    pub fn learn_address(&mut self, peer: Peer) -> bool {
        if self.book.contains_key(&peer.id) || self.removed.contains_key(&peer.id) {
            return false;
        }
        self.book.insert(peer.id, peer);
        true
    }

    /// Marks `id` removed at `index` (learned from a member that applied the removal).
    pub fn mark_removed(&mut self, id: u64, index: u64) {
        let incarnation = self.info.get(&id).map_or(0, |i| i.incarnation);
        self.removed
            .entry(id)
            .or_insert(Removed { index, incarnation });
    }
}

/// Node `id` at an address from the log or a snapshot; `None` if it does not parse (the
/// leader checked it before proposing, so only a foreign entry could be wrong).
fn peer_at(id: u64, peer_addr: &str) -> Option<Peer> {
    Peer::new(id, peer_addr.parse().ok()?).ok()
}

/// A shared, read-only view of the membership; the driver writes through
/// [`MembershipView::write`].
#[derive(Clone, Default)]
pub struct MembershipView {
    inner: Arc<RwLock<Membership>>,
}

impl MembershipView {
    /// A view of `m`.
    pub fn new(m: Membership) -> Self {
        Self {
            inner: Arc::new(RwLock::new(m)),
        }
    }

    /// A copy of the membership now.
    pub fn get(&self) -> Membership {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` on the membership without copying it.
    pub fn with<T>(&self, f: impl FnOnce(&Membership) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Where node `id` listens, if known.
    pub fn addr(&self, id: u64) -> Option<Peer> {
        self.with(|m| m.addr(id).cloned())
    }

    /// Changes the membership (the driver only).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Membership) -> T) -> T {
        f(&mut self.inner.write().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(voters: &[u64], outgoing: &[u64], learners: &[u64]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            learners: learners.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn roles_addresses_and_removals_follow_the_changes() {
        let seed = PeerMap::parse(crate::config::DEFAULT_PEERS).expect("peers");
        let mut m = Membership::from_snapshot(&conf(&[1, 2, 3], &[], &[]), None, &seed);
        assert_eq!(m.ids(), [1, 2, 3]);
        assert_eq!(m.role(2), Some(Role::Voter));
        let ctx = encode_context(4, &"127.0.0.1:6004".parse().expect("addr"), 0x44);
        m.apply(10, &ctx, conf(&[1, 2, 3], &[], &[4]));
        assert_eq!(m.role(4), Some(Role::Learner));
        assert_eq!(
            m.addr(4).map(|p| p.api_addr.to_string()).as_deref(),
            Some("127.0.0.1:7004")
        );
        // Promotion enters a joint configuration first.
        m.apply(12, &[], conf(&[1, 2, 3, 4], &[1, 2, 3], &[]));
        assert!(m.is_joint());
        assert_eq!(m.role(4), Some(Role::VoterIncoming));
        assert_eq!(m.role(1), Some(Role::Voter));
        m.apply(13, &[], conf(&[1, 2, 3, 4], &[], &[]));
        assert_eq!(m.role(4), Some(Role::Voter));
        // Removing node 1: outgoing while joint, then gone, remembered as removed.
        m.apply(20, &[], conf(&[2, 3, 4], &[1, 2, 3, 4], &[]));
        assert_eq!(m.role(1), Some(Role::VoterOutgoing));
        m.apply(21, &[], conf(&[2, 3, 4], &[], &[]));
        assert_eq!(m.role(1), None);
        assert_eq!(m.removed_at(1), Some(21));
        assert_eq!(m.links().len(), 3);

        // A snapshot carries it all, and --peers does not bring the removed node back.
        let book = m.to_book();
        let restored = Membership::from_snapshot(m.conf_state(), Some(&book), &seed);
        assert_eq!(restored.ids(), [2, 3, 4]);
        assert_eq!(restored.removed_at(1), Some(21));
        assert!(restored.addr(4).is_some());
        assert!(restored.addr(1).is_none());
    }

    #[test]
    fn a_node_told_of_its_removal_no_longer_lists_itself() {
        // Node 4 missed the commit of its own removal: its conf still has it as a voter
        // until a member tells it; from then on no role, so its Status does not count it.
        let seed = PeerMap::parse("1=127.0.0.1:6001,2=127.0.0.1:6002").expect("peers");
        let mut m = Membership::from_snapshot(&conf(&[1, 2, 4], &[], &[]), None, &seed);
        assert_eq!(m.role(4), Some(Role::Voter));
        m.mark_removed(4, 30);
        assert_eq!(m.role(4), None);
        assert_eq!(m.removed_at(4), Some(30));
        assert!(m.members().iter().all(|(id, _, _)| *id != 4));
        assert_eq!(m.role(1), Some(Role::Voter));
    }

    #[test]
    fn a_node_added_again_is_not_the_one_removed() {
        let seed = PeerMap::parse(crate::config::DEFAULT_PEERS).expect("peers");
        let mut m = Membership::from_snapshot(&conf(&[1, 2, 3], &[], &[]), None, &seed);
        // The initial members' incarnations are recorded by a leader; once known, fixed.
        assert!(m.record_incarnations(&encode_incarnations(&[(1, 0x11), (3, 0x33)])));
        assert!(!m.record_incarnations(&encode_incarnations(&[(3, 0x99)])));
        assert_eq!(m.incarnation(3), Some(0x33));
        assert_eq!(m.unknown_incarnations(), [2]);
        assert_eq!(m.refusal(3, 0x33), None);
        assert_eq!(m.refusal(3, 0x99), Some(Refusal::Replaced { known: 0x33 }));
        // Unknown senders are heard (they may be members this node has not learned of).
        assert_eq!(m.refusal(7, 0x77), None);

        // Node 3 removed at 20: its old incarnation is refused as removed.
        m.apply(19, &[], conf(&[1, 2], &[1, 2, 3], &[]));
        m.apply(20, &[], conf(&[1, 2], &[], &[]));
        assert_eq!(m.refusal(3, 0x33), Some(Refusal::Removed(20)));
        // A wiped node 3 (another incarnation) is not the removed one.
        assert_eq!(m.refusal(3, 0x3b), None);
        // Added again at 30 with its new incarnation; the snapshot floor moves with it.
        let addr = "127.0.0.1:6003".parse().expect("addr");
        m.apply(
            30,
            &encode_context(3, &addr, 0x3b),
            conf(&[1, 2], &[], &[3]),
        );
        assert_eq!(m.role(3), Some(Role::Learner));
        assert_eq!(m.removed_at(3), None);
        assert_eq!(m.added_at(3), 30);
        assert_eq!(m.snapshot_floors().get(&3), Some(&30));
        assert_eq!(m.refusal(3, 0x3b), None);
        assert_eq!(m.refusal(3, 0x33), Some(Refusal::Replaced { known: 0x3b }));

        // All of it survives a snapshot.
        let restored = Membership::from_snapshot(m.conf_state(), Some(&m.to_book()), &seed);
        assert_eq!(restored, m);
    }

    #[test]
    fn host_names_travel_in_changes_and_snapshots() {
        let seed = PeerMap::parse("1=node1:6001,2=node2:6001,3=node3:6001").expect("peers");
        let mut m = Membership::from_snapshot(&conf(&[1, 2, 3], &[], &[]), None, &seed);
        let ctx = encode_context(4, &"node4:6001".parse().expect("addr"), 0);
        m.apply(10, &ctx, conf(&[1, 2, 3], &[], &[4]));
        let api = |m: &Membership, id| m.addr(id).map(|p| p.api_addr.to_string());
        assert_eq!(api(&m, 4).as_deref(), Some("node4:7001"));
        let restored = Membership::from_snapshot(m.conf_state(), Some(&m.to_book()), &seed);
        assert_eq!(api(&restored, 2).as_deref(), Some("node2:7001"));
        assert_eq!(api(&restored, 4).as_deref(), Some("node4:7001"));
    }

    #[test]
    fn describes_changes_for_the_log_panel() {
        let ctx = encode_context(4, &"node4:6004".parse().expect("addr"), 0);
        let add = single_change(ConfChangeType::AddLearnerNode, 4);
        assert_eq!(describe_change(&add, &ctx), "add learner 4 @node4:6004");
        let promote = single_change(ConfChangeType::AddNode, 4);
        assert_eq!(describe_change(&promote, &[]), "promote 4");
        let remove = single_change(ConfChangeType::RemoveNode, 2);
        assert_eq!(describe_change(&remove, &[]), "remove 2");
        assert_eq!(
            describe_change(&ConfChangeV2::default(), &[]),
            "leave joint"
        );
    }
}
