//! Writes on their way into the log: checked, stamped with the leader's clock, gathered
//! while the driver drains its queue, and proposed together as one `MsgPropose` at the end
//! of the loop, so a loop's writes reach each follower as one append (see `raft_config`
//! for why raft-rs's own `batch_append` is off).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use raft::eraftpb::{Entry, Message, MessageType};

use super::NodeDriver;
use super::handle::{self, RequestError, WriteOutcome};
use super::raft_config::MAX_APPEND_BYTES;
use crate::command::Command;

/// A write taken in this loop, proposed with the others when the loop ends.
pub(super) struct Proposal {
    data: Vec<u8>,
    reply: handle::Reply<WriteOutcome>,
    deadline: Instant,
    /// Stamp its journey (`put --timing`).
    timed: bool,
}

/// The writes of one loop.
#[derive(Default)]
pub(super) struct Proposals {
    waiting: Vec<Proposal>,
    bytes: u64,
}

impl Proposals {
    /// True when nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// The leader's clock as it stamps commands (sessions expire by the stamps, see
/// `state_machine`): the wall clock at the start of its term, moved on by monotonic time.
/// A wall clock that steps back and forth (NTP, a VM resumed) would otherwise make the
/// stamps jump, and every forward jump would count.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LeaderClock {
    /// The term, when it started (monotonic), and the wall clock then (ms since the epoch).
    base: Option<(u64, Instant, u64)>,
}

impl LeaderClock {
    /// The stamp for a command proposed now in `term`; `wall_ms` is the wall clock now,
    /// read only at the first stamp of a term.
    pub(super) fn stamp(&mut self, term: u64, now: Instant, wall_ms: impl FnOnce() -> u64) -> u64 {
        let (_, started, base_ms) = match self.base {
            Some(b) if b.0 == term => b,
            _ => *self.base.insert((term, now, wall_ms())),
        };
        let elapsed = now.saturating_duration_since(started).as_millis();
        base_ms.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// The wall clock in ms since the Unix epoch (0 if it is before it).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl NodeDriver {
    /// Takes a write: refused now if this node cannot take it, else kept for the loop's
    /// proposal (proposed at once when the loop's writes fill an append).
    pub(super) fn propose(
        &mut self,
        mut cmd: Command,
        reply: handle::Reply<WriteOutcome>,
        deadline: Instant,
        timed: bool,
    ) {
        if reply.is_closed() || deadline <= Instant::now() {
            // Waited out its deadline in the queue (e.g. while frozen): the client has been
            // told the outcome is unknown; proposing it now would only surprise it.
            let _ = reply.send(Err(RequestError::Timeout));
            return;
        }
        if let Err(e) = self.require_leader() {
            let _ = reply.send(Err(e));
            return;
        }
        // The leader's clock goes into the log, so every replica expires sessions alike.
        cmd.timestamp_ms = self
            .leader_clock
            .stamp(self.raw.raft.term, Instant::now(), wall_ms);
        let data = cmd.encode();
        self.proposals.bytes += data.len() as u64;
        self.proposals.waiting.push(Proposal {
            data,
            reply,
            deadline,
            timed,
        });
        if self.proposals.bytes >= MAX_APPEND_BYTES {
            self.flush_proposals();
        }
    }

    /// Proposes the loop's writes as one `MsgPropose`: one entry each, one append per
    /// follower. raft-rs takes all or none of them.
    pub(super) fn flush_proposals(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.proposals).waiting;
        // A message stepped since they were taken may have ended this leadership.
        if let Err(e) = self.require_leader() {
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
            return;
        }
        let mut replies = Vec::with_capacity(batch.len());
        let entries: Vec<Entry> = batch
            .into_iter()
            .map(|p| {
                replies.push((p.reply, p.deadline, p.timed));
                Entry {
                    data: p.data.into(),
                    // A timed write says so in its context, for the followers.
                    context: if p.timed {
                        super::timing::TIMED.to_vec().into()
                    } else {
                        Default::default()
                    },
                    ..Entry::default()
                }
            })
            .collect();
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.raw.raft.id;
        m.set_entries(entries.into());
        let before = self.raw.raft.raft_log.last_index();
        let stepped = self.raw.raft.step(m);
        let last = self.raw.raft.raft_log.last_index();
        let taken = stepped.is_ok() && last == before + replies.len() as u64;
        if let Err(e) = &stepped {
            tracing::debug!("proposal dropped: {e}");
        }
        let term = self.raw.raft.term;
        for (index, (reply, deadline, timed)) in (before + 1..).zip(replies) {
            if taken {
                if timed {
                    self.timing.open(index);
                    self.timing.stamp(index, "proposed");
                }
                self.writes.insert(index, term, reply, deadline);
            } else {
                let _ = reply.send(Err(RequestError::Busy));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_leader_clock_follows_monotonic_time_whatever_the_wall_clock_does() {
        let mut clock = LeaderClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.stamp(3, t0, || 9_000_000), 9_000_000);
        // The wall clock oscillates by an hour; the stamps move as real time does.
        let mut walls = [9_000_000 + 3_600_000, 9_000_000 - 3_600_000]
            .into_iter()
            .cycle();
        let mut last = 0;
        for s in 1..=10u64 {
            let stamp = clock.stamp(3, t0 + Duration::from_secs(s), || {
                walls.next().unwrap_or_default()
            });
            assert_eq!(stamp, 9_000_000 + s * 1000);
            assert!(stamp > last);
            last = stamp;
        }
        // A new term starts from the wall clock again.
        let later = t0 + Duration::from_secs(20);
        assert_eq!(clock.stamp(4, later, || 5_000_000), 5_000_000);
        assert_eq!(
            clock.stamp(4, later + Duration::from_millis(250), || 0),
            5_000_250
        );
    }
}
