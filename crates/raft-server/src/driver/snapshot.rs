//! Snapshots: taking one every `snapshot_every` applied entries (and compacting the log
//! behind it), installing one from the leader, and passing the transport's delivery
//! reports to raft-rs.
//!
//! Taking one never stalls the driver: it captures the state machine at the applied index
//! (an O(1) clone, see `state_machine`), the configuration and member book at that index,
//! and hands them to a snapshot thread that encodes them into the snapshot's file. When the
//! file is on disk the driver records it and compacts the log behind it (one small synced
//! write), so the log is never compacted beyond what a saved snapshot holds. One snapshot
//! is in the making at a time.

use std::sync::PoisonError;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, HardState, Snapshot, SnapshotMetadata};

use super::handle::{DriverMsg, RequestError};
use super::{DriverError, KEEP_ENTRIES, NodeDriver};
use crate::config::PeerMap;
use crate::membership::Membership;
use crate::state_machine::{KvStateMachine, SnapshotError};
use crate::status::human_size;
use crate::storage::StorageError;

/// After a snapshot could not be written, how long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A snapshot being written by its thread.
pub(super) struct SnapshotTask {
    /// The index, term and configuration it was captured at.
    md: SnapshotMetadata,
    keys: usize,
    started: Instant,
    /// Time the driver spent capturing it.
    capture: Duration,
    /// The file's size, or why it could not be written.
    done: Receiver<Result<u64, StorageError>>,
}

