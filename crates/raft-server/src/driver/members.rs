//! Membership in the driver: proposing a change (after checking it is allowed now), applying
//! conf-change entries to raft-rs and to the [`Membership`], answering the request once the
//! configuration is final, and what a node does once it is removed.
//!
//! Every voter change goes through a joint configuration that raft-rs leaves by itself
//! (the `Implicit` transition), so a learner's promotion or a voter's removal is two entries
//! a learner can watch: enter joint, leave joint. Adding a learner is one entry.

use std::time::Instant;

use protobuf::Message as _;
use raft::StateRole;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType};
use raft_proto::ConfChangeI as _;

use super::NodeDriver;
use super::handle::{MemberError, MemberOutcome, MemberRequest, RequestError};
use crate::addr::HostPort;
use crate::membership::{Role, describe_change, encode_context, single_change};

/// Why a change is not proposed.
enum Check {
    Refused(String),
    TransferFirst(String),
    NotYet(String),
}

/// How far behind the leader's last index a learner may be and still be promoted: a voter
/// that is far behind would hold up commits until it catches up.
pub const MAX_PROMOTE_LAG: u64 = 100;

type Reply = tokio::sync::oneshot::Sender<Result<MemberOutcome, MemberError>>;

/// A change proposed by this leader, waiting for its entry (and, for a voter change, the
/// entry that leaves the joint configuration) to be applied.
pub(super) struct PendingChange {
    index: u64,
    term: u64,
    what: String,
    reply: Reply,
    deadline: Instant,
    /// Set once the entry was applied and a joint configuration entered.
    entered: bool,
}

