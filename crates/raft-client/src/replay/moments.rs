//! The notable moments of a recording: elections started, leaders elected, faults set and
//! cleared, the first entry a new leader commits, membership changes. Found in one pass over
//! the records; pure.

use std::collections::{BTreeMap, BTreeSet};

use kv_proto::watch::{self as pb, watch_record::Kind};

/// What kind of moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MomentKind {
    /// A node began to campaign (pre-vote or vote).
    Election,
    /// A node became leader.
    Leader,
    /// A fault was set on a node or cleared.
    Fault,
    /// A new leader committed its first entry (it can serve reads and acknowledge writes).
    Commit,
    /// A configuration no node had before.
    Membership,
    /// An operation of a chaos history that no order explains.
    Violation,
}

impl MomentKind {
    /// The mark on the timeline.
    pub fn mark(self) -> char {
        match self {
            MomentKind::Election => 'e',
            MomentKind::Leader => 'L',
            MomentKind::Fault => 'f',
            MomentKind::Commit => 'c',
            MomentKind::Membership => 'm',
            MomentKind::Violation => '!',
        }
    }
}

/// One notable moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// The record that makes it (its index in the recording).
    pub index: usize,
    /// Its time, µs.
    pub t_us: u64,
    /// What kind.
    pub kind: MomentKind,
    /// In words, e.g. `node 2 is leader of term 3`.
    pub what: String,
}

#[derive(Default)]
struct Seen {
    role: String,
    term: u64,
    /// The leader's commit when it became leader (its first commit is past it).
    lead_commit: Option<u64>,
}

/// The notable moments of `records`, in order.
pub fn find(records: &[pb::WatchRecord]) -> Vec<Moment> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut configs: BTreeSet<(Vec<u64>, Vec<u64>, Vec<u64>)> = BTreeSet::new();
    for (index, r) in records.iter().enumerate() {
        let mut say = |kind, what: String| {
            out.push(Moment {
                index,
                t_us: r.t_us,
                kind,
                what,
            });
        };
        match &r.kind {
            Some(Kind::State(s)) => {
                let node = r.node;
                let first = !seen.contains_key(&node);
                let was = seen.entry(node).or_default();
                let campaigning = |role: &str| role == "PreCandidate" || role == "Candidate";
                if !first && s.role != was.role {
                    if s.role == "Leader" {
                        say(
                            MomentKind::Leader,
                            format!("node {node} is leader of term {}", s.term),
                        );
                        was.lead_commit = Some(s.commit);
                    } else if campaigning(&s.role) && !campaigning(&was.role) {
                        let how = if s.role == "PreCandidate" {
                            "asks for pre-votes"
                        } else {
                            "asks for votes"
                        };
                        say(
                            MomentKind::Election,
                            format!("node {node} {how} (term {})", s.term),
                        );
                    }
                }
                if s.role != "Leader" {
                    was.lead_commit = None;
                } else if was.lead_commit.is_some_and(|c| s.commit > c) {
                    was.lead_commit = None;
                    say(
                        MomentKind::Commit,
                        format!(
                            "node {node} commits its first entry as leader of term {} (index {})",
                            s.term, s.commit
                        ),
                    );
                }
                was.role.clone_from(&s.role);
                was.term = s.term;
                let config = (
                    s.voters.clone(),
                    s.learners.clone(),
                    s.voters_outgoing.clone(),
                );
                let known = configs.contains(&config);
                if !known && !s.voters.is_empty() {
                    if !configs.is_empty() {
                        say(
                            MomentKind::Membership,
                            format!("configuration: {}", describe(s)),
                        );
                    }
                    configs.insert(config);
                }
            }
            Some(Kind::Fault(f)) => say(
                MomentKind::Fault,
                format!("node {}: {}", r.node, f.text.trim_start_matches("fault: ")),
            ),
            _ => {}
        }
    }
    out
}

fn describe(s: &pb::NodeState) -> String {
    let ids = |v: &[u64]| {
        v.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text = format!("voters {}", ids(&s.voters));
    if !s.voters_outgoing.is_empty() {
        text.push_str(&format!(" (joint with {})", ids(&s.voters_outgoing)));
    }
    if !s.learners.is_empty() {
        text.push_str(&format!(", learners {}", ids(&s.learners)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t_us: u64, node: u64, role: &str, term: u64, commit: u64) -> pb::WatchRecord {
        pb::WatchRecord {
            t_us,
            seq: 0,
            node,
            kind: Some(Kind::State(pb::NodeState {
                role: role.into(),
                term,
                commit,
                voters: vec![1, 2, 3],
                ..Default::default()
            })),
        }
    }

    #[test]
    fn an_election_a_leader_its_first_commit_a_fault_and_a_new_configuration() {
        let mut records = vec![
            state(1, 1, "Follower", 1, 5),
            state(2, 1, "PreCandidate", 1, 5),
            state(3, 1, "Candidate", 2, 5),
            state(4, 1, "Leader", 2, 5),
            state(5, 1, "Leader", 2, 5),
            state(6, 1, "Leader", 2, 6),
            state(7, 1, "Leader", 2, 7),
            pb::WatchRecord {
                t_us: 8,
                seq: 0,
                node: 2,
                kind: Some(Kind::Fault(pb::FaultChange {
                    text: "fault: isolated: every link cut, both directions".into(),
                })),
            },
        ];
        let mut joint = state(9, 1, "Leader", 2, 8);
        if let Some(Kind::State(s)) = &mut joint.kind {
            s.voters = vec![1, 2, 4];
            s.voters_outgoing = vec![1, 2, 3];
        }
        records.push(joint);
        let found: Vec<(usize, MomentKind, String)> = find(&records)
            .into_iter()
            .map(|m| (m.index, m.kind, m.what))
            .collect();
        assert_eq!(
            found,
            [
                (
                    1,
                    MomentKind::Election,
                    "node 1 asks for pre-votes (term 1)".to_string()
                ),
                (3, MomentKind::Leader, "node 1 is leader of term 2".into()),
                (
                    5,
                    MomentKind::Commit,
                    "node 1 commits its first entry as leader of term 2 (index 6)".into()
                ),
                (
                    7,
                    MomentKind::Fault,
                    "node 2: isolated: every link cut, both directions".into()
                ),
                (
                    8,
                    MomentKind::Membership,
                    "configuration: voters 1,2,4 (joint with 1,2,3)".into()
                ),
            ]
        );
    }
}
