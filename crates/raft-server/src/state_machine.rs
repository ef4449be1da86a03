//! The key-value state machine: pure, synchronous, in memory.
//!
//! Owns the keys and values and the per-client session table that makes a retried write
//! apply at most once. It does no I/O; the node driver feeds it committed entries in log
//! order and it is rebuilt from the log on start.
//!
//! Keys and values live in a persistent B-tree ([`imbl::OrdMap`]) of shared strings and
//! byte slices: cloning the whole state machine is O(1) in the keys (it shares the tree;
//! the first write to a shared node copies that node, whose entries are reference counts),
//! so the driver captures the state at a snapshot's index in a moment and a snapshot
//! thread encodes the capture while the driver applies on. The session table is a plain map
//! that is copied (it holds one small entry per client seen within [`SESSION_TTL_MS`]).
//!
//! The snapshot format is `kv.StateMachineSnapshot` (protobuf), written and read a pair at a
//! time ([`KvStateMachine::write_snapshot`], [`KvStateMachine::from_snapshot`]) so a large
//! state machine never exists a second time as a protobuf message in memory.
//!
//! Sessions expire by the log's clock, which no single leader's clock can run ahead: it
//! moves by the differences between one leader's stamps within its term (at most
//! [`MAX_CLOCK_STEP_MS`] per entry), never by how far one leader's clock is from another's.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use kv_proto::kv as pb;
use prost::Message as _;

use crate::command::{Command, Op};

/// A snapshot's data is not a state machine.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A part of it is not valid protobuf for `kv.StateMachineSnapshot`.
    #[error("snapshot data is not a kv.StateMachineSnapshot: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Its wire format is broken (cut short, a bad length, a key that is not UTF-8).
    #[error("snapshot data is not a kv.StateMachineSnapshot: {0}")]
    Malformed(&'static str),
}

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

/// Sorted keys with byte values, plus the session table for at-most-once writes. Cloning
/// is cheap (see the module doc): a clone is a capture of the state as it is now.
#[derive(Debug, Default, Clone)]
pub struct KvStateMachine {
    data: OrdMap<Arc<str>, Arc<[u8]>>,
    /// Bytes of keys and values held (what `data_bytes` reports).
    data_bytes: u64,
    sessions: HashMap<u64, Session>,
    applied: u64,
    /// The log's clock: the state machine's notion of now, in milliseconds since the first
    /// write (see [`MAX_CLOCK_STEP_MS`]).
    clock_ms: u64,
    /// Term and leader timestamp of the last command applied: the clock moves by the
    /// difference to the next stamp only when both come from the same term (one leader).
    last_stamp: (u64, u64),
    /// The latest indexes whose command changed nothing (a recognised duplicate or an
    /// older request of its client), oldest first, at most [`NO_EFFECT_KEPT`]: what the
    /// dashboard marks `dup`. Not part of a snapshot (only the log's own entries matter).
    no_effect: std::collections::VecDeque<u64>,
}