impl NodeDriver {
    /// Checks a membership change and proposes it; the reply comes when it is final.
    pub(super) fn change_members(&mut self, req: MemberRequest, reply: Reply, deadline: Instant) {
        if reply.is_closed() || deadline <= Instant::now() {
            let _ = reply.send(Err(RequestError::Timeout.into()));
            return;
        }
        if let Err(e) = self.require_leader() {
            let _ = reply.send(Err(e.into()));
            return;
        }
        let (cc, context, what) = match self.check_change(req) {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let before = self.raw.raft.raft_log.last_index();
        let proposed = self.raw.propose_conf_change(context, cc);
        let index = self.raw.raft.raft_log.last_index();
        if proposed.is_err() || index == before {
            let _ = reply.send(Err(RequestError::Busy.into()));
            return;
        }
        self.event(format!("proposed: {what} (index {index})"));
        self.pending_change = Some(PendingChange {
            index,
            term: self.raw.raft.term,
            what,
            reply,
            deadline,
            entered: false,
        });
    }

    /// The conf change for `req`, its context and a description; or why it is refused.
    fn check_change(
        &self,
        req: MemberRequest,
    ) -> Result<(ConfChangeV2, Vec<u8>, String), MemberError> {
        self.check_change_inner(req).map_err(|e| match e {
            Check::Refused(why) => MemberError::Refused(why),
            Check::TransferFirst(why) => MemberError::TransferFirst(why),
            Check::NotYet(why) => MemberError::NotYet(why),
        })
    }

    fn check_change_inner(
        &self,
        req: MemberRequest,
    ) -> Result<(ConfChangeV2, Vec<u8>, String), Check> {
        let raft = &self.raw.raft;
        if self.pending_change.is_some() {
            return Err(Check::NotYet(
                "one change at a time: another membership change is still in progress".to_string(),
            ));
        }
        if raft.has_pending_conf() {
            // raft-rs takes no change until the leader has applied every entry that may
            // hold one: for a new leader, its whole log.
            return Err(Check::NotYet(format!(
                "node {} leads since term {} and has not applied its log yet (applied {} of \
                 {}): a leader takes a membership change only then",
                raft.id,
                raft.term,
                raft.raft_log.applied,
                raft.raft_log.last_index()
            )));
        }
        let m = self.membership.get();
        if m.is_joint() {
            return Err(Check::NotYet(
                "one change at a time: a joint configuration is in force until the leader \
                 leaves it"
                    .to_string(),
            ));
        }
        let me = raft.id;
        let voters = m
            .ids()
            .into_iter()
            .filter(|id| m.role(*id) == Some(Role::Voter))
            .count();
        match req {
            MemberRequest::AddLearner {
                id,
                peer_addr,
                incarnation,
            } => {
                // A new node must start from a snapshot (see NodeDriver::new): a log that
                // starts at index 1 would apply its conf changes to an empty configuration.
                if self.storage.snapshot_index() == 0 {
                    return Err(Check::Refused(
                        "this cluster's data dirs were made by a raft-server without \
                         membership changes (their log starts at index 1): a new node could \
                         not learn the membership; start the cluster afresh to add nodes"
                            .to_string(),
                    ));
                }
                if let Some(role) = m.role(id) {
                    return Err(Check::Refused(format!(
                        "node {id} is already a member ({}): pick another id, or remove it first",
                        role.as_str()
                    )));
                }
                if let Some(other) = self.address_owner(&peer_addr, id) {
                    return Err(Check::Refused(format!(
                        "{peer_addr} is node {other}'s address: give node {id} its own port"
                    )));
                }
                let cc = single_change(ConfChangeType::AddLearnerNode, id);
                // A learner changes no quorum: one simple step, no joint configuration.
                let mut cc = cc;
                cc.set_transition(raft::eraftpb::ConfChangeTransition::Auto);
                Ok((
                    cc,
                    encode_context(id, &peer_addr, incarnation),
                    format!("add learner {id} at {peer_addr}"),
                ))
            }
            MemberRequest::Promote(id) => match m.role(id) {
                None => Err(Check::Refused(unknown(id, &m.ids()))),
                Some(Role::Learner) => {
                    let last = raft.raft_log.last_index();
                    let matched = raft.prs().get(id).map_or(0, |pr| pr.matched);
                    if matched == 0 {
                        return Err(Check::Refused(format!(
                            "node {id} has received nothing yet (is it running, started with \
                             --join, at the address it was added with?); a voter that far behind \
                             would hold up commits"
                        )));
                    }
                    if matched + MAX_PROMOTE_LAG < last {
                        return Err(Check::Refused(format!(
                            "node {id} is {} entries behind the leader (it has {matched} of \
                             {last}): a voter that far behind would hold up commits; wait until \
                             it has caught up",
                            last - matched
                        )));
                    }
                    Ok((
                        single_change(ConfChangeType::AddNode, id),
                        Vec::new(),
                        format!("promote {id} to voter"),
                    ))
                }
                Some(role) => Err(Check::Refused(format!(
                    "node {id} is already a {}",
                    role.as_str()
                ))),
            },
            MemberRequest::Remove(id) => match m.role(id) {
                None => Err(Check::Refused(unknown(id, &m.ids()))),
                Some(Role::Voter) if voters <= 1 => Err(Check::Refused(format!(
                    "node {id} is the last voter: a cluster needs one; add and promote another first"
                ))),
                Some(_) if id == me => Err(Check::TransferFirst(format!(
                    "node {id} leads: hand leadership to another voter first (raft-client \
                     transfer), then remove it"
                ))),
                Some(_) => Ok((
                    single_change(ConfChangeType::RemoveNode, id),
                    Vec::new(),
                    format!("remove {id}"),
                )),
            },
        }
    }

    /// The member other than `id` that listens at `addr`, if any.
    fn address_owner(&self, addr: &HostPort, id: u64) -> Option<u64> {
        self.membership.with(|m| {
            m.members()
                .into_iter()
                .find(|(other, _, peer)| *other != id && peer.is_some_and(|p| &p.peer_addr == addr))
                .map(|(other, _, _)| other)
        })
    }

    /// Applies a conf-change entry: to raft-rs, to the membership, and to what waits on it.
    /// A change raft-rs refuses is skipped (and reported), not fatal, so a bad entry cannot
    /// stop every node on every replay.
    pub(super) fn apply_conf_entry(&mut self, entry: &Entry) {
        let cc = if entry.get_entry_type() == EntryType::EntryConfChange {
            ConfChange::parse_from_bytes(&entry.data).map(|cc| cc.into_v2())
        } else {
            ConfChangeV2::parse_from_bytes(&entry.data)
        };
        let cc = match cc {
            Ok(cc) => cc,
            Err(e) => return self.skipped(entry.index, &e.to_string()),
        };
        let conf = match self.raw.apply_conf_change(&cc) {
            Ok(conf) => conf,
            Err(e) => return self.skipped(entry.index, &e.to_string()),
        };
        let me = self.raw.raft.id;
        let was_member = self.membership.with(|m| m.role(me).is_some());
        let (joint, voters, outgoing) = {
            let (joint, voters, outgoing) = (
                !conf.voters_outgoing.is_empty(),
                conf.voters.clone(),
                conf.voters_outgoing.clone(),
            );
            self.membership
                .write(|m| m.apply(entry.index, &entry.context, conf));
            (joint, voters, outgoing)
        };
        let what = describe_change(&cc, &entry.context);
        let ids = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        };
        if joint {
            self.joint_since = Some((entry.index, Instant::now(), ids(&outgoing), ids(&voters)));
        } else if let Some((entered_at, since, old, new)) = self.joint_since.take() {
            self.last_joint = Some(crate::status::JointSpan {
                old,
                new,
                entered_at,
                left_at: entry.index,
                lasted: since.elapsed(),
                ended: Instant::now(),
            });
        }
        self.event(if joint {
            format!(
                "membership: {what} (index {}): joint configuration, voters {outgoing:?} and {voters:?} both needed",
                entry.index
            )
        } else {
            format!("membership: {what} (index {}): voters {voters:?}", entry.index)
        });
        self.membership_changed();
        self.answer_change(entry, joint);
        let (removed, added) = self
            .membership
            .with(|m| (m.removed_at(me), m.role(me).is_some()));
        if let Some(index) = removed.filter(|_| was_member) {
            self.mark_removed(index);
        } else if added && self.removed.is_some() && self.is_this_incarnation() {
            // Removed at an earlier entry and added back at this one: the removal is over.
            self.removed = None;
            self.shared
                .removed
                .store(false, std::sync::atomic::Ordering::Relaxed);
            self.event(format!("added back to the cluster (index {})", entry.index));
        } else if !was_member && added {
            self.event(format!("added to the cluster (index {})", entry.index));
        }
    }

