//! The key-value state machine: pure, synchronous, in memory.
//!
//! Owns the keys and values and the per-client session table that makes a retried write
//! apply at most once. It does no I/O; the node driver feeds it committed entries in log
//! order and it is rebuilt from the log on start.
//!
//! Sessions expire by the log's clock, which no single leader's clock can run ahead: it
//! moves by the differences between one leader's stamps within its term (at most
//! [`MAX_CLOCK_STEP_MS`] per entry), never by how far one leader's clock is from another's.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use kv_proto::kv as pb;
use prost::Message as _;

use crate::command::{Command, Op};

/// A snapshot's data is not a state machine.
#[derive(Debug, thiserror::Error)]
#[error("snapshot data is not a kv.StateMachineSnapshot: {0}")]
pub struct SnapshotError(#[from] prost::DecodeError);

/// A key with the start of its value, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPreview {
    /// The key.
    pub key: String,
    /// The first bytes of the value.
    pub head: Vec<u8>,
    /// The whole value's length in bytes.
    pub len: usize,
}

/// The result of applying one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyResult {
    /// Log index of the entry that first applied this write.
    pub index: u64,
    /// Put: a value was replaced. Delete: the key existed.
    pub existed: bool,
    /// This `(client_id, seq)` had been applied before; the result is the remembered one.
    pub duplicate: bool,
    /// The seq is older than the client's last applied one: nothing was changed, and what
    /// became of this request is no longer known (only the latest result is remembered).
    pub superseded: bool,
}

/// The last write applied for one client.
#[derive(Debug, Clone, Copy)]
struct Session {
    seq: u64,
    result: ApplyResult,
    /// The log's clock at that write.
    last_ms: u64,
}

/// A client's session is forgotten once the log's clock is this far past its last write.
/// Longer than any client's deadline (`--timeout` is at most an hour), so a retry never
/// outlives the session that makes it a duplicate.
pub const SESSION_TTL_MS: u64 = 2 * 60 * 60 * 1000;
/// The most one entry moves the log's clock. Leaders' clocks may disagree by hours and may
/// jump (an NTP step, a VM resumed), so the clock never takes a leader's time as it is:
/// it adds the time that leader measured since its previous stamp in the same term, up to
/// this much. A jump of an hour then counts as a minute, and the clock can only run behind
/// real time (sessions live longer, never shorter). A cluster that writes less than once
/// a minute also counts at most this per write, which only keeps sessions a little longer.
pub const MAX_CLOCK_STEP_MS: u64 = 60 * 1000;
/// Expired sessions are swept when a command lands on an index that is a multiple of
/// this: a property of the log, so every replica sweeps at the same entries.
const SWEEP_EVERY: u64 = 1024;

/// Sorted keys with byte values, plus the session table for at-most-once writes.
#[derive(Debug, Default)]
pub struct KvStateMachine {
    data: BTreeMap<String, Vec<u8>>,
    sessions: HashMap<u64, Session>,
    applied: u64,
    /// The log's clock: the state machine's notion of now, in milliseconds since the first
    /// write (see [`MAX_CLOCK_STEP_MS`]).
    clock_ms: u64,
    /// Term and leader timestamp of the last command applied: the clock moves by the
    /// difference to the next stamp only when both come from the same term (one leader).
    last_stamp: (u64, u64),
}

impl KvStateMachine {
    /// An empty state machine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the command of the entry at `index`, of `term`. A command whose
    /// `(client_id, seq)` is the client's last applied one changes nothing and returns the
    /// remembered result, marked `duplicate`; an older one changes nothing and is marked
    /// `superseded`.
    pub fn apply(&mut self, index: u64, term: u64, cmd: &Command) -> ApplyResult {
        self.applied = self.applied.max(index);
        self.advance_clock(term, cmd.timestamp_ms);
        if index.is_multiple_of(SWEEP_EVERY) {
            self.expire_sessions();
        }
        if let Some(session) = self.sessions.get(&cmd.client_id) {
            if cmd.seq == session.seq {
                return ApplyResult {
                    duplicate: true,
                    ..session.result
                };
            }
            if cmd.seq < session.seq {
                return ApplyResult {
                    index,
                    existed: false,
                    duplicate: false,
                    superseded: true,
                };
            }
        }
        let existed = match &cmd.op {
            Op::Put { key, value } => self.data.insert(key.clone(), value.clone()).is_some(),
            Op::Delete { key } => self.data.remove(key).is_some(),
        };
        let result = ApplyResult {
            index,
            existed,
            duplicate: false,
            superseded: false,
        };
        self.sessions.insert(
            cmd.client_id,
            Session {
                seq: cmd.seq,
                result,
                last_ms: self.clock_ms,
            },
        );
        result
    }

