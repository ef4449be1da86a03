//! The recording format: JSON lines. The first line is a header naming the format, its
//! version, and the nodes with their addresses; every other line is one watch record with
//! `t_us`, `node` and `kind` (`state`, `entry`, `truncate`, `compact`, `send`, `recv`,
//! `event`, `fault`, `missed`) and the kind's fields (docs/contract.md lists them; fields
//! beyond the contract's are left out when 0, false or empty). Records convert to and from
//! the watch stream's protobuf records, so a replay feeds the same model.

use kv_proto::watch::{self as pb, watch_record::Kind};
use serde::{Deserialize, Serialize};

/// The `format` a recording's header names.
pub const FORMAT: &str = "raft-playground-record";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when this build wrote it.
    pub version: u32,
    /// The nodes recorded.
    pub nodes: Vec<NodeAddr>,
}

/// A node of the recording and where it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    /// Its id.
    pub id: u64,
    /// Its client API address.
    pub api_addr: String,
}

impl Header {
    /// A header of this build's format for `nodes`.
    pub fn new(nodes: Vec<NodeAddr>) -> Self {
        Self {
            format: FORMAT.to_string(),
            version: VERSION,
            nodes,
        }
    }
}

/// One record line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLine {
    /// The node's clock, µs since the Unix epoch.
    pub t_us: u64,
    /// The node that produced it.
    pub node: u64,
    /// Its place in its node's stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// What it says.
    #[serde(flatten)]
    pub kind: KindLine,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A record's kind and fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KindLine {
    /// The node's state.
    State(StateLine),
    /// An entry appended.
    Entry {
        index: u64,
        term: u64,
        entry_kind: String,
        summary: String,
    },
    /// Entries from this index replaced.
    Truncate { from_index: u64 },
    /// The log compacted up to here.
    Compact { up_to: u64, term: u64 },
    /// A message sent.
    Send(MessageLine),
    /// A message received.
    Recv(MessageLine),
    /// A line of the node's events.
    Event { text: String },
    /// Records the stream dropped.
    Missed { count: u64 },
    /// A fault set on or cleared from the node.
    Fault { text: String },
}

/// A state record's fields (the contract's `role`, `term`, `leader`, `commit`, `applied`,
/// `last_index`, `election_elapsed`, `election_timeout`, and more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateLine {
    pub role: String,
    pub term: u64,
    pub vote: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub voters: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voters_outgoing: Vec<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub faults: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub frozen: bool,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub slow_factor: u32,
    pub election_elapsed: u64,
    pub election_timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub heartbeat_elapsed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub heartbeat_timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tick_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed_at: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub joining: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub step_mode: bool,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub held_count: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protections_off: Vec<String>,
}

/// A message held in step mode (in a state record's `held`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLine {
    pub hold_id: u64,
    pub held_us: u64,
    pub msg: MessageLine,
}

impl From<&pb::HeldMessage> for HeldLine {
    fn from(h: &pb::HeldMessage) -> Self {
        Self {
            hold_id: h.hold_id,
            held_us: h.held_us,
            msg: h
                .msg
                .as_ref()
                .map(MessageLine::from)
                .unwrap_or_else(|| MessageLine::from(&pb::PeerMessage::default())),
        }
    }
}

impl From<HeldLine> for pb::HeldMessage {
    fn from(h: HeldLine) -> Self {
        Self {
            hold_id: h.hold_id,
            held_us: h.held_us,
            msg: Some(h.msg.into()),
        }
    }
}

/// A send or receipt's fields (the contract's `msg_id`, `type`, `from`, `to`, `term` and,
/// on a send, `fate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageLine {
    pub msg_id: u64,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub from: u64,
    pub to: u64,
    pub term: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub index: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_term: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub entries: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub commit: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reject: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reject_hint: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fate: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub delay_ms: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<&pb::PeerMessage> for MessageLine {
    fn from(m: &pb::PeerMessage) -> Self {
        Self {
            msg_id: m.msg_id,
            msg_type: m.msg_type.clone(),
            from: m.from,
            to: m.to,
            term: m.term,
            index: m.index,
            log_term: m.log_term,
            entries: m.entries,
            commit: m.commit,
            reject: m.reject,
            reject_hint: m.reject_hint,
            fate: m.fate.clone(),
            delay_ms: m.delay_ms,
        }
    }
}

impl From<MessageLine> for pb::PeerMessage {
    fn from(m: MessageLine) -> Self {
        Self {
            msg_id: m.msg_id,
            msg_type: m.msg_type,
            from: m.from,
            to: m.to,
            term: m.term,
            index: m.index,
            log_term: m.log_term,
            entries: m.entries,
            commit: m.commit,
            reject: m.reject,
            reject_hint: m.reject_hint,
            fate: m.fate,
            delay_ms: m.delay_ms,
        }
    }
}

impl From<&pb::NodeState> for StateLine {
    fn from(s: &pb::NodeState) -> Self {
        Self {
            role: s.role.clone(),
            term: s.term,
            vote: s.vote,
            leader: s.leader,
            commit: s.commit,
            applied: s.applied,
            last_index: s.last_index,
            snapshot_index: s.snapshot_index,
            voters: s.voters.clone(),
            learners: s.learners.clone(),
            voters_outgoing: s.voters_outgoing.clone(),
            faults: s.faults.clone(),
            frozen: s.frozen,
            slow_factor: s.slow_factor,
            election_elapsed: s.election_elapsed,
            election_timeout: s.election_timeout,
            heartbeat_elapsed: s.heartbeat_elapsed,
            heartbeat_timeout: s.heartbeat_timeout,
            tick_ms: s.tick_ms,
            removed_at: s.removed_at,
            joining: s.joining,
            step_mode: s.step_mode,
            held_count: s.held_count,
            held: s.held.iter().map(HeldLine::from).collect(),
            protections_off: s.protections_off.clone(),
        }
    }
}

