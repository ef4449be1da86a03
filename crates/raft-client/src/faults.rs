//! The fault commands (`fault isolate|cut|drop|delay|freeze|thaw|heal|list`, `slow`): checks
//! their arguments, sends each node involved its part through the admin API, and reports
//! node by node. Shared by the one-shot CLI and the TUI.
//!
//! A cut between A and B is set on both sides; `heal ID` clears node ID's faults and the
//! cuts other nodes hold towards it; `heal` alone clears every node's faults. Slow motion is
//! a speed, not a fault: `heal` leaves it, `slow 1` ends it.

use kv_proto::admin::fault_request::Action;
use kv_proto::admin::{self as pb, Empty};
use serde::Serialize;

use crate::admin::{ClusterMap, Ending, Report, call_failed, call_timed_out};
use crate::client::{SmartClient, describe_at};

/// Most a delay may be, in milliseconds (the server refuses more too).
pub const MAX_DELAY_MS: i64 = 10_000;
/// Largest slow-motion factor.
pub const MAX_SLOW_FACTOR: i64 = 100;

/// A fault command, as typed. Numbers are kept signed so that a negative one gets a clear
/// "out of range" refusal (exit 4) rather than a parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCommand {
    /// Cut every link of a node.
    Isolate(u64),
    /// Cut the link between two nodes, both directions.
    Cut(u64, u64),
    /// Drop the first node's messages to the second only (`cut A B --one-way`).
    CutOneWay(u64, u64),
    /// A node drops this percentage of its peer messages.
    Drop(u64, i64),
    /// A node delays its peer messages by this many ms.
    Delay(u64, i64),
    /// A node stops ticking and handling messages and requests.
    Freeze(u64),
    /// A frozen node resumes.
    Thaw(u64),
    /// Clear one node's faults (and the cuts towards it), or every node's.
    Heal(Option<u64>),
    /// Every node's faults.
    List {
        /// As the contract's JSON array.
        json: bool,
    },
    /// Every node's tick interval times this factor.
    Slow(i64),
}

/// One element of `fault list --json` (the contract's fields).
#[derive(Debug, Serialize)]
struct FaultJson<'a> {
    id: u64,
    isolated: bool,
    cut: &'a [u64],
    /// One-way cuts: its messages to these nodes dropped, and theirs to it.
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    cut_out: &'a [u64],
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    cut_in: &'a [u64],
    drop_percent: u32,
    delay_ms: u32,
    frozen: bool,
    slow_factor: u32,
}

/// Runs a fault command against the cluster.
pub async fn run(client: &SmartClient, cmd: &FaultCommand) -> Report {
    if let Some(refusal) = check_numbers(cmd) {
        return Report::refused(refusal);
    }
    let map = match ClusterMap::discover_some(client).await {
        Ok(map) => map,
        Err(report) => return report,
    };
    let mut report = Report::new();
    // Every id named must exist before anything is sent: a refusal changes nothing.
    for id in named_ids(cmd) {
        if let Err(e) = map.require(id) {
            return Report::refused(e);
        }
    }
    match *cmd {
        FaultCommand::Isolate(id) => {
            send(client, &map, id, Action::Isolate(Empty {}), &mut report).await;
        }
        FaultCommand::Cut(a, b) => {
            send(client, &map, a, Action::Cut(b), &mut report).await;
            send(client, &map, b, Action::Cut(a), &mut report).await;
        }
        // Set on both sides, so that both say so and either one drops them.
        FaultCommand::CutOneWay(a, b) => {
            send(client, &map, a, Action::CutOut(b), &mut report).await;
            send(client, &map, b, Action::CutIn(a), &mut report).await;
        }
        FaultCommand::Drop(id, p) => {
            let p = u32::try_from(p).unwrap_or(u32::MAX);
            send(client, &map, id, Action::DropPercent(p), &mut report).await;
        }
        FaultCommand::Delay(id, ms) => {
            let ms = u32::try_from(ms).unwrap_or(u32::MAX);
            send(client, &map, id, Action::DelayMs(ms), &mut report).await;
        }
        FaultCommand::Freeze(id) => {
            send(client, &map, id, Action::Freeze(Empty {}), &mut report).await;
        }
        FaultCommand::Thaw(id) => {
            send(client, &map, id, Action::Thaw(Empty {}), &mut report).await;
        }
        FaultCommand::Heal(Some(id)) => {
            send(client, &map, id, Action::Heal(Empty {}), &mut report).await;
            // The node involved is `id`; a bystander that cannot be reached holds no cut that
            // matters now (a restart clears it), so it is mentioned, not failed on.
            for other in map.ids().into_iter().filter(|o| *o != id) {
                match call(client, &map, other, Action::Uncut(id)).await {
                    Ok(state) if !state.changed.is_empty() => {
                        report.say(format!("node {other}: {}", state.changed));
                    }
                    Ok(_) => {}
                    Err((Ending::Unreachable, _)) => report.say(format!(
                        "node {other} is unreachable: any cut it holds towards node {id} stays"
                    )),
                    Err((ending, text)) => report.fail(ending, text),
                }
            }
            if report.lines.is_empty() {
                report.say(format!("nothing to heal: node {id} has no fault"));
            }
        }
        FaultCommand::Heal(None) => {
            for id in map.ids() {
                send(client, &map, id, Action::Heal(Empty {}), &mut report).await;
            }
            if report.lines.is_empty() {
                report.say("nothing to heal: no node has a fault");
            }
        }
        FaultCommand::Slow(f) => {
            let f = u32::try_from(f).unwrap_or(u32::MAX);
            for id in map.ids() {
                send(client, &map, id, Action::SlowFactor(f), &mut report).await;
            }
        }
        FaultCommand::List { json } => list(client, &map, json, &mut report).await,
    }
    report
}

