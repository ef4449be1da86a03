//! A lab switched on a running node (the client's `lab` command): Raft's protections
//! changed from now on, as if the node had been started with their flags. raft-rs reads
//! `pre_vote`, `check_quorum` and the ReadIndex option at each step, so they take effect at
//! once; the unsafe modes are the driver's own.

use raft::ReadOnlyOption;

use super::NodeDriver;
use super::handle::RequestError;
use crate::config::{Protections, ReadMode};

impl NodeDriver {
    /// Runs with `set` from now on; the answer says what changed, for the operator and the
    /// events timeline.
    pub(super) fn set_protections(&mut self, set: Protections) -> String {
        if set == self.protections {
            return describe("protections unchanged", &set);
        }
        let raft = &mut self.raw.raft;
        raft.pre_vote = set.pre_vote;
        raft.set_check_quorum(set.check_quorum);
        if set.read_mode != self.protections.read_mode {
            // Reads already handed to Raft were waiting for the other mode's confirmation:
            // they fail (retryable) rather than wait for a confirmation that never comes.
            self.reads.fail_all(&RequestError::Busy);
            raft.read_only.pending_read_index.clear();
            raft.read_only.read_index_queue.clear();
            raft.read_only.option = match set.read_mode {
                ReadMode::Safe => ReadOnlyOption::Safe,
                ReadMode::Lease => ReadOnlyOption::LeaseBased,
            };
        }
        self.protections = set;
        describe("lab", &set)
    }
}

fn describe(what: &str, p: &Protections) -> String {
    let off = p.badges();
    if off.is_empty() {
        format!("{what}: every protection on (pre-vote, check-quorum, ReadIndex reads)")
    } else {
        format!("{what}: running with {}", off.join(", "))
    }
}
