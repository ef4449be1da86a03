//! The cluster as the watch streams tell it, as plain data: every node's latest state and
//! log, and every Raft message with its send paired to its receipt. Pure: records go in
//! (from live streams or a recording), questions come out; no terminal, no network. The
//! live view and a replay draw the same model.

use std::collections::{BTreeMap, HashMap, VecDeque};

use kv_proto::watch::{self as pb, watch_record::Kind};

/// Message events kept (sends and receipts); the oldest go first.
pub const MAX_MESSAGES: usize = 100_000;
/// Log entries kept per node (the window follows the tail).
pub const MAX_LOG: usize = 4096;
/// Events kept, all nodes together.
pub const MAX_EVENTS: usize = 2000;

/// One entry of a node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The entry's term.
    pub term: u64,
    /// `cmd`, `noop`, `conf` or `dirs`.
    pub kind: String,
    /// What it holds, as the log panel says it.
    pub summary: String,
}

/// What the model knows of one node.
#[derive(Debug, Clone, Default)]
pub struct NodeModel {
    /// Its latest state, if any came.
    pub state: Option<pb::NodeState>,
    /// Its log, by index (the latest [`MAX_LOG`] entries).
    pub log: BTreeMap<u64, Cell>,
    /// Entries up to here are compacted into a snapshot.
    pub compacted_to: u64,
    /// When the last record came (µs), to tell a silent stream.
    pub last_us: u64,
    /// Records its stream said it missed.
    pub missed: u64,
    /// False while its stream is down (the view's source says so).
    pub connected: bool,
}

/// Sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Recorded by the sender.
    Send,
    /// Recorded by the receiver.
    Recv,
}

/// One message event, as a node recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgEvent {
    /// The recording node's clock, µs.
    pub t_us: u64,
    /// Send or receipt.
    pub dir: Dir,
    /// The message.
    pub msg: pb::PeerMessage,
    /// The other half (a send's receipt, a receipt's send), as a position in the model's
    /// message list; `None` while unknown (in flight, dropped, or unnumbered).
    pub partner: Option<u64>,
}

/// The whole cluster over time; see the module doc.
#[derive(Debug, Default, Clone)]
pub struct ClusterModel {
    nodes: BTreeMap<u64, NodeModel>,
    /// Message events in time order; positions are `first_pos + i`.
    messages: VecDeque<MsgEvent>,
    /// Position of the oldest message kept.
    first_pos: u64,
    /// Where each numbered send and receipt is, by msg_id.
    sends: HashMap<u64, u64>,
    recvs: HashMap<u64, u64>,
    /// Recent events: (µs, node, text).
    events: VecDeque<(u64, u64, String)>,
    /// Records taken in.
    records: u64,
    /// Liveness: when a node began to campaign and when a node's leader changed (µs, the
    /// last minute's), and when a node last said it knew a leader.
    elections: VecDeque<u64>,
    leader_changes: VecDeque<u64>,
    leader_seen_us: u64,
}

/// Liveness as the records tell it (see [`ClusterModel::liveness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Elections started in the last minute (by any node).
    pub elections: usize,
    /// Times a node's leader changed to another in the last minute.
    pub leader_changes: usize,
    /// Microseconds since a node last said it knew a leader (0: one leads now).
    pub leaderless_us: u64,
}

/// What liveness counts back over.
pub const LIVENESS_WINDOW_US: u64 = 60_000_000;

