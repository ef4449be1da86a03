//! The fault filter: every peer message of this node passes it, on its way out and in, and
//! it decides whether the message goes on, is dropped, or is delayed. Network faults only
//! (cut links, isolation, random loss, delay); freezing and slow motion are about time and
//! live in the driver, where ticks come from. Both transports use this one filter, so the
//! in-process tests exercise the same code as the real cluster.
//!
//! The vocabulary is raft-rs's test harness's (`cut`, `isolate`, `drop`, `recover` = heal).
//! Faults are held in memory: a restart clears them. With no fault set, a message costs an
//! atomic load plus the [`MessageTap`] record.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use raft::eraftpb::Message;

use super::tap::{Direction, Fate, MSG_TYPES, MessageTap, type_index, type_name};

/// Longest delay a fault may set: past this a cluster cannot keep a leader anyway, and a
/// typo should not hold messages for hours.
pub const MAX_DELAY_MS: u32 = 10_000;

/// This node's network faults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetFaults {
    /// Every link is cut.
    pub isolated: bool,
    /// Peers whose link is cut.
    pub cut: BTreeSet<u64>,
    /// Peers this node's messages to are dropped (a one-way cut, the sending side).
    pub cut_out: BTreeSet<u64>,
    /// Peers whose messages to this node are dropped (a one-way cut, the receiving side).
    pub cut_in: BTreeSet<u64>,
    /// Percentage of messages dropped, in and out.
    pub drop_percent: u32,
    /// Milliseconds every message is held, in and out.
    pub delay_ms: u32,
}

impl NetFaults {
    /// True when no fault is set.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    /// True when the link to `peer` is cut (alone or by isolation).
    pub fn link_cut(&self, peer: u64) -> bool {
        self.isolated || self.cut.contains(&peer)
    }

    /// True when messages in direction `dir` on the link to `peer` are cut, both ways or
    /// this way only.
    pub fn cut_towards(&self, dir: Direction, peer: u64) -> bool {
        self.link_cut(peer)
            || match dir {
                Direction::Out => self.cut_out.contains(&peer),
                Direction::In => self.cut_in.contains(&peer),
            }
    }
}

/// A change to this node's network faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultChange {
    /// Cut every link.
    Isolate,
    /// Cut the link to this peer.
    Cut(u64),
    /// Restore the link to this peer, both ways and one way (isolation, which cuts every
    /// link, stays).
    Uncut(u64),
    /// Drop this node's messages to this peer only (a one-way cut, A's side).
    CutOut(u64),
    /// Drop this peer's messages to this node only (a one-way cut, B's side).
    CutIn(u64),
    /// Drop this percentage of messages (0 stops dropping).
    Drop(u32),
    /// Delay messages by this many milliseconds (0 stops delaying).
    Delay(u32),
    /// Clear every network fault.
    Heal,
}

/// Why a fault change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The node runs with `--no-faults`.
    #[error("node {0} was started with --no-faults and refuses fault commands")]
    Disabled(u64),
    /// A drop percentage over 100.
    #[error("drop percentage {0} is out of range: give 0 to 100")]
    BadPercent(u32),
    /// A delay over [`MAX_DELAY_MS`].
    #[error("delay {0} ms is out of range: give 0 to {MAX_DELAY_MS} ms")]
    BadDelay(u32),
    /// A cut of the node's link to itself.
    #[error("node {0} has no link to itself to cut: name another node")]
    SelfLink(u64),
}

/// What the filter decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on now.
    Deliver,
    /// Drop it.
    Drop,
    /// Pass it on after this long.
    Delay(Duration),
}

/// Messages a fault dropped and delayed, of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultCount {
    /// raft-rs's name of the type (`MsgAppend`, ...).
    pub msg_type: &'static str,
    /// Dropped so far.
    pub dropped: u64,
    /// Delayed so far.
    pub delayed: u64,
}

