//! Operator commands from the dashboard (start a campaign, transfer leadership) and the
//! time faults (freeze, thaw, slow motion), which act on where ticks come from.

use std::sync::atomic::Ordering;
use std::time::Instant;

use raft::StateRole;

use super::NodeDriver;
use super::handle::{AdminCommand, MAX_SLOW_FACTOR, TimeControl};

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
                let waited = match self.held.len() {
                    0 => "nothing waited".to_string(),
                    1 => "1 message or request that waited is handled now".to_string(),
                    n => format!("{n} messages and requests that waited are handled now"),
                };
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