impl ClusterModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one record.
    pub fn apply(&mut self, r: &pb::WatchRecord) {
        self.records += 1;
        let Some(kind) = &r.kind else { return };
        let node = self.nodes.entry(r.node).or_default();
        node.last_us = node.last_us.max(r.t_us);
        node.connected = true;
        match kind {
            Kind::State(s) => {
                let campaigning = |role: &str| role == "PreCandidate" || role == "Candidate";
                if let Some(was) = &node.state {
                    if campaigning(&s.role) && !campaigning(&was.role) {
                        self.elections.push_back(r.t_us);
                    }
                    if s.leader != 0 && was.leader != 0 && s.leader != was.leader {
                        self.leader_changes.push_back(r.t_us);
                    }
                }
                if s.leader != 0 {
                    self.leader_seen_us = self.leader_seen_us.max(r.t_us);
                }
                for q in [&mut self.elections, &mut self.leader_changes] {
                    while q.front().is_some_and(|t| t + LIVENESS_WINDOW_US < r.t_us) {
                        q.pop_front();
                    }
                }
                node.state = Some(s.clone());
            }
            Kind::Entry(e) => {
                node.log.insert(
                    e.index,
                    Cell {
                        term: e.term,
                        kind: e.kind.clone(),
                        summary: e.summary.clone(),
                    },
                );
                while node.log.len() > MAX_LOG {
                    node.log.pop_first();
                }
            }
            Kind::Truncate(t) => {
                let _ = node.log.split_off(&t.from_index);
            }
            Kind::Compact(c) => {
                node.compacted_to = node.compacted_to.max(c.up_to);
                let keep = node.log.split_off(&(c.up_to + 1));
                node.log = keep;
            }
            Kind::Event(e) => {
                if self.events.len() == MAX_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back((r.t_us, r.node, e.text.clone()));
            }
            Kind::Missed(m) => node.missed += m.count,
            // The same change comes as an event line, and the state records that follow
            // carry the node's faults: the view shows those.
            Kind::Fault(_) => {}
            // A message held in step mode is listed from the sender's state records (its
            // send comes again, under the same id, when it is delivered or dropped).
            Kind::Send(m) if m.fate == "held" => {}
            Kind::Send(m) => self.message(r.t_us, Dir::Send, m),
            Kind::Recv(m) => self.message(r.t_us, Dir::Recv, m),
        }
    }

    /// Says that node `id`'s stream is down (or up again).
    pub fn set_connected(&mut self, id: u64, connected: bool) {
        self.nodes.entry(id).or_default().connected = connected;
    }

    fn message(&mut self, t_us: u64, dir: Dir, msg: &pb::PeerMessage) {
        // Streams interleave: keep time order, looking back from the end (records arrive
        // nearly in order, so this is short).
        let mut at = self.messages.len();
        while at > 0 && self.messages[at - 1].t_us > t_us {
            at -= 1;
        }
        if at < self.messages.len() {
            // Positions after `at` move by one (a stream a little behind): only those few
            // are renumbered, with their partners' links.
            self.messages.insert(
                at,
                MsgEvent {
                    t_us,
                    dir,
                    msg: msg.clone(),
                    partner: None,
                },
            );
            let pos = self.first_pos + at as u64;
            self.shift_after(at);
            self.pair(pos);
        } else {
            self.messages.push_back(MsgEvent {
                t_us,
                dir,
                msg: msg.clone(),
                partner: None,
            });
            let pos = self.first_pos + at as u64;
            self.pair(pos);
        }
        while self.messages.len() > MAX_MESSAGES {
            if let Some(gone) = self.messages.pop_front() {
                self.forget(&gone);
            }
            self.first_pos += 1;
        }
    }

    /// Records where the event at `pos` is and links it to its other half.
    fn pair(&mut self, pos: u64) {
        let Some(e) = self.at(pos) else { return };
        let (id, dir) = (e.msg.msg_id, e.dir);
        if id == 0 {
            return;
        }
        let (mine, theirs) = match dir {
            Dir::Send => (&mut self.sends, &self.recvs),
            Dir::Recv => (&mut self.recvs, &self.sends),
        };
        mine.insert(id, pos);
        if let Some(&other) = theirs.get(&id) {
            self.set_partner(pos, other);
            self.set_partner(other, pos);
        }
    }

    fn set_partner(&mut self, pos: u64, partner: u64) {
        if let Some(i) = pos.checked_sub(self.first_pos)
            && let Some(e) = self.messages.get_mut(i as usize)
        {
            e.partner = Some(partner);
        }
    }

    fn forget(&mut self, gone: &MsgEvent) {
        if gone.msg.msg_id != 0 {
            match gone.dir {
                Dir::Send => self.sends.remove(&gone.msg.msg_id),
                Dir::Recv => self.recvs.remove(&gone.msg.msg_id),
            };
        }
    }

    /// Renumbers the events after index `at`, which an insertion at `at` moved one on.
    fn shift_after(&mut self, at: usize) {
        let inserted = self.first_pos + at as u64;
        for i in at + 1..self.messages.len() {
            let now = self.first_pos + i as u64;
            let e = &mut self.messages[i];
            let id = e.msg.msg_id;
            let mine = match e.dir {
                Dir::Send => &mut self.sends,
                Dir::Recv => &mut self.recvs,
            };
            if id != 0 && mine.get(&id) == Some(&(now - 1)) {
                mine.insert(id, now);
            }
            match e.partner {
                // Both moved.
                Some(p) if p >= inserted => e.partner = Some(p + 1),
                Some(p) => {
                    if let Some(other) = p
                        .checked_sub(self.first_pos)
                        .and_then(|j| self.messages.get_mut(j as usize))
                    {
                        other.partner = Some(now);
                    }
                }
                None => {}
            }
        }
    }

    /// The message event at position `pos`, if it is still kept.
    pub fn at(&self, pos: u64) -> Option<&MsgEvent> {
        self.messages
            .get(usize::try_from(pos.checked_sub(self.first_pos)?).ok()?)
    }

    /// Positions of the messages kept: `first..end`.
    pub fn positions(&self) -> std::ops::Range<u64> {
        self.first_pos..self.first_pos + self.messages.len() as u64
    }

    /// Every node seen, by id.
    pub fn nodes(&self) -> &BTreeMap<u64, NodeModel> {
        &self.nodes
    }

    /// True while a member is in step mode.
    pub fn stepping(&self) -> bool {
        self.nodes
            .values()
            .any(|n| n.connected && n.state.as_ref().is_some_and(|s| s.step_mode))
    }

    /// The messages held in step mode on every connected node, oldest first, with the
    /// node holding each.
    pub fn held(&self) -> Vec<(u64, &pb::HeldMessage)> {
        let mut all: Vec<(u64, &pb::HeldMessage)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.connected)
            .filter_map(|(id, n)| Some((*id, n.state.as_ref()?)))
            .flat_map(|(id, s)| s.held.iter().map(move |h| (id, h)))
            .collect();
        all.sort_by_key(|(id, h)| (h.held_us, *id, h.hold_id));
        all
    }

    /// Node `id`, if seen.
    pub fn node(&self, id: u64) -> Option<&NodeModel> {
        self.nodes.get(&id)
    }

    /// Records taken in so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Elections and leader changes in the minute before `now_us`, and how long no node
    /// has known a leader.
    pub fn liveness(&self, now_us: u64) -> Liveness {
        let recent = |q: &VecDeque<u64>| {
            q.iter()
                .filter(|t| **t + LIVENESS_WINDOW_US >= now_us)
                .count()
        };
        Liveness {
            elections: recent(&self.elections),
            leader_changes: recent(&self.leader_changes),
            leaderless_us: if self.leader().is_some() {
                0
            } else {
                now_us.saturating_sub(self.leader_seen_us)
            },
        }
    }

    /// Recent events, oldest first.
    pub fn events(&self) -> &VecDeque<(u64, u64, String)> {
        &self.events
    }

    /// The leader: the node that says it leads in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.state.as_ref().map(|s| (*id, s)))
            .filter(|(_, s)| s.role == "Leader" && s.removed_at == 0)
            .max_by_key(|(_, s)| s.term)
            .map(|(id, _)| id)
    }

    /// The members, as the leader's (else any node's) configuration says, ascending; with
    /// every node seen when none says.
    pub fn members(&self) -> Vec<u64> {
        let conf = self
            .leader()
            .and_then(|l| self.nodes.get(&l))
            .and_then(|n| n.state.as_ref())
            .or_else(|| self.nodes.values().find_map(|n| n.state.as_ref()));
        let mut ids: Vec<u64> = match conf {
            Some(s) if !s.voters.is_empty() => s
                .voters
                .iter()
                .chain(&s.voters_outgoing)
                .chain(&s.learners)
                .copied()
                .collect(),
            _ => self.nodes.keys().copied().collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The highest log index any node holds.
    pub fn last_index(&self) -> u64 {
        self.nodes
            .values()
            .filter_map(|n| n.log.last_key_value().map(|(i, _)| *i))
            .max()
            .unwrap_or(0)
    }

    /// True when node `id`'s entry at `index` is not the leader's (another term there, or
    /// the leader has none while it has one).
    pub fn differs(&self, id: u64, index: u64) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        if leader == id {
            return false;
        }
        let mine = self.nodes.get(&id).and_then(|n| n.log.get(&index));
        let lead = self.nodes.get(&leader);
        let theirs = lead.and_then(|n| n.log.get(&index));
        match (mine, theirs) {
            (Some(a), Some(b)) => a.term != b.term,
            // The leader knows nothing there: differs only if the leader's log has moved
            // past it (the leader's window starts later otherwise).
            (Some(_), None) => lead.is_some_and(|l| {
                l.log
                    .first_key_value()
                    .is_some_and(|(first, _)| *first <= index)
            }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(t_us: u64, node: u64, kind: Kind) -> pb::WatchRecord {
        pb::WatchRecord {
            t_us,
            seq: 0,
            node,
            kind: Some(kind),
        }
    }

    fn msg(id: u64, from: u64, to: u64, t: &str) -> pb::PeerMessage {
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

    fn entry(index: u64, term: u64) -> Kind {
        Kind::Entry(pb::LogEntry {
            index,
            term,
            kind: "cmd".into(),
            summary: format!("PUT k = v{index}"),
        })
    }

    fn state(role: &str, term: u64) -> Kind {
        Kind::State(pb::NodeState {
            role: role.into(),
            term,
            voters: vec![1, 2, 3],
            ..Default::default()
        })
    }

    #[test]
    fn sends_pair_with_their_receipts_whatever_order_the_streams_arrive_in() {
        let mut m = ClusterModel::new();
        // Node 2's receipt arrives before node 1's send is read (streams interleave).
        m.apply(&rec(120, 2, Kind::Recv(msg(7, 1, 2, "MsgRequestVote"))));
        m.apply(&rec(100, 1, Kind::Send(msg(7, 1, 2, "MsgRequestVote"))));
        m.apply(&rec(130, 1, Kind::Send(msg(8, 1, 3, "MsgRequestVote"))));
        let p = m.positions();
        let events: Vec<&MsgEvent> = p.clone().filter_map(|i| m.at(i)).collect();
        assert_eq!(events[0].dir, Dir::Send, "time order: the send first");
        assert_eq!(events[0].partner, Some(p.start + 1));
        assert_eq!(events[1].partner, Some(p.start));
        assert_eq!(events[2].partner, None, "still in flight");
        m.apply(&rec(140, 3, Kind::Recv(msg(8, 1, 3, "MsgRequestVote"))));
        assert_eq!(m.at(p.start + 2).and_then(|e| e.partner), Some(p.start + 3));
    }

    #[test]
    fn late_records_keep_every_pair_linked_to_its_other_half() {
        let mut m = ClusterModel::new();
        // 300 messages whose sends and receipts arrive up to 40 µs late, in a scrambled order.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut recs = Vec::new();
        for id in 1..=300u64 {
            let t = id * 10;
            recs.push((
                t + next() % 40,
                rec(t, 1, Kind::Send(msg(id, 1, 2, "MsgAppend"))),
            ));
            recs.push((
                t + 5 + next() % 40,
                rec(t + 5, 2, Kind::Recv(msg(id, 1, 2, "MsgAppend"))),
            ));
        }
        recs.sort_by_key(|(arrives, _)| *arrives);
        for (_, r) in &recs {
            m.apply(r);
        }
        let p = m.positions();
        assert_eq!(p.end - p.start, 600);
        let mut last = 0;
        for pos in p {
            let e = m.at(pos).expect("kept");
            assert!(e.t_us >= last, "time order at {pos}");
            last = e.t_us;
            let other = m.at(e.partner.expect("paired")).expect("partner kept");
            assert_eq!(other.msg.msg_id, e.msg.msg_id, "partner of {pos}");
            assert_ne!(other.dir, e.dir);
        }
    }

    #[test]
    fn a_divergent_entry_stands_out_until_it_is_replaced() {
        let mut m = ClusterModel::new();
        for id in 1..=3 {
            for i in 1..=4 {
                m.apply(&rec(10, id, entry(i, 2)));
            }
        }
        // Node 3 led in term 2 and took a write alone; node 1 leads in term 3 now.
        m.apply(&rec(20, 3, entry(5, 2)));
        m.apply(&rec(21, 1, state("Leader", 3)));
        m.apply(&rec(22, 1, entry(5, 3)));
        m.apply(&rec(22, 2, entry(5, 3)));
        assert!(m.differs(3, 5));
        assert!(!m.differs(2, 5) && !m.differs(3, 4));
        assert_eq!(m.leader(), Some(1));
        // Healed: node 3's entry 5 is replaced by the leader's.
        m.apply(&rec(30, 3, Kind::Truncate(pb::Truncate { from_index: 5 })));
        m.apply(&rec(30, 3, entry(5, 3)));
        assert!(!m.differs(3, 5));
    }

    #[test]
    fn compaction_drops_the_prefix_and_old_messages_go_past_the_bound() {
        let mut m = ClusterModel::new();
        for i in 1..=10 {
            m.apply(&rec(1, 1, entry(i, 1)));
        }
        m.apply(&rec(2, 1, Kind::Compact(pb::Compact { up_to: 6, term: 1 })));
        let n = m.node(1).expect("node 1");
        assert_eq!(n.compacted_to, 6);
        assert_eq!(n.log.keys().copied().collect::<Vec<_>>(), [7, 8, 9, 10]);
        for i in 0..(MAX_MESSAGES as u64 + 10) {
            m.apply(&rec(
                100 + i,
                1,
                Kind::Send(msg(i + 1, 1, 2, "MsgHeartbeat")),
            ));
        }
        assert_eq!(m.positions().end - m.positions().start, MAX_MESSAGES as u64);
        assert_eq!(m.positions().start, 10);
    }
}
