//! The watch stream's source: records of what this node does (its state, its log, the
//! Raft messages it sends and receives, its events), handed to every watcher.
//!
//! The driver and the fault filter call the hub at the points where things happen; each
//! call first asks [`WatchHub::active`] (one atomic load), so a node nobody watches builds
//! no record at all. Each watcher has a bounded ring: when a slow watcher lets it fill,
//! the oldest records go and the next one it reads is a `missed` record saying how many.
//! A forwarding task per watcher moves records from its ring into the gRPC stream, so a
//! watcher that never reads costs the ring's bound and nothing else: the node never waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use kv_proto::watch::{self as pb, watch_record::Kind};
use raft::eraftpb::{Entry, Message};
use tokio::sync::{Notify, mpsc};

use crate::dashboard::view::{EntryKind, LogRow};
use crate::status::NodeStatus;
use crate::transport::fault::{FaultFilter, describe};
use crate::transport::tap::{Direction, Fate, type_index, type_name};

/// Records a watcher's ring keeps before the oldest go.
pub const WATCHER_CAPACITY: usize = 20_000;
/// Most records in one message of the stream.
pub const BATCH_RECORDS: usize = 1024;
/// Most watchers at once (a cluster view per person is a handful).
pub const MAX_WATCHERS: usize = 16;

/// Where this node's records go; clones share it.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<Hub>,
}

impl Default for WatchHub {
    /// A hub of no node yet (node 0): the driver makes the real one.
    fn default() -> Self {
        Self::new(0)
    }
}

struct Hub {
    me: u64,
    /// The node's fault filter, to say its faults in state records.
    faults: std::sync::OnceLock<FaultFilter>,
    /// True while anyone watches: every producer checks it first.
    active: AtomicBool,
    /// Numbers this node's outgoing messages while watched (see [`WatchHub::next_msg_id`]).
    next_msg: AtomicU64,
    /// The last stamp given (changed under `outlets`' lock, so stamps never go back).
    last_t: AtomicU64,
    outlets: Mutex<Vec<Arc<Outlet>>>,
}

/// One watcher's ring.
struct Outlet {
    ring: Mutex<Ring>,
    notify: Notify,
    capacity: usize,
}

#[derive(Default)]
struct Ring {
    records: VecDeque<pb::WatchRecord>,
    /// Records dropped since the watcher last read.
    missed: u64,
    /// The last seq given on this stream.
    seq: u64,
}

/// Why a watcher was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// [`MAX_WATCHERS`] watch already.
    #[error("{0} watchers already watch this node: close one first")]
    Full(usize),
}