struct Inner {
    me: u64,
    enabled: bool,
    /// False while no fault is set: the common case costs one load.
    active: AtomicBool,
    faults: RwLock<NetFaults>,
    dropped: [AtomicU64; MSG_TYPES],
    delayed: [AtomicU64; MSG_TYPES],
    tap: MessageTap,
    /// The node's watch stream, once the node has started (see [`FaultFilter::attach`]).
    watch: std::sync::OnceLock<crate::watch::WatchHub>,
}

/// The filter of one node; clones share it.
#[derive(Clone)]
pub struct FaultFilter {
    inner: Arc<Inner>,
}

impl FaultFilter {
    /// The filter of node `me`; with `enabled` false it refuses every change.
    pub fn new(me: u64, enabled: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                me,
                enabled,
                active: AtomicBool::new(false),
                faults: RwLock::new(NetFaults::default()),
                dropped: std::array::from_fn(|_| AtomicU64::new(0)),
                delayed: std::array::from_fn(|_| AtomicU64::new(0)),
                tap: MessageTap::default(),
                watch: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Messages passing this filter go to `hub` too, while someone watches.
    pub fn attach(&self, hub: crate::watch::WatchHub) {
        let _ = self.inner.watch.set(hub);
    }

    /// The node this filter belongs to.
    pub fn node_id(&self) -> u64 {
        self.inner.me
    }

    /// False when the node runs with `--no-faults`.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Decides the fate of a message this node sends.
    pub fn outgoing(&self, msg: &Message) -> Verdict {
        self.outgoing_numbered(msg).0
    }

    /// Decides the fate of a message this node sends, and gives it its watch id (0 while
    /// nobody watches), which travels with it so that its receipt can name it.
    pub fn outgoing_numbered(&self, msg: &Message) -> (Verdict, u64) {
        self.outgoing_as(msg, 0)
    }

    /// As [`FaultFilter::outgoing_numbered`], keeping the watch id `id` the message was
    /// given earlier (in step mode, when it was held); 0 gives it a new one.
    pub fn outgoing_as(&self, msg: &Message, id: u64) -> (Verdict, u64) {
        let id = if id != 0 {
            id
        } else {
            self.inner.watch.get().map_or(0, |w| w.next_msg_id())
        };
        (self.pass(Direction::Out, msg.to, msg, id), id)
    }

    /// Decides the fate of a message this node received.
    pub fn incoming(&self, msg: &Message) -> Verdict {
        self.incoming_numbered(msg, 0)
    }

    /// Decides the fate of a message this node received, which its sender numbered `id`.
    pub fn incoming_numbered(&self, msg: &Message, id: u64) -> Verdict {
        self.pass(Direction::In, msg.from, msg, id)
    }

    fn pass(&self, dir: Direction, peer: u64, msg: &Message, msg_id: u64) -> Verdict {
        let inner = &*self.inner;
        let verdict = if inner.active.load(Ordering::Relaxed) {
            decide(
                &inner.faults.read().unwrap_or_else(PoisonError::into_inner),
                dir,
                peer,
            )
        } else {
            Verdict::Deliver
        };
        let t = type_index(msg.get_msg_type());
        let fate = match verdict {
            Verdict::Deliver => Fate::Delivered,
            Verdict::Drop => {
                inner.dropped[t].fetch_add(1, Ordering::Relaxed);
                Fate::Dropped
            }
            Verdict::Delay(d) => {
                inner.delayed[t].fetch_add(1, Ordering::Relaxed);
                Fate::Delayed(u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
            }
        };
        inner.tap.record(dir, msg, fate);
        if let Some(w) = inner.watch.get() {
            w.message(dir, msg, fate, msg_id);
        }
        verdict
    }

    /// Applies a change; returns a line saying what it did (empty when it changed nothing).
    pub fn apply(&self, change: FaultChange) -> Result<String, FaultError> {
        let me = self.inner.me;
        if !self.inner.enabled {
            return Err(FaultError::Disabled(me));
        }
        let mut f = self
            .inner
            .faults
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let said = match change {
            FaultChange::Isolate => {
                f.isolated = true;
                "isolated: every link cut, both directions".to_string()
            }
            FaultChange::Cut(peer) if peer == me => return Err(FaultError::SelfLink(me)),
            FaultChange::Cut(peer) => {
                f.cut.insert(peer);
                format!("link to node {peer} cut, both directions")
            }
            FaultChange::Uncut(peer) => {
                let both = f.cut.remove(&peer);
                let out = f.cut_out.remove(&peer);
                let inn = f.cut_in.remove(&peer);
                if both || out || inn {
                    format!("link to node {peer} restored")
                } else {
                    String::new()
                }
            }
            FaultChange::CutOut(peer) | FaultChange::CutIn(peer) if peer == me => {
                return Err(FaultError::SelfLink(me));
            }
            FaultChange::CutOut(peer) => {
                f.cut_out.insert(peer);
                format!("messages to node {peer} cut, one way (node {peer}'s still arrive)")
            }
            FaultChange::CutIn(peer) => {
                f.cut_in.insert(peer);
                format!("messages from node {peer} cut, one way (ours still reach it)")
            }
            FaultChange::Drop(p) if p > 100 => return Err(FaultError::BadPercent(p)),
            FaultChange::Drop(p) => {
                f.drop_percent = p;
                if p == 0 {
                    "no longer dropping messages".to_string()
                } else {
                    format!("dropping {p}% of peer messages, in and out")
                }
            }
            FaultChange::Delay(ms) if ms > MAX_DELAY_MS => return Err(FaultError::BadDelay(ms)),
            FaultChange::Delay(ms) => {
                f.delay_ms = ms;
                if ms == 0 {
                    "no longer delaying messages".to_string()
                } else {
                    format!("delaying peer messages by {ms} ms, in and out")
                }
            }
            FaultChange::Heal => {
                let had = describe(&f);
                *f = NetFaults::default();
                if had.is_empty() {
                    String::new()
                } else {
                    format!("healed: {} cleared", had.join(", "))
                }
            }
        };
        self.inner.active.store(!f.is_clear(), Ordering::Relaxed);
        Ok(said)
    }

    /// The current network faults.
    pub fn faults(&self) -> NetFaults {
        self.inner
            .faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Messages dropped and delayed so far, for every type with any.
    pub fn counts(&self) -> Vec<FaultCount> {
        (0..MSG_TYPES)
            .filter_map(|i| {
                let dropped = self.inner.dropped[i].load(Ordering::Relaxed);
                let delayed = self.inner.delayed[i].load(Ordering::Relaxed);
                (dropped + delayed > 0).then(|| FaultCount {
                    msg_type: type_name(i),
                    dropped,
                    delayed,
                })
            })
            .collect()
    }

    /// The tap on this node's messages.
    pub fn tap(&self) -> &MessageTap {
        &self.inner.tap
    }
}

/// The verdict for a message going `dir` on the link to `peer` under `f`.
fn decide(f: &NetFaults, dir: Direction, peer: u64) -> Verdict {
    if f.cut_towards(dir, peer) {
        return Verdict::Drop;
    }
    if f.drop_percent > 0 && rand::random::<u32>() % 100 < f.drop_percent {
        return Verdict::Drop;
    }
    if f.delay_ms > 0 {
        // Up to 10% jitter, so delayed traffic does not move in lockstep.
        let jitter = rand::random::<u32>() % (f.delay_ms / 10 + 1);
        return Verdict::Delay(Duration::from_millis(u64::from(f.delay_ms + jitter)));
    }
    Verdict::Deliver
}

/// The faults in `f`, each in a few words (empty when none).
pub fn describe(f: &NetFaults) -> Vec<String> {
    let mut out = Vec::new();
    if f.isolated {
        out.push("isolated".to_string());
    }
    out.extend(describe_links(f));
    out
}

/// The faults in `f` that slow or thin its messages (cut links, drop, delay), each in a
/// few words; isolation, which stops them all, is left to the caller.
pub fn describe_links(f: &NetFaults) -> Vec<String> {
    let mut out = Vec::new();
    if !f.cut.is_empty() {
        let ids: Vec<String> = f.cut.iter().map(u64::to_string).collect();
        out.push(format!("cut from {}", ids.join(",")));
    }
    for peer in &f.cut_out {
        out.push(format!("one-way cut: no messages to {peer}"));
    }
    for peer in &f.cut_in {
        out.push(format!("one-way cut: no messages from {peer}"));
    }
    if f.drop_percent > 0 {
        out.push(format!("drop {}%", f.drop_percent));
    }
    if f.delay_ms > 0 {
        out.push(format!("delay {} ms", f.delay_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::MessageType;

    use super::*;

    fn msg(from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = from;
        m.to = to;
        m
    }

    #[test]
    fn cuts_isolates_and_heals() {
        let f = FaultFilter::new(1, true);
        assert_eq!(f.outgoing(&msg(1, 2)), Verdict::Deliver);
        f.apply(FaultChange::Cut(2)).expect("cut");
        assert_eq!(f.outgoing(&msg(1, 2)), Verdict::Drop);
        assert_eq!(f.incoming(&msg(2, 1)), Verdict::Drop);
        assert_eq!(f.outgoing(&msg(1, 3)), Verdict::Deliver);
        f.apply(FaultChange::Isolate).expect("isolate");
        assert_eq!(f.incoming(&msg(3, 1)), Verdict::Drop);
        // Restoring one link leaves an isolated node isolated.
        f.apply(FaultChange::Uncut(2)).expect("uncut");
        assert_eq!(f.outgoing(&msg(1, 2)), Verdict::Drop);
        f.apply(FaultChange::Cut(3)).expect("cut");
        let said = f.apply(FaultChange::Heal).expect("heal");
        assert!(said.contains("isolated, cut from 3"), "{said}");
        assert!(f.faults().is_clear());
        assert_eq!(f.outgoing(&msg(1, 3)), Verdict::Deliver);
        let counts = f.counts();
        assert_eq!(counts.len(), 1);
        assert_eq!((counts[0].msg_type, counts[0].dropped), ("MsgAppend", 4));
    }

    #[test]
    fn drops_about_the_percentage_and_delays_with_jitter() {
        let f = FaultFilter::new(1, true);
        f.apply(FaultChange::Drop(30)).expect("drop");
        let dropped = (0..10_000)
            .filter(|_| f.outgoing(&msg(1, 2)) == Verdict::Drop)
            .count();
        assert!((2_500..3_500).contains(&dropped), "dropped {dropped}");
        f.apply(FaultChange::Drop(0)).expect("drop 0");
        f.apply(FaultChange::Delay(200)).expect("delay");
        for _ in 0..100 {
            match f.incoming(&msg(2, 1)) {
                Verdict::Delay(d) => {
                    assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(220));
                }
                other => panic!("expected a delay, got {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_bad_changes_and_a_disabled_filter() {
        let f = FaultFilter::new(1, true);
        assert_eq!(
            f.apply(FaultChange::Drop(101)),
            Err(FaultError::BadPercent(101))
        );
        assert_eq!(
            f.apply(FaultChange::Delay(MAX_DELAY_MS + 1)),
            Err(FaultError::BadDelay(MAX_DELAY_MS + 1))
        );
        assert_eq!(f.apply(FaultChange::Cut(1)), Err(FaultError::SelfLink(1)));
        assert!(f.faults().is_clear());
        let off = FaultFilter::new(2, false);
        assert_eq!(
            off.apply(FaultChange::Isolate),
            Err(FaultError::Disabled(2))
        );
        assert_eq!(off.outgoing(&msg(2, 1)), Verdict::Deliver);
    }
}
