//! Snapshots: taking one every `snapshot_every` applied entries (and compacting the log
//! behind it), installing one from the leader, and passing the transport's delivery
//! reports to raft-rs.

use std::sync::PoisonError;

use kv_proto::kv as pb;
use prost::Message as _;
use raft::eraftpb::{HardState, Snapshot};

use super::handle::RequestError;
use super::{DriverError, KEEP_ENTRIES, NodeDriver};
use crate::config::PeerMap;
use crate::membership::Membership;
use crate::state_machine::{KvStateMachine, SnapshotError};
use crate::status::human_size;

impl NodeDriver {
    /// Hands raft-rs the transport's reports on sent snapshots. They come through a shared
    /// list rather than the queue because losing one would leave the peer waiting in
    /// raft-rs's Snapshot state for the rest of the term.
    pub(super) fn take_snapshot_reports(&mut self) {
        let reports = std::mem::take(
            &mut *self
                .shared
                .snapshot_reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (peer, ok) in reports {
            let status = if ok {
                raft::SnapshotStatus::Finish
            } else {
                raft::SnapshotStatus::Failure
            };
            self.raw.report_snapshot(peer, status);
        }
    }

    /// Installs a leader's snapshot: storage first (synced), then the state machine and the
    /// membership.
    pub(super) fn install_snapshot(
        &mut self,
        snap: &Snapshot,
        hard_state: Option<&raft::eraftpb::HardState>,
    ) -> Result<(), DriverError> {
        let index = snap.get_metadata().index;
        // Decode before anything is written: bad data must not replace a good log.
        let data = decode(snap.get_data())?;
        let book = data.members.clone();
        let mut restored = KvStateMachine::new();
        restored.restore_message(data);
        let keys = restored.len();
        self.storage.apply_snapshot(snap, hard_state)?;
        *self.sm.write().unwrap_or_else(PoisonError::into_inner) = restored;
        let me = self.raw.raft.id;
        let was_member = self.membership.with(|m| m.role(me).is_some());
        let conf = snap.get_metadata().get_conf_state();
        self.membership
            .write(|m| m.restore(conf, book.as_ref(), &self.seed));
        self.transport
            .set_members(&self.membership.with(Membership::links));
        if !was_member && self.membership.with(|m| m.role(me).is_some()) {
            self.event(format!(
                "added to the cluster: it is in the leader's snapshot at index {index}"
            ));
        }
        self.last_snapshot = index;
        // Whatever was pending here belonged to a log that is gone.
        self.writes.fail_all(&RequestError::LeadershipLost);
        self.reads.fail_all(&RequestError::LeadershipLost);
        self.event(format!(
            "installed a snapshot from the leader: index {index}, {keys} keys ({})",
            human_size(snap.get_data().len())
        ));
        Ok(())
    }

    /// Every `snapshot_every` applied entries: snapshot the state machine and compact the
    /// log, keeping a stretch of entries behind the snapshot so that followers a little
    /// behind still get entries rather than a whole snapshot.
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), DriverError> {
        // A node just added needs a snapshot that knows it (see EngineStorage::snapshot).
        let wanted = self.storage.take_snapshot_wanted();
        if self.snapshot_every == 0 && !wanted {
            return Ok(());
        }
        let (applied, data, keys) = {
            let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
            let due = self.snapshot_every > 0
                && sm.applied() >= self.last_snapshot.saturating_add(self.snapshot_every);
            if !(due || wanted && sm.applied() > self.last_snapshot) {
                return Ok(());
            }
            let mut data = sm.snapshot_message();
            data.members = Some(self.membership.with(Membership::to_book));
            (sm.applied(), data.encode_to_vec(), sm.len())
        };
        let mut snap = Snapshot::default();
        let size = data.len();
        snap.set_data(data.into());
        let md = snap.mut_metadata();
        md.index = applied;
        md.term = self.raw.raft.raft_log.term(applied)?;
        md.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        let keep = match self.snapshot_every {
            // Snapshots only on demand (a node added): compact no more than we must.
            0 => KEEP_ENTRIES,
            every => (every / 2).min(KEEP_ENTRIES),
        };
        let compact_to = applied.saturating_sub(keep);
        self.storage.save_snapshot(&snap, compact_to)?;
        self.last_snapshot = applied;
        self.event(format!(
            "snapshot at index {applied}: {keys} keys ({}); log compacted up to {compact_to}",
            human_size(size)
        ));
        // Reclaiming the files of compacted entries can take a while: not on this thread.
        let storage = self.storage.clone();
        std::thread::spawn(move || storage.purge());
        Ok(())
    }
}

/// Decodes a snapshot's data (the state machine and the member book).
pub(super) fn decode(data: &[u8]) -> Result<pb::StateMachineSnapshot, SnapshotError> {
    Ok(pb::StateMachineSnapshot::decode(data)?)
}

/// The snapshot a new cluster starts from (index 1, term 1): no keys, the voters and
/// addresses of `--peers`; and the hard state that goes with it.
pub(super) fn bootstrap(peers: &PeerMap) -> (Snapshot, HardState) {
    let conf = raft::eraftpb::ConfState {
        voters: peers.ids(),
        ..Default::default()
    };
    let membership = Membership::from_snapshot(&conf, None, peers);
    let mut data = KvStateMachine::new().snapshot_message();
    data.applied_index = 1;
    data.members = Some(membership.to_book());
    let mut snap = Snapshot::default();
    snap.set_data(data.encode_to_vec().into());
    let md = snap.mut_metadata();
    md.index = 1;
    md.term = 1;
    md.set_conf_state(conf);
    let hard_state = HardState {
        term: 1,
        commit: 1,
        ..HardState::default()
    };
    (snap, hard_state)
}
