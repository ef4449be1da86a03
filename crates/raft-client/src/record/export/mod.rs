//! Exports of a recording, to read it outside the terminal (`raft-client replay FILE
//! --export svg|shiviz -o OUT [--from SECONDS] [--to SECONDS]`): the window to export (its
//! records, its nodes, its messages with their receipts) and the choice of format.
//!
//! - [`svg`]: a space-time diagram to open in a browser.
//! - [`shiviz`]: a log with vector clocks for ShiViz.
//! - [`cli`]: the flags, their checks, the one-line messages and the exit codes.
//!
//! Pure but for the writer: records in, text out, so that tests call it on made-up records.

pub mod cli;
pub mod shiviz;
pub mod svg;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::ops::Range;

use kv_proto::watch::{self as pb, watch_record::Kind};

use super::file::Recording;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A space-time diagram (SVG): a column per node, time going down, the messages as
    /// arrows, each node's role and term along its column.
    Svg,
    /// A ShiViz log: every send, receipt, role change and fault as an event with a vector
    /// clock.
    Shiviz,
}

/// The part of a recording to export, in seconds after its first record (`None`: from its
/// start, to its end).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// `--from`.
    pub from_s: Option<f64>,
    /// `--to`.
    pub to_s: Option<f64>,
}

/// Why a window cannot be exported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    /// Not a number of seconds, or negative.
    #[error(
        "--{name} {value} is out of range: give the seconds after the recording's first record (0 or more)"
    )]
    OutOfRange {
        /// `from` or `to`.
        name: &'static str,
        /// What was given.
        value: f64,
    },
    /// `--from` is not before `--to`.
    #[error("--from {from} is not before --to {to}: the window would be empty")]
    Empty {
        /// Its start.
        from: f64,
        /// Its end.
        to: f64,
    },
    /// The window starts after the last record.
    #[error(
        "--from {from} is past the recording's end: its last record is {len:.3} s after its first"
    )]
    PastEnd {
        /// Its start.
        from: f64,
        /// The recording's length in seconds.
        len: f64,
    },
}

impl Window {
    /// Checks what can be checked without the recording: finite, 0 or more, from < to.
    pub fn check(&self) -> Result<(), WindowError> {
        for (name, value) in [("from", self.from_s), ("to", self.to_s)] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(WindowError::OutOfRange { name, value: v });
            }
        }
        let from = self.from_s.unwrap_or(0.0);
        match self.to_s {
            Some(to) if from >= to => Err(WindowError::Empty { from, to }),
            _ => Ok(()),
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The window does not fit the recording.
    #[error(transparent)]
    Window(#[from] WindowError),
    /// The writer failed.
    #[error("{0}")]
    Write(#[from] std::io::Error),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// Messages written (arrows of the diagram; send events of a ShiViz log).
    pub messages: usize,
    /// Nodes (columns, hosts).
    pub nodes: usize,
    /// The window, in seconds after the recording's first record.
    pub from_s: f64,
    /// Its end.
    pub to_s: f64,
    /// What was left out, when the window held too many messages.
    pub left_out: Option<String>,
}

impl ExportSummary {
    /// The line `replay --export` prints: `exported 123 messages of 3 nodes, 0.0–12.5 s,
    /// to run.svg`.
    pub fn line(&self, out: &str) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let mut line = format!(
            "exported {} of {}, {:.1}–{:.1} s, to {out}",
            plural(self.messages, "message"),
            plural(self.nodes, "node"),
            self.from_s,
            self.to_s
        );
        if let Some(why) = &self.left_out {
            line.push_str(&format!(" ({why})"));
        }
        line
    }
}

/// A sent message of the window, with its receipt when the recording has one.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// When it was sent (the sender's clock, µs).
    pub t_us: u64,
    /// The node that recorded the send.
    pub node: u64,
    /// The message.
    pub msg: &'a pb::PeerMessage,
    /// When its receiver recorded it (µs), if it did.
    pub recv_us: Option<u64>,
}

/// The window of a recording chosen for export, its records in time order.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// The recording's name (its file name), for titles.
    pub name: String,
    records: Cow<'a, [pb::WatchRecord]>,
    /// The first record's time (µs): the recording's zero.
    pub origin_us: u64,
    /// The window's start (µs, inclusive).
    pub start_us: u64,
    /// The window's end (µs, inclusive).
    pub end_us: u64,
    range: Range<usize>,
    /// The nodes: the header's, those with records in the window and those its messages
    /// name, ascending.
    pub nodes: Vec<u64>,
}

