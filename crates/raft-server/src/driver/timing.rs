//! A timed write's journey (`put --timing`): every node that handles a timed entry stamps
//! each step with its wall clock (proposed, appended and fsynced, sent to each follower,
//! received, stored and fsynced there, acknowledged, committed, applied), kept by the
//! entry's log index for the client to collect (the answer carries the leader's; admin
//! `Stamps` gives any node's).
//!
//! A timed entry is marked by its context ([`TIMED`]), so a follower knows without
//! decoding it. Nothing is stamped, and no work done beyond an emptiness check or a look
//! at an entry's context, when no write asked for it.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use raft::eraftpb::{Entry, EntryType, Message, MessageType};

/// The context of a timed entry.
pub(crate) const TIMED: &[u8] = b"timing";

/// Timed entries remembered at most (the oldest are forgotten first).
const KEEP: usize = 64;

/// Whether `e` is a timed write.
pub(super) fn is_timed(e: &Entry) -> bool {
    e.get_entry_type() == EntryType::EntryNormal && e.context.as_ref() == TIMED
}

/// The wall clock in µs since the Unix epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The stamps of the timed entries this node handled.
#[derive(Debug, Default)]
pub(super) struct Timing {
    /// By log index: each step once, in the order taken.
    by_index: BTreeMap<u64, Vec<(String, u64)>>,
}

impl Timing {
    /// True when no timed entry is being followed: the only check on the usual path.
    pub(super) fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// Starts following the timed entry at `index` (a new leader may reuse an index: its
    /// old stamps go).
    pub(super) fn open(&mut self, index: u64) {
        self.by_index.insert(index, Vec::new());
        while self.by_index.len() > KEEP {
            self.by_index.pop_first();
        }
    }

    /// Stamps `step` for `index` now, unless it is not followed or already has that step.
    pub(super) fn stamp(&mut self, index: u64, step: &str) {
        if let Some(steps) = self.by_index.get_mut(&index)
            && !steps.iter().any(|(s, _)| s == step)
        {
            steps.push((step.to_string(), now_us()));
        }
    }

    /// Stamps `step` for every followed index up to `upto` that lacks it.
    pub(super) fn stamp_upto(&mut self, upto: u64, step: &str) {
        let indexes: Vec<u64> = self.by_index.range(..=upto).map(|(i, _)| *i).collect();
        for i in indexes {
            self.stamp(i, step);
        }
    }

    /// The timed entries of `entries`, stamped `step`.
    pub(super) fn stamp_entries(&mut self, entries: &[Entry], step: &str) {
        if self.is_empty() {
            return;
        }
        for e in entries.iter().filter(|e| is_timed(e)) {
            self.stamp(e.index, step);
        }
    }

    /// A Raft message about to be stepped: a follower starts following the timed entries
    /// an append brings; a leader notes a follower's acknowledgement.
    pub(super) fn received(&mut self, m: &Message, leading: bool) {
        match m.get_msg_type() {
            MessageType::MsgAppend if !leading => {
                for e in m.entries.iter().filter(|e| is_timed(e)) {
                    self.open(e.index);
                    self.stamp(
                        e.index,
                        &format!("received the append from node {}", m.from),
                    );
                }
            }
            MessageType::MsgAppendResponse if leading && !m.reject && !self.is_empty() => {
                self.stamp_upto(
                    m.index,
                    &format!("acknowledgement from node {} received", m.from),
                );
            }
            _ => {}
        }
    }

    /// Raft messages about to be sent: a leader's appends carrying timed entries, a
    /// follower's acknowledgements of them.
    pub(super) fn sending(&mut self, msgs: &[Message]) {
        if self.is_empty() {
            return;
        }
        for m in msgs {
            match m.get_msg_type() {
                MessageType::MsgAppend => {
                    let step = format!("sent to node {}", m.to);
                    for e in m.entries.iter().filter(|e| is_timed(e)) {
                        self.stamp(e.index, &step);
                    }
                }
                MessageType::MsgAppendResponse if !m.reject => {
                    self.stamp_upto(m.index, &format!("acknowledged to node {}", m.to));
                }
                _ => {}
            }
        }
    }

    /// The stamps kept for `index`, in order (empty if none).
    pub(super) fn get(&self, index: u64) -> Vec<(String, u64)> {
        self.by_index.get(&index).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(index: u64) -> Entry {
        Entry {
            index,
            context: TIMED.to_vec().into(),
            data: b"x".to_vec().into(),
            ..Entry::default()
        }
    }

    #[test]
    fn only_timed_entries_are_followed_and_each_step_is_stamped_once() {
        let mut t = Timing::default();
        let mut plain = Message::default();
        plain.set_msg_type(MessageType::MsgAppend);
        plain.set_entries(vec![Entry::default()].into());
        t.received(&plain, false);
        assert!(t.is_empty());
        let mut m = plain.clone();
        m.from = 1;
        m.set_entries(vec![timed(5)].into());
        t.received(&m, false);
        t.stamp_entries(&[timed(5)], "stored and fsynced");
        t.stamp_entries(&[timed(5)], "stored and fsynced");
        let mut ack = Message::default();
        ack.set_msg_type(MessageType::MsgAppendResponse);
        ack.to = 1;
        ack.index = 5;
        t.sending(&[ack]);
        let steps: Vec<String> = t.get(5).into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            steps,
            [
                "received the append from node 1",
                "stored and fsynced",
                "acknowledged to node 1"
            ]
        );
        let us: Vec<u64> = t.get(5).into_iter().map(|(_, us)| us).collect();
        assert!(us.windows(2).all(|w| w[0] <= w[1]), "{us:?}");
        assert!(t.get(4).is_empty());
    }

    #[test]
    fn at_most_keep_entries_are_remembered() {
        let mut t = Timing::default();
        for i in 1..=(KEEP as u64 + 10) {
            t.open(i);
        }
        assert_eq!(t.by_index.len(), KEEP);
        assert!(!t.by_index.contains_key(&1) && t.by_index.contains_key(&(KEEP as u64 + 10)));
    }
}
