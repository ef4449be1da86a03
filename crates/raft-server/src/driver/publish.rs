//! What the driver shows of itself: the events timeline (role, term, leader, votes, links)
//! and the status view published after each loop for the dashboard and `Status`.

use std::sync::{Arc, PoisonError};
use std::time::SystemTime;

use raft::StateRole;
use raft::eraftpb::{Message, MessageType};

use kv_proto::watch::watch_record::Kind;

use super::NodeDriver;
use super::handle::RequestError;
use crate::config::Peer;
use crate::membership::Role as MemberRole;
use crate::status::{EVENT_HISTORY, Event, NodeStatus, PeerView, Progress, Role};

impl NodeDriver {
    /// Turns vote requests and answers, sent or received, into events.
    pub(super) fn note_vote_traffic(&mut self, m: &Message, incoming: bool) {
        let pre = match m.get_msg_type() {
            MessageType::MsgRequestPreVote | MessageType::MsgRequestPreVoteResponse => "pre-vote",
            MessageType::MsgRequestVote | MessageType::MsgRequestVoteResponse => "vote",
            _ => return,
        };
        let (peer, term) = if incoming {
            (m.from, m.term)
        } else {
            (m.to, m.term)
        };
        let verdict = if m.reject { "refused" } else { "granted" };
        if incoming
            && matches!(
                m.get_msg_type(),
                MessageType::MsgRequestPreVote | MessageType::MsgRequestVote
            )
        {
            // What the candidate said of its log, to say why a refusal was one.
            self.seen.vote_asks.insert(m.from, (m.log_term, m.index));
        }
        let text = match (m.get_msg_type(), incoming) {
            (MessageType::MsgRequestPreVote | MessageType::MsgRequestVote, true) => {
                let raft = &self.raw.raft;
                // raft-rs's check-quorum lease: a node that heard from a leader within its
                // election timeout ignores a (pre-)vote request of a higher term and sends no
                // answer at all (only a leadership transfer's request gets through).
                let in_lease = raft.check_quorum
                    && raft.leader_id != raft::INVALID_ID
                    && raft.election_elapsed < raft.election_timeout()
                    && m.term > raft.term
                    && m.context.as_ref() != raft::CAMPAIGN_TRANSFER;
                if in_lease {
                    let ago = if self.stepping() {
                        // The clock stands still in step mode: time is what the learner ticked.
                        format!("{} ticks", raft.election_elapsed)
                    } else {
                        let ms = self.tick_interval().as_millis()
                            * u128::try_from(raft.election_elapsed).unwrap_or(u128::MAX);
                        format!("{ms} ms")
                    };
                    let heard = if raft.leader_id == raft.id {
                        "this node leads".to_string()
                    } else {
                        format!("it heard from leader {} {ago} ago", raft.leader_id)
                    };
                    format!(
                        "node {peer} asks for a {pre}, term {term}: no answer, {heard}, within \
                         the election timeout (check-quorum's lease)"
                    )
                } else {
                    format!("node {peer} asks for a {pre}, term {term}")
                }
            }
            (MessageType::MsgRequestPreVote | MessageType::MsgRequestVote, false) => {
                format!("asks node {peer} for a {pre}, term {term}")
            }
            (_, true) => format!("node {peer} {verdict} us a {pre}, term {term}"),
            (_, false) if m.reject => {
                format!(
                    "{verdict} node {peer} a {pre}, term {term}{}",
                    self.refusal_reason(peer, term)
                )
            }
            (_, false) => format!("{verdict} node {peer} a {pre}, term {term}"),
        };
        self.event(text);
    }

    /// Why this node refused `candidate` a (pre-)vote for `term`, as ": ..." (empty when it
    /// cannot tell): Raft's election restriction, or a vote already given in that term.
    fn refusal_reason(&self, candidate: u64, term: u64) -> String {
        let raft = &self.raw.raft;
        let ours = (raft.raft_log.last_term(), raft.raft_log.last_index());
        match self.seen.vote_asks.get(&candidate) {
            Some(&theirs) if theirs < ours => format!(
                ": its log (last entry of term {}, index {}) is behind ours (term {}, index \
                 {}), and a voter elects no one whose log may lack a committed entry",
                theirs.0, theirs.1, ours.0, ours.1
            ),
            _ if raft.term == term && raft.vote != 0 && raft.vote != candidate => {
                format!(": it already voted for node {} in term {term}", raft.vote)
            }
            _ => String::new(),
        }
    }

    /// Turns role, term and leader changes into events, and fails what a lost
    /// leadership can no longer finish.
    pub(super) fn observe_leadership(&mut self) {
        let raft = &self.raw.raft;
        let (role, term, leader) = (Role::from(raft.state), raft.term, raft.leader_id);
        // raft-rs steps a leader down in its own term only when check-quorum found no
        // majority active within an election timeout; every other way out raises the term.
        if self.seen.role == Role::Leader
            && role == Role::Follower
            && term == self.seen.term
            && self.removed.is_none()
        {
            self.event(
                "stepped down: check-quorum heard from no majority within the election timeout"
                    .to_string(),
            );
        }
        if term != self.seen.term {
            self.seen.term = term;
            self.event(format!("term {term} begins"));
        }
        let now = std::time::Instant::now();
        if role != self.seen.role {
            let was = self.seen.role;
            self.seen.role = role;
            self.event(format!("became {role}"));
            if was == Role::Leader {
                self.writes.fail_all(&RequestError::LeadershipLost);
                self.reads.fail_all(&RequestError::LeadershipLost);
                self.expire_change(std::time::Instant::now(), true);
            }
        }
        self.liveness.leader(leader, now);
        if leader != self.seen.leader {
            self.seen.leader = leader;
            if leader == 0 {
                self.event("no known leader".to_string());
            } else {
                self.event(format!("leader is node {leader} (term {term})"));
            }
        }
    }

