//! From a violation to its cause: with a recording of the run (`chaos --record FILE`), what
//! the cluster looked like when each operation of a failing window was answered.
//!
//! For every operation of the window it says which node answered (the reply's node id,
//! [`Operation::answered_by`]), that node's role, term and applied index at that moment,
//! who led then and how far behind the leader's commit the answer was, and the command that
//! opens the cluster view there (`raft-client replay FILE --at T`).
//!
//! Times: an operation's are µs from the run's start ([`super::workload::Shared`]), a
//! record's `t_us` the node's wall clock in µs since the Unix epoch; the nodes run on this
//! host, so the run's start on the wall clock maps one onto the other. A node's state at
//! `T` is its last `state` record at or before `T`; the leader at `T` is, of the nodes whose
//! state then says Leader, the one of the highest term (an isolated old leader may still
//! think it leads).
//!
//! Everything here is a pure function of the records and the operations, so that tests can
//! build both by hand; the run reads the file and calls [`for_window`].

use std::collections::BTreeMap;
use std::path::Path;

use kv_proto::watch::{self as pb, watch_record::Kind};

use super::history::{Operation, Outcome};
use super::timeline;

/// A state older than this at the moment asked about is said to be old (a frozen node, or
/// one whose stream was cut, sends none).
const OLD_STATE_US: u64 = 1_000_000;

/// Every node's state records, in time order, to look up a node's state at any moment.
#[derive(Debug, Default)]
pub struct States<'a> {
    /// Per node: (t_us, state), sorted by time (file order among equal times).
    by_node: BTreeMap<u64, Vec<(u64, &'a pb::NodeState)>>,
    /// The first record's time (any kind): what `replay --at` counts from.
    start_us: Option<u64>,
    /// The latest record's time.
    end_us: Option<u64>,
}

impl<'a> States<'a> {
    /// Indexes the state records of `records` (a recording's, in file order).
    pub fn new(records: &'a [pb::WatchRecord]) -> Self {
        let mut by_node: BTreeMap<u64, Vec<(u64, &pb::NodeState)>> = BTreeMap::new();
        for r in records {
            if let Some(Kind::State(s)) = &r.kind {
                by_node.entry(r.node).or_default().push((r.t_us, s));
            }
        }
        for states in by_node.values_mut() {
            // Stable: records of one node with the same stamp stay in file order.
            states.sort_by_key(|(t, _)| *t);
        }
        Self {
            by_node,
            start_us: records.first().map(|r| r.t_us),
            end_us: records.iter().map(|r| r.t_us).max(),
        }
    }

    /// Node `node`'s last state at or before `t_us`, with its time.
    pub fn state_at(&self, node: u64, t_us: u64) -> Option<(u64, &'a pb::NodeState)> {
        let states = self.by_node.get(&node)?;
        let after = states.partition_point(|(t, _)| *t <= t_us);
        after.checked_sub(1).and_then(|i| states.get(i).copied())
    }

    /// The leader at `t_us`: of the nodes whose state then is Leader, the one of the
    /// highest term (the freshest state among equals), with that state.
    pub fn leader_at(&self, t_us: u64) -> Option<(u64, &'a pb::NodeState)> {
        self.by_node
            .keys()
            .filter_map(|&id| self.state_at(id, t_us).map(|(t, s)| (id, t, s)))
            .filter(|(_, _, s)| s.role == "Leader")
            .max_by_key(|(_, t, s)| (s.term, *t))
            .map(|(id, _, s)| (id, s))
    }

    /// `replay --at`'s seconds for `t_us`: from the first record, cut to a tenth (so the
    /// view opens at or just before the moment) and kept within the recording.
    pub fn at_seconds(&self, t_us: u64) -> f64 {
        let (Some(start), Some(end)) = (self.start_us, self.end_us) else {
            return 0.0;
        };
        let t = t_us.clamp(start, end.max(start)) - start;
        (t / 100_000) as f64 / 10.0
    }

