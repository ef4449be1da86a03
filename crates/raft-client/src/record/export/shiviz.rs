//! The ShiViz export: a window of a recording as a log for ShiViz
//! (<https://bestchai.bitbucket.io/shiviz/>), which draws it as a space-time diagram.
//!
//! The file ShiViz takes ("Choose File"): its first line is the regex that parses the log,
//! [`REGEX`] (ShiViz puts `^`…`$` around it and reads with the multiline flag); its second
//! line is the regex between several executions, empty here (one execution); the log comes
//! after, each event on two lines:
//!
//! ```text
//! node2 {"node1":4,"node2":7}
//! recv MsgAppend from 1 term 3 index 5 entries 1 [msg 42, 1.234567 s]
//! ```
//!
//! Events: each send and receipt a node recorded in the window, its role changes and its
//! faults. Vector clocks as ShiViz checks them: a host's own entry counts its events from 1
//! up by one; a send or a local event increments it; a receipt merges the clock of its send
//! (paired by `msg_id`, when the send is in the window) and then increments it. Events go
//! out in the recorded order, except that a receipt waits for its send (clocks of nodes on
//! other machines may disagree by a little).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{self, Write};

use kv_proto::watch::{self as pb, watch_record::Kind};

use super::Selection;

/// The regex of the log, the file's first line.
pub const REGEX: &str = r"(?<host>\S*) (?<clock>\{.*\})\n(?<event>.*)";

/// A vector clock: host id -> events of that host seen.
type Clock = BTreeMap<u64, u64>;

/// One event of a host.
struct Event {
    t_us: u64,
    node: u64,
    /// A send (its msg_id), a receipt (the msg_id of its send), or local.
    link: Link,
    text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Send(u64),
    Recv(u64),
    Local,
}

/// Writes `sel` as a ShiViz log; returns the sends written.
pub fn write(sel: &Selection<'_>, out: &mut impl Write) -> io::Result<usize> {
    let events = events(sel);
    let sends = events
        .iter()
        .filter(|e| matches!(e.link, Link::Send(_)))
        .count();
    writeln!(out, "{REGEX}")?;
    writeln!(out)?;
    for (event, clock) in ordered(&events) {
        writeln!(out, "node{} {}", event.node, json(&clock))?;
        writeln!(out, "{}", event.text)?;
    }
    out.flush()?;
    Ok(sends)
}