    /// Takes the address a node the log has not told of sent from, and links to it.
    pub(super) fn learn_address(&mut self, id: u64, addr: &str) {
        let Some(peer) = addr
            .parse()
            .ok()
            .and_then(|a| crate::config::Peer::new(id, a).ok())
        else {
            return;
        };
        if self.membership.write(|m| m.learn_address(peer)) {
            self.event(format!(
                "node {id} (not a member as this node knows it yet) sends from {addr}: \
                 answering it there"
            ));
            self.membership_changed();
        }
    }

    /// The membership changed: the transport's links and the storage's snapshot floors
    /// follow it.
    pub(super) fn membership_changed(&mut self) {
        let (links, floors) = self.membership.with(|m| (m.links(), m.snapshot_floors()));
        self.transport.set_members(&links);
        self.storage.set_snapshot_floors(floors);
    }

    /// True when the log knows this node by this data dir's incarnation (not by an older
    /// or newer data dir of the same id).
    fn is_this_incarnation(&self) -> bool {
        let me = self.raw.raft.id;
        self.membership
            .with(|m| m.incarnation(me))
            .is_none_or(|known| known == self.storage.incarnation())
    }

    /// Applies an empty entry by which a leader recorded members' incarnations.
    pub(super) fn apply_incarnations(&mut self, entry: &Entry) {
        if self
            .membership
            .write(|m| m.record_incarnations(&entry.context))
        {
            let ids: Vec<String> = crate::membership::decode_context(&entry.context)
                .iter()
                .map(|a| format!("node {} ({:04x})", a.id, a.incarnation >> 48))
                .collect();
            self.event(format!(
                "recorded data dir incarnations (index {}): {}",
                entry.index,
                ids.join(", ")
            ));
        }
    }

