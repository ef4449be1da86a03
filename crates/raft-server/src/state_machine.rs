//! The key-value state machine: pure, synchronous, in memory.
//!
//! Owns the keys and values and the per-client session table that makes a retried write
//! apply at most once. It does no I/O; the node driver feeds it committed entries in log
//! order and it is rebuilt from the log on start.

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
    /// Timestamp of that write.
    last_ms: u64,
}

/// A client's session is forgotten once the log's clock is this far past its last write.
/// Longer than any client's deadline (`--timeout` is at most an hour), so a retry never
/// outlives the session that makes it a duplicate.
pub const SESSION_TTL_MS: u64 = 2 * 60 * 60 * 1000;
/// Expired sessions are swept when a command lands on an index that is a multiple of
/// this: a property of the log, so every replica sweeps at the same entries.
const SWEEP_EVERY: u64 = 1024;

/// Sorted keys with byte values, plus the session table for at-most-once writes.
#[derive(Debug, Default)]
pub struct KvStateMachine {
    data: BTreeMap<String, Vec<u8>>,
    sessions: HashMap<u64, Session>,
    applied: u64,
    /// The latest command timestamp applied: the state machine's notion of now.
    clock_ms: u64,
}

impl KvStateMachine {
    /// An empty state machine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the command of the entry at `index`. A command whose `(client_id, seq)` is
    /// the client's last applied one changes nothing and returns the remembered result,
    /// marked `duplicate`; an older one changes nothing and is marked `superseded`.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> ApplyResult {
        self.applied = self.applied.max(index);
        self.clock_ms = self.clock_ms.max(cmd.timestamp_ms);
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
        }
        .encode_to_vec()
    }

    /// Replaces the whole state with a snapshot's.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        let snap = pb::StateMachineSnapshot::decode(data)?;
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
        Ok(())
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
        let r = sm.apply(1, &put(1, 1, "a", "x"));
        assert!(!r.existed && !r.duplicate);
        assert!(sm.apply(2, &put(1, 2, "a", "y")).existed);
        assert_eq!(sm.get("a"), Some(&b"y"[..]));
        assert!(sm.apply(3, &del(1, 3, "a")).existed);
        assert!(!sm.apply(4, &del(1, 4, "a")).existed);
        assert_eq!(sm.get("a"), None);
        assert_eq!(sm.applied(), 4);
        assert!(sm.is_empty());
    }

    #[test]
    fn duplicate_request_applies_once() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, &put(9, 1, "k", "first"));
        sm.apply(2, &put(8, 1, "k", "other client"));
        // A retry of client 9's first write, committed again later in the log.
        let again = sm.apply(3, &put(9, 1, "k", "first"));
        assert!(again.duplicate);
        assert_eq!(again.index, 1, "remembers where it was first applied");
        assert_eq!(sm.get("k"), Some(&b"other client"[..]));
        // An older seq is not applied either, and is not reported as a success.
        sm.apply(4, &put(9, 2, "k", "second"));
        let old = sm.apply(5, &del(9, 1, "k"));
        assert!(old.superseded && !old.duplicate);
        assert_eq!(sm.get("k"), Some(&b"second"[..]));
        assert_eq!(sm.applied(), 5);
    }

    #[test]
    fn snapshot_restores_keys_sessions_and_applied() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, &put(1, 1, "a", "x"));
        sm.apply(2, &put(2, 1, "b", "\u{0}bytes"));
        sm.apply(3, &del(1, 2, "a"));
        let data = sm.snapshot();

        let mut restored = KvStateMachine::new();
        restored.apply(1, &put(9, 1, "stale", "gone after restore"));
        restored.restore(&data).expect("restore");
        assert_eq!(restored.applied(), 3);
        assert_eq!(restored.get("a"), None);
        assert_eq!(restored.get("b"), Some("\u{0}bytes".as_bytes()));
        assert_eq!(restored.get("stale"), None);
        // Sessions came along: a retry of client 1's last write is still a duplicate.
        let again = restored.apply(4, &del(1, 2, "a"));
        assert!(again.duplicate && again.existed && again.index == 3);
        assert!(restored.restore(&[0xff, 0xff, 0xff]).is_err());
    }

    fn at(ms: u64, cmd: Command) -> Command {
        Command {
            timestamp_ms: ms,
            ..cmd
        }
    }

    #[test]
    fn sessions_expire_by_the_log_clock() {
        let t0 = 1_795_000_000_000;
        let mut sm = KvStateMachine::new();
        sm.apply(1, &at(t0, put(1, 1, "a", "1")));
        sm.apply(2, &at(t0 + 1000, put(2, 1, "b", "1")));
        // Within the TTL a retry is still a duplicate, even at a sweep index.
        let later = t0 + SESSION_TTL_MS;
        assert!(
            sm.apply(SWEEP_EVERY, &at(later, put(1, 1, "a", "1")))
                .duplicate
        );
        assert_eq!(sm.session_count(), 2);
        // Past the TTL of client 1's last write (but not client 2's), the next sweep
        // forgets client 1 only. Sweeps happen at indexes, so every replica agrees.
        let past = t0 + SESSION_TTL_MS + 500;
        sm.apply(SWEEP_EVERY + 1, &at(past, put(3, 1, "c", "1")));
        assert_eq!(sm.session_count(), 3, "no sweep between sweep indexes");
        sm.apply(2 * SWEEP_EVERY, &at(past, put(3, 2, "c", "2")));
        assert_eq!(
            sm.session_count(),
            2,
            "client 1 expired, clients 2 and 3 kept"
        );
        assert!(
            sm.apply(2 * SWEEP_EVERY + 1, &at(past, put(2, 1, "b", "1")))
                .duplicate
        );

        // The clock and the sessions' times survive a snapshot.
        let mut restored = KvStateMachine::new();
        restored.restore(&sm.snapshot()).expect("restore");
        let far = past + SESSION_TTL_MS + 1;
        restored.apply(3 * SWEEP_EVERY, &at(far, put(4, 1, "d", "1")));
        assert_eq!(
            restored.session_count(),
            1,
            "only the newest client is left"
        );
    }

    #[test]
    fn pages_through_keys() {
        let mut sm = KvStateMachine::new();
        for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            sm.apply(i as u64 + 1, &put(1, i as u64 + 1, k, k));
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
        sm.apply(9, &put(2, 1, "big", &"x".repeat(1000)));
        let preview = &sm.range_from(Some("big"), 1, 10)[0];
        assert_eq!((preview.head.len(), preview.len), (10, 1000));
    }
}