/// Range checks that need no cluster: refused before anything is sent.
fn check_numbers(cmd: &FaultCommand) -> Option<String> {
    match *cmd {
        FaultCommand::Drop(_, p) if !(0..=100).contains(&p) => Some(format!(
            "drop percentage {p} is out of range: give 0 to 100 (0 stops dropping)"
        )),
        FaultCommand::Delay(_, ms) if !(0..=MAX_DELAY_MS).contains(&ms) => Some(format!(
            "delay {ms} ms is out of range: give 0 to {MAX_DELAY_MS} ms (0 stops delaying)"
        )),
        FaultCommand::Slow(f) if !(1..=MAX_SLOW_FACTOR).contains(&f) => Some(format!(
            "slow-motion factor {f} is out of range: give 1 (normal speed) to {MAX_SLOW_FACTOR}"
        )),
        FaultCommand::Cut(a, b) | FaultCommand::CutOneWay(a, b) if a == b => Some(format!(
            "cannot cut node {a} from itself: name two different nodes"
        )),
        _ => None,
    }
}

fn named_ids(cmd: &FaultCommand) -> Vec<u64> {
    match *cmd {
        FaultCommand::Isolate(id)
        | FaultCommand::Drop(id, _)
        | FaultCommand::Delay(id, _)
        | FaultCommand::Freeze(id)
        | FaultCommand::Thaw(id)
        | FaultCommand::Heal(Some(id)) => vec![id],
        FaultCommand::Cut(a, b) | FaultCommand::CutOneWay(a, b) => vec![a, b],
        FaultCommand::Heal(None) | FaultCommand::List { .. } | FaultCommand::Slow(_) => vec![],
    }
}

/// Sends one node its part; reports what it said.
async fn send(
    client: &SmartClient,
    map: &ClusterMap,
    id: u64,
    action: Action,
    report: &mut Report,
) -> Option<pb::FaultState> {
    match call(client, map, id, action).await {
        Ok(state) => {
            // An empty answer: nothing changed there (healing a healthy node).
            if !state.changed.is_empty() {
                report.say(format!("node {id}: {}", state.changed));
            }
            Some(state)
        }
        Err((ending, text)) => {
            report.fail(ending, text);
            None
        }
    }
}

async fn call(
    client: &SmartClient,
    map: &ClusterMap,
    id: u64,
    action: Action,
) -> Result<pb::FaultState, (Ending, String)> {
    let addr = map.addr(id).unwrap_or_default().to_string();
    let mut admin = client
        .admin_at(&addr)
        .map_err(|e| (Ending::Refused, e.to_string()))?;
    let request = pb::FaultRequest {
        action: Some(action),
    };
    // Freezing and thawing go through the node's driver, which answers within 2 s.
    let bound = client.timeout().min(std::time::Duration::from_secs(4));
    match tokio::time::timeout(bound, admin.set_fault(request)).await {
        Ok(Ok(resp)) => Ok(resp.into_inner()),
        Ok(Err(status)) => Err(call_failed(id, &addr, &status, "admin API")),
        Err(_) => Err(call_timed_out(id, &addr, bound)),
    }
}

