//! A crash in the middle of an election, at the worst moment (the `step` fault does it
//! first when chaos started the cluster): in step mode the two followers campaign in the
//! same term, the leader votes for the first and is SIGKILLed and restarted before the
//! second's request reaches it. A node that keeps its vote on disk refuses the second; one
//! that forgets it (`--unsafe forget-vote`) grants it too, and two leaders lead one term.
//!
//! The staging needs plain Raft: without `--no-pre-vote` the followers only pre-campaign,
//! and without `--no-check-quorum` the leader ignores requests while its lease holds; then
//! the attempt ends where it stops, and the step fault goes on as usual. The followers'
//! logs are first brought level with the leader's (its appends delivered, the answers held:
//! no write commits, so the clients, each waiting for its write, send hardly any new one),
//! or the leader would refuse them as behind.

use std::time::Duration;

use tokio::time::Instant;

use crate::admin::ClusterMap;
use crate::client::SmartClient;
use crate::spawned::SpawnedCluster;
use crate::step::{self, HeldAt};

/// Most ticks a follower is given to campaign (its election timeout is at most twice the
/// default 10 ticks, and a delivered append starts it again).
const MAX_TICKS: usize = 60;

/// Stages it once; says how far it got (for the nemesis's log).
pub async fn stage(client: &SmartClient, map: &ClusterMap, cluster: &mut SpawnedCluster) -> String {
    match try_stage(client, map, cluster).await {
        Ok(said) | Err(said) => said,
    }
}

async fn try_stage(
    client: &SmartClient,
    map: &ClusterMap,
    cluster: &mut SpawnedCluster,
) -> Result<String, String> {
    let statuses = client.status_all_within(Duration::from_millis(500)).await;
    let nodes: Vec<_> = statuses
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .collect();
    let leader = nodes
        .iter()
        .find(|s| s.role == "Leader")
        .map(|s| s.id)
        .ok_or("no leader to stage it with")?;
    let followers: Vec<u64> = map.ids().into_iter().filter(|id| *id != leader).collect();
    let [first, second] = followers[..] else {
        return Err(format!("{} followers, not 2", followers.len()));
    };
    // Level logs: what the leader sent goes to the followers; their answers stay held.
    for _ in 0..4 {
        let (held, _) = step::held_all(client, map).await;
        let out: Vec<&HeldAt> = held.iter().filter(|h| h.node == leader).collect();
        if out.is_empty() {
            break;
        }
        for h in out {
            let _ = step::act(client, map, h.node, h.held.hold_id, true).await;
        }
    }
    let term = campaign(client, map, first).await?;
    if campaign(client, map, second).await? != term {
        return Err("the two campaigned in different terms".into());
    }
    // The first candidate's request to the leader, and its answer.
    deliver(client, map, first, leader, "MsgRequestVote").await?;
    if deliver(client, map, leader, first, "MsgRequestVoteResponse").await? {
        return Err(format!("node {leader} refused node {first} its vote"));
    }
    // The voter crashes and comes back (outside step mode), then hears the second.
    cluster.kill(leader);
    cluster
        .spawn(leader)
        .map_err(|e| format!("cannot restart node {leader}: {e}"))?;
    wait_up(client, map, leader).await?;
    deliver(client, map, second, leader, "MsgRequestVote").await?;
    // Restarted outside step mode, the voter answers at once.
    let both = two_leaders(client, first, second, term).await;
    Ok(format!(
        "nodes {first} and {second} campaigned in term {term}; node {leader} voted for \
         {first}, was SIGKILLed and restarted, and was asked by {second}: {}",
        if both {
            format!("it voted again, and both lead term {term}")
        } else {
            "it refused".to_string()
        }
    ))
}

/// Ticks `id` until it holds a vote request; the request's term.
async fn campaign(client: &SmartClient, map: &ClusterMap, id: u64) -> Result<u64, String> {
    for _ in 0..MAX_TICKS {
        step::tick(client, map, id).await?;
        let (held, _) = step::held_all(client, map).await;
        let from = |kind: &str| {
            find_held(&held, id, kind, None)
                .and_then(|h| h.held.msg.as_ref())
                .map(|m| m.term)
        };
        if let Some(term) = from("MsgRequestVote") {
            return Ok(term);
        }
        if from("MsgRequestPreVote").is_some() {
            return Err(format!("node {id} pre-campaigns (pre-vote is on)"));
        }
    }
    Err(format!("node {id} did not campaign in {MAX_TICKS} ticks"))
}

/// Whether nodes `a` and `b` both say they lead term `term` (asked for up to 1 s).
async fn two_leaders(client: &SmartClient, a: u64, b: u64, term: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let reports = client.status_all_within(Duration::from_millis(300)).await;
        let leads = |id: u64| {
            reports.iter().any(|r| {
                r.status
                    .as_ref()
                    .is_ok_and(|s| s.id == id && s.role == "Leader" && s.term == term)
            })
        };
        if leads(a) && leads(b) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Delivers the held `kind` from `from` to `to`, once it is held (within 2 s); whether it
/// was a rejection.
async fn deliver(
    client: &SmartClient,
    map: &ClusterMap,
    from: u64,
    to: u64,
    kind: &str,
) -> Result<bool, String> {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let (held, _) = step::held_all(client, map).await;
        if let Some(h) = find_held(&held, from, kind, Some(to)) {
            step::act(client, map, from, h.held.hold_id, true).await?;
            return Ok(h.held.msg.as_ref().is_some_and(|m| m.reject));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no {kind} from node {from} to node {to} was held"))
}

/// The held `kind` that node `from` sent (to `to`, when given).
fn find_held<'a>(held: &'a [HeldAt], from: u64, kind: &str, to: Option<u64>) -> Option<&'a HeldAt> {
    held.iter().find(|h| {
        h.node == from
            && h.held
                .msg
                .as_ref()
                .is_some_and(|m| m.msg_type == kind && to.is_none_or(|to| m.to == to))
    })
}

/// Waits (up to 10 s) until node `id` answers `Status` again.
async fn wait_up(client: &SmartClient, map: &ClusterMap, id: u64) -> Result<(), String> {
    let addr = map.addr(id).unwrap_or_default().to_string();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let reports = client.status_all_within(Duration::from_millis(300)).await;
        if reports
            .iter()
            .any(|r| r.api_addr == addr && r.status.is_ok())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("node {id} did not come back within 10 s"))
}