impl<'a> Selection<'a> {
    /// The window `window` of `recording` (named `name` in titles). A `--to` past the end
    /// is the end.
    pub fn new(recording: &'a Recording, name: &str, window: &Window) -> Result<Self, WindowError> {
        window.check()?;
        // A recorder writes in time order; a file that is not is put in order (stable: a
        // node's records keep their stream order).
        let records: Cow<'a, [pb::WatchRecord]> = if recording.records.is_sorted_by_key(|r| r.t_us)
        {
            Cow::Borrowed(&recording.records)
        } else {
            let mut sorted = recording.records.clone();
            sorted.sort_by_key(|r| r.t_us);
            Cow::Owned(sorted)
        };
        let origin_us = records.first().map_or(0, |r| r.t_us);
        let last_us = records.last().map_or(0, |r| r.t_us);
        let len = (last_us - origin_us) as f64 / 1e6;
        let from = window.from_s.unwrap_or(0.0);
        if from > 0.0 && from >= len {
            return Err(WindowError::PastEnd { from, len });
        }
        let to = window.to_s.unwrap_or(len).min(len);
        let start_us = origin_us + (from * 1e6).round() as u64;
        let end_us = origin_us + (to * 1e6).round() as u64;
        let range = records.partition_point(|r| r.t_us < start_us)
            ..records.partition_point(|r| r.t_us <= end_us);
        let mut nodes: BTreeSet<u64> = recording.header.nodes.iter().map(|n| n.id).collect();
        for r in &records[range.clone()] {
            nodes.insert(r.node);
            if let Some(Kind::Send(m)) = &r.kind {
                nodes.extend([m.from, m.to].into_iter().filter(|id| *id != 0));
            }
        }
        Ok(Self {
            name: name.to_string(),
            records,
            origin_us,
            start_us,
            end_us,
            range,
            nodes: nodes.into_iter().collect(),
        })
    }

    /// Every record of the recording, in time order.
    pub fn all(&self) -> &[pb::WatchRecord] {
        &self.records
    }

    /// The records in the window.
    pub fn in_window(&self) -> &[pb::WatchRecord] {
        &self.records[self.range.clone()]
    }

    /// The records before the window.
    pub fn before(&self) -> &[pb::WatchRecord] {
        &self.records[..self.range.start]
    }

    /// The records after the window.
    pub fn after(&self) -> &[pb::WatchRecord] {
        &self.records[self.range.end..]
    }

    /// Seconds after the recording's first record.
    pub fn secs(&self, t_us: u64) -> f64 {
        t_us.saturating_sub(self.origin_us) as f64 / 1e6
    }

    /// The window's start and end in seconds after the first record.
    pub fn bounds_s(&self) -> (f64, f64) {
        (self.secs(self.start_us), self.secs(self.end_us))
    }

    /// The messages sent in the window, in time order, each with the time of its receipt
    /// (found by `msg_id` anywhere in the recording; 0 is never paired).
    pub fn messages(&self) -> Vec<Message<'_>> {
        let sends: Vec<(u64, u64, &pb::PeerMessage)> = self
            .in_window()
            .iter()
            .filter_map(|r| match &r.kind {
                Some(Kind::Send(m)) => Some((r.t_us, r.node, m)),
                _ => None,
            })
            .collect();
        let wanted: HashSet<u64> = sends
            .iter()
            .map(|(_, _, m)| m.msg_id)
            .filter(|id| *id != 0)
            .collect();
        let mut receipts: HashMap<u64, u64> = HashMap::new();
        for r in self.all() {
            if let Some(Kind::Recv(m)) = &r.kind
                && wanted.contains(&m.msg_id)
            {
                receipts.entry(m.msg_id).or_insert(r.t_us);
            }
        }
        sends
            .into_iter()
            .map(|(t_us, node, msg)| Message {
                t_us,
                node,
                msg,
                recv_us: (msg.msg_id != 0)
                    .then(|| receipts.get(&msg.msg_id).copied())
                    .flatten(),
            })
            .collect()
    }

    /// Each node's last state before the window, by node.
    pub fn states_before(&self) -> HashMap<u64, &pb::NodeState> {
        let mut states = HashMap::new();
        for r in self.before().iter().rev() {
            if let Some(Kind::State(s)) = &r.kind {
                states.entry(r.node).or_insert(s);
                if states.len() == self.nodes.len() {
                    break;
                }
            }
        }
        states
    }
}