/// The clock as ShiViz reads it: `{"node1":3,"node2":1}` (no zero entries).
fn json(clock: &Clock) -> String {
    let entries: Vec<String> = clock
        .iter()
        .map(|(host, n)| format!("\"node{host}\":{n}"))
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// The window's events in time order.
fn events(sel: &Selection<'_>) -> Vec<Event> {
    let mut roles: HashMap<u64, (String, u64)> = sel
        .states_before()
        .into_iter()
        .map(|(n, s)| (n, (s.role.clone(), s.term)))
        .collect();
    let at = |t_us: u64| format!("{:.6} s", sel.secs(t_us));
    let mut events = Vec::new();
    for r in sel.in_window() {
        let (link, text) = match &r.kind {
            Some(Kind::Send(m)) => (
                Link::Send(m.msg_id),
                format!("send {} to {}{}", m.msg_type, m.to, fields(m, true)),
            ),
            Some(Kind::Recv(m)) => (
                Link::Recv(m.msg_id),
                format!("recv {} from {}{}", m.msg_type, m.from, fields(m, false)),
            ),
            Some(Kind::State(s)) => {
                let now = (s.role.clone(), s.term);
                if roles.get(&r.node) == Some(&now) {
                    continue;
                }
                roles.insert(r.node, now);
                (Link::Local, format!("role {} term {}", s.role, s.term))
            }
            Some(Kind::Fault(f)) => (Link::Local, format!("fault {}", f.text)),
            _ => continue,
        };
        let id = match link {
            Link::Send(id) | Link::Recv(id) if id != 0 => format!("msg {id}, "),
            _ => String::new(),
        };
        let text = format!("{} [{id}{}]", one_line(&text), at(r.t_us));
        events.push(Event {
            t_us: r.t_us,
            node: r.node,
            link,
            text,
        });
    }
    events
}

/// ` term 3 index 5 entries 1 commit 4`, what is not 0; on a send, its fate if not plain.
fn fields(m: &pb::PeerMessage, send: bool) -> String {
    let mut text = format!(" term {}", m.term);
    for (name, v) in [
        ("index", m.index),
        ("log_term", m.log_term),
        ("entries", u64::from(m.entries)),
        ("commit", m.commit),
    ] {
        if v != 0 {
            text.push_str(&format!(" {name} {v}"));
        }
    }
    if m.reject {
        text.push_str(&format!(" reject hint {}", m.reject_hint));
    }
    if send {
        match m.fate.as_str() {
            "" | "delivered" => {}
            "delayed" => text.push_str(&format!(" delayed {} ms", m.delay_ms)),
            other => text.push_str(&format!(" {other}")),
        }
    }
    text
}

/// An event's text on one line (the regex's `.` stops at a line's end).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The events with their clocks, in the order they are written: each host's in its own
/// order, the earliest ready one next, a receipt ready once its send (in the window) went.
fn ordered(events: &[Event]) -> Vec<(&Event, Clock)> {
    let sends_here: HashSet<u64> = events
        .iter()
        .filter_map(|e| match e.link {
            Link::Send(id) if id != 0 => Some(id),
            _ => None,
        })
        .collect();
    let mut queues: BTreeMap<u64, VecDeque<&Event>> = BTreeMap::new();
    for e in events {
        queues.entry(e.node).or_default().push_back(e);
    }
    let mut clocks: HashMap<u64, Clock> = HashMap::new();
    let mut sent: HashMap<u64, Clock> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    loop {
        let ready = |e: &Event| match e.link {
            Link::Recv(id) => !sends_here.contains(&id) || sent.contains_key(&id),
            _ => true,
        };
        let heads = queues.values().filter_map(|q| q.front().copied());
        let next = heads
            .clone()
            .filter(|e| ready(e))
            .min_by_key(|e| e.t_us)
            // Nothing ready: records that contradict each other's order; take the earliest.
            .or_else(|| heads.min_by_key(|e| e.t_us));
        let Some(e) = next else { break };
        if let Some(q) = queues.get_mut(&e.node) {
            q.pop_front();
        }
        let clock = clocks.entry(e.node).or_default();
        if let Link::Recv(id) = e.link
            && let Some(theirs) = sent.get(&id)
        {
            for (host, n) in theirs {
                let mine = clock.entry(*host).or_default();
                *mine = (*mine).max(*n);
            }
        }
        *clock.entry(e.node).or_default() += 1;
        let clock = clock.clone();
        if let Link::Send(id) = e.link
            && id != 0
        {
            sent.insert(id, clock.clone());
        }
        out.push((e, clock));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Format, Window, export};
    use super::*;

    /// Checks a ShiViz file as ShiViz would: the regex of its first line, an empty second
    /// line, every event parsed by it, each host's own clock 1, 2, 3..., clocks that only
    /// grow, entries of other hosts within their events, and each receipt's clock above
    /// its send's. Returns the events as (host, clock, text).
    pub(crate) fn check(text: &str) -> Vec<(String, BTreeMap<String, u64>, String)> {
        let mut lines = text.splitn(3, '\n');
        let regex = lines.next().expect("a regex line");
        assert_eq!(lines.next(), Some(""), "no execution delimiter");
        let log = lines.next().unwrap_or("");
        let re = regex::Regex::new(&format!("(?m)^{regex}$")).expect("the file's regex parses");
        let mut events = Vec::new();
        let mut covered = 0;
        for c in re.captures_iter(log) {
            let whole = c.get(0).expect("match");
            assert_eq!(whole.start(), covered, "nothing between events: {log:?}");
            covered = whole.end() + 1;
            let clock: BTreeMap<String, u64> =
                serde_json::from_str(&c["clock"]).expect("a JSON clock");
            events.push((c["host"].to_string(), clock, c["event"].to_string()));
        }
        assert_eq!(covered, log.len(), "every line is part of an event");
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for (host, _, _) in &events {
            *counts.entry(host.as_str()).or_default() += 1;
        }
        let mut last: HashMap<&str, &BTreeMap<String, u64>> = HashMap::new();
        let mut sends: HashMap<String, &BTreeMap<String, u64>> = HashMap::new();
        for (host, clock, event) in &events {
            let own = clock.get(host).copied().expect("the host's own entry");
            let before = last.get(host.as_str()).map_or(0, |c| c[host]);
            assert_eq!(
                own,
                before + 1,
                "{host} counts its events one by one: {event}"
            );
            if let Some(prev) = last.get(host.as_str()) {
                for (h, n) in *prev {
                    assert!(
                        clock.get(h).is_some_and(|m| m >= n),
                        "{host}'s clock grows: {event}"
                    );
                }
            }
            for (h, n) in clock {
                assert!(
                    *n >= 1 && *n <= counts[h.as_str()],
                    "{h}:{n} is an event of {h}"
                );
            }
            let id = event
                .split("[msg ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .map(str::to_string);
            if let Some(id) = id {
                if event.starts_with("send ") {
                    sends.insert(id, clock);
                } else if let Some(send) = sends.get(&id) {
                    for (h, n) in *send {
                        assert!(
                            clock.get(h).is_some_and(|m| m >= n),
                            "receipt above send: {event}"
                        );
                    }
                }
            }
            last.insert(host, clock);
        }
        events
    }

    fn shiviz_of(rec: &crate::record::file::Recording, w: Window) -> String {
        let mut out = Vec::new();
        export(rec, "r", Format::Shiviz, &w, &mut out).expect("export");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_event_parses_and_the_clocks_are_those_shiviz_checks() {
        let text = shiviz_of(&election(), Window::default());
        let events = check(&text);
        // 12 sends, 10 receipts, the states that change, one fault.
        let count = |p: &str| events.iter().filter(|(_, _, e)| e.starts_with(p)).count();
        assert_eq!(
            (count("send "), count("recv "), count("fault ")),
            (12, 10, 1)
        );
        assert_eq!(
            count("role "),
            3 + 3 + 1,
            "first states, node 2's three, node 3's term 3"
        );
        let append = events
            .iter()
            .find(|(_, _, e)| e.starts_with("send MsgAppend to 3 term 3 index 5 entries 2"))
            .expect("the append");
        assert_eq!(append.0, "node2");
        assert!(append.2.ends_with("[msg 8, 1.500000 s]"), "{}", append.2);
        let fault = events
            .iter()
            .find(|(_, _, e)| e.starts_with("fault "))
            .expect("fault");
        assert_eq!(fault.2, "fault freeze <1> & \"all\" [0.500000 s]");
        // Node 3's vote reply knows node 2's request.
        let vote = events
            .iter()
            .find(|(_, _, e)| e.starts_with("send MsgRequestVoteResponse"))
            .expect("the vote");
        assert!(vote.1.get("node2").is_some_and(|n| *n >= 4), "{:?}", vote.1);
    }

    #[test]
    fn a_window_keeps_only_its_events_and_a_receipt_waits_for_its_send() {
        let w = Window {
            from_s: Some(1.0015),
            to_s: Some(1.2),
        };
        let text = shiviz_of(&election(), w);
        let events = check(&text);
        // The pre-vote request's send is before the window: its receipt is a plain event.
        assert!(
            events
                .iter()
                .all(|(_, _, e)| !e.contains("[msg 4,") || e.starts_with("recv"))
        );
        assert!(events.iter().all(|(_, _, e)| !e.contains("Heartbeat")));
        // A receipt stamped before its send (clocks of two machines) still comes after it.
        let r = vec![
            rec(10, 2, Kind::Recv(msg(1, 1, 2, "MsgAppend"))),
            rec(11, 1, Kind::Send(msg(1, 1, 2, "MsgAppend"))),
            rec(12, 2, Kind::Send(msg(2, 2, 1, "MsgAppendResponse"))),
            rec(13, 1, Kind::Recv(msg(2, 2, 1, "MsgAppendResponse"))),
        ];
        let events = check(&shiviz_of(&recording(r), Window::default()));
        let hosts: Vec<&str> = events.iter().map(|(h, _, _)| h.as_str()).collect();
        assert_eq!(hosts, ["node1", "node2", "node2", "node1"]);
        assert_eq!(events[3].1.get("node2"), Some(&2));
    }
}