/// How many no-effect indexes are remembered for the dashboard.
const NO_EFFECT_KEPT: usize = 256;

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
            let result = if cmd.seq == session.seq {
                Some(ApplyResult {
                    duplicate: true,
                    ..session.result
                })
            } else {
                (cmd.seq < session.seq).then_some(ApplyResult {
                    index,
                    existed: false,
                    duplicate: false,
                    superseded: true,
                })
            };
            if let Some(result) = result {
                if self.no_effect.len() == NO_EFFECT_KEPT {
                    self.no_effect.pop_front();
                }
                self.no_effect.push_back(index);
                return result;
            }
        }
        let existed = match &cmd.op {
            Op::Put { key, value } => {
                self.data_bytes += (key.len() + value.len()) as u64;
                let old = self
                    .data
                    .insert(Arc::from(key.as_str()), Arc::from(value.as_slice()));
                if let Some(old) = &old {
                    self.data_bytes -= (key.len() + old.len()) as u64;
                }
                old.is_some()
            }
            Op::Delete { key } => {
                let old = self.data.remove(key.as_str());
                if let Some(old) = &old {
                    self.data_bytes -= (key.len() + old.len()) as u64;
                }
                old.is_some()
            }
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

    /// True when the command at `index` was applied as a recognised duplicate or an older
    /// request, changing nothing (among the latest such entries).
    pub fn changed_nothing(&self, index: u64) -> bool {
        self.no_effect.contains(&index)
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
        self.data.get(key).map(|v| &v[..])
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes of keys and values held: the data, without what holding it costs.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// The whole state (keys, values, sessions, applied index) as snapshot data.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_snapshot(None, &mut out);
        out
    }

    /// Writes the whole state as a `kv.StateMachineSnapshot`, with `members` as its member
    /// book (the driver's), to `out`: the fields other than the pairs first, then the pairs
    /// one at a time, so memory stays flat however many keys there are. Protobuf allows
    /// fields in any order; repeated ones keep theirs.
    pub fn write_snapshot(
        &self,
        members: Option<pb::MemberBook>,
        out: &mut (impl Write + ?Sized),
    ) -> std::io::Result<()> {
        let head = pb::StateMachineSnapshot {
            applied_index: self.applied,
            pairs: Vec::new(),
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
            members,
        };
        out.write_all(&head.encode_to_vec())?;
        let mut buf = Vec::with_capacity(64 * 1024);
        for (key, value) in &self.data {
            wire::put_pair(&mut buf, key.as_bytes(), value);
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    }

    /// Replaces the whole state with a snapshot's.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        *self = Self::from_snapshot(data)?.0;
        Ok(())
    }

    /// The state machine of a snapshot's data, and the snapshot's member book (not part of
    /// the key-value state: the driver's). Reads the pairs one at a time into the map.
    pub fn from_snapshot(data: &[u8]) -> Result<(Self, Option<pb::MemberBook>), SnapshotError> {
        let mut sm = Self::default();
        // Every field but the pairs, re-assembled and decoded at the end (they are small).
        let mut rest = Vec::new();
        let mut buf = data;
        while !buf.is_empty() {
            let field_start = buf;
            let (tag, wire_type) = wire::key(&mut buf)?;
            if tag == 2 && wire_type == wire::LEN {
                let pair = wire::take_len(&mut buf)?;
                let (key, value) = wire::pair(pair)?;
                sm.data_bytes += (key.len() + value.len()) as u64;
                if let Some(old) = sm.data.insert(Arc::from(key), Arc::from(value)) {
                    // A key twice: the later one wins, as in protobuf's map semantics.
                    sm.data_bytes -= (key.len() + old.len()) as u64;
                }
            } else {
                wire::skip(wire_type, &mut buf)?;
                rest.extend_from_slice(&field_start[..field_start.len() - buf.len()]);
            }
        }
        let head = pb::StateMachineSnapshot::decode(rest.as_slice())?;
        sm.sessions = head
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
        sm.applied = head.applied_index;
        sm.clock_ms = head.clock_ms;
        sm.last_stamp = (head.clock_term, head.clock_stamp_ms);
        Ok((sm, head.members))
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
            .range::<_, str>((start, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| KvPreview {
                key: k.to_string(),
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
            .range::<_, str>((Bound::Unbounded, end))
            .rev()
            .take(limit)
            .map(|(k, _)| k.to_string())
            .collect();
        keys.reverse();
        keys
    }
}

/// The few pieces of the protobuf wire format the pair-at-a-time codec needs (prost's own
/// helpers are internal to its derive).
mod wire {
    use super::SnapshotError;

    /// Wire type of a length-delimited field.
    pub const LEN: u8 = 2;

    fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    fn varint_len(v: u64) -> usize {
        // 7 bits per byte; 0 takes one byte.
        (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
    }

    fn bytes_field(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        buf.push(tag << 3 | LEN);
        varint(buf, bytes.len() as u64);
        buf.extend_from_slice(bytes);
    }

    /// Appends a `pairs` entry (field 2, a `kv.KeyValue` of `key` = 1, `value` = 2).
    pub fn put_pair(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        let field_len = |n: usize| 1 + varint_len(n as u64) + n;
        let inner = field_len(key.len()) + field_len(value.len());
        buf.push(2 << 3 | LEN);
        varint(buf, inner as u64);
        bytes_field(buf, 1, key);
        bytes_field(buf, 2, value);
    }

    fn read_varint(buf: &mut &[u8]) -> Result<u64, SnapshotError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf
                .split_first()
                .ok_or(SnapshotError::Malformed("cut short inside a number"))?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(SnapshotError::Malformed("a number longer than 10 bytes"))
    }

    /// A field's tag and wire type.
    pub fn key(buf: &mut &[u8]) -> Result<(u64, u8), SnapshotError> {
        let k = read_varint(buf)?;
        Ok((k >> 3, (k & 7) as u8))
    }

    /// The bytes of a length-delimited field whose key was read.
    pub fn take_len<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], SnapshotError> {
        let len = usize::try_from(read_varint(buf)?)
            .map_err(|_| SnapshotError::Malformed("a length beyond memory"))?;
        if len > buf.len() {
            return Err(SnapshotError::Malformed("a field runs past the end"));
        }
        let (field, rest) = buf.split_at(len);
        *buf = rest;
        Ok(field)
    }

    /// Skips the value of a field of `wire_type` whose key was read.
    pub fn skip(wire_type: u8, buf: &mut &[u8]) -> Result<(), SnapshotError> {
        let n = match wire_type {
            0 => return read_varint(buf).map(drop),
            1 => 8,
            LEN => return take_len(buf).map(drop),
            5 => 4,
            _ => return Err(SnapshotError::Malformed("an unknown wire type")),
        };
        if n > buf.len() {
            return Err(SnapshotError::Malformed("a field runs past the end"));
        }
        *buf = &buf[n..];
        Ok(())
    }

    /// The key and value of an encoded `kv.KeyValue`.
    pub fn pair(mut buf: &[u8]) -> Result<(&str, &[u8]), SnapshotError> {
        let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
        while !buf.is_empty() {
            match key_and_len(&mut buf)? {
                (1, Some(bytes)) => key = bytes,
                (2, Some(bytes)) => value = bytes,
                _ => {}
            }
        }
        let key = std::str::from_utf8(key)
            .map_err(|_| SnapshotError::Malformed("a key that is not UTF-8"))?;
        Ok((key, value))
    }

    /// A field's tag and, for a length-delimited one, its bytes (others are skipped).
    fn key_and_len<'a>(buf: &mut &'a [u8]) -> Result<(u64, Option<&'a [u8]>), SnapshotError> {
        let (tag, wire_type) = key(buf)?;
        if wire_type == LEN {
            Ok((tag, Some(take_len(buf)?)))
        } else {
            skip(wire_type, buf)?;
            Ok((tag, None))
        }
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
        // Entry 3 changed nothing (the dashboard marks it); entry 1 did the write.
        assert!(sm.changed_nothing(3) && !sm.changed_nothing(1));
        assert_eq!(again.index, 1, "remembers where it was first applied");
        assert_eq!(sm.get("k"), Some(&b"other client"[..]));
        // An older seq is not applied either, and is not reported as a success.
        sm.apply(4, 1, &put(9, 2, "k", "second"));
        let old = sm.apply(5, 1, &del(9, 1, "k"));
        assert!(old.superseded && !old.duplicate);
        assert!(sm.changed_nothing(5) && !sm.changed_nothing(4));
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

    #[test]
    fn the_pair_at_a_time_codec_speaks_protobuf() {
        let mut sm = KvStateMachine::new();
        sm.apply(1, 1, &put(1, 1, "a", "x"));
        sm.apply(2, 1, &put(2, 1, "long", &"v".repeat(300)));
        sm.apply(3, 1, &put(2, 2, "empty", ""));
        let book = pb::MemberBook {
            members: vec![pb::MemberAddr {
                id: 1,
                peer_addr: "127.0.0.1:6001".into(),
                incarnation: 0x1234,
                added_at: 0,
            }],
            removed: Vec::new(),
        };
        let mut ours = Vec::new();
        sm.write_snapshot(Some(book.clone()), &mut ours)
            .expect("write");
        // What we write, prost reads...
        let decoded = pb::StateMachineSnapshot::decode(ours.as_slice()).expect("prost reads it");
        let pairs: Vec<(String, usize)> = decoded
            .pairs
            .iter()
            .map(|p| (p.key.clone(), p.value.len()))
            .collect();
        assert_eq!(
            pairs,
            [("a".into(), 1), ("empty".into(), 0), ("long".into(), 300)]
        );
        assert_eq!(decoded.members.as_ref(), Some(&book));
        assert_eq!((decoded.applied_index, decoded.sessions.len()), (3, 2));
        // ...and what prost writes (as snapshots from before did), we read.
        let (mut restored, members) =
            KvStateMachine::from_snapshot(&decoded.encode_to_vec()).expect("we read it");
        assert_eq!(members, Some(book));
        assert_eq!(restored.get("long").map(<[u8]>::len), Some(300));
        assert_eq!(restored.get("empty"), Some(&b""[..]));
        assert_eq!(restored.data_bytes(), sm.data_bytes());
        assert_eq!(restored.data_bytes(), 1 + 1 + 4 + 300 + 5);
        assert_eq!(restored.applied(), 3);
        assert!(restored.apply(4, 1, &put(2, 2, "empty", "")).duplicate);
        // Cut short anywhere, it is refused, never half-read.
        for cut in [1, 5, ours.len() - 1] {
            assert!(
                KvStateMachine::from_snapshot(&ours[..cut]).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn a_clone_is_a_capture_that_later_writes_do_not_change() {
        let mut sm = KvStateMachine::new();
        for i in 1..=1000u64 {
            sm.apply(i, 1, &put(1, i, &format!("k{i:04}"), "before"));
        }
        let captured = sm.clone();
        sm.apply(1001, 1, &put(1, 1001, "k0001", "after"));
        sm.apply(1002, 1, &del(1, 1002, "k0002"));
        assert_eq!(captured.get("k0001"), Some(&b"before"[..]));
        assert_eq!(captured.get("k0002"), Some(&b"before"[..]));
        assert_eq!((captured.len(), captured.applied()), (1000, 1000));
        assert_eq!(sm.get("k0001"), Some(&b"after"[..]));
        assert_eq!(sm.len(), 999);
        assert_eq!(sm.data_bytes(), 999 * 5 + 998 * 6 + 5);
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
