//! Operator commands from the dashboard: start a campaign, transfer leadership.

use raft::StateRole;

use super::NodeDriver;
use super::handle::AdminCommand;

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
}
