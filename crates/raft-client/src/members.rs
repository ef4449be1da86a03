//! The membership commands (`member list|add|promote|remove`, `transfer`): they find the
//! leader, ask it through the admin API, follow it if it moves, and report each step.
//! Shared by the one-shot CLI and the TUI.
//!
//! `member add ID ADDR` without `--learner` is three steps in one command: add as a learner,
//! wait until it has caught up, promote. `member remove` of the leader hands leadership to
//! another voter first (raft-rs does not support a leader removing itself).

use std::time::{Duration, Instant};

use kv_proto::admin::{self as pb, admin_client::AdminClient};
use kv_proto::kv::LeaderHint;
use prost::Message as _;
use serde::Serialize;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::admin::{Ending, Report};
use crate::client::{SmartClient, all_unresolved, describe_at};

/// A learner this close to the leader's last index counts as caught up (the server refuses
/// a promotion further behind than its own bound, which is larger).
const CAUGHT_UP_LAG: u64 = 50;
/// A new learner that has received nothing for this long is probably not running.
const NOTHING_RECEIVED_FOR: Duration = Duration::from_secs(10);
/// How often a `member add` reports a learner's progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How soon a change the leader cannot take yet is asked for again.
const NOT_YET_RETRY: Duration = Duration::from_millis(200);

/// A membership command, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCommand {
    /// Every member as the leader knows it.
    List {
        /// As the contract's JSON array.
        json: bool,
    },
    /// Add a node (as a learner, then promoted unless `learner`).
    Add {
        /// Its id.
        id: u64,
        /// Its peer address (host:port); the client API is on port + 1000.
        peer_addr: String,
        /// Stop at learner.
        learner: bool,
    },
    /// Make a learner a voter.
    Promote(u64),
    /// Remove a member.
    Remove(u64),
    /// Hand leadership to a voter (`None`: the most up-to-date one).
    Transfer(Option<u64>),
}

/// One element of `member list --json` (the contract's fields).
#[derive(Debug, Serialize)]
struct MemberJson<'a> {
    id: u64,
    peer_addr: &'a str,
    api_addr: &'a str,
    role: &'a str,
}

