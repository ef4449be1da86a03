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
    /// Proposals waiting.
    pub fn len(&self) -> usize {
        self.by_index.len()
    }

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
    /// Set once Raft has confirmed the read index (a leader's heartbeat quorum, or the
    /// leader's answer to a follower); the first confirmation stands.
    read_index: Option<u64>,
    /// A follower's read: when it last asked the leader, and whom.
    asked: Option<(Instant, u64)>,
}

/// Linearizable reads by request id; the ReadIndex context is `(node id, request id)`, so
/// that a follower's requests, which the leader keeps beside its own and drops when one
/// with the same context is pending, never collide with another node's.
pub(crate) struct PendingReads {
    me: u64,
    next_id: u64,
    by_id: BTreeMap<u64, PendingRead>,
    /// Ids not yet handed to Raft: a new leader must commit an entry of its own term
    /// before raft-rs serves ReadIndex (it silently drops earlier requests), and a follower
    /// must know a leader to ask.
    unsent: Vec<u64>,
}

impl PendingReads {
    /// The reads of node `me`. Ids start from the wall clock in microseconds, so that a
    /// node restarted soon after does not reuse a context the leader may still hold.
    pub fn new(me: u64) -> Self {
        let next_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Self {
            me,
            next_id,
            by_id: BTreeMap::new(),
            unsent: Vec::new(),
        }
    }

    /// Reads waiting.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Remembers a read, to be sent with [`PendingReads::take_unsent`].
    pub fn insert(&mut self, key: String, reply: Reply<ReadOutcome>, deadline: Instant) {
        self.next_id = self.next_id.wrapping_add(1);
        self.by_id.insert(
            self.next_id,
            PendingRead {
                key,
                reply,
                deadline,
                read_index: None,
                asked: None,
            },
        );
        self.unsent.push(self.next_id);
    }

    /// The contexts of reads not yet handed to Raft; `asking` is the leader a follower
    /// sends them to (None on the leader itself).
    pub fn take_unsent(&mut self, asking: Option<(Instant, u64)>) -> Vec<Vec<u8>> {
        let me = self.me;
        let by_id = &mut self.by_id;
        self.unsent
            .drain(..)
            .filter_map(|id| {
                let r = by_id.get_mut(&id)?;
                r.asked = asking;
                let mut ctx = Vec::with_capacity(16);
                ctx.extend_from_slice(&me.to_be_bytes());
                ctx.extend_from_slice(&id.to_be_bytes());
                Some(ctx)
            })
            .collect()
    }

    /// Raft confirmed the read with context `ctx` at `index`.
    pub fn confirmed(&mut self, ctx: &[u8], index: u64) {
        let Some((node, id)) = ctx.split_at_checked(8) else {
            return;
        };
        let (Ok(node), Ok(id)) = (<[u8; 8]>::try_from(node), <[u8; 8]>::try_from(id)) else {
            return;
        };
        if u64::from_be_bytes(node) != self.me {
            return;
        }
        if let Some(r) = self.by_id.get_mut(&u64::from_be_bytes(id)) {
            // A follower may have asked twice (a resend); either index was confirmed after
            // the read arrived, so the first to come back is as good as any.
            r.read_index.get_or_insert(index);
        }
    }

    /// Follower reads asked before `before`, or of another node than `leader`, and not
    /// confirmed: to be asked again (the request or its answer may have been lost, the
    /// leader had not yet committed an entry of its term and dropped it, or it was
    /// replaced).
    pub fn requeue_unanswered(&mut self, before: Instant, leader: u64) {
        for (id, r) in &self.by_id {
            if r.read_index.is_none()
                && r.asked
                    .is_some_and(|(at, asked)| at < before || asked != leader)
                && !self.unsent.contains(id)
            {
                self.unsent.push(*id);
            }
        }
    }

    /// Fails the reads no read index was confirmed for (a follower that no longer knows a
    /// leader to ask); confirmed ones still wait for the state machine.
    pub fn fail_unconfirmed(&mut self, err: &RequestError) {
        self.unsent.clear();
        let ids: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, r)| r.read_index.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(r) = self.by_id.remove(&id) {
                let _ = r.reply.send(Err(err.clone()));
            }
        }
    }

    /// True when some read waits for a read index.
    pub fn has_unconfirmed(&self) -> bool {
        self.by_id.values().any(|r| r.read_index.is_none())
    }

    /// Answers every confirmed read whose index the state machine has reached.
    pub fn answer_ready(&mut self, sm: &KvStateMachine) {
        if self.by_id.is_empty() {
            return;
        }
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

    /// Fails reads whose deadline has passed: a follower's read that never got its read
    /// index says so (retryable elsewhere), the rest time out.
    pub fn expire(&mut self, now: Instant) {
        for (id, r) in take_expired(&mut self.by_id, now, |r| r.deadline) {
            self.unsent.retain(|u| *u != id);
            let err = match r.asked {
                Some((_, leader_id)) if r.read_index.is_none() => {
                    RequestError::NoReadIndex { leader_id }
                }
                _ => RequestError::Timeout,
            };
            let _ = r.reply.send(Err(err));
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::sync::oneshot;

    use super::PendingReads;
    use crate::driver::handle::RequestError;

    #[test]
    fn a_followers_read_is_asked_again_and_refused_once_no_leader_is_known() {
        let mut reads = PendingReads::new(2);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (tx, mut rx) = oneshot::channel();
        reads.insert("k".into(), tx, deadline);
        let asked = Instant::now();
        let ctx = reads.take_unsent(Some((asked, 1)));
        assert_eq!(ctx.len(), 1);
        assert_eq!(
            &ctx[0][..8],
            &2u64.to_be_bytes(),
            "the context names this node"
        );
        // Not answered in time: asked again; asked of a leader since replaced: too.
        reads.requeue_unanswered(asked, 1);
        assert!(!reads.has_unsent(), "asked just now of the leader");
        reads.requeue_unanswered(asked + Duration::from_millis(1), 1);
        assert_eq!(reads.take_unsent(Some((asked, 1))), ctx);
        reads.requeue_unanswered(asked, 3);
        assert_eq!(reads.take_unsent(Some((asked, 3))), ctx);
        // Another node's context is not ours.
        let mut other = ctx[0].clone();
        other[7] = 9;
        reads.confirmed(&other, 5);
        assert!(reads.has_unconfirmed());
        reads.fail_unconfirmed(&RequestError::NotLeader {
            leader_id: None,
            term: 4,
        });
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(RequestError::NotLeader { .. }))
        ));
    }

    #[test]
    fn an_unanswered_followers_read_ends_at_its_deadline_retryable() {
        let mut reads = PendingReads::new(2);
        let now = Instant::now();
        let (tx, mut rx) = oneshot::channel();
        reads.insert("k".into(), tx, now);
        let _ = reads.take_unsent(Some((now, 1)));
        reads.expire(now);
        assert_eq!(
            rx.try_recv().ok(),
            Some(Err(RequestError::NoReadIndex { leader_id: 1 }))
        );
        // A confirmed read keeps its index even when no leader is known any more.
        let (tx, mut rx) = oneshot::channel();
        reads.insert("k".into(), tx, now + Duration::from_secs(60));
        let ctx = reads.take_unsent(Some((now, 1)));
        reads.confirmed(&ctx[0], 7);
        reads.fail_unconfirmed(&RequestError::Busy);
        assert!(rx.try_recv().is_err(), "still waiting to be applied");
    }
}