impl SnapshotTask {
    /// The index being written.
    pub(super) fn index(&self) -> u64 {
        self.md.index
    }
}

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
        let mut reported = false;
        for (peer, ok) in reports {
            let status = if ok {
                raft::SnapshotStatus::Finish
            } else {
                raft::SnapshotStatus::Failure
            };
            self.raw.report_snapshot(peer, status);
            reported = true;
        }
        if reported {
            self.release_snapshot_data();
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
        let (restored, book) = decode(snap.get_data())?;
        let keys = restored.len();
        self.storage.apply_snapshot(snap, hard_state)?;
        *self.sm.write().unwrap_or_else(PoisonError::into_inner) = restored;
        let me = self.raw.raft.id;
        let was_member = self.membership.with(|m| m.role(me).is_some());
        let conf = snap.get_metadata().get_conf_state();
        self.membership
            .write(|m| m.restore(conf, book.as_ref(), &self.seed));
        self.membership_changed();
        if !was_member && self.membership.with(|m| m.role(me).is_some()) {
            self.event(format!(
                "added to the cluster: it is in the leader's snapshot at index {index}"
            ));
        }
        self.last_snapshot = index;
        // The files of the log it replaces, and of older snapshots, can go.
        self.purge_beside();
        // Whatever was pending here belonged to a log that is gone.
        self.writes.fail_all(&RequestError::LeadershipLost);
        self.reads.fail_all(&RequestError::LeadershipLost);
        self.event(format!(
            "installed a snapshot from the leader: index {index}, {keys} keys ({})",
            human_size(snap.get_data().len())
        ));
        self.watch_compact(index, snap.get_metadata().term);
        Ok(())
    }

    /// Every `snapshot_every` applied entries (or when a node just added needs one): starts
    /// a snapshot, unless one is being written. Also records a finished one.
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), DriverError> {
        self.finish_snapshot()?;
        // A node just added needs a snapshot that knows it (see EngineStorage::snapshot).
        // Asked again by raft-rs at every heartbeat, so a request seen while a snapshot is
        // being written is not lost by being dropped here.
        let wanted = self.storage.take_snapshot_wanted();
        if self.snapshot_every == 0 && !wanted
            || self.snapshot_task.is_some()
            || self.snapshot_retry.is_some_and(|at| Instant::now() < at)
        {
            return Ok(());
        }
        let started = Instant::now();
        let (sm, keys) = {
            let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
            let applied = sm.applied();
            let due = self.snapshot_every > 0
                && applied >= self.last_snapshot.saturating_add(self.snapshot_every);
            if !(due || wanted && applied > self.last_snapshot) {
                return Ok(());
            }
            // O(1) in the keys: the clone shares the tree with the live state machine.
            (sm.clone(), sm.len())
        };
        let index = sm.applied();
        let mut md = SnapshotMetadata {
            index,
            term: self.raw.raft.raft_log.term(index)?,
            ..SnapshotMetadata::default()
        };
        // Conf changes are applied as their entries are: this is the configuration at
        // `index`, and the member book goes with it.
        md.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        let members = self.membership.with(Membership::to_book);
        let storage = self.storage.clone();
        let wake = self.wake.clone();
        let (tx, done) = channel();
        let (file_index, file_term) = (md.index, md.term);
        let spawned = std::thread::Builder::new()
            .name(format!("node-{}-snapshot", self.raw.raft.id))
            .spawn(move || {
                let written = storage.write_snapshot_file(file_index, file_term, |w| {
                    sm.write_snapshot(Some(members), w)
                });
                let _ = tx.send(written);
                // Look now rather than at the next tick.
                let _ = wake.try_send(DriverMsg::Wake);
            });
        if let Err(e) = spawned {
            self.snapshot_failed(index, &format!("cannot start its thread: {e}"));
            return Ok(());
        }
        self.snapshot_task = Some(SnapshotTask {
            md,
            keys,
            started,
            capture: started.elapsed(),
            done,
        });
        Ok(())
    }

    /// Records the snapshot being written once its file is on disk, and compacts the log
    /// behind it.
    fn finish_snapshot(&mut self) -> Result<(), DriverError> {
        let Some(task) = &self.snapshot_task else {
            return Ok(());
        };
        let written = match task.done.try_recv() {
            Ok(written) => written,
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => Err(StorageError::SnapshotFile {
                path: "(snapshot thread)".into(),
                source: std::io::Error::other("the snapshot thread ended without an answer"),
            }),
        };
        let Some(task) = self.snapshot_task.take() else {
            return Ok(());
        };
        let index = task.md.index;
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                self.snapshot_failed(index, &e.to_string());
                return Ok(());
            }
        };
        if index <= self.last_snapshot {
            // A leader's snapshot was installed meanwhile: this one is older.
            self.purge_beside();
            return Ok(());
        }
        let recording = Instant::now();
        let keep = match self.snapshot_every {
            // Snapshots only on demand (a node added): compact no more than we must.
            0 => KEEP_ENTRIES,
            every => (every / 2).min(KEEP_ENTRIES),
        };
        let compact_to = index.saturating_sub(keep);
        let compact_term = self.raw.raft.raft_log.term(compact_to).unwrap_or(0);
        self.storage.record_snapshot(&task.md, compact_to)?;
        self.watch_compact(compact_to, compact_term);
        self.last_snapshot = index;
        self.snapshot_retry = None;
        let stall = task.capture + recording.elapsed();
        self.snapshot_stall = stall;
        self.event(format!(
            "snapshot at index {index}: {} keys ({}), written in {} ms beside the driver, \
             which spent {:.1} ms on it; log compacted up to {compact_to}",
            task.keys,
            human_size(usize::try_from(size).unwrap_or(usize::MAX)),
            task.started.elapsed().as_millis(),
            stall.as_secs_f64() * 1000.0,
        ));
        self.purge_beside();
        Ok(())
    }

    /// The log is compacted up to `up_to`, for the watchers.
    fn watch_compact(&self, up_to: u64, term: u64) {
        if self.shared.watch.active() {
            self.shared
                .watch
                .publish(kv_proto::watch::watch_record::Kind::Compact(
                    kv_proto::watch::Compact { up_to, term },
                ));
        }
    }

    /// Reclaims the files of compacted entries and of snapshots older than the recorded
    /// one, on a thread of its own: it can take a while.
    fn purge_beside(&self) {
        let storage = self.storage.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("purge".into())
            .spawn(move || storage.purge())
        {
            tracing::warn!("cannot start a thread to purge old files ({e}); next time");
        }
    }

    fn snapshot_failed(&mut self, index: u64, why: &str) {
        self.snapshot_retry = Some(Instant::now() + RETRY_AFTER);
        let text = format!(
            "snapshot at index {index} failed ({why}); the log is kept, next try in {} s",
            RETRY_AFTER.as_secs()
        );
        tracing::warn!("{text}");
        self.event(text);
    }

    /// Forgets the snapshot data loaded for followers once none of them waits for one.
    pub(super) fn release_snapshot_data(&mut self) {
        let waiting = self
            .raw
            .raft
            .prs()
            .iter()
            .any(|(_, pr)| pr.state == raft::ProgressState::Snapshot);
        if !waiting {
            self.storage.evict_snapshot_data();
        }
    }
}

/// Decodes a snapshot's data: the state machine and the member book.
pub(super) fn decode(
    data: &[u8],
) -> Result<(KvStateMachine, Option<kv_proto::kv::MemberBook>), SnapshotError> {
    KvStateMachine::from_snapshot(data)
}

/// The snapshot a new cluster starts from (index 1, term 1): no keys, the voters and
/// addresses of `--peers`; and the hard state that goes with it.
pub(super) fn bootstrap(peers: &PeerMap) -> (Snapshot, HardState) {
    let conf = ConfState {
        voters: peers.ids(),
        ..Default::default()
    };
    let membership = Membership::from_snapshot(&conf, None, peers);
    let mut sm = KvStateMachine::new();
    sm.apply_noop(1);
    let mut data = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = sm.write_snapshot(Some(membership.to_book()), &mut data);
    let mut snap = Snapshot::default();
    snap.set_data(data.into());
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
