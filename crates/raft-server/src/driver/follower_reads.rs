//! Linearizable reads at a node that does not lead (a follower or a learner): which reads
//! it takes, asking the leader for their read index (raft-rs forwards `ReadIndex` to the
//! leader, whose answer becomes a `ReadState` here), asking again when no answer came, and
//! refusing once it knows no leader.
//!
//! The leader's own reads (and the bookkeeping both share) are in `pending`; the read is
//! answered by the same `answer_ready` once this node has applied the leader's index.
//! Linearizable because the leader confirms that index as it confirms its own reads (a
//! heartbeat round in safe mode, its lease in lease mode), after the request reached it:
//! every write acknowledged before the read began is at or below it.

use std::time::Instant;

use raft::StateRole;

use super::NodeDriver;
use super::handle::RequestError;

/// A follower asks the leader again after this many heartbeat intervals without an answer.
const ASK_AGAIN_AFTER_HEARTBEATS: u32 = 2;

impl NodeDriver {
    /// Whether this node takes a linearizable read: the leader always (as before); with
    /// `any_member`, also a follower or learner that knows a leader to ask. Otherwise "not
    /// the leader", with the hint, at once.
    pub(super) fn may_read(&self, any_member: bool) -> Result<(), RequestError> {
        let led = self.require_leader();
        if led.is_ok() || !any_member {
            return led;
        }
        let raft = &self.raw.raft;
        let asks = raft.state == StateRole::Follower
            && raft.leader_id != 0
            && raft.leader_id != raft.id
            && self.removed.is_none();
        if asks { Ok(()) } else { led }
    }

    /// A node that does not lead: hands its new reads to raft-rs (which sends them to the
    /// leader), asks again for those the leader did not answer within a couple of
    /// heartbeats or that were asked of a leader since replaced, and refuses those not
    /// confirmed once it knows no leader (an election, or cut off long enough to start
    /// one). Reads already confirmed still wait to be applied: their index stays valid.
    pub(super) fn send_follower_reads(&mut self) {
        if !self.reads.has_unconfirmed() {
            return;
        }
        let raft = &self.raw.raft;
        let (leader, me, term) = (raft.leader_id, raft.id, raft.term);
        if leader == 0 || leader == me || raft.state != StateRole::Follower {
            self.reads.fail_unconfirmed(&RequestError::NotLeader {
                leader_id: None,
                term,
            });
            return;
        }
        let now = Instant::now();
        let heartbeat = self
            .tick_interval()
            .saturating_mul(u32::try_from(raft.heartbeat_timeout()).unwrap_or(u32::MAX));
        let ask_before = now
            .checked_sub(heartbeat.saturating_mul(ASK_AGAIN_AFTER_HEARTBEATS))
            .unwrap_or(now);
        self.reads.requeue_unanswered(ask_before, leader);
        if self.reads.has_unsent() {
            for ctx in self.reads.take_unsent(Some((now, leader))) {
                self.raw.read_index(ctx);
            }
        }
    }
}
