//! Snapshots: taking one every `snapshot_every` applied entries (and compacting the log
//! behind it), installing one from the leader, and passing the transport's delivery
//! reports to raft-rs.

use std::sync::PoisonError;

use raft::eraftpb::Snapshot;

use super::handle::RequestError;
use super::{DriverError, KEEP_ENTRIES, NodeDriver};
use crate::state_machine::KvStateMachine;
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

    /// Installs a leader's snapshot: storage first (synced), then the state machine.
    pub(super) fn install_snapshot(
        &mut self,
        snap: &Snapshot,
        hard_state: Option<&raft::eraftpb::HardState>,
    ) -> Result<(), DriverError> {
        let index = snap.get_metadata().index;
        // Decode before anything is written: bad data must not replace a good log.
        let mut restored = KvStateMachine::new();
        restored.restore(snap.get_data())?;
        let keys = restored.len();
        self.storage.apply_snapshot(snap, hard_state)?;
        *self.sm.write().unwrap_or_else(PoisonError::into_inner) = restored;
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
        if self.snapshot_every == 0 {
            return Ok(());
        }
        let (applied, data, keys) = {
            let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
            if sm.applied() < self.last_snapshot.saturating_add(self.snapshot_every) {
                return Ok(());
            }
            (sm.applied(), sm.snapshot(), sm.len())
        };
        let mut snap = Snapshot::default();
        let size = data.len();
        snap.set_data(data.into());
        let md = snap.mut_metadata();
        md.index = applied;
        md.term = self.raw.raft.raft_log.term(applied)?;
        md.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        let keep = (self.snapshot_every / 2).min(KEEP_ENTRIES);
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
