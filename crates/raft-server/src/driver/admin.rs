//! Operator commands from the dashboard (start a campaign, transfer leadership) and the
//! time faults (freeze, thaw, slow motion), which act on where ticks come from.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use raft::StateRole;

use super::NodeDriver;
use super::handle::{AdminCommand, DriverMsg, MAX_SLOW_FACTOR, TimeControl};

impl NodeDriver {
    pub(super) fn admin(&mut self, cmd: AdminCommand) -> String {
        match cmd {
            AdminCommand::Campaign => {
                if self.raw.raft.state == StateRole::Leader {
                    return "already the leader: no campaign needed".to_string();
                }
                match self.raw.campaign() {
                    Ok(()) => "campaign started (pre-vote first)".to_string(),
                    Err(e) => format!("campaign refused: {e}"),
                }
            }
            AdminCommand::TransferLeader => {
                if self.raw.raft.state != StateRole::Leader {
                    return "only the leader can transfer leadership".to_string();
                }
                let me = self.raw.raft.id;
                let best = self
                    .raw
                    .raft
                    .prs()
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .max_by_key(|(id, pr)| (pr.matched, std::cmp::Reverse(**id)))
                    .map(|(id, pr)| (*id, pr.matched));
                match best {
                    Some((to, matched)) => {
                        self.raw.transfer_leader(to);
                        format!("transferring leadership to node {to} (its log reaches {matched})")
                    }
                    None => "no follower to transfer leadership to".to_string(),
                }
            }
        }
    }

    /// Freezes, thaws or slows this node; the answer is a line for the operator and the
    /// events timeline.
    pub(super) fn time_control(&mut self, ctl: TimeControl) -> String {
        match ctl {
            TimeControl::Freeze => {
                if self.frozen.is_some() {
                    return "already frozen".to_string();
                }
                self.frozen = Some(Instant::now());
                self.shared.frozen.store(true, Ordering::Relaxed);
                "frozen (fault): no ticks, no Raft messages, no client requests until thawed"
                    .to_string()
            }
            TimeControl::Thaw => {
                let Some(since) = self.frozen.take() else {
                    return "not frozen: nothing to thaw".to_string();
                };
                self.shared.frozen.store(false, Ordering::Relaxed);
                // A paused process's client and peer connections are all ready at once
                // when it resumes, and it may read either first. The worst order for a
                // lease: client requests first, answered in a loop of their own, then what
                // the peers sent (each in order).
                let (peers, clients): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|m| matches!(m, DriverMsg::Raft(_) | DriverMsg::Unreachable(_)));
                let waited = match (clients.len(), peers.len()) {
                    (0, 0) => "nothing waited".to_string(),
                    (c, p) => format!(
                        "handled now: {c} request{} that waited, then {p} peer message{}",
                        plural(c),
                        plural(p)
                    ),
                };
                self.thawed_requests = clients.len();
                self.held = clients;
                self.held.extend(peers);
                format!(
                    "thawed after {:.1} s: {waited}",
                    since.elapsed().as_secs_f64()
                )
            }
            TimeControl::Slow(factor) => {
                let factor = factor.clamp(1, MAX_SLOW_FACTOR);
                self.slow_factor = factor;
                self.shared.slow_factor.store(factor, Ordering::Relaxed);
                let tick = self.tick_interval();
                let election = tick.saturating_mul(
                    u32::try_from(self.raw.raft.election_timeout()).unwrap_or(u32::MAX),
                );
                if factor == 1 {
                    format!("normal speed: a tick every {} ms", tick.as_millis())
                } else {
                    format!(
                        "slow motion x{factor}: a tick every {} ms, elections after {:.1}-{:.1} s",
                        tick.as_millis(),
                        election.as_secs_f64(),
                        election.as_secs_f64() * 2.0
                    )
                }
            }
        }
    }
}

/// "s" unless there is one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
