//! The step commands (`step on|off|next|drop`, `step tick ID`): step mode on every member,
//! through the admin API, reported node by node. Shared by the one-shot CLI, the
//! interactive client and the cluster view.
//!
//! Held messages live on the node that sent them; `next` and `drop` without a message named
//! take the oldest held anywhere in the cluster (by the time it was held), so that
//! delivering one at a time replays the exchange in the order it was sent.

use crate::admin::{ClusterMap, Ending, Report, call_failed, call_timed_out};
use crate::client::SmartClient;
use kv_proto::admin::{self as pb};
use kv_proto::watch::HeldMessage;

/// A step command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepCommand {
    /// Every member: clock stopped, messages held.
    On,
    /// Every member: what is held is sent in order, the clock runs.
    Off,
    /// Deliver the oldest held message, or this one (`(node, hold id)`).
    Next(Option<(u64, u64)>),
    /// Drop the oldest held message, or this one.
    Drop(Option<(u64, u64)>),
    /// One tick of a node.
    Tick(u64),
}

/// A held message and the node holding it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldAt {
    /// The node that sent it (and holds it).
    pub node: u64,
    /// The message.
    pub held: HeldMessage,
}

/// Runs a step command against the cluster.
pub async fn run(client: &SmartClient, cmd: StepCommand) -> Report {
    let map = match ClusterMap::discover_some(client).await {
        Ok(map) => map,
        Err(report) => return report,
    };
    let mut report = Report::new();
    match cmd {
        StepCommand::On | StepCommand::Off => {
            let action = if cmd == StepCommand::On { "on" } else { "off" };
            for id in map.ids() {
                match call(client, &map, id, action, 0).await {
                    Ok(a) if a.said.starts_with("frozen") => {
                        report.fail(Ending::Refused, format!("node {id} refused: {}", a.said));
                    }
                    Ok(a) => report.say(format!("node {id}: {}", a.said)),
                    Err((ending, text)) => report.fail(ending, text),
                }
            }
        }
        StepCommand::Tick(id) => {
            if let Err(e) = map.require(id) {
                return Report::refused(e);
            }
            match call(client, &map, id, "tick", 0).await {
                Ok(a) if !a.step_mode => report.fail(
                    Ending::Refused,
                    format!("node {id} refused: {} (run `step on`)", a.said),
                ),
                Ok(a) if !a.said.starts_with("one tick") => {
                    report.fail(Ending::Refused, format!("node {id} refused: {}", a.said));
                }
                Ok(a) => report.say(format!(
                    "node {id} ({} in term {}): {}",
                    a.role, a.term, a.said
                )),
                Err((ending, text)) => report.fail(ending, text),
            }
        }
        StepCommand::Next(which) | StepCommand::Drop(which) => {
            let action = if matches!(cmd, StepCommand::Next(_)) {
                "next"
            } else {
                "drop"
            };
            let (node, hold_id) = match which {
                Some((node, id)) => {
                    if let Err(e) = map.require(node) {
                        return Report::refused(e);
                    }
                    (node, id)
                }
                None => {
                    let (held, stepping) = held_all(client, &map).await;
                    match held.first() {
                        Some(h) => (h.node, h.held.hold_id),
                        None if stepping => {
                            report.fail(
                                Ending::Refused,
                                "nothing is held: no message waits to be delivered (`step tick ID` \
                                 advances a node's clock)",
                            );
                            return report;
                        }
                        None => {
                            return Report::refused(
                                "not in step mode: run `step on` first".to_string(),
                            );
                        }
                    }
                }
            };
            match call(client, &map, node, action, hold_id).await {
                Ok(a) if a.said.starts_with("delivered") || a.said.starts_with("dropped") => {
                    let (left, _) = held_all(client, &map).await;
                    report.say(format!(
                        "node {node}: {} ({} still held)",
                        a.said,
                        left.len()
                    ));
                }
                Ok(a) => report.fail(Ending::Refused, format!("node {node}: {}", a.said)),
                Err((ending, text)) => report.fail(ending, text),
            }
        }
    }
    report
}

/// Delivers (`deliver`) or drops the message `hold_id` held on `node`; what the node said.
pub async fn act(
    client: &SmartClient,
    map: &ClusterMap,
    node: u64,
    hold_id: u64,
    deliver: bool,
) -> Result<String, String> {
    let action = if deliver { "next" } else { "drop" };
    call(client, map, node, action, hold_id)
        .await
        .map(|a| a.said)
        .map_err(|(_, why)| why)
}

/// One tick of `node`; what it said.
pub async fn tick(client: &SmartClient, map: &ClusterMap, node: u64) -> Result<String, String> {
    call(client, map, node, "tick", 0)
        .await
        .map(|a| a.said)
        .map_err(|(_, why)| why)
}

/// Every message held on the reachable members, oldest first; and whether any member is
/// in step mode.
pub async fn held_all(client: &SmartClient, map: &ClusterMap) -> (Vec<HeldAt>, bool) {
    let mut all = Vec::new();
    let mut stepping = false;
    for id in map.ids() {
        if let Ok(a) = call(client, map, id, "list", 0).await {
            stepping |= a.step_mode;
            all.extend(a.held.into_iter().map(|held| HeldAt { node: id, held }));
        }
    }
    all.sort_by_key(|h| (h.held.held_us, h.node, h.held.hold_id));
    (all, stepping)
}

async fn call(
    client: &SmartClient,
    map: &ClusterMap,
    id: u64,
    action: &str,
    hold_id: u64,
) -> Result<pb::StepReply, (Ending, String)> {
    let addr = map.addr(id).unwrap_or_default().to_string();
    let mut admin = client
        .admin_at(&addr)
        .map_err(|e| (Ending::Refused, e.to_string()))?;
    let request = pb::StepRequest {
        action: action.to_string(),
        hold_id,
    };
    // The node's driver answers within 2 s.
    let bound = client.timeout().min(std::time::Duration::from_secs(4));
    match tokio::time::timeout(bound, admin.step(request)).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(call_failed(id, &addr, &status, "step mode")),
        Err(_) => Err(call_timed_out(id, &addr, bound)),
    }
}
