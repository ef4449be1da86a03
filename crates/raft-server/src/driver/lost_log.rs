//! A follower that lost entries it had acknowledged (a damaged or partly wiped disk that
//! kept its data dir, so its incarnation is the same): the leader starts its progress over.
//!
//! raft-rs takes a rejection at or below a follower's match for a stale one and ignores
//! it; the follower then catches up only one append per heartbeat until it passes its old
//! match, or never, when the leader has nothing new to send. Here the rejection's hint
//! (where the follower's log now ends) below the match resets the match to what the
//! follower still has committed, in probe, and an append follows at once.

use raft::StateRole;
use raft::eraftpb::{Message, MessageType};

/// What [`forget_lost_progress`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lost {
    /// The follower.
    pub peer: u64,
    /// Its match before.
    pub had: u64,
    /// Where its log ends now.
    pub log_ends_at: u64,
    /// The first index sent again.
    pub from_index: u64,
}

/// On the leader, before it steps `m`: a rejected append whose hint is below the sender's
/// match resets that match (to what the follower has committed: committed entries never
/// change, so they are the leader's) and puts the follower in probe. The caller sends an
/// append to the peer after stepping `m`.
pub(super) fn forget_lost_progress<S: raft::Storage>(
    raft: &mut raft::Raft<S>,
    m: &Message,
) -> Option<Lost> {
    if m.get_msg_type() != MessageType::MsgAppendResponse
        || !m.reject
        || m.term != raft.term
        || raft.state != StateRole::Leader
    {
        return None;
    }
    let pr = raft.mut_prs().get_mut(m.from)?;
    if m.reject_hint >= pr.matched {
        return None;
    }
    let had = pr.matched;
    pr.matched = m.commit.min(m.reject_hint);
    pr.become_probe();
    Some(Lost {
        peer: m.from,
        had,
        log_ends_at: m.reject_hint,
        from_index: pr.matched + 1,
    })
}

#[cfg(test)]
mod tests {
    use raft::StateRole;

    use super::super::raft_net::Net;
    use super::*;

    /// Node 2 holds everything (more than one append's worth), loses all but its first
    /// four entries, then the leader writes once more: does node 2 have the leader's whole
    /// log once every message has been delivered (no heartbeat in between)?
    fn catches_up_after_losing_entries(reset: bool) -> (u64, u64) {
        let mut net = Net::new(false);
        if reset {
            net.before_step = Some(|raft, m| forget_lost_progress(raft, m).map(|l| l.peer));
        }
        net.node(1).campaign().expect("campaign");
        net.settle(Vec::new(), &|_| true);
        assert_eq!(net.node(1).raft.state, StateRole::Leader);
        // 300 KB each: an append carries at most 1 MiB of them.
        for i in 0..8u8 {
            net.propose(1, &vec![i; 300 * 1024]);
            net.settle(Vec::new(), &|_| true);
        }
        let full = net.last_index(1);
        assert_eq!(net.last_index(2), full);
        net.lose_entries_after(2, 4);
        net.propose(1, b"after the loss");
        net.settle(Vec::new(), &|_| true);
        (net.last_index(2), net.last_index(1))
    }

    #[test]
    fn without_the_reset_raft_rs_waits_for_heartbeats_to_resend_what_a_follower_lost() {
        // Node 2's answers stay below its old match, so raft-rs keeps it in probe, paused
        // until the next heartbeat: one append per heartbeat.
        let (follower, leader) = catches_up_after_losing_entries(false);
        assert!(
            follower < leader,
            "raft-rs caught node 2 up by itself ({follower} of {leader}): is the reset still needed?"
        );
    }

    #[test]
    fn a_follower_that_lost_entries_gets_them_again_at_once() {
        let (follower, leader) = catches_up_after_losing_entries(true);
        assert_eq!(
            follower, leader,
            "node 2 has {follower} of the leader's {leader}"
        );
    }
}
