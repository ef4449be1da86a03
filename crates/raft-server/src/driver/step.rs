//! Step mode: the learner's hand on the clock and on every message. While it is on, the
//! node does not tick (its election and heartbeat timers stand still) and every Raft
//! message it sends is held here, in send order, instead of going to the transport; the
//! learner delivers them one at a time (`step next`), drops them (`step drop`) or advances
//! the node by one tick (`step tick`). Everything else goes on: received messages are
//! stepped, client requests are taken (a write's appends then wait to be delivered), and
//! the dashboard, `Status` and the admin calls answer. `step off` sends what is held, in
//! order, and starts the clock again.
//!
//! A held message gets its watch id when it is held: its `send` record (fate `held`) and,
//! once delivered, its `send` (fate `delivered`) and receipt records carry the same id.

use std::collections::VecDeque;

use kv_proto::watch as pb;
use raft::eraftpb::{Message, MessageType};

use super::NodeDriver;
use crate::transport::tap::{Direction, Fate};

/// Most messages held at once; past it new ones are dropped (Raft sends again), so a
/// cluster left in step mode under load cannot grow without bound.
pub const MAX_HELD: usize = 4096;
/// Held messages listed in a state record or an answer (the oldest); the count says all.
pub const LISTED: usize = 64;

/// What the learner asks of step mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepControl {
    /// Stop the clock and hold every message sent.
    On,
    /// Send what is held, in order, and start the clock.
    Off,
    /// Deliver a held message (`None`: the oldest).
    Next(Option<u64>),
    /// Drop a held message (`None`: the oldest).
    Drop(Option<u64>),
    /// Advance the node by one tick.
    Tick,
    /// Change nothing; say what is held.
    List,
}

/// What step mode looks like after a control.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepAnswer {
    /// What happened, in a line.
    pub said: String,
    /// Step mode is on.
    pub step_mode: bool,
    /// The oldest held messages (at most [`LISTED`]).
    pub held: Vec<pb::HeldMessage>,
    /// How many are held.
    pub held_count: usize,
    /// The node's role, term and election timer after the control.
    pub role: &'static str,
    pub term: u64,
    pub election_elapsed: u64,
    pub election_timeout: u64,
}

/// One held message.
struct Held {
    hold_id: u64,
    held_us: u64,
    msg_id: u64,
    msg: Message,
}

/// Step mode's state: present while it is on.
#[derive(Default)]
pub(super) struct Stepping {
    held: VecDeque<Held>,
    next_hold: u64,
}

impl Stepping {
    /// The oldest held messages as the watch and `Status` show them.
    pub(super) fn listed(&self) -> Vec<pb::HeldMessage> {
        self.held.iter().take(LISTED).map(view).collect()
    }

    /// How many are held.
    pub(super) fn count(&self) -> usize {
        self.held.len()
    }

    fn take(&mut self, hold_id: Option<u64>) -> Option<Held> {
        let at = match hold_id {
            None => 0,
            Some(id) => self.held.iter().position(|h| h.hold_id == id)?,
        };
        self.held.remove(at)
    }
}

fn view(h: &Held) -> pb::HeldMessage {
    pb::HeldMessage {
        hold_id: h.hold_id,
        held_us: h.held_us,
        msg: Some(crate::watch::peer_message(&h.msg, "held", 0, h.msg_id)),
    }
}

/// `MsgAppend 1→2 term 3` and what it carries.
fn describe(m: &Message) -> String {
    let t = crate::transport::tap::type_name(crate::transport::tap::type_index(m.get_msg_type()));
    let mut s = format!("{t} {}→{} term {}", m.from, m.to, m.term);
    match m.get_msg_type() {
        MessageType::MsgAppend => {
            s.push_str(&format!(
                " after {}/{} with {} entries, commit {}",
                m.index,
                m.log_term,
                m.entries.len(),
                m.commit
            ));
        }
        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote => {
            s.push_str(&format!(" (log ends {}/{})", m.index, m.log_term));
        }
        MessageType::MsgRequestVoteResponse
        | MessageType::MsgRequestPreVoteResponse
        | MessageType::MsgAppendResponse => {
            s.push_str(if m.reject { " rejected" } else { " granted" });
        }
        _ => {}
    }
    s
}

impl NodeDriver {
    /// True while step mode holds this node's messages.
    pub(super) fn stepping(&self) -> bool {
        self.step.is_some()
    }

    /// In step mode: holds `msgs` instead of sending them.
    pub(super) fn hold(&mut self, msgs: Vec<Message>) {
        let Some(step) = self.step.as_mut() else {
            self.transport.send(msgs);
            return;
        };
        let watch = &self.shared.watch;
        for msg in msgs {
            let msg_id = watch.next_msg_id();
            if step.held.len() >= MAX_HELD {
                // Raft sends again what matters.
                watch.message(Direction::Out, &msg, Fate::Dropped, msg_id);
                continue;
            }
            step.next_hold += 1;
            watch.message(Direction::Out, &msg, Fate::Held, msg_id);
            step.held.push_back(Held {
                hold_id: step.next_hold,
                held_us: crate::watch::now_us(),
                msg_id,
                msg,
            });
        }
    }

