//! A tap on this node's peer messages: a bounded ring of the most recent ones, sent and
//! received, with what a fault did to each, and per-type counters. The dashboard's messages
//! panel reads it; nothing else does.
//!
//! Recording copies a few integers under a short lock and bumps an atomic counter; nothing
//! is formatted until a row is drawn, so the tap costs the same whether anyone looks or not,
//! and that cost is small (measured in the fault layer's closing note).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use raft::eraftpb::{Message, MessageType};

/// Messages the ring keeps.
pub const TAP_CAPACITY: usize = 1024;
/// Number of raft-rs message types (`MsgHup` = 0 .. `MsgRequestPreVoteResponse` = 18).
pub const MSG_TYPES: usize = 19;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by this node.
    Out,
    /// Received by this node.
    In,
}

/// What the fault filter did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Passed untouched.
    Delivered,
    /// Dropped by a fault (a cut link, isolation, or random loss).
    Dropped,
    /// Held back this many milliseconds by a delay fault.
    Delayed(u32),
    /// Held in step mode until the learner delivers or drops it.
    Held,
}

/// One message as the tap saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRecord {
    /// Position in the stream of recorded messages, from 1.
    pub seq: u64,
    /// When it passed the filter.
    pub at: SystemTime,
    /// Sent or received.
    pub dir: Direction,
    /// Its type.
    pub msg_type: MessageType,
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// The sender's term.
    pub term: u64,
    /// Append: index of the entry before the first one sent; response: the index answered.
    pub index: u64,
    /// Term of the entry at `index`.
    pub log_term: u64,
    /// Entries carried.
    pub entries: u32,
    /// The sender's commit index.
    pub commit: u64,
    /// A refusal (vote refused, append rejected).
    pub reject: bool,
    /// A snapshot's index (0 when none).
    pub snapshot_index: u64,
    /// What the filter did.
    pub fate: Fate,
}

/// Messages sent and received so far, by type index (see [`type_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeCounts {
    /// Sent, by type.
    pub sent: [u64; MSG_TYPES],
    /// Received, by type.
    pub received: [u64; MSG_TYPES],
}

/// The ring and the counters; see the module doc.
pub struct MessageTap {
    ring: Mutex<VecDeque<MessageRecord>>,
    next_seq: AtomicU64,
    sent: [AtomicU64; MSG_TYPES],
    received: [AtomicU64; MSG_TYPES],
}

impl Default for MessageTap {
    fn default() -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(TAP_CAPACITY)),
            next_seq: AtomicU64::new(1),
            sent: std::array::from_fn(|_| AtomicU64::new(0)),
            received: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl MessageTap {
    /// Records one message and its fate.
    pub fn record(&self, dir: Direction, msg: &Message, fate: Fate) {
        let t = type_index(msg.get_msg_type());
        let counters = match dir {
            Direction::Out => &self.sent,
            Direction::In => &self.received,
        };
        counters[t].fetch_add(1, Ordering::Relaxed);
        let snapshot_index = if msg.has_snapshot() {
            msg.get_snapshot().get_metadata().index
        } else {
            0
        };
        let record = MessageRecord {
            seq: 0,
            at: SystemTime::now(),
            dir,
            msg_type: msg.get_msg_type(),
            from: msg.from,
            to: msg.to,
            term: msg.term,
            index: msg.index,
            log_term: msg.log_term,
            entries: u32::try_from(msg.entries.len()).unwrap_or(u32::MAX),
            commit: msg.commit,
            reject: msg.reject,
            snapshot_index,
            fate,
        };
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        // Numbered under the lock, so the ring is always in seq order.
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        if ring.len() == TAP_CAPACITY {
            ring.pop_front();
        }
        ring.push_back(MessageRecord { seq, ..record });
    }

    /// Up to `n` of the most recent records with `seq <= up_to` (all when `None`), oldest
    /// first. Costs `O(n)` plus a binary search.
    pub fn recent(&self, n: usize, up_to: Option<u64>) -> Vec<MessageRecord> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let end = match up_to {
            Some(seq) => ring.partition_point(|r| r.seq <= seq),
            None => ring.len(),
        };
        let start = end.saturating_sub(n);
        ring.range(start..end).copied().collect()
    }

    /// The oldest and newest seq still in the ring (`None` when empty).
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        Some((ring.front()?.seq, ring.back()?.seq))
    }

    /// Messages sent and received so far, by type.
    pub fn counts(&self) -> TypeCounts {
        TypeCounts {
            sent: std::array::from_fn(|i| self.sent[i].load(Ordering::Relaxed)),
            received: std::array::from_fn(|i| self.received[i].load(Ordering::Relaxed)),
        }
    }
}

