//! Requests waiting inside the driver: proposals waiting to be applied and reads waiting
//! for their ReadIndex and for the state machine to catch up to it.
//!
//! Owns the bookkeeping and the rules for failing requests (deadline, lost leadership);
//! the driver decides when to call them.

use std::collections::BTreeMap;
use std::time::Instant;

use super::handle::{ReadOutcome, Reply, RequestError, WriteOutcome};
use crate::state_machine::{ApplyResult, KvStateMachine};

struct PendingWrite {
    term: u64,
    reply: Reply<WriteOutcome>,
    deadline: Instant,
}

/// Proposals by the log index they were appended at.
#[derive(Default)]
pub(crate) struct PendingWrites {
    by_index: BTreeMap<u64, PendingWrite>,
}

impl PendingWrites {
    /// Remembers a proposal appended at `index` in `term`.
    pub fn insert(&mut self, index: u64, term: u64, reply: Reply<WriteOutcome>, deadline: Instant) {
        if let Some(old) = self.by_index.insert(
            index,
            PendingWrite {
                term,
                reply,
                deadline,
            },
        ) {
            // The index was reused: the old proposal's entry was overwritten.
            let _ = old.reply.send(Err(RequestError::LeadershipLost));
        }
    }

    /// The entry at `index` with `term` was applied with `result`. A pending proposal at that
    /// index from another term lost its slot to another leader's entry.
    pub fn applied(&mut self, index: u64, term: u64, result: Option<ApplyResult>) {
        if let Some(p) = self.by_index.remove(&index) {
            let answer = match result {
                Some(r) if p.term == term && r.superseded => Err(RequestError::Superseded),
                Some(r) if p.term == term => Ok(WriteOutcome {
                    index: r.index,
                    term,
                    existed: r.existed,
                    duplicate: r.duplicate,
                }),
                _ => Err(RequestError::LeadershipLost),
            };
            let _ = p.reply.send(answer);
        }
    }

    /// UNSAFE (`--unsafe ack-on-append`): answers every proposal of `term` appended up to
    /// `last` as if it were applied, before it is committed.
    pub fn acknowledge_appended(&mut self, last: u64, term: u64) {
        let rest = self.by_index.split_off(&(last + 1));
        for (index, p) in std::mem::replace(&mut self.by_index, rest) {
            let answer = if p.term == term {
                Ok(WriteOutcome {
                    index,
                    term,
                    existed: false,
                    duplicate: false,
                })
            } else {
                Err(RequestError::LeadershipLost)
            };
            let _ = p.reply.send(answer);
        }
    }

    /// Fails every pending proposal.
    pub fn fail_all(&mut self, err: &RequestError) {
        for (_, p) in std::mem::take(&mut self.by_index) {
            let _ = p.reply.send(Err(err.clone()));
        }
    }

    /// Fails proposals whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        for (_, p) in take_expired(&mut self.by_index, now, |p| p.deadline) {
            let _ = p.reply.send(Err(RequestError::Timeout));
        }
    }
}

struct PendingRead {
    key: String,
    reply: Reply<ReadOutcome>,
    deadline: Instant,
    /// Set once Raft has confirmed leadership and returned the read index.
    read_index: Option<u64>,
}

/// Linearizable reads by request id (the ReadIndex context).
#[derive(Default)]
pub(crate) struct PendingReads {
    next_id: u64,
    by_id: BTreeMap<u64, PendingRead>,
    /// Ids not yet handed to Raft: a new leader must commit an entry of its own term
    /// before raft-rs serves ReadIndex (it silently drops earlier requests).
    unsent: Vec<u64>,
}

impl PendingReads {
    /// Remembers a read; returns its id, to be sent with [`PendingReads::take_unsent`].
    pub fn insert(&mut self, key: String, reply: Reply<ReadOutcome>, deadline: Instant) {
        self.next_id += 1;
        self.by_id.insert(
            self.next_id,
            PendingRead {
                key,
                reply,
                deadline,
                read_index: None,
            },
        );
        self.unsent.push(self.next_id);
    }

    /// The contexts of reads not yet handed to Raft.
    pub fn take_unsent(&mut self) -> Vec<Vec<u8>> {
        self.unsent
            .drain(..)
            .map(|id| id.to_be_bytes().to_vec())
            .collect()
    }

    /// Raft confirmed the read with context `ctx` at `index`.
    pub fn confirmed(&mut self, ctx: &[u8], index: u64) {
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        if let Some(r) = self.by_id.get_mut(&u64::from_be_bytes(bytes)) {
            r.read_index = Some(index);
        }
    }

    /// Answers every confirmed read whose index the state machine has reached.
    pub fn answer_ready(&mut self, sm: &KvStateMachine) {
        let applied = sm.applied();
        let done: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, r)| r.read_index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(r) = self.by_id.remove(&id) {
                let _ = r.reply.send(Ok(ReadOutcome {
                    value: sm.get(&r.key).map(<[u8]>::to_vec),
                    applied_index: applied,
                }));
            }
        }
    }

    /// Fails every pending read.
    pub fn fail_all(&mut self, err: &RequestError) {
        self.unsent.clear();
        for (_, r) in std::mem::take(&mut self.by_id) {
            let _ = r.reply.send(Err(err.clone()));
        }
    }

    /// Fails reads whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        for (id, r) in take_expired(&mut self.by_id, now, |r| r.deadline) {
            self.unsent.retain(|u| *u != id);
            let _ = r.reply.send(Err(RequestError::Timeout));
        }
    }

    /// True when some read has not been handed to Raft yet.
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }
}

/// Removes and returns the entries whose deadline is at or before `now`.
fn take_expired<T>(
    map: &mut BTreeMap<u64, T>,
    now: Instant,
    deadline: impl Fn(&T) -> Instant,
) -> Vec<(u64, T)> {
    let expired: Vec<u64> = map
        .iter()
        .filter(|(_, v)| deadline(v) <= now)
        .map(|(k, _)| *k)
        .collect();
    expired
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}