/// Writes the window `window` of `recording` (named `name` in titles) as `format` to `out`.
pub fn export(
    recording: &Recording,
    name: &str,
    format: Format,
    window: &Window,
    out: &mut impl Write,
) -> Result<ExportSummary, ExportError> {
    let selection = Selection::new(recording, name, window)?;
    Ok(write(&selection, format, out)?)
}

/// Writes `selection` as `format` to `out`.
pub fn write(
    selection: &Selection<'_>,
    format: Format,
    out: &mut impl Write,
) -> std::io::Result<ExportSummary> {
    let (from_s, to_s) = selection.bounds_s();
    let (messages, left_out) = match format {
        Format::Svg => svg::write(selection, out)?,
        Format::Shiviz => (shiviz::write(selection, out)?, None),
    };
    Ok(ExportSummary {
        messages,
        nodes: selection.nodes.len(),
        from_s,
        to_s,
        left_out,
    })
}

/// Made-up records for the exports' tests.
#[cfg(test)]
pub(crate) mod testing {
    use kv_proto::watch::{self as pb, watch_record::Kind};

    use crate::record::file::Recording;
    use crate::record::format::{Header, NodeAddr};

    /// A record at `t_ms` milliseconds.
    pub fn rec(t_ms: u64, node: u64, kind: Kind) -> pb::WatchRecord {
        pb::WatchRecord {
            t_us: 1_000_000_000 + t_ms * 1000,
            seq: 0,
            node,
            kind: Some(kind),
        }
    }

    /// A message `id` of type `t` from `from` to `to` in term 3.
    pub fn msg(id: u64, from: u64, to: u64, t: &str) -> pb::PeerMessage {
        pb::PeerMessage {
            msg_id: id,
            msg_type: t.into(),
            from,
            to,
            term: 3,
            fate: "delivered".into(),
            ..Default::default()
        }
    }

    /// A state record's kind.
    pub fn state(role: &str, term: u64) -> Kind {
        Kind::State(pb::NodeState {
            role: role.into(),
            term,
            voters: vec![1, 2, 3],
            ..Default::default()
        })
    }

    /// A send at `t_ms` by `m.from` and, when `recv_ms` is given, its receipt by `m.to`.
    pub fn sent(
        records: &mut Vec<pb::WatchRecord>,
        t_ms: u64,
        recv_ms: Option<u64>,
        m: pb::PeerMessage,
    ) {
        records.push(rec(t_ms, m.from, Kind::Send(m.clone())));
        if let Some(r) = recv_ms {
            let to = m.to;
            records.push(rec(r, to, Kind::Recv(m)));
        }
    }

    /// A recording of three nodes with `records`.
    pub fn recording(records: Vec<pb::WatchRecord>) -> Recording {
        let nodes = (1..=3)
            .map(|id| NodeAddr {
                id,
                api_addr: format!("127.0.0.1:700{id}"),
            })
            .collect();
        Recording {
            header: Header::new(nodes),
            records,
            cut_off: None,
        }
    }