impl From<StateLine> for pb::NodeState {
    fn from(s: StateLine) -> Self {
        Self {
            role: s.role,
            term: s.term,
            vote: s.vote,
            leader: s.leader,
            commit: s.commit,
            applied: s.applied,
            last_index: s.last_index,
            snapshot_index: s.snapshot_index,
            voters: s.voters,
            learners: s.learners,
            voters_outgoing: s.voters_outgoing,
            faults: s.faults,
            frozen: s.frozen,
            slow_factor: s.slow_factor,
            election_elapsed: s.election_elapsed,
            election_timeout: s.election_timeout,
            heartbeat_elapsed: s.heartbeat_elapsed,
            heartbeat_timeout: s.heartbeat_timeout,
            tick_ms: s.tick_ms,
            removed_at: s.removed_at,
            joining: s.joining,
            step_mode: s.step_mode,
            held_count: s.held_count,
            held: s.held.into_iter().map(pb::HeldMessage::from).collect(),
            protections_off: s.protections_off,
        }
    }
}

impl RecordLine {
    /// The line of a watch record (`None` for a record without a kind).
    pub fn of(r: &pb::WatchRecord) -> Option<Self> {
        let kind = match r.kind.as_ref()? {
            Kind::State(s) => KindLine::State(s.into()),
            Kind::Entry(e) => KindLine::Entry {
                index: e.index,
                term: e.term,
                entry_kind: e.kind.clone(),
                summary: e.summary.clone(),
            },
            Kind::Truncate(t) => KindLine::Truncate {
                from_index: t.from_index,
            },
            Kind::Compact(c) => KindLine::Compact {
                up_to: c.up_to,
                term: c.term,
            },
            Kind::Send(m) => KindLine::Send(m.into()),
            Kind::Recv(m) => KindLine::Recv(m.into()),
            Kind::Event(e) => KindLine::Event {
                text: e.text.clone(),
            },
            Kind::Missed(m) => KindLine::Missed { count: m.count },
            Kind::Fault(f) => KindLine::Fault {
                text: f.text.clone(),
            },
        };
        Some(Self {
            t_us: r.t_us,
            node: r.node,
            seq: r.seq,
            kind,
        })
    }

    /// The watch record this line stands for.
    pub fn into_record(self) -> pb::WatchRecord {
        let kind = match self.kind {
            KindLine::State(s) => Kind::State(s.into()),
            KindLine::Entry {
                index,
                term,
                entry_kind,
                summary,
            } => Kind::Entry(pb::LogEntry {
                index,
                term,
                kind: entry_kind,
                summary,
            }),
            KindLine::Truncate { from_index } => Kind::Truncate(pb::Truncate { from_index }),
            KindLine::Compact { up_to, term } => Kind::Compact(pb::Compact { up_to, term }),
            KindLine::Send(m) => Kind::Send(m.into()),
            KindLine::Recv(m) => Kind::Recv(m.into()),
            KindLine::Event { text } => Kind::Event(pb::Event { text }),
            KindLine::Missed { count } => Kind::Missed(pb::Missed { count }),
            KindLine::Fault { text } => Kind::Fault(pb::FaultChange { text }),
        };
        pb::WatchRecord {
            t_us: self.t_us,
            seq: self.seq,
            node: self.node,
            kind: Some(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_contracts_fields_and_come_back_as_they_went() {
        let send = pb::WatchRecord {
            t_us: 1_700_000_000_000_123,
            seq: 7,
            node: 2,
            kind: Some(Kind::Send(pb::PeerMessage {
                msg_id: 42,
                msg_type: "MsgRequestVote".into(),
                from: 2,
                to: 3,
                term: 5,
                fate: "delayed".into(),
                delay_ms: 150,
                ..Default::default()
            })),
        };
        let line =
            serde_json::to_string(&RecordLine::of(&send).expect("a line")).expect("serialise");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        for (field, want) in [
            ("t_us", serde_json::json!(1_700_000_000_000_123u64)),
            ("node", serde_json::json!(2)),
            ("kind", serde_json::json!("send")),
            ("msg_id", serde_json::json!(42)),
            ("type", serde_json::json!("MsgRequestVote")),
            ("from", serde_json::json!(2)),
            ("to", serde_json::json!(3)),
            ("term", serde_json::json!(5)),
            ("fate", serde_json::json!("delayed")),
        ] {
            assert_eq!(v[field], want, "{field} in {line}");
        }
        let back: RecordLine = serde_json::from_str(&line).expect("parse");
        assert_eq!(back.into_record(), send);
        let state = pb::WatchRecord {
            t_us: 5,
            seq: 0,
            node: 1,
            kind: Some(Kind::State(pb::NodeState {
                role: "Leader".into(),
                term: 3,
                election_elapsed: 4,
                election_timeout: 12,
                voters: vec![1, 2, 3],
                ..Default::default()
            })),
        };
        let line =
            serde_json::to_string(&RecordLine::of(&state).expect("a line")).expect("serialise");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        for field in [
            "role",
            "term",
            "leader",
            "commit",
            "applied",
            "last_index",
            "election_elapsed",
            "election_timeout",
        ] {
            assert!(v.get(field).is_some(), "{field} in {line}");
        }
        let back: RecordLine = serde_json::from_str(&line).expect("parse");
        assert_eq!(back.into_record(), state);
    }
}