    /// Whether `t_us` lies within the recording.
    fn covers(&self, t_us: u64) -> bool {
        matches!((self.start_us, self.end_us), (Some(s), Some(e)) if s <= t_us && t_us <= e)
    }
}

/// The cluster when one operation was answered (or given up on).
#[derive(Debug, Clone, PartialEq)]
pub struct Moment<'a> {
    /// When, on the nodes' clock (µs since the Unix epoch).
    pub t_us: u64,
    /// The node that answered (0: unknown) and its state then, with the state's time.
    pub node: u64,
    /// The answering node's last state at or before `t_us`, with its time.
    pub state: Option<(u64, &'a pb::NodeState)>,
    /// The leader then, if any, with its state.
    pub leader: Option<(u64, &'a pb::NodeState)>,
    /// `replay --at` seconds for `t_us`.
    pub at_seconds: f64,
    /// False when `t_us` lies outside the recording.
    pub recorded: bool,
}

/// The moment `op` was answered: its completion, on the nodes' clock (the run started at
/// `start_unix_us`).
pub fn moment<'a>(states: &States<'a>, op: &Operation, start_unix_us: u64) -> Moment<'a> {
    let t_us = start_unix_us.saturating_add(op.complete_us.max(op.invoke_us));
    Moment {
        t_us,
        node: op.answered_by,
        state: (op.answered_by != 0)
            .then(|| states.state_at(op.answered_by, t_us))
            .flatten(),
        leader: states.leader_at(t_us),
        at_seconds: states.at_seconds(t_us),
        recorded: states.covers(t_us),
    }
}

/// One sentence on `op` at `m`, e.g. `c2 stale get→v5.34 was answered by node 3, a follower
/// in term 4, 6 entries behind the leader's commit (applied 114; node 1 led in term 5,
/// commit 120)`.
pub fn describe(op: &Operation, m: &Moment) -> String {
    let who = format!("c{} {}", op.process, timeline::label(op));
    let led = |leader: Option<(u64, &pb::NodeState)>| match leader {
        Some((id, l)) => format!("node {id} led in term {}, commit {}", l.term, l.commit),
        None => "no node led then".to_string(),
    };
    let mut line = if m.node == 0 {
        let what = match op.outcome {
            Outcome::Unknown => "got no answer (outcome unknown)",
            Outcome::Fail => "got no answer (failed)",
            Outcome::Ok => "was answered by a node it did not record",
        };
        format!("{who} {what}; {}", led(m.leader))
    } else {
        match m.state {
            None => format!(
                "{who} was answered by node {}, of which the recording has no state by then; {}",
                m.node,
                led(m.leader)
            ),
            Some((at, s)) => {
                let leads = m.leader.is_some_and(|(id, _)| id == m.node);
                let role = match s.role.as_str() {
                    "Leader" if leads => "the leader".to_string(),
                    "Leader" if m.leader.is_some_and(|(_, l)| l.term > s.term) => {
                        "an old leader".to_string()
                    }
                    "Leader" => "a leader".to_string(),
                    "Follower" => "a follower".to_string(),
                    "Candidate" => "a candidate".to_string(),
                    "PreCandidate" => "a pre-candidate".to_string(),
                    other => format!("a {}", other.to_lowercase()),
                };
                let mut line = format!(
                    "{who} was answered by node {}, {role} in term {}",
                    m.node, s.term
                );
                let mut notes = Vec::new();
                match m.leader {
                    Some(_) if leads => {
                        notes.push(format!("applied {} of its commit {}", s.applied, s.commit));
                    }
                    Some((_, l)) => {
                        line.push_str(&format!(", {}", behind(s.applied, l.commit)));
                        notes.push(format!("applied {}", s.applied));
                        notes.push(led(m.leader));
                    }
                    None => {
                        notes.push(format!("applied {}", s.applied));
                        notes.push(led(None));
                    }
                }
                if !s.faults.is_empty() {
                    notes.push(format!("its faults: {}", s.faults));
                }
                let age = m.t_us.saturating_sub(at);
                if age >= OLD_STATE_US {
                    notes.push(format!(
                        "its last state was recorded {:.1} s before",
                        age as f64 / 1e6
                    ));
                }
                line.push_str(&format!(" ({})", notes.join("; ")));
                line
            }
        }
    };
    if !m.recorded {
        line.push_str(" [outside the recording: the nearest end is shown]");
    }
    line
}