    /// An election and a few appends over 3 s: node 1 leads in term 2, node 2 is elected in
    /// term 3 at 1 s (node 1 frozen at 0.5 s), appends with entries, a dropped append to
    /// node 3, a heartbeat never received, a fault record with markup in its text; states
    /// at every tick. Not in time order (the ticks come last).
    pub fn election() -> Recording {
        let mut r = Vec::new();
        for n in 1..=3 {
            r.push(rec(
                0,
                n,
                state(if n == 1 { "Leader" } else { "Follower" }, 2),
            ));
        }
        sent(&mut r, 100, Some(101), msg(1, 1, 2, "MsgHeartbeat"));
        sent(&mut r, 100, Some(102), msg(2, 1, 3, "MsgHeartbeat"));
        sent(&mut r, 103, Some(104), msg(3, 2, 1, "MsgHeartbeatResponse"));
        r.push(rec(
            500,
            1,
            Kind::Fault(pb::FaultChange {
                text: "freeze <1> & \"all\"".into(),
            }),
        ));
        r.push(rec(1000, 2, state("PreCandidate", 2)));
        sent(&mut r, 1001, Some(1002), msg(4, 2, 3, "MsgRequestPreVote"));
        sent(
            &mut r,
            1003,
            Some(1004),
            msg(5, 3, 2, "MsgRequestPreVoteResponse"),
        );
        r.push(rec(1005, 2, state("Candidate", 3)));
        sent(&mut r, 1006, Some(1007), msg(6, 2, 3, "MsgRequestVote"));
        sent(
            &mut r,
            1008,
            Some(1009),
            msg(7, 3, 2, "MsgRequestVoteResponse"),
        );
        r.push(rec(1010, 2, state("Leader", 3)));
        r.push(rec(1010, 3, state("Follower", 3)));
        let mut append = msg(8, 2, 3, "MsgAppend");
        append.entries = 2;
        append.index = 5;
        sent(&mut r, 1500, Some(1501), append);
        let mut reject = msg(9, 3, 2, "MsgAppendResponse");
        reject.reject = true;
        sent(&mut r, 1502, Some(1503), reject);
        let mut dropped = msg(10, 2, 3, "MsgAppend");
        dropped.fate = "dropped".into();
        sent(&mut r, 2000, None, dropped);
        sent(&mut r, 2500, None, msg(11, 2, 1, "MsgHeartbeat"));
        sent(&mut r, 2900, Some(2901), msg(12, 2, 3, "MsgHeartbeat"));
        for n in 2..=3 {
            r.push(rec(
                3000,
                n,
                state(if n == 2 { "Leader" } else { "Follower" }, 3),
            ));
        }
        // A live node's state at every tick (50 ms): node 1 until it freezes.
        for t in (25..3000).step_by(50) {
            if t < 500 {
                r.push(rec(t, 1, state("Leader", 2)));
            }
            let two = if t < 1000 {
                ("Follower", 2)
            } else {
                ("Leader", 3)
            };
            r.push(rec(t, 2, state(two.0, two.1)));
            r.push(rec(t, 3, state("Follower", if t < 1010 { 2 } else { 3 })));
        }
        recording(r)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_window_picks_its_records_nodes_and_messages_with_their_receipts() {
        let rec = election();
        let all = Selection::new(&rec, "run.jsonl", &Window::default()).expect("whole");
        assert_eq!(all.bounds_s(), (0.0, 3.0));
        assert_eq!(all.nodes, [1, 2, 3]);
        let msgs = all.messages();
        assert_eq!(msgs.len(), 12);
        assert_eq!(msgs.iter().filter(|m| m.recv_us.is_some()).count(), 10);
        let w = Window {
            from_s: Some(0.9),
            to_s: Some(1.2),
        };
        let part = Selection::new(&rec, "run.jsonl", &w).expect("window");
        let ids: Vec<u64> = part.messages().iter().map(|m| m.msg.msg_id).collect();
        assert_eq!(ids, [4, 5, 6, 7]);
        let before = part.states_before();
        assert_eq!(before.get(&1).map(|s| s.role.as_str()), Some("Leader"));
        // A --to past the end is the end; a --from past it is refused.
        let long = Window {
            from_s: None,
            to_s: Some(99.0),
        };
        let s = Selection::new(&rec, "r", &long).expect("to past the end");
        assert_eq!(s.bounds_s().1, 3.0);
        let late = Window {
            from_s: Some(5.0),
            to_s: None,
        };
        let e = Selection::new(&rec, "r", &late).expect_err("from past the end");
        assert!(matches!(e, WindowError::PastEnd { .. }), "{e}");
    }

    #[test]
    fn bad_windows_are_refused_in_one_line() {
        for (from, to) in [
            (Some(2.0), Some(1.0)),
            (Some(1.0), Some(1.0)),
            (Some(-1.0), None),
            (None, Some(f64::NAN)),
            (Some(f64::INFINITY), None),
            (None, Some(0.0)),
        ] {
            let w = Window {
                from_s: from,
                to_s: to,
            };
            let e = w.check().expect_err("refused").to_string();
            assert!(!e.contains('\n') && e.starts_with("--"), "{e}");
        }
        assert!(
            Window {
                from_s: Some(0.5),
                to_s: Some(1.0)
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn records_out_of_time_order_are_put_in_order() {
        let mut rec = election();
        rec.records.reverse();
        let s = Selection::new(&rec, "r", &Window::default()).expect("whole");
        assert!(s.all().is_sorted_by_key(|r| r.t_us));
        assert_eq!(s.messages().len(), 12);
    }

    #[test]
    fn the_summary_is_one_line() {
        let rec = election();
        let mut out = Vec::new();
        let s =
            export(&rec, "run.jsonl", Format::Svg, &Window::default(), &mut out).expect("export");
        assert_eq!(
            s.line("run.svg"),
            "exported 12 messages of 3 nodes, 0.0–3.0 s, to run.svg"
        );
    }
}
