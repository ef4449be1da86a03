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
        })
    }

    fn check_change_inner(
        &self,
        req: MemberRequest,
    ) -> Result<(ConfChangeV2, Vec<u8>, String), Check> {
        let raft = &self.raw.raft;
        if raft.has_pending_conf() || self.pending_change.is_some() {
            return Err(Check::Refused(
                "one change at a time: a membership change is still in progress; wait for it \
                 to finish (member list shows it)"
                    .to_string(),
            ));
        }
        let m = self.membership.get();
        if m.is_joint() {
            return Err(Check::Refused(
                "one change at a time: a joint configuration is in force until the leader \
                 leaves it; wait a moment"
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
            MemberRequest::AddLearner { id, peer_addr } => {
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
                    encode_context(id, &peer_addr),
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
        self.event(if joint {
            format!(
                "membership: {what} (index {}): joint configuration, voters {outgoing:?} and {voters:?} both needed",
                entry.index
            )
        } else {
            format!("membership: {what} (index {}): voters {voters:?}", entry.index)
        });
        self.transport
            .set_members(&self.membership.with(|m| m.links()));
        self.answer_change(entry, joint);
        let removed = self.membership.with(|m| m.removed_at(me));
        if let Some(index) = removed.filter(|_| was_member) {
            self.mark_removed(index);
        } else if !was_member && self.membership.with(|m| m.role(me).is_some()) {
            self.event(format!("added to the cluster (index {})", entry.index));
        }
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