/// How far `applied` is behind the leader's `commit`, in words.
fn behind(applied: u64, commit: u64) -> String {
    match commit.saturating_sub(applied) {
        0 => "level with the leader's commit".to_string(),
        1 => "1 entry behind the leader's commit".to_string(),
        n => format!("{n} entries behind the leader's commit"),
    }
}

/// What the line of each operation's `replay --at` command starts with.
const VIEW_THEN: &str = "    the view then: ";

/// `lines` (of [`for_window`]) fitted to `width` columns: sentences word-wrapped, their
/// further lines indented under the first's text; the commands are left whole, to be
/// copied.
pub fn fit(lines: &[String], width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with(VIEW_THEN) || line.chars().count() <= width {
            out.push(line.clone());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let more = " ".repeat(indent + 4);
        let mut current = line[..indent].to_string();
        let mut fresh = true;
        for word in line.split_whitespace() {
            let room = current.chars().count() + usize::from(!fresh) + word.chars().count();
            if !fresh && room > width {
                out.push(std::mem::replace(&mut current, more.clone()));
                fresh = true;
            }
            if !fresh {
                current.push(' ');
            }
            current.push_str(word);
            fresh = false;
        }
        out.push(current);
    }
    out
}

/// The command that opens the cluster view of recording `file` at `seconds`.
pub fn replay_command(file: &Path, seconds: f64) -> String {
    let name = file.display().to_string();
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c));
    let name = if plain {
        name
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    };
    format!("raft-client replay {name} --at {seconds:.1}")
}

/// The report's lines for the failing window `window` (indices into `ops`) given the
/// recording's `records` at `file`: a heading, then per operation (by invocation) its
/// sentence and the command that opens the view at its moment.
pub fn for_window(
    records: &[pb::WatchRecord],
    ops: &[Operation],
    window: &[usize],
    start_unix_us: u64,
    file: &Path,
) -> Vec<String> {
    let states = States::new(records);
    let mut shown: Vec<&Operation> = window.iter().filter_map(|&i| ops.get(i)).collect();
    shown.sort_by_key(|o| (o.invoke_us, o.process));
    let mut out = vec![format!(
        "who answered, from the recording {}:",
        file.display()
    )];
    for op in shown {
        let m = moment(&states, op, start_unix_us);
        out.push(format!("  {}", describe(op, &m)));
        out.push(format!("{VIEW_THEN}{}", replay_command(file, m.at_seconds)));
    }
    out
}