impl WatchHub {
    /// The hub of node `me`.
    pub fn new(me: u64) -> Self {
        Self {
            inner: Arc::new(Hub {
                me,
                faults: std::sync::OnceLock::new(),
                active: AtomicBool::new(false),
                next_msg: AtomicU64::new(1),
                last_t: AtomicU64::new(0),
                outlets: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Wires the hub and the node's fault filter together: the messages the filter passes
    /// are recorded here, and the faults it holds are said in state records.
    pub fn attach(&self, filter: &FaultFilter) {
        filter.attach(self.clone());
        let _ = self.inner.faults.set(filter.clone());
    }

    /// The state record of `s` (what changes in it is what watchers are sent).
    pub fn state_of(&self, s: &NodeStatus) -> pb::NodeState {
        let mut faults = self
            .inner
            .faults
            .get()
            .map(|f| describe(&f.faults()))
            .unwrap_or_default();
        if s.frozen {
            faults.insert(0, "FROZEN".to_string());
        }
        if s.step_mode {
            faults.insert(0, format!("STEP MODE ({} held)", s.held_count));
        }
        pb::NodeState {
            role: s.role.as_str().to_string(),
            term: s.term,
            vote: s.vote,
            leader: s.leader_id,
            commit: s.commit_index,
            applied: s.applied_index,
            last_index: s.last_index,
            snapshot_index: s.snapshot_index,
            voters: s.voters.clone(),
            learners: s.learners.clone(),
            voters_outgoing: s.voters_outgoing.clone(),
            faults: faults.join(", "),
            frozen: s.frozen,
            slow_factor: s.slow_factor,
            election_elapsed: s.election_elapsed,
            election_timeout: s.election_timeout,
            heartbeat_elapsed: s.heartbeat_elapsed,
            heartbeat_timeout: s.heartbeat_timeout,
            tick_ms: s.tick_ms,
            removed_at: s.removed_at.unwrap_or(0),
            joining: s.joining,
            step_mode: s.step_mode,
            held_count: u32::try_from(s.held_count).unwrap_or(u32::MAX),
            held: s.held.clone(),
            protections_off: s.protections.badges(),
        }
    }

    /// True while someone watches; producers build records only then.
    pub fn active(&self) -> bool {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// An id for a message this node sends now, the same in its send and receipt records:
    /// the node's id in the top 16 bits, a counter below. 0 while nobody watches (the
    /// receiver then records the receipt without one).
    pub fn next_msg_id(&self) -> u64 {
        if !self.active() {
            return 0;
        }
        let n = self.inner.next_msg.fetch_add(1, Ordering::Relaxed) & ((1 << 48) - 1);
        (self.inner.me << 48) | n
    }

    /// Hands `kind` to every watcher, stamped with the time and this node's id. (Under the
    /// hub's lock: a push is a ring push and a wake-up, and the last watcher, usually the
    /// only one, takes the record itself rather than a copy. Stamped under it too, so a
    /// node's records are in time order as its stream sends them, whichever thread made
    /// them, and a clock that steps back does not reorder them.)
    pub fn publish(&self, kind: Kind) {
        if !self.active() {
            return;
        }
        let outlets = self
            .inner
            .outlets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let t_us = now_us().max(self.inner.last_t.load(Ordering::Relaxed));
        self.inner.last_t.store(t_us, Ordering::Relaxed);
        let record = pb::WatchRecord {
            t_us,
            seq: 0,
            node: self.inner.me,
            kind: Some(kind),
        };
        if let Some((last, others)) = outlets.split_last() {
            for outlet in others {
                outlet.push(record.clone());
            }
            last.push(record);
        }
    }

    /// A message this node sent (`Out`, after the fault filter decided its fate) or
    /// received (`In`).
    pub fn message(&self, dir: Direction, msg: &Message, fate: Fate, msg_id: u64) {
        if !self.active() {
            return;
        }
        let (fate, delay_ms) = match fate {
            Fate::Delivered => ("delivered", 0),
            Fate::Dropped => ("dropped", 0),
            Fate::Delayed(ms) => ("delayed", ms),
            Fate::Held => ("held", 0),
        };
        let m = peer_message(msg, fate, delay_ms, msg_id);
        self.publish(match dir {
            Direction::Out => Kind::Send(m),
            Direction::In => Kind::Recv(m),
        });
    }

    /// A new watcher: the records for it (the ones `first` makes, then every change) come
    /// out of the returned channel until it is dropped. `first` runs once the watcher is
    /// registered, so nothing that happens meanwhile is missed (it may come twice).
    pub fn subscribe(
        &self,
        first: impl FnOnce() -> Vec<Kind>,
        capacity: usize,
    ) -> Result<mpsc::Receiver<pb::WatchBatch>, WatchError> {
        let outlet = Arc::new(Outlet {
            ring: Mutex::new(Ring::default()),
            notify: Notify::new(),
            capacity,
        });
        let t_us = {
            let mut outlets = self
                .inner
                .outlets
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if outlets.len() >= MAX_WATCHERS {
                return Err(WatchError::Full(outlets.len()));
            }
            outlets.push(Arc::clone(&outlet));
            self.inner.active.store(true, Ordering::Relaxed);
            // The first records are stamped before anything published from now on.
            let t = now_us().max(self.inner.last_t.load(Ordering::Relaxed));
            self.inner.last_t.store(t, Ordering::Relaxed);
            t
        };
        {
            let mut ring = outlet.ring.lock().unwrap_or_else(PoisonError::into_inner);
            for kind in first().into_iter().rev() {
                ring.records.push_front(pb::WatchRecord {
                    t_us,
                    seq: 0,
                    node: self.inner.me,
                    kind: Some(kind),
                });
            }
        }
        // A small channel: the gRPC stream's own flow control holds back what the
        // watcher has not read, and the ring takes the rest. Whatever piled up goes as one
        // message (a record a message would cost a frame and a wake-up each).
        let (tx, rx) = mpsc::channel(8);
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                let taken = outlet.take();
                if taken.is_empty() {
                    tokio::select! {
                        () = outlet.notify.notified() => continue,
                        () = tx.closed() => break,
                    }
                }
                let mut gone = false;
                let mut records = taken.into_iter().peekable();
                while records.peek().is_some() {
                    let batch = pb::WatchBatch {
                        records: records.by_ref().take(BATCH_RECORDS).collect(),
                    };
                    if tx.send(batch).await.is_err() {
                        gone = true;
                        break;
                    }
                }
                if gone {
                    break;
                }
            }
            hub.unsubscribe(&outlet);
        });
        Ok(rx)
    }

    fn unsubscribe(&self, outlet: &Arc<Outlet>) {
        let mut outlets = self
            .inner
            .outlets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outlets.retain(|o| !Arc::ptr_eq(o, outlet));
        self.inner
            .active
            .store(!outlets.is_empty(), Ordering::Relaxed);
    }

    /// How many watch now.
    pub fn watchers(&self) -> usize {
        self.inner
            .outlets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Outlet {
    fn push(&self, record: pb::WatchRecord) {
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.records.len() >= self.capacity {
                ring.records.pop_front();
                ring.missed += 1;
            }
            ring.records.push_back(record);
        }
        self.notify.notify_one();
    }

    /// Everything in the ring, numbered, a `missed` record first when some were dropped.
    fn take(&self) -> Vec<pb::WatchRecord> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(ring.records.len() + 1);
        if ring.missed > 0 {
            let count = std::mem::take(&mut ring.missed);
            ring.seq += count;
            // Stamped as the record after the gap, to stay in time order.
            out.push(pb::WatchRecord {
                t_us: ring.records.front().map_or_else(now_us, |r| r.t_us),
                seq: 0,
                node: ring.records.front().map_or(0, |r| r.node),
                kind: Some(Kind::Missed(pb::Missed { count })),
            });
        }
        out.extend(ring.records.drain(..));
        for r in &mut out {
            ring.seq += 1;
            r.seq = ring.seq;
        }
        out
    }
}

/// A Raft message as a watch record shows it, with its fate and watch id.
pub fn peer_message(msg: &Message, fate: &str, delay_ms: u32, msg_id: u64) -> pb::PeerMessage {
    pb::PeerMessage {
        msg_id,
        msg_type: type_name(type_index(msg.get_msg_type())).to_string(),
        from: msg.from,
        to: msg.to,
        term: msg.term,
        index: msg.index,
        log_term: msg.log_term,
        entries: u32::try_from(msg.entries.len()).unwrap_or(u32::MAX),
        commit: msg.commit,
        reject: msg.reject,
        reject_hint: msg.reject_hint,
        fate: fate.to_string(),
        delay_ms,
    }
}

/// A log entry's record, described as the dashboard's log panel does.
pub fn entry_of(e: &Entry) -> pb::LogEntry {
    let row = LogRow::from_entry(e, 32);
    let kind = match row.kind {
        EntryKind::Command => "cmd",
        EntryKind::Empty => "noop",
        EntryKind::ConfChange if row.text.starts_with("DATA DIRS") => "dirs",
        EntryKind::ConfChange => "conf",
    };
    pb::LogEntry {
        index: e.index,
        term: e.term,
        kind: kind.to_string(),
        summary: row.text,
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> Kind {
        Kind::Event(pb::Event { text: text.into() })
    }

    #[tokio::test]
    async fn nobody_watching_costs_nothing_and_a_watcher_gets_everything_in_order() {
        let hub = WatchHub::new(3);
        hub.publish(event("unseen"));
        assert!(!hub.active());
        assert_eq!(hub.next_msg_id(), 0);
        let mut rx = hub
            .subscribe(|| vec![event("first")], 100)
            .expect("subscribe");
        assert!(hub.active());
        assert_eq!(hub.next_msg_id() >> 48, 3);
        hub.publish(event("second"));
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(rx.recv().await.expect("a batch").records);
        }
        let (a, b) = (got[0].clone(), got[1].clone());
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.node, 3);
        assert_eq!(a.kind, Some(event("first")));
        assert_eq!(b.kind, Some(event("second")));
        drop(rx);
        // The forwarding task notices the watcher left.
        for _ in 0..100 {
            if !hub.active() {
                break;
            }
            hub.publish(event("into the void"));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!hub.active());
    }

    #[tokio::test]
    async fn a_watcher_that_does_not_read_loses_the_oldest_and_is_told_how_many() {
        let hub = WatchHub::new(1);
        let mut rx = hub.subscribe(Vec::new, 10).expect("subscribe");
        // Nothing runs the forwarding task until this test waits: the ring keeps 10.
        for i in 0..1000 {
            hub.publish(event(&format!("e{i}")));
        }
        let mut seen = Vec::new();
        let mut missed = 0;
        while let Ok(Some(batch)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), rx.recv()).await
        {
            for r in batch.records {
                match r.kind {
                    Some(Kind::Missed(m)) => missed += m.count,
                    Some(Kind::Event(e)) => seen.push(e.text),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(
            seen.len() as u64 + missed,
            1000,
            "every record read or counted"
        );
        assert_eq!(
            seen.last().map(String::as_str),
            Some("e999"),
            "the newest kept"
        );
        assert!(missed > 0);
    }
}