    /// Handles a step control; the answer says what happened and what is held.
    pub(super) fn step_control(&mut self, ctl: StepControl) -> StepAnswer {
        let said = match ctl {
            StepControl::On if self.step.is_some() => "step mode is already on".to_string(),
            StepControl::On => {
                self.step = Some(Stepping::default());
                "step mode on: the clock stopped, every Raft message this node sends is held"
                    .to_string()
            }
            StepControl::Off => match self.step.take() {
                None => "step mode is not on".to_string(),
                Some(step) => {
                    let n = step.held.len();
                    let msgs = step.held.into_iter().map(|h| (h.msg, h.msg_id)).collect();
                    self.transport.send_numbered(msgs);
                    format!("step mode off: {n} held messages sent in order, the clock runs")
                }
            },
            StepControl::Next(id) | StepControl::Drop(id) => {
                let deliver = matches!(ctl, StepControl::Next(_));
                match self.step.as_mut() {
                    None => "not in step mode: `step on` first".to_string(),
                    Some(step) => match step.take(id) {
                        None if id.is_some() => {
                            format!("no held message #{} on this node", id.unwrap_or_default())
                        }
                        None => "nothing is held on this node".to_string(),
                        Some(h) => {
                            let what = describe(&h.msg);
                            if deliver {
                                self.transport.send_numbered(vec![(h.msg, h.msg_id)]);
                                format!("delivered #{}: {what}", h.hold_id)
                            } else {
                                let watch = &self.shared.watch;
                                watch.message(Direction::Out, &h.msg, Fate::Dropped, h.msg_id);
                                if h.msg.get_msg_type() == MessageType::MsgSnapshot {
                                    // raft-rs holds the peer until it hears of its snapshot.
                                    self.raw
                                        .report_snapshot(h.msg.to, raft::SnapshotStatus::Failure);
                                }
                                format!("dropped #{}: {what}", h.hold_id)
                            }
                        }
                    },
                }
            }
            StepControl::Tick if self.step.is_none() => {
                "not in step mode: `step on` first (the clock runs by itself)".to_string()
            }
            StepControl::Tick if self.removed.is_some() => {
                "removed from the cluster: it takes no part, a tick does nothing".to_string()
            }
            StepControl::Tick => {
                let leader = self.raw.raft.state == raft::StateRole::Leader;
                let heartbeat_before = self.raw.raft.heartbeat_elapsed();
                self.tick_raft();
                let raft = &self.raw.raft;
                let mut s = format!(
                    "one tick: election timer {} of {}",
                    raft.election_elapsed,
                    raft.randomized_election_timeout()
                );
                // raft-rs sets a timer back to 0 when it fires.
                if leader && raft.heartbeat_elapsed() == 0 && heartbeat_before > 0 {
                    s.push_str(", heartbeat timer fired: heartbeats held for delivery");
                } else if !leader && raft.election_elapsed == 0 {
                    let role: crate::status::Role = raft.state.into();
                    s.push_str(&format!(
                        ", the election timer fired: now {} (its requests are held)",
                        role.as_str()
                    ));
                }
                s
            }
            StepControl::List => String::new(),
        };
        self.step_answer(said)
    }

    /// [`NodeDriver::step_control`], said in the events; step mode going on or off is a
    /// `fault` record too (a notable moment of a recording).
    pub(super) fn step_and_say(&mut self, ctl: StepControl) -> StepAnswer {
        let answer = self.step_control(ctl);
        if !answer.said.is_empty() && ctl != StepControl::List {
            if matches!(ctl, StepControl::On | StepControl::Off) {
                self.shared
                    .watch
                    .publish(pb::watch_record::Kind::Fault(pb::FaultChange {
                        text: answer.said.clone(),
                    }));
            }
            self.event(answer.said.clone());
        }
        answer
    }

    fn step_answer(&self, said: String) -> StepAnswer {
        let raft = &self.raw.raft;
        let role: crate::status::Role = raft.state.into();
        StepAnswer {
            said,
            step_mode: self.step.is_some(),
            held: self.step.as_ref().map(Stepping::listed).unwrap_or_default(),
            held_count: self.step.as_ref().map_or(0, Stepping::count),
            role: role.as_str(),
            term: raft.term,
            election_elapsed: raft.election_elapsed as u64,
            election_timeout: raft.randomized_election_timeout() as u64,
        }
    }

    /// The answer to a step control that cannot be taken now (frozen, stopping).
    pub(super) fn step_refused(&self, said: &str) -> StepAnswer {
        self.step_answer(said.to_string())
    }
}