/// The one line said when the recording at `file` cannot be read.
pub fn unreadable(why: &dyn std::fmt::Display) -> String {
    format!("who answered is not shown: the recording could not be read ({why})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::history::OpKind;

    /// The run started at 100 s on the wall clock; the recording's first record is at 99 s.
    const START: u64 = 100_000_000;
    const FIRST: u64 = 99_000_000;

    fn state(role: &str, term: u64, commit: u64, applied: u64) -> pb::NodeState {
        pb::NodeState {
            role: role.into(),
            term,
            commit,
            applied,
            last_index: commit,
            voters: vec![1, 2, 3],
            ..Default::default()
        }
    }

    fn rec(t_us: u64, node: u64, kind: Kind) -> pb::WatchRecord {
        pb::WatchRecord {
            t_us,
            seq: 0,
            node,
            kind: Some(kind),
        }
    }

    fn st(t_us: u64, node: u64, s: pb::NodeState) -> pb::WatchRecord {
        rec(t_us, node, Kind::State(s))
    }

    /// Node 1 leads in term 4 until node 3 is cut off; node 2 leads in term 5 from 102 s,
    /// while node 3 still thinks it leads term 4 and stops applying at 114.
    fn records() -> Vec<pb::WatchRecord> {
        let event = Kind::Event(pb::Event {
            text: "became leader".into(),
        });
        vec![
            rec(FIRST, 3, event),
            st(99_500_000, 3, state("Leader", 4, 100, 100)),
            st(99_500_000, 1, state("Follower", 4, 100, 100)),
            st(99_600_000, 2, state("Follower", 4, 100, 100)),
            st(101_000_000, 3, state("Leader", 4, 114, 114)),
            st(102_000_000, 2, state("Leader", 5, 116, 116)),
            st(102_100_000, 1, state("Follower", 5, 116, 115)),
            st(103_000_000, 2, state("Leader", 5, 120, 120)),
            st(103_100_000, 1, state("Follower", 5, 120, 119)),
            st(106_000_000, 3, state("Follower", 5, 120, 120)),
        ]
    }

    fn op(kind: OpKind, value: Option<&str>, complete_us: u64, answered_by: u64) -> Operation {
        Operation {
            process: 2,
            kind,
            key: "k1".into(),
            value: value.map(str::to_string),
            invoke_us: complete_us.saturating_sub(2_000),
            complete_us,
            outcome: Outcome::Ok,
            answered_by,
        }
    }

    #[test]
    fn a_nodes_state_is_its_last_at_or_before_the_moment() {
        let records = records();
        let states = States::new(&records);
        assert_eq!(
            states.state_at(3, 99_400_000),
            None,
            "nothing before its first"
        );
        let (t, s) = states.state_at(3, 101_000_000).expect("at its record");
        assert_eq!((t, s.term, s.applied), (101_000_000, 4, 114));
        let (_, s) = states.state_at(3, 105_999_999).expect("still the same");
        assert_eq!((s.role.as_str(), s.applied), ("Leader", 114));
        let (_, s) = states.state_at(3, 106_000_000).expect("the later one");
        assert_eq!(s.role, "Follower");
        assert_eq!(states.state_at(9, 106_000_000), None, "no such node");
    }

    #[test]
    fn the_leader_is_the_one_of_the_highest_term() {
        let records = records();
        let states = States::new(&records);
        assert_eq!(states.leader_at(99_000_000), None);
        assert_eq!(states.leader_at(101_500_000).map(|(id, _)| id), Some(3));
        // Node 3 still says Leader in term 4; node 2 leads term 5.
        let (id, l) = states.leader_at(103_500_000).expect("a leader");
        assert_eq!((id, l.term, l.commit), (2, 5, 120));
    }

    #[test]
    fn the_at_seconds_count_from_the_first_record_cut_to_a_tenth() {
        let records = records();
        let states = States::new(&records);
        assert_eq!(states.at_seconds(FIRST), 0.0);
        assert_eq!(states.at_seconds(103_290_000), 4.2);
        assert_eq!(states.at_seconds(103_300_000), 4.3);
        // Kept within the recording.
        assert_eq!(states.at_seconds(1), 0.0);
        assert_eq!(states.at_seconds(999_000_000), 7.0);
        assert_eq!(States::new(&[]).at_seconds(5), 0.0);
        assert_eq!(
            replay_command(Path::new("/tmp/x/run.jsonl"), 4.2),
            "raft-client replay /tmp/x/run.jsonl --at 4.2"
        );
        assert_eq!(
            replay_command(Path::new("my run.jsonl"), 0.0),
            "raft-client replay 'my run.jsonl' --at 0.0"
        );
    }

    #[test]
    fn a_stale_read_names_the_old_leader_and_how_far_behind_it_was() {
        let records = records();
        let states = States::new(&records);
        // Answered 3.5 s into the run: 103.5 s on the wall clock.
        let stale = op(OpKind::GetStale, Some("v5.34"), 3_500_000, 3);
        let m = moment(&states, &stale, START);
        assert_eq!(m.t_us, 103_500_000);
        assert_eq!(m.at_seconds, 4.5);
        assert_eq!(m.state.map(|(_, s)| s.applied), Some(114));
        assert_eq!(m.leader.map(|(id, _)| id), Some(2));
        let line = describe(&stale, &m);
        assert_eq!(
            line,
            "c2 stale get→v5.34 was answered by node 3, an old leader in term 4, 6 entries \
             behind the leader's commit (applied 114; node 2 led in term 5, commit 120; its \
             last state was recorded 2.5 s before)"
        );
        // A follower a little behind, and the leader itself.
        let behind = describe(
            &op(OpKind::GetStale, None, 3_150_000, 1),
            &moment(&states, &op(OpKind::GetStale, None, 3_150_000, 1), START),
        );
        assert!(
            behind.contains("was answered by node 1, a follower in term 5, 1 entry behind"),
            "{behind}"
        );
        let put = op(OpKind::Put, Some("v1.1"), 3_200_000, 2);
        let by_leader = describe(&put, &moment(&states, &put, START));
        assert_eq!(
            by_leader,
            "c2 put v1.1 was answered by node 2, the leader in term 5 (applied 120 of its \
             commit 120)"
        );
    }

    #[test]
    fn unanswered_and_unrecorded_operations_say_so() {
        let records = records();
        let states = States::new(&records);
        let mut put = op(OpKind::Put, Some("v1.2"), 3_500_000, 0);
        put.outcome = Outcome::Unknown;
        let line = describe(&put, &moment(&states, &put, START));
        assert_eq!(
            line,
            "c2 put v1.2 got no answer (outcome unknown); node 2 led in term 5, commit 120"
        );
        let early = op(OpKind::Get, None, 0, 3);
        let line = describe(&early, &moment(&states, &early, START - 700_000));
        assert!(
            line.contains("node 3, of which the recording has no state by then; no node led"),
            "{line}"
        );
        let late = op(OpKind::Get, None, 60_000_000, 2);
        let m = moment(&states, &late, START);
        assert!(!m.recorded && m.at_seconds == 7.0);
        assert!(describe(&late, &m).ends_with("[outside the recording: the nearest end is shown]"));
    }

    #[test]
    fn a_window_gets_a_sentence_and_a_command_per_operation() {
        let records = records();
        let ops = vec![
            op(OpKind::Put, Some("v9"), 1_000_000, 3),
            op(OpKind::GetStale, Some("v5.34"), 3_500_000, 3),
            op(OpKind::Put, Some("v1.1"), 3_200_000, 2),
        ];
        let lines = for_window(&records, &ops, &[1, 2, 7], START, Path::new("run.jsonl"));
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert_eq!(lines[0], "who answered, from the recording run.jsonl:");
        // By invocation: the put first.
        assert!(
            lines[1].starts_with("  c2 put v1.1 was answered by node 2"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[2],
            "    the view then: raft-client replay run.jsonl --at 4.2"
        );
        assert!(
            lines[3].contains("node 3, an old leader in term 4"),
            "{lines:#?}"
        );
        assert!(lines[4].ends_with("--at 4.5"), "{lines:#?}");
        assert!(unreadable(&"no such file").contains("could not be read (no such file)"));
    }

    #[test]
    fn long_sentences_wrap_and_commands_stay_whole() {
        let lines = vec![
            "who answered:".to_string(),
            "  c1 stale get→v3 was answered by node 1, a follower in term 2".to_string(),
            format!("{VIEW_THEN}raft-client replay /a/very/long/path/run.jsonl --at 1.7"),
        ];
        let fitted = fit(&lines, 30);
        assert_eq!(
            fitted,
            vec![
                "who answered:",
                "  c1 stale get→v3 was answered",
                "      by node 1, a follower in",
                "      term 2",
                "    the view then: raft-client replay /a/very/long/path/run.jsonl --at 1.7",
            ]
        );
        assert_eq!(fit(&lines[..1], 30), lines[..1]);
    }
}
