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
    let addrs = decode_context(context);
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

/// The addresses in a conf-change entry's context (empty when it has none).
pub fn decode_context(context: &[u8]) -> BTreeMap<u64, String> {
    pb::MemberContext::decode(context)
        .map(|c| c.members.into_iter().map(|m| (m.id, m.peer_addr)).collect())
        .unwrap_or_default()
}

/// The context of a change that adds node `id` at `peer_addr` (as written: a name travels
/// as a name, and every node resolves it itself when it connects).
pub fn encode_context(id: u64, peer_addr: &HostPort) -> Vec<u8> {
    pb::MemberContext {
        members: vec![pb::MemberAddr {
            id,
            peer_addr: peer_addr.to_string(),
        }],
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

/// The membership of the cluster as of the entries applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    conf: ConfState,
    /// Every address known, by id: members, and `--peers` entries that are not (yet).
    book: BTreeMap<u64, Peer>,
    /// Nodes removed by an applied change, with its index.
    removed: BTreeMap<u64, u64>,
}

impl Membership {
    /// The membership of a snapshot (its conf state and address book), with `--peers`
    /// filling in addresses the book does not have.
    pub fn from_snapshot(conf: &ConfState, book: Option<&pb::MemberBook>, seed: &PeerMap) -> Self {
        let mut m = Self {
            conf: conf.clone(),
            book: BTreeMap::new(),
            removed: BTreeMap::new(),
        };
        if let Some(book) = book {
            for a in &book.members {
                if let Some(peer) = peer_at(a.id, &a.peer_addr) {
                    m.book.insert(a.id, peer);
                }
            }
            m.removed = book.removed.iter().map(|r| (r.id, r.index)).collect();
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
                .map(|p| pb::MemberAddr {
                    id: p.id,
                    peer_addr: p.peer_addr.to_string(),
                })
                .collect(),
            removed: self
                .removed
                .iter()
                .map(|(id, index)| pb::RemovedMember {
                    id: *id,
                    index: *index,
                })
                .collect(),
        }
    }

    /// Takes in a conf change applied at `index` with its entry's `context`, and the conf
    /// state raft-rs reached by applying it.
    pub fn apply(&mut self, index: u64, context: &[u8], conf: ConfState) {
        for (id, addr) in decode_context(context) {
            if let Some(peer) = peer_at(id, &addr) {
                self.book.insert(id, peer);
                self.removed.remove(&id);
            }
        }
        let before: Vec<u64> = self.ids();
        self.conf = conf;
        for id in before {
            if self.role(id).is_none() {
                self.removed.insert(id, index);
            }
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
        self.removed.get(&id).copied()
    }

    /// The conf state.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// Marks `id` removed at `index` (learned from a member that applied the removal).
    pub fn mark_removed(&mut self, id: u64, index: u64) {
        self.removed.entry(id).or_insert(index);
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
        let ctx = encode_context(4, &"127.0.0.1:6004".parse().expect("addr"));
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
    fn host_names_travel_in_changes_and_snapshots() {
        let seed = PeerMap::parse("1=node1:6001,2=node2:6001,3=node3:6001").expect("peers");
        let mut m = Membership::from_snapshot(&conf(&[1, 2, 3], &[], &[]), None, &seed);
        let ctx = encode_context(4, &"node4:6001".parse().expect("addr"));
        m.apply(10, &ctx, conf(&[1, 2, 3], &[], &[4]));
        let api = |m: &Membership, id| m.addr(id).map(|p| p.api_addr.to_string());
        assert_eq!(api(&m, 4).as_deref(), Some("node4:7001"));
        let restored = Membership::from_snapshot(m.conf_state(), Some(&m.to_book()), &seed);
        assert_eq!(api(&restored, 2).as_deref(), Some("node2:7001"));
        assert_eq!(api(&restored, 4).as_deref(), Some("node4:7001"));
    }

    #[test]
    fn describes_changes_for_the_log_panel() {
        let ctx = encode_context(4, &"node4:6004".parse().expect("addr"));
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