/// Runs a membership command against the cluster; `progress` sees each step's line as it
/// happens (the TUI prints them live), and the report has them all.
pub async fn run(
    client: &SmartClient,
    cmd: &MemberCommand,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Report {
    let mut report = Report::new();
    let mut say = |report: &mut Report, text: String| {
        progress(&text);
        report.say(text);
    };
    let deadline = Instant::now() + client.timeout();
    let mut leader = match find_leader(client, deadline).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    match cmd {
        MemberCommand::List { json } => {
            match call(client, &mut leader, deadline, |mut a| async move {
                a.list_members(pb::ListMembersRequest {}).await
            })
            .await
            {
                Ok(list) => {
                    if *json {
                        report.json = Some(list_json(&list));
                    } else {
                        for line in list_lines(&list) {
                            say(&mut report, line);
                        }
                    }
                }
                Err(r) => return r.into(),
            }
        }
        MemberCommand::Add {
            id,
            peer_addr,
            learner,
        } => {
            let add = pb::MemberChange {
                change: Some(pb::member_change::Change::AddLearner(pb::AddLearner {
                    id: *id,
                    peer_addr: peer_addr.clone(),
                })),
            };
            match change(client, &mut leader, deadline, add, &mut |t| {
                say(&mut report, t)
            })
            .await
            {
                Ok(reply) => say(&mut report, format!("node {id}: {}", reply.changed)),
                Err(r) => return r.into(),
            }
            if *learner {
                return report;
            }
            if let Err(r) = wait_caught_up(client, &mut leader, deadline, *id, &mut |t| {
                say(&mut report, t)
            })
            .await
            {
                report.lines.extend(r.lines);
                report.ending = report.ending.and(r.ending);
                return report;
            }
            let promote = pb::MemberChange {
                change: Some(pb::member_change::Change::Promote(*id)),
            };
            match change(client, &mut leader, deadline, promote, &mut |t| {
                say(&mut report, t)
            })
            .await
            {
                Ok(reply) => say(&mut report, format!("node {id}: {}", reply.changed)),
                Err(r) => {
                    let r = Report::from(r);
                    report.lines.extend(r.lines);
                    report.ending = report.ending.and(r.ending);
                }
            }
        }
        MemberCommand::Promote(id) => {
            let promote = pb::MemberChange {
                change: Some(pb::member_change::Change::Promote(*id)),
            };
            match change(client, &mut leader, deadline, promote, &mut |t| {
                say(&mut report, t)
            })
            .await
            {
                Ok(reply) => say(&mut report, format!("node {id}: {}", reply.changed)),
                Err(r) => return r.into(),
            }
        }
        MemberCommand::Remove(id) => {
            let remove = pb::MemberChange {
                change: Some(pb::member_change::Change::Remove(*id)),
            };
            let mut outcome = change(client, &mut leader, deadline, remove.clone(), &mut |t| {
                say(&mut report, t)
            })
            .await;
            if matches!(&outcome, Err(Refusal::TransferFirst(_))) {
                // raft-rs does not support a leader removing itself: hand over first.
                say(
                    &mut report,
                    format!("node {id} leads: handing leadership to another voter first"),
                );
                match transfer(client, &mut leader, deadline, None).await {
                    Ok(reply) => say(&mut report, reply.changed),
                    Err(r) => return r.into(),
                }
                leader = match find_leader_other_than(client, deadline, *id).await {
                    Ok(l) => l,
                    Err(r) => return r,
                };
                outcome = change(client, &mut leader, deadline, remove, &mut |t| {
                    say(&mut report, t)
                })
                .await;
            }
            match outcome {
                Ok(reply) => say(&mut report, format!("node {id}: {}", reply.changed)),
                Err(r) => return r.into(),
            }
        }
        MemberCommand::Transfer(to) => match transfer(client, &mut leader, deadline, *to).await {
            Ok(reply) => say(&mut report, reply.changed),
            Err(r) => return r.into(),
        },
    }
    report
}

/// The members as the leader knows them (the cluster's view, not one node's).
pub async fn list(client: &SmartClient) -> Result<pb::MemberList, Report> {
    let deadline = Instant::now() + client.timeout();
    let mut leader = find_leader(client, deadline).await?;
    call(client, &mut leader, deadline, |mut a| async move {
        a.list_members(pb::ListMembersRequest {}).await
    })
    .await
    .map_err(Report::from)
}

/// The leader: id and API address.
#[derive(Debug, Clone)]
struct Leader {
    id: u64,
    addr: String,
}

/// The node that leads in the highest term any reachable node reports (an isolated or
/// frozen old leader may still call itself one in an older term).
async fn find_leader(client: &SmartClient, deadline: Instant) -> Result<Leader, Report> {
    find_leader_other_than(client, deadline, 0).await
}

async fn find_leader_other_than(
    client: &SmartClient,
    deadline: Instant,
    not: u64,
) -> Result<Leader, Report> {
    loop {
        let per_node = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(2));
        let reports = client.status_all_within(per_node).await;
        let best = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok().map(|s| (r, s)))
            .filter(|(_, s)| s.role == "Leader" && s.id != not && !s.frozen)
            .max_by_key(|(_, s)| s.term);
        if let Some((r, s)) = best {
            return Ok(Leader {
                id: s.id,
                addr: r.api_addr.clone(),
            });
        }
        // A typo in --peers does not fix itself by waiting.
        if let Some(why) = all_unresolved(&reports) {
            let mut r = Report::new();
            r.fail(Ending::Unreachable, why);
            return Err(r);
        }
        if Instant::now() + Duration::from_millis(100) >= deadline {
            let reachable = reports.iter().filter(|r| r.status.is_ok()).count();
            let why = if reachable == 0 {
                format!(
                    "no node answered at {} (is the cluster running? the client API is on peer \
                     port + 1000)",
                    client.peers().join(", ")
                )
            } else {
                "no leader right now (an election in progress?); try again in a moment".to_string()
            };
            let mut r = Report::new();
            r.fail(Ending::Unreachable, why);
            return Err(r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why a call to the leader did not succeed.
enum Refusal {
    /// A report to give the user (refused, or unreachable).
    Failed(Report),
    /// Removing the leader: it must hand leadership over first.
    TransferFirst(Report),
    /// Not now, soon (another change in progress, a new leader applying its log): why.
    NotYet(String),
}

impl From<Refusal> for Report {
    fn from(r: Refusal) -> Report {
        match r {
            Refusal::Failed(r) | Refusal::TransferFirst(r) => r,
            Refusal::NotYet(why) => {
                let mut r = Report::new();
                r.fail(
                    Ending::Unreachable,
                    format!("still not possible at the deadline: {why} (give --timeout more)"),
                );
                r
            }
        }
    }
}

impl From<Report> for Refusal {
    fn from(r: Report) -> Refusal {
        Refusal::Failed(r)
    }
}

fn unreachable(text: String) -> Refusal {
    let mut r = Report::new();
    r.fail(Ending::Unreachable, text);
    Refusal::Failed(r)
}

/// Calls the leader's admin API; follows a "not the leader" hint once or twice.
async fn call<T, F, Fut>(
    client: &SmartClient,
    leader: &mut Leader,
    deadline: Instant,
    op: F,
) -> Result<T, Refusal>
where
    F: Fn(AdminClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>>,
{
    for _ in 0..3 {
        let admin = client
            .admin_at(&leader.addr)
            .map_err(|e| Report::refused(e.to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let status = match tokio::time::timeout(left, op(admin)).await {
            Ok(Ok(resp)) => return Ok(resp.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => {
                return Err(unreachable(format!(
                    "node {} did not answer in time (the change may still take effect: member \
                     list shows it)",
                    leader.id
                )));
            }
        };
        match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::PermissionDenied => {
                return Err(Report::refused(format!("refused: {}", status.message())).into());
            }
            Code::Aborted => {
                return Err(Refusal::TransferFirst(Report::refused(format!(
                    "refused: {}",
                    status.message()
                ))));
            }
            Code::ResourceExhausted => {
                return Err(Refusal::NotYet(status.message().to_string()));
            }
            Code::Unimplemented => {
                return Err(Report::refused(format!(
                    "node {} has no membership API: is it an older raft-server?",
                    leader.id
                ))
                .into());
            }
            Code::Unavailable if !status.details().is_empty() => {
                // The leader moved: go where the hint says.
                let hint = LeaderHint::decode(status.details()).unwrap_or_default();
                if hint.leader_id != 0 && !hint.api_addr.is_empty() {
                    *leader = Leader {
                        id: hint.leader_id,
                        addr: hint.api_addr,
                    };
                    continue;
                }
                *leader = find_leader(client, deadline).await?;
            }
            _ => {
                return Err(unreachable(format!(
                    "node {}: {}",
                    leader.id,
                    describe_at(&leader.addr, &status)
                )));
            }
        }
    }
    Err(unreachable(
        "the leader kept moving; try again in a moment".to_string(),
    ))
}

/// Asks the leader for one change; while it says "not yet" (a change in progress, or a
/// new leader still applying its log), says why once and asks again, until the deadline.
async fn change(
    client: &SmartClient,
    leader: &mut Leader,
    deadline: Instant,
    req: pb::MemberChange,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<pb::MemberChangeReply, Refusal> {
    let mut said: Option<String> = None;
    loop {
        let outcome = call(client, leader, deadline, |mut a| {
            let req = req.clone();
            async move { a.change_members(req).await }
        })
        .await;
        let why = match outcome {
            Err(Refusal::NotYet(why)) => why,
            other => return other,
        };
        if Instant::now() + NOT_YET_RETRY >= deadline {
            return Err(Refusal::NotYet(why));
        }
        if said.as_ref() != Some(&why) {
            say(format!("waiting: {why}"));
            said = Some(why);
        }
        tokio::time::sleep(NOT_YET_RETRY).await;
    }
}

async fn transfer(
    client: &SmartClient,
    leader: &mut Leader,
    deadline: Instant,
    to: Option<u64>,
) -> Result<pb::TransferReply, Refusal> {
    let from = leader.id;
    let reply = call(client, leader, deadline, |mut a| async move {
        a.transfer_leader(pb::TransferRequest {
            to: to.unwrap_or(0),
        })
        .await
    })
    .await?;
    Ok(pb::TransferReply {
        changed: format!(
            "leadership: node {from} -> node {}: {}",
            reply.to, reply.changed
        ),
        ..reply
    })
}

/// Waits until learner `id` is close to the leader's last index, saying how far it got.
async fn wait_caught_up(
    client: &SmartClient,
    leader: &mut Leader,
    deadline: Instant,
    id: u64,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), Report> {
    let mut said_at: Option<Instant> = None;
    let started = Instant::now();
    loop {
        let list = call(client, leader, deadline, |mut a| async move {
            a.list_members(pb::ListMembersRequest {}).await
        })
        .await
        .map_err(Report::from)?;
        let matched = list
            .members
            .iter()
            .find(|m| m.id == id)
            .map_or(0, |m| m.match_index);
        // Nothing matched yet means nothing received (its first snapshot is on its way).
        if matched > 0 && matched + CAUGHT_UP_LAG >= list.last_index {
            say(format!(
                "node {id}: caught up (it has {matched} of {} entries)",
                list.last_index
            ));
            return Ok(());
        }
        if said_at.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
            say(format!(
                "node {id}: catching up, it has {matched} of {} entries",
                list.last_index
            ));
            said_at = Some(Instant::now());
        }
        if matched == 0 && started.elapsed() >= NOTHING_RECEIVED_FOR {
            let mut r = Report::new();
            r.fail(
                Ending::Unreachable,
                format!(
                    "node {id} has received nothing in {}s: is it running, started with --join, \
                     at the address it was added with? It stays a learner; once it runs, it \
                     catches up and `member promote {id}` makes it a voter",
                    NOTHING_RECEIVED_FOR.as_secs()
                ),
            );
            return Err(r);
        }
        if Instant::now() + Duration::from_millis(200) >= deadline {
            let mut r = Report::new();
            r.fail(
                Ending::Unreachable,
                format!(
                    "node {id} has not caught up in time (it has {matched} of {}): it stays a \
                     learner; run `member promote {id}` once it has (or give --timeout more)",
                    list.last_index
                ),
            );
            return Err(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `member list --json`.
fn list_json(list: &pb::MemberList) -> String {
    let rows: Vec<MemberJson<'_>> = list
        .members
        .iter()
        .map(|m| MemberJson {
            id: m.id,
            peer_addr: &m.peer_addr,
            api_addr: &m.api_addr,
            role: &m.role,
        })
        .collect();
    // Plain strings and integers always serialise.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_string())
}

/// The `member list` table.
fn list_lines(list: &pb::MemberList) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<4} {:<22} {:<22} {:<24} {:>9}",
        "ID", "PEER ADDRESS", "API ADDRESS", "ROLE", "MATCH"
    )];
    for m in &list.members {
        let who = if m.id == list.leader_id {
            format!("{} (leader)", m.role)
        } else {
            m.role.clone()
        };
        lines.push(format!(
            "{:<4} {:<22} {:<22} {:<24} {:>9}",
            m.id, m.peer_addr, m.api_addr, who, m.match_index
        ));
    }
    if list.joint {
        lines.push(
            "a joint configuration is in force: old and new voters must both agree, until the \
             leader leaves it"
                .to_string(),
        );
    }
    lines
}
