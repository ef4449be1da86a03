//! Each node's role and term along its column: stretches of one role and term, from the
//! node's state records (its last state before the window to start with), broken where the
//! node says nothing for ten of its ticks (0.5 s at least): killed, frozen, or cut off from
//! the recorder. A live node sends a state at every tick, its election timer's.

use std::collections::HashMap;

use kv_proto::watch::watch_record::Kind;

use super::super::Selection;

/// Ticks of silence that break a node's bar.
const SILENT_TICKS: u64 = 10;
/// The least silence that does (µs).
const MIN_SILENCE_US: u64 = 500_000;
/// raft-server's tick when a state does not say (ms).
const DEFAULT_TICK_MS: u64 = 50;

/// A stretch of one node's role and term.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The node.
    pub node: u64,
    /// From (µs).
    pub from_us: u64,
    /// To (µs).
    pub to_us: u64,
    /// `Leader`, `Follower`, `Candidate`, `PreCandidate`.
    pub role: String,
    /// The term.
    pub term: u64,
    /// True when the node fell silent at its end.
    pub silent: bool,
}

/// A node's role, term and tick as its last state said.
#[derive(Clone, PartialEq)]
struct Known {
    role: String,
    term: u64,
    tick_ms: u64,
}

impl Known {
    fn silence_us(&self) -> u64 {
        let tick = if self.tick_ms == 0 {
            DEFAULT_TICK_MS
        } else {
            self.tick_ms
        };
        (SILENT_TICKS * tick * 1000).max(MIN_SILENCE_US)
    }
}

struct Open {
    from_us: u64,
    last_us: u64,
    known: Known,
}

/// Each node's stretches over the window, the last ones to `bottom_us` for a node still
/// heard at the window's end; by node, then time.
pub fn segments(sel: &Selection<'_>, bottom_us: u64) -> Vec<Segment> {
    let mut last_before: HashMap<u64, u64> = HashMap::new();
    for r in sel.before().iter().rev() {
        last_before.entry(r.node).or_insert(r.t_us);
        if last_before.len() == sel.nodes.len() {
            break;
        }
    }
    let mut known: HashMap<u64, Known> = sel
        .states_before()
        .into_iter()
        .map(|(n, s)| {
            let k = Known {
                role: s.role.clone(),
                term: s.term,
                tick_ms: s.tick_ms,
            };
            (n, k)
        })
        .collect();
    let mut open: HashMap<u64, Open> = HashMap::new();
    for (node, k) in &known {
        if let Some(t) = last_before.get(node)
            && sel.start_us.saturating_sub(*t) <= k.silence_us()
        {
            let o = Open {
                from_us: sel.start_us,
                last_us: *t,
                known: k.clone(),
            };
            open.insert(*node, o);
        }
    }
    let mut done = Vec::new();
    let close = |node: u64, o: Open, to_us: u64, silent: bool, done: &mut Vec<Segment>| {
        done.push(Segment {
            node,
            from_us: o.from_us,
            to_us,
            role: o.known.role,
            term: o.known.term,
            silent,
        });
    };
    for r in sel.in_window() {
        let state = match &r.kind {
            Some(Kind::State(s)) => Some(Known {
                role: s.role.clone(),
                term: s.term,
                tick_ms: s.tick_ms,
            }),
            _ => None,
        };
        if let Some(k) = &state {
            known.insert(r.node, k.clone());
        }
        let reopen = |known: &HashMap<u64, Known>| {
            known.get(&r.node).map(|k| Open {
                from_us: r.t_us,
                last_us: r.t_us,
                known: k.clone(),
            })
        };
        let next = match open.remove(&r.node) {
            Some(o) if r.t_us.saturating_sub(o.last_us) > o.known.silence_us() => {
                let last = o.last_us.max(sel.start_us);
                close(r.node, o, last, true, &mut done);
                reopen(&known)
            }
            Some(o)
                if state
                    .as_ref()
                    .is_some_and(|k| (&k.role, k.term) != (&o.known.role, o.known.term)) =>
            {
                close(r.node, o, r.t_us, false, &mut done);
                reopen(&known)
            }
            Some(mut o) => {
                o.last_us = r.t_us;
                if let Some(k) = state {
                    o.known.tick_ms = k.tick_ms;
                }
                Some(o)
            }
            None => reopen(&known),
        };
        if let Some(o) = next {
            open.insert(r.node, o);
        }
    }
    for (node, o) in open {
        if sel.end_us.saturating_sub(o.last_us) <= o.known.silence_us() {
            close(node, o, bottom_us, false, &mut done);
        } else {
            let last = o.last_us.max(sel.start_us);
            close(node, o, last, true, &mut done);
        }
    }
    done.sort_by_key(|s| (s.node, s.from_us));
    done
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::*;
    use super::super::super::{Selection, Window};
    use super::*;

    #[test]
    fn a_bar_changes_with_the_role_and_stops_where_the_node_falls_silent() {
        let rec = election();
        let sel = Selection::new(&rec, "r", &Window::default()).expect("sel");
        let segs = segments(&sel, sel.end_us);
        // Node 1 is heard from last at 0.5 s (its fault) and never again.
        let one: Vec<&Segment> = segs.iter().filter(|s| s.node == 1).collect();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].role, "Leader");
        assert!(
            one[0].silent && one[0].to_us == 1_000_500_000,
            "{:?}",
            one[0]
        );
        // Node 2: follower, pre-candidate, candidate, leader, to the end.
        let two: Vec<(&str, u64, bool)> = segs
            .iter()
            .filter(|s| s.node == 2)
            .map(|s| (s.role.as_str(), s.term, s.silent))
            .collect();
        assert_eq!(
            two,
            [
                ("Follower", 2, false),
                ("PreCandidate", 2, false),
                ("Candidate", 3, false),
                ("Leader", 3, false)
            ]
        );
        let last = segs.iter().rfind(|s| s.node == 2);
        assert_eq!(last.map(|s| s.to_us), Some(sel.end_us));
    }
}