    /// On the leader, once it has committed in its term: proposes an entry recording the
    /// incarnations of members the log does not know (the initial members), as their
    /// batches told them. Called once a tick; a lost proposal is made again later.
    pub(super) fn record_incarnations(&mut self, now: Instant) {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            self.incarnations_wait = None;
            return;
        }
        if !raft.commit_to_current_term()
            || self
                .incarnations_proposed
                .is_some_and(|at| now.duration_since(at) < std::time::Duration::from_secs(2))
        {
            return;
        }
        let me = raft.id;
        let unknown = self.membership.with(|m| m.unknown_incarnations());
        if unknown.is_empty() {
            return;
        }
        let unknown_count = unknown.len();
        let list: Vec<(u64, u64)> = {
            let seen = self
                .shared
                .seen_incarnations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            unknown
                .into_iter()
                .filter_map(|id| {
                    let inc = if id == me {
                        Some(self.storage.incarnation())
                    } else {
                        // 0: two data dirs claimed the id; none is recorded.
                        seen.get(&id).copied().filter(|i| *i != 0)
                    };
                    inc.map(|i| (id, i))
                })
                .collect()
        };
        // One entry for all of them, unless some member stays silent for a while.
        let since = *self.incarnations_wait.get_or_insert(now);
        let all = list.len() == unknown_count;
        if list.is_empty() || !all && now.duration_since(since) < std::time::Duration::from_secs(3)
        {
            return;
        }
        self.incarnations_wait = None;
        let context = crate::membership::encode_incarnations(&list);
        if let Err(e) = self.raw.propose(context, Vec::new()) {
            tracing::debug!("could not record incarnations now: {e}");
        }
        self.incarnations_proposed = Some(now);
    }

    fn skipped(&mut self, index: u64, why: &str) {
        let text = format!("conf change at index {index} skipped: {why}");
        tracing::error!("{text}");
        self.event(text);
    }

    /// Answers the pending change once its configuration is final.
    fn answer_change(&mut self, entry: &Entry, joint: bool) {
        let Some(p) = self.pending_change.as_mut() else {
            return;
        };
        if entry.index == p.index {
            if entry.term != p.term {
                if let Some(p) = self.pending_change.take() {
                    let _ = p.reply.send(Err(RequestError::LeadershipLost.into()));
                }
                return;
            }
            if joint {
                p.entered = true;
                return;
            }
        } else if !(p.entered && !joint && entry.index > p.index) {
            return;
        }
        if let Some(p) = self.pending_change.take() {
            let left_joint_at = (entry.index != p.index).then_some(entry.index);
            let changed = match left_joint_at {
                Some(left) => format!(
                    "{}: entered a joint configuration at index {}, left it at index {left}",
                    p.what, p.index
                ),
                None => format!("{} (index {})", p.what, p.index),
            };
            let _ = p.reply.send(Ok(MemberOutcome {
                index: p.index,
                left_joint_at,
                changed,
            }));
        }
    }

    /// Fails the pending change when leadership is lost or its deadline passes.
    pub(super) fn expire_change(&mut self, now: Instant, lost_leadership: bool) {
        let expired = self
            .pending_change
            .as_ref()
            .is_some_and(|p| lost_leadership || p.deadline <= now);
        if expired && let Some(p) = self.pending_change.take() {
            let err = if lost_leadership {
                RequestError::LeadershipLost
            } else {
                RequestError::Timeout
            };
            let _ = p.reply.send(Err(err.into()));
        }
    }

    /// This node is out of the cluster: it stops taking part (no ticks, no elections, no
    /// messages) and says so, and stays up until it is stopped.
    pub(super) fn mark_removed(&mut self, index: u64) {
        if self.removed.is_some() {
            return;
        }
        self.removed = Some(index);
        let me = self.raw.raft.id;
        // raft-rs leaves a leader that applied its own removal leading (and a candidate
        // campaigning); it no longer ticks either, so nothing would ever end that: it would
        // go on calling itself leader beside the real one, and reads would queue at it.
        if self.raw.raft.state != StateRole::Follower {
            let term = self.raw.raft.term;
            self.raw.raft.become_follower(term, raft::INVALID_ID);
            self.event(format!(
                "stepped down: a removed node cannot lead (term {term})"
            ));
        }
        self.membership.write(|m| m.mark_removed(me, index));
        self.shared
            .removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let text = format!(
            "removed from the cluster at index {index}: this node no longer takes part; stop it \
             (q), and to bring it back wipe its data dir, start it with --join and run \
             `raft-client member add {me} <its peer address>`"
        );
        tracing::warn!("{text}");
        self.event(text);
        self.writes.fail_all(&RequestError::ShuttingDown);
        self.reads.fail_all(&RequestError::ShuttingDown);
        // The members refuse it now; no point knocking.
        self.transport.set_members(&[]);
    }

    /// Hands leadership to `to`, or the most up-to-date voter; returns who.
    pub(super) fn transfer(&mut self, to: Option<u64>) -> Result<u64, MemberError> {
        self.require_leader().map_err(MemberError::from)?;
        let me = self.raw.raft.id;
        let m = self.membership.get();
        let target = match to {
            Some(id) if id == me => {
                return Err(MemberError::Refused(format!("node {id} already leads")));
            }
            Some(id) => match m.role(id) {
                None => return Err(MemberError::Refused(unknown(id, &m.ids()))),
                Some(Role::Learner) => {
                    return Err(MemberError::Refused(format!(
                        "node {id} is a learner: only a voter can lead (member promote {id} first)"
                    )));
                }
                Some(Role::VoterOutgoing) => {
                    return Err(MemberError::Refused(format!(
                        "node {id} is being removed (it votes only in the old half of the joint \
                         configuration): it cannot take over; pick another voter"
                    )));
                }
                Some(_) => id,
            },
            None => self
                .raw
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != me && matches!(m.role(**id), Some(Role::Voter)))
                .max_by_key(|(id, pr)| (pr.matched, std::cmp::Reverse(**id)))
                .map(|(id, _)| *id)
                .ok_or_else(|| {
                    MemberError::Refused("no other voter to hand leadership to".into())
                })?,
        };
        if self.raw.raft.state != StateRole::Leader {
            return Err(RequestError::NotLeader {
                leader_id: None,
                term: self.raw.raft.term,
            }
            .into());
        }
        self.raw.transfer_leader(target);
        self.event(format!("handing leadership to node {target}"));
        Ok(target)
    }
}

fn unknown(id: u64, ids: &[u64]) -> String {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("node {id} is not a member (members: {})", ids.join(", "))
}