async fn list(client: &SmartClient, map: &ClusterMap, json: bool, report: &mut Report) {
    let bound = client.timeout().min(std::time::Duration::from_secs(2));
    let mut states = Vec::new();
    for (id, addr) in &map.nodes {
        let answer = match client.admin_at(addr) {
            Ok(mut admin) => {
                tokio::time::timeout(bound, admin.list_faults(pb::ListFaultsRequest {})).await
            }
            Err(e) => {
                report.fail(Ending::Refused, e.to_string());
                continue;
            }
        };
        match answer {
            Ok(Ok(resp)) => states.push(resp.into_inner()),
            Ok(Err(status)) => report.fail(
                Ending::Done,
                format!(
                    "node {id} ({addr}) is unreachable: {}",
                    describe_at(addr, &status)
                ),
            ),
            Err(_) => report.fail(
                Ending::Done,
                format!("node {id} ({addr}) did not answer within {bound:?}"),
            ),
        }
    }
    if states.is_empty() {
        report.ending = report.ending.and(Ending::Unreachable);
    }
    if json {
        let rows: Vec<FaultJson<'_>> = states
            .iter()
            .map(|s| FaultJson {
                id: s.id,
                isolated: s.isolated,
                cut: &s.cut,
                cut_out: &s.cut_out,
                cut_in: &s.cut_in,
                drop_percent: s.drop_percent,
                delay_ms: s.delay_ms,
                frozen: s.frozen,
                slow_factor: s.slow_factor.max(1),
            })
            .collect();
        // Plain integers and booleans always serialise.
        report.json = Some(serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_string()));
        return;
    }
    report.say(format!(
        "{:<5} {:<40} {}",
        "NODE", "FAULTS", "DROPPED/DELAYED SO FAR"
    ));
    for s in &states {
        let counts: Vec<String> = s
            .counts
            .iter()
            .map(|c| {
                format!(
                    "{} {}/{}",
                    c.msg_type.trim_start_matches("Msg"),
                    c.dropped,
                    c.delayed
                )
            })
            .collect();
        let counts = if counts.is_empty() {
            "-".to_string()
        } else {
            counts.join(", ")
        };
        report.say(format!("{:<5} {:<40} {counts}", s.id, faults_text(s)));
    }
}

/// A node's faults in a few words: `isolated, drop 30%, slow x10`, or `none`.
pub fn faults_text(s: &pb::FaultState) -> String {
    let mut parts = Vec::new();
    if s.faults_disabled {
        parts.push("faults off (--no-faults)".to_string());
    }
    if s.frozen {
        parts.push("FROZEN".to_string());
    }
    if s.isolated {
        parts.push("isolated".to_string());
    }
    if !s.cut.is_empty() {
        let ids: Vec<String> = s.cut.iter().map(u64::to_string).collect();
        parts.push(format!("cut from {}", ids.join(",")));
    }
    for peer in &s.cut_out {
        parts.push(format!("one-way cut: its messages to {peer} dropped"));
    }
    for peer in &s.cut_in {
        parts.push(format!("one-way cut: messages from {peer} dropped"));
    }
    if s.drop_percent > 0 {
        parts.push(format!("drop {}%", s.drop_percent));
    }
    if s.delay_ms > 0 {
        parts.push(format!("delay {} ms", s.delay_ms));
    }
    if s.slow_factor > 1 {
        parts.push(format!("slow x{}", s.slow_factor));
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_are_refused_before_sending() {
        for (cmd, needle) in [
            (FaultCommand::Drop(1, 101), "0 to 100"),
            (FaultCommand::Drop(1, -1), "0 to 100"),
            (FaultCommand::Delay(1, -5), "0 to 10000"),
            (FaultCommand::Delay(1, 10_001), "0 to 10000"),
            (FaultCommand::Slow(0), "1 (normal speed)"),
            (FaultCommand::Cut(2, 2), "from itself"),
        ] {
            let refusal = check_numbers(&cmd).unwrap_or_default();
            assert!(refusal.contains(needle), "{cmd:?}: {refusal:?}");
        }
        assert_eq!(check_numbers(&FaultCommand::Drop(1, 100)), None);
        assert_eq!(check_numbers(&FaultCommand::Delay(1, 0)), None);
    }

    #[test]
    fn describes_faults_briefly() {
        let s = pb::FaultState {
            id: 2,
            isolated: true,
            cut: vec![1, 3],
            drop_percent: 30,
            delay_ms: 200,
            frozen: true,
            slow_factor: 10,
            ..pb::FaultState::default()
        };
        assert_eq!(
            faults_text(&s),
            "FROZEN, isolated, cut from 1,3, drop 30%, delay 200 ms, slow x10"
        );
        assert_eq!(faults_text(&pb::FaultState::default()), "none");
    }
}