    /// Moves the log's clock by the time the leader of `term` measured since its previous
    /// stamp, at most [`MAX_CLOCK_STEP_MS`]. The first stamp of a term only sets the
    /// reference: a new leader's clock says nothing about the time since the old one's.
    fn advance_clock(&mut self, term: u64, stamp_ms: u64) {
        let (last_term, last_ms) = self.last_stamp;
        if term == last_term {
            let step = stamp_ms.saturating_sub(last_ms).min(MAX_CLOCK_STEP_MS);
            self.clock_ms = self.clock_ms.saturating_add(step);
        }
        // Also when the leader's clock went back: later steps count from where it is now.
        self.last_stamp = (term, stamp_ms);
    }

    /// Forgets clients whose last write is more than [`SESSION_TTL_MS`] behind the clock.
    fn expire_sessions(&mut self) {
        let clock = self.clock_ms;
        self.sessions
            .retain(|_, s| s.last_ms.saturating_add(SESSION_TTL_MS) >= clock);
    }

    /// Number of clients remembered for at-most-once writes.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Records that the entry at `index` (an empty or conf-change entry) was applied.
    pub fn apply_noop(&mut self, index: u64) {
        self.applied = self.applied.max(index);
    }

    /// Index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(Vec::as_slice)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The whole state (keys, values, sessions, applied index) as snapshot data.
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_message().encode_to_vec()
    }

    /// The whole state as the snapshot message (the driver adds the member book).
    pub fn snapshot_message(&self) -> pb::StateMachineSnapshot {
        pb::StateMachineSnapshot {
            applied_index: self.applied,
            pairs: self
                .data
                .iter()
                .map(|(k, v)| pb::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|(id, s)| pb::ClientSession {
                    client_id: *id,
                    seq: s.seq,
                    index: s.result.index,
                    existed: s.result.existed,
                    last_ms: s.last_ms,
                })
                .collect(),
            clock_ms: self.clock_ms,
            clock_term: self.last_stamp.0,
            clock_stamp_ms: self.last_stamp.1,
            members: None,
        }
    }

    /// Replaces the whole state with a snapshot's.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.restore_message(pb::StateMachineSnapshot::decode(data)?);
        Ok(())
    }

    /// Replaces the whole state with a decoded snapshot's (its member book is not ours).
    pub fn restore_message(&mut self, snap: pb::StateMachineSnapshot) {
        self.data = snap.pairs.into_iter().map(|p| (p.key, p.value)).collect();
        self.sessions = snap
            .sessions
            .into_iter()
            .map(|s| {
                let result = ApplyResult {
                    index: s.index,
                    existed: s.existed,
                    duplicate: false,
                    superseded: false,
                };
                let session = Session {
                    seq: s.seq,
                    result,
                    last_ms: s.last_ms,
                };
                (s.client_id, session)
            })
            .collect();
        self.applied = snap.applied_index;
        self.clock_ms = snap.clock_ms;
        self.last_stamp = (snap.clock_term, snap.clock_stamp_ms);
    }

    /// Up to `limit` pairs starting at the first key `>= from` (or the first key), each
    /// value cut to its first `value_bytes` bytes. Costs `O(log n + limit * value_bytes)`,
    /// so a view can page through a large store of large values cheaply.
    pub fn range_from(
        &self,
        from: Option<&str>,
        limit: usize,
        value_bytes: usize,
    ) -> Vec<KvPreview> {
        let start = from.map_or(Bound::Unbounded, Bound::Included);
        self.data
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| KvPreview {
                key: k.clone(),
                head: v[..v.len().min(value_bytes)].to_vec(),
                len: v.len(),
            })
            .collect()
    }

    /// Up to `limit` keys strictly before `before` (or the last keys), in ascending order.
    pub fn keys_before(&self, before: Option<&str>, limit: usize) -> Vec<String> {
        let end = before.map_or(Bound::Unbounded, Bound::Excluded);
        let mut keys: Vec<String> = self
            .data
            .range::<str, _>((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect();
        keys.reverse();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(client_id: u64, seq: u64, key: &str, value: &str) -> Command {
        Command {
            client_id,
            seq,
            timestamp_ms: 0,
            op: Op::Put {
                key: key.into(),
                value: value.as_bytes().to_vec(),
            },
        }
    }

    fn del(client_id: u64, seq: u64, key: &str) -> Command {
        Command {
            client_id,
            seq,
            timestamp_ms: 0,
            op: Op::Delete { key: key.into() },
        }
    }

    #[test]
    fn applies_puts_and_deletes() {
        let mut sm = KvStateMachine::new();
        let r = sm.apply(1, 1, &put(1, 1, "a", "x"));
        assert!(!r.existed && !r.duplicate);
        assert!(sm.apply(2, 1, &put(1, 2, "a", "y")).existed);
        assert_eq!(sm.get("a"), Some(&b"y"[..]));
        assert!(sm.apply(3, 1, &del(1, 3, "a")).existed);
        assert!(!sm.apply(4, 1, &del(1, 4, "a")).existed);
        assert_eq!(sm.get("a"), None);
        assert_eq!(sm.applied(), 4);
        assert!(sm.is_empty());
    }

    #[test]
    fn duplicate_request_applies_once() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, 1, &put(9, 1, "k", "first"));
        sm.apply(2, 1, &put(8, 1, "k", "other client"));
        // A retry of client 9's first write, committed again later in the log.
        let again = sm.apply(3, 1, &put(9, 1, "k", "first"));
        assert!(again.duplicate);
        assert_eq!(again.index, 1, "remembers where it was first applied");
        assert_eq!(sm.get("k"), Some(&b"other client"[..]));
        // An older seq is not applied either, and is not reported as a success.
        sm.apply(4, 1, &put(9, 2, "k", "second"));
        let old = sm.apply(5, 1, &del(9, 1, "k"));
        assert!(old.superseded && !old.duplicate);
        assert_eq!(sm.get("k"), Some(&b"second"[..]));
        assert_eq!(sm.applied(), 5);
    }

    #[test]
    fn snapshot_restores_keys_sessions_and_applied() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, 1, &put(1, 1, "a", "x"));
        sm.apply(2, 1, &put(2, 1, "b", "\u{0}bytes"));
        sm.apply(3, 1, &del(1, 2, "a"));
        let data = sm.snapshot();

        let mut restored = KvStateMachine::new();
        restored.apply(1, 1, &put(9, 1, "stale", "gone after restore"));
        restored.restore(&data).expect("restore");
        assert_eq!(restored.applied(), 3);
        assert_eq!(restored.get("a"), None);
        assert_eq!(restored.get("b"), Some("\u{0}bytes".as_bytes()));
        assert_eq!(restored.get("stale"), None);
        // Sessions came along: a retry of client 1's last write is still a duplicate.
        let again = restored.apply(4, 1, &del(1, 2, "a"));
        assert!(again.duplicate && again.existed && again.index == 3);
        assert!(restored.restore(&[0xff, 0xff, 0xff]).is_err());
    }

    fn at(ms: u64, cmd: Command) -> Command {
        Command {
            timestamp_ms: ms,
            ..cmd
        }
    }

    /// Writes of a filler client (id 99) in `term`, a minute apart by the leader's clock,
    /// at the indexes after `*index`, until the log's clock has moved by `minutes`.
    fn minutes_pass(
        sm: &mut KvStateMachine,
        term: u64,
        index: &mut u64,
        stamp: &mut u64,
        minutes: u64,
    ) {
        for _ in 0..minutes {
            *index += 1;
            *stamp += MAX_CLOCK_STEP_MS;
            sm.apply(*index, term, &at(*stamp, put(99, *index, "filler", "")));
        }
    }

    #[test]
    fn sessions_expire_by_the_time_leaders_measure() {
        let t0 = 1_795_000_000_000;
        let mut sm = KvStateMachine::new();
        // The first stamp only sets the reference: clock 0, then 1 s.
        sm.apply(1, 1, &at(t0, put(1, 1, "a", "1")));
        sm.apply(2, 1, &at(t0 + 1000, put(2, 1, "b", "1")));
        let (mut index, mut stamp) = (2, t0 + 1000);
        minutes_pass(&mut sm, 1, &mut index, &mut stamp, 119);
        // The clock is now at TTL: within the TTL a retry is still a duplicate, even at a
        // sweep index.
        let at_ttl = stamp + MAX_CLOCK_STEP_MS - 1000;
        assert!(
            sm.apply(SWEEP_EVERY, 1, &at(at_ttl, put(1, 1, "a", "1")))
                .duplicate
        );
        assert_eq!(sm.session_count(), 3);
        // Past the TTL of client 1's last write (but not client 2's), the next sweep
        // forgets client 1 only. Sweeps happen at indexes, so every replica agrees.
        let past = at_ttl + 500;
        sm.apply(SWEEP_EVERY + 1, 1, &at(past, put(3, 1, "c", "1")));
        assert_eq!(sm.session_count(), 4, "no sweep between sweep indexes");
        sm.apply(2 * SWEEP_EVERY, 1, &at(past, put(3, 2, "c", "2")));
        assert_eq!(
            sm.session_count(),
            3,
            "client 1 expired, clients 2, 3 and the filler kept"
        );
        assert!(
            sm.apply(2 * SWEEP_EVERY + 1, 1, &at(past, put(2, 1, "b", "1")))
                .duplicate
        );

        // The clock, where it goes on from, and the sessions' times survive a snapshot.
        let mut restored = KvStateMachine::new();
        restored.restore(&sm.snapshot()).expect("restore");
        let snap = pb::StateMachineSnapshot::decode(&restored.snapshot()[..]).expect("decode");
        let clock = SESSION_TTL_MS + 500;
        assert_eq!(
            (snap.clock_ms, snap.clock_term, snap.clock_stamp_ms),
            (clock, 1, past)
        );
        let (mut index, mut stamp) = (2 * SWEEP_EVERY + 1, past);
        minutes_pass(&mut restored, 1, &mut index, &mut stamp, 2 * 60 + 1);
        restored.apply(3 * SWEEP_EVERY, 1, &at(stamp, put(4, 1, "d", "1")));
        assert_eq!(
            restored.session_count(),
            2,
            "only the filler and the newest client are left"
        );
    }

    #[test]
    fn a_leader_clock_hours_ahead_does_not_expire_sessions_in_use() {
        let t0 = 1_795_000_000_000;
        let hour = 60 * 60 * 1000;
        let mut sm = KvStateMachine::new();
        sm.apply(1, 1, &at(t0, put(1, 1, "a", "first")));
        sm.apply(2, 1, &at(t0 + 1000, put(2, 1, "b", "1")));
        // The next leader's clock is five hours ahead; it writes up to and past a sweep.
        let ahead = t0 + 5 * hour;
        for index in 3..=SWEEP_EVERY {
            sm.apply(index, 2, &at(ahead + index, put(2, index, "b", "x")));
        }
        // Client 1 retries its write (its answer was lost): still recognised, not reapplied.
        sm.apply(SWEEP_EVERY + 1, 2, &at(ahead, put(3, 1, "a", "other")));
        let retry = sm.apply(SWEEP_EVERY + 2, 2, &at(ahead, put(1, 1, "a", "first")));
        assert!(retry.duplicate && retry.index == 1, "{retry:?}");
        assert_eq!(
            sm.get("a"),
            Some(&b"other"[..]),
            "the retry was applied twice"
        );

        // The same leader's clock jumps another five hours ahead mid-term: it counts as a
        // minute at most.
        let jumped = ahead + 5 * hour;
        for index in SWEEP_EVERY + 3..=2 * SWEEP_EVERY {
            sm.apply(index, 2, &at(jumped + index, put(2, index, "b", "x")));
        }
        let retry = sm.apply(2 * SWEEP_EVERY + 1, 2, &at(jumped, put(1, 1, "a", "first")));
        assert!(retry.duplicate, "{retry:?}");
        assert_eq!(
            sm.get("a"),
            Some(&b"other"[..]),
            "the retry was applied twice"
        );
    }

    #[test]
    fn pages_through_keys() {
        let mut sm = KvStateMachine::new();
        for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            sm.apply(i as u64 + 1, 1, &put(1, i as u64 + 1, k, k));
        }
        let page: Vec<String> = sm
            .range_from(Some("b"), 2, 64)
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(page, ["b", "c"]);
        assert_eq!(sm.keys_before(Some("d"), 2), ["b", "c"]);
        assert_eq!(sm.keys_before(None, 2), ["d", "e"]);
        assert_eq!(sm.range_from(None, 1, 64)[0].key, "a");
        // Values are cut to the bytes asked for; the length is the whole value's.
        sm.apply(9, 1, &put(2, 1, "big", &"x".repeat(1000)));
        let preview = &sm.range_from(Some("big"), 1, 10)[0];
        assert_eq!((preview.head.len(), preview.len), (10, 1000));
    }
}