/// The index of a message type in per-type arrays.
pub fn type_index(t: MessageType) -> usize {
    (t as usize).min(MSG_TYPES - 1)
}

/// raft-rs's name of the message type at `index` (`MsgAppend`, ...).
pub fn type_name(index: usize) -> &'static str {
    const NAMES: [&str; MSG_TYPES] = [
        "MsgHup",
        "MsgBeat",
        "MsgPropose",
        "MsgAppend",
        "MsgAppendResponse",
        "MsgRequestVote",
        "MsgRequestVoteResponse",
        "MsgSnapshot",
        "MsgHeartbeat",
        "MsgHeartbeatResponse",
        "MsgUnreachable",
        "MsgSnapStatus",
        "MsgCheckQuorum",
        "MsgTransferLeader",
        "MsgTimeoutNow",
        "MsgReadIndex",
        "MsgReadIndexResp",
        "MsgRequestPreVote",
        "MsgRequestPreVoteResponse",
    ];
    NAMES.get(index).copied().unwrap_or("Msg?")
}

/// A short name for narrow columns (`Append`, `AppendResp`, `PreVote`, ...).
pub fn short_name(t: MessageType) -> &'static str {
    match t {
        MessageType::MsgAppend => "Append",
        MessageType::MsgAppendResponse => "AppendResp",
        MessageType::MsgRequestVote => "Vote",
        MessageType::MsgRequestVoteResponse => "VoteResp",
        MessageType::MsgRequestPreVote => "PreVote",
        MessageType::MsgRequestPreVoteResponse => "PreVoteResp",
        MessageType::MsgSnapshot => "Snapshot",
        MessageType::MsgHeartbeat => "Heartbeat",
        MessageType::MsgHeartbeatResponse => "HeartbeatResp",
        MessageType::MsgTimeoutNow => "TimeoutNow",
        MessageType::MsgReadIndex => "ReadIndex",
        MessageType::MsgReadIndexResp => "ReadIndexResp",
        MessageType::MsgTransferLeader => "Transfer",
        other => type_name(type_index(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: MessageType, from: u64, to: u64) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = from;
        m.to = to;
        m
    }

    #[test]
    fn keeps_the_newest_in_order_and_counts_by_type() {
        let tap = MessageTap::default();
        for i in 0..(TAP_CAPACITY + 10) {
            let t = if i % 2 == 0 {
                MessageType::MsgHeartbeat
            } else {
                MessageType::MsgAppend
            };
            tap.record(Direction::Out, &msg(t, 1, 2), Fate::Delivered);
        }
        tap.record(
            Direction::In,
            &msg(MessageType::MsgAppendResponse, 2, 1),
            Fate::Dropped,
        );
        let (first, last) = tap.seq_range().expect("not empty");
        assert_eq!(last, TAP_CAPACITY as u64 + 11);
        assert_eq!(last - first + 1, TAP_CAPACITY as u64);
        let newest = tap.recent(3, None);
        assert_eq!(newest.len(), 3);
        assert_eq!(newest[2].fate, Fate::Dropped);
        assert!(newest.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        let older = tap.recent(2, Some(last - 5));
        assert_eq!(
            older.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [last - 6, last - 5]
        );
        let counts = tap.counts();
        let hb = type_index(MessageType::MsgHeartbeat);
        assert_eq!(counts.sent[hb], (TAP_CAPACITY as u64 + 10) / 2);
        assert_eq!(
            counts.received[type_index(MessageType::MsgAppendResponse)],
            1
        );
        assert_eq!(type_name(hb), "MsgHeartbeat");
        assert_eq!(short_name(MessageType::MsgRequestPreVote), "PreVote");
    }
}
