//! The raft-rs configuration every node runs with, in one place so that the tests that
//! step raft-rs directly (below) run exactly what the driver runs.
//!
//! `batch_append` stays off: in raft-rs 0.7 `try_batching` merges new entries into a
//! queued *empty* `MsgAppend` without checking that they start right after its index. When
//! a follower's next index drops between the two (a heartbeat response queues the empty
//! append, `report_unreachable` moves the follower to probe, a proposal follows in the same
//! loop), the follower receives `index = L` with entries starting at or below `L`, answers
//! with `L + len`, an index past its own log, and the leader counts it: entries only the
//! leader holds could be committed. The driver gets the same saving another way: every
//! write handled in one loop goes into one `MsgPropose`, hence one append per follower
//! (see `NodeDriver::flush_proposals`).

use raft::ReadOnlyOption;

use crate::config::{Protections, ReadMode, Timing};

/// The configuration of node `id`, whose state machine has applied `applied`.
pub(crate) fn raft_config(
    id: u64,
    timing: &Timing,
    applied: u64,
    protections: &Protections,
) -> raft::Config {
    raft::Config {
        id,
        election_tick: timing.election_ticks,
        heartbeat_tick: timing.heartbeat_ticks,
        // raft-rs draws each timeout from [min, max); 0 is its default (2 * election_tick).
        max_election_tick: timing.max_election_ticks.unwrap_or(0),
        // The state machine lives in memory: it is rebuilt from the latest snapshot plus
        // the committed log after it, so only the snapshot counts as applied.
        applied,
        // Batching: up to 1 MiB of entries per append, 256 appends in flight per peer.
        max_size_per_msg: MAX_APPEND_BYTES,
        max_inflight_msgs: 256,
        // See the module doc: unsafe in raft-rs 0.7; one proposal per loop instead.
        batch_append: false,
        check_quorum: protections.check_quorum,
        pre_vote: protections.pre_vote,
        read_only_option: match protections.read_mode {
            ReadMode::Safe => ReadOnlyOption::Safe,
            ReadMode::Lease => ReadOnlyOption::LeaseBased,
        },
        // Lets the leader refuse proposals (-> "busy") instead of growing without bound
        // when followers cannot keep up.
        max_uncommitted_size: 64 * 1024 * 1024,
        max_committed_size_per_ready: 16 * 1024 * 1024,
        ..raft::Config::default()
    }
}

/// The most bytes of entries in one append (raft-rs's `max_size_per_msg`); the driver also
/// proposes at most about this much at once.
pub(crate) const MAX_APPEND_BYTES: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use raft::StateRole;
    use raft::eraftpb::{Entry, Message, MessageType};

    use super::super::raft_net::Net;

    /// The largest index node 2 acknowledged to the leader after the sequence of the
    /// module doc, and node 2's last index then.
    fn acknowledged_after_unreachable_and_proposal(batch_append: bool) -> (u64, u64) {
        let mut net = Net::new(batch_append);
        net.node(1).campaign().expect("campaign");
        net.settle(Vec::new(), &|_| true);
        assert_eq!(net.node(1).raft.state, StateRole::Leader);
        for i in 0..3 {
            net.propose(1, format!("a{i}").as_bytes());
            net.settle(Vec::new(), &|_| true);
        }
        // Both followers receive six more entries but their answers are lost: the leader
        // still has node 2 matched at the old index while it holds six more (and nothing
        // new is committed).
        for i in 0..6 {
            net.propose(1, format!("b{i}").as_bytes());
            net.settle(Vec::new(), &|m| {
                m.get_msg_type() != MessageType::MsgAppendResponse
            });
        }
        let matched = net.node(1).raft.prs().get(2).expect("progress").matched;
        assert!(
            matched < net.last_index(2),
            "node 2 holds more than matched"
        );

        // One driver loop: a heartbeat response from node 2, the transport reports node 2
        // unreachable, and a write is proposed; then the Ready goes out.
        let mut hb_resp = Message::default();
        hb_resp.set_msg_type(MessageType::MsgHeartbeatResponse);
        hb_resp.from = 2;
        hb_resp.to = 1;
        hb_resp.term = net.node(1).raft.term;
        net.node(1).step(hb_resp).expect("heartbeat response");
        net.node(1).report_unreachable(2);
        net.propose(1, b"c");
        let to_2: Vec<Message> = net.ready(1).into_iter().filter(|m| m.to == 2).collect();

        // Node 2 answers; what does it acknowledge?
        let mut acked = 0;
        for m in to_2 {
            let _ = net.node(2).step(m);
        }
        for m in net.ready(2) {
            if m.get_msg_type() == MessageType::MsgAppendResponse && !m.reject {
                acked = acked.max(m.index);
            }
        }
        (acked, net.last_index(2))
    }

    #[test]
    fn raft_rs_batch_append_acknowledges_past_the_followers_log() {
        // The defect itself, so this test notices when a raft-rs upgrade fixes it.
        let (acked, last) = acknowledged_after_unreachable_and_proposal(true);
        assert!(
            acked > last,
            "with batch_append, node 2 acknowledged {acked} holding {last}: raft-rs fixed it?"
        );
    }

    #[test]
    fn our_configuration_never_acknowledges_past_the_followers_log() {
        let (acked, last) = acknowledged_after_unreachable_and_proposal(false);
        assert!(
            acked <= last,
            "node 2 acknowledged index {acked} but its log ends at {last}"
        );
    }

    #[test]
    fn one_proposal_of_many_entries_is_one_append_per_follower() {
        let mut net = Net::new(false);
        net.node(1).campaign().expect("campaign");
        net.settle(Vec::new(), &|_| true);
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = 1;
        let entries: Vec<Entry> = (0..10)
            .map(|i| Entry {
                data: format!("w{i}").into_bytes().into(),
                ..Default::default()
            })
            .collect();
        m.set_entries(entries.into());
        net.node(1).raft.step(m).expect("propose");
        let appends: Vec<Message> = net
            .ready(1)
            .into_iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgAppend)
            .collect();
        assert_eq!(appends.len(), 2, "one append per follower: {appends:?}");
        assert!(appends.iter().all(|m| m.entries.len() == 10));
    }
}