    /// An event, unless it is the same as the last one given this way (a condition that
    /// repeats on every message is said once).
    pub(super) fn note_once(&mut self, text: String) {
        if self.said_once.as_ref() != Some(&text) {
            self.said_once = Some(text.clone());
            self.event(text);
        }
    }

    pub(super) fn event(&mut self, text: String) {
        tracing::info!("{text}");
        if self.shared.watch.active() {
            self.shared
                .watch
                .publish(Kind::Event(kv_proto::watch::Event { text: text.clone() }));
        }
        let events = Arc::make_mut(&mut self.events);
        if events.len() == EVENT_HISTORY {
            events.pop_front();
        }
        events.push_back(Event {
            at: SystemTime::now(),
            text,
        });
    }

    /// Publishes the status view.
    pub(super) fn publish(&mut self) {
        let me = self.raw.raft.id;
        let is_leader = self.raw.raft.state == StateRole::Leader;
        let mut peers = Vec::new();
        let mut changes = Vec::new();
        // Members with their roles; a node still waiting to be added shows its --peers.
        let (listed, joint, joining) = self.membership.with(|m| {
            let listed: Vec<(Option<MemberRole>, Peer)> = if m.is_empty() {
                m.links().into_iter().map(|p| (None, p)).collect()
            } else {
                m.members()
                    .into_iter()
                    .filter_map(|(_, role, peer)| Some((Some(role), peer?.clone())))
                    .collect()
            };
            (listed, m.is_joint(), m.is_empty())
        });
        for (role, p) in &listed {
            let last_heard = self.last_heard.get(&p.id).copied();
            let link_up = (p.id != me).then(|| self.transport.link_up(p.id)).flatten();
            // A link coming up for the first time is news; "down" before it ever came up
            // is just start-up.
            let before = link_up.and_then(|up| self.seen.peers_up.insert(p.id, up));
            if let Some(up) = link_up
                && before != Some(up)
                && (up || before.is_some())
            {
                changes.push(format!(
                    "link to node {} {}",
                    p.id,
                    if up { "up" } else { "down" }
                ));
            }
            let progress = if is_leader && p.id != me {
                self.raw.raft.prs().get(p.id).map(|pr| Progress {
                    matched: pr.matched,
                    next: pr.next_idx,
                    state: match pr.state {
                        raft::ProgressState::Probe => "Probe",
                        raft::ProgressState::Replicate => "Replicate",
                        raft::ProgressState::Snapshot => "Snapshot",
                    },
                    inflight: pr.ins.count(),
                })
            } else {
                None
            };
            peers.push(PeerView {
                id: p.id,
                peer_addr: p.peer_addr.clone(),
                api_addr: p.api_addr.clone(),
                is_self: p.id == me,
                role: *role,
                last_heard,
                link_up,
                progress,
            });
        }
        for change in changes {
            self.event(change);
        }
        let raft = &self.raw.raft;
        let conf = raft.prs().conf().to_conf_state();
        let (applied, key_count, data_bytes) = {
            let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
            (sm.applied(), sm.len(), sm.data_bytes())
        };
        let status = NodeStatus {
            id: me,
            role: raft.state.into(),
            term: raft.term,
            vote: raft.vote,
            leader_id: raft.leader_id,
            commit_index: raft.raft_log.committed,
            applied_index: applied,
            last_index: raft.raft_log.last_index(),
            persisted_index: raft.raft_log.persisted,
            first_index: raft.raft_log.first_index(),
            snapshot_index: self.last_snapshot,
            key_count,
            data_bytes,
            snapshot_in_progress: self.snapshot_task.as_ref().map(|t| t.index()),
            snapshot_stall_us: u64::try_from(self.snapshot_stall.as_micros()).unwrap_or(u64::MAX),
            log_cache_bytes: self.storage.memory_bytes(),
            peers,
            events: Arc::clone(&self.events),
            frozen: self.frozen.is_some(),
            slow_factor: self.slow_factor,
            joint,
            last_joint: self.last_joint.clone(),
            joining,
            removed_at: self.removed,
            incarnation: self.storage.incarnation(),
            election_elapsed: raft.election_elapsed as u64,
            election_timeout: raft.randomized_election_timeout() as u64,
            heartbeat_elapsed: raft.heartbeat_elapsed() as u64,
            heartbeat_timeout: raft.heartbeat_timeout() as u64,
            tick_ms: u64::try_from(self.tick_interval().as_millis()).unwrap_or(u64::MAX),
            voters: conf.voters.clone(),
            learners: conf.learners.clone(),
            voters_outgoing: conf.voters_outgoing.clone(),
            refused: self
                .shared
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            step_mode: self.stepping(),
            held: self.step.as_ref().map(|s| s.listed()).unwrap_or_default(),
            held_count: self.step.as_ref().map_or(0, |s| s.count()),
            protections: self.protections,
            liveness: self.liveness.view(std::time::Instant::now()),
        };
        let watch = &self.shared.watch;
        let state = watch.active().then(|| watch.state_of(&status));
        // The status first: a watcher that starts in between reads its first state from it,
        // so it has this state either there or in the record below.
        self.status_tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
        if let Some(state) = state
            && self.watched_state.as_ref() != Some(&state)
        {
            self.watched_state = Some(state.clone());
            watch.publish(Kind::State(state));
        }
    }
}
