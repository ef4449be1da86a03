//! The real cluster behind the tour: commands are parsed by the client TUI's own parser and
//! run through the same library calls (put/get/delete, `fault`, `member`, `chaos`), so
//! what the tour types is exactly what a learner can type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::engine::{HeldView, NodeView, Ran, TourCluster};
use crate::admin::ClusterMap;
use crate::client::{ClientError, SmartClient};
use crate::tui::command::{self, Command};
use crate::{chaos, faults, members, step};

/// How long one of the tour's requests may take: longer than the TUI's, because a step
/// may wait out an election on purpose.
const TIMEOUT: Duration = Duration::from_secs(15);

/// How long a request to one node alone (`put --node`, ...) may take: less than the
/// server's own deadline for a request (5 s by default), so that a write the node still
/// holds is never sent to it a second time (a node in step mode may lead, unable to
/// commit, for as long as the learner reads).
const PINNED_TIMEOUT: Duration = Duration::from_secs(4);

/// The cluster the client talks to.
pub struct LiveCluster {
    client: SmartClient,
    /// Columns a line of output may take (chaos draws its timeline to fit).
    width: usize,
}

impl LiveCluster {
    /// The tour's own client of the nodes at `peers`, showing lines of up to `width` columns.
    pub fn new(peers: Vec<String>, width: usize) -> Result<Self, ClientError> {
        Ok(Self {
            client: SmartClient::new(peers, TIMEOUT)?,
            width: width.max(40),
        })
    }

    /// The API address of node `id`, from what the nodes say.
    async fn addr_of(&self, id: u64) -> Option<String> {
        self.nodes()
            .await
            .into_iter()
            .find(|n| n.id == id)
            .map(|n| n.addr)
    }

    /// A client of node `id` alone.
    async fn only(&self, id: u64) -> Result<SmartClient, String> {
        let addr = self
            .addr_of(id)
            .await
            .ok_or_else(|| format!("node {id} is not known"))?;
        SmartClient::new(vec![addr], PINNED_TIMEOUT)
            .map(SmartClient::pinned)
            .map_err(|e| e.to_string())
    }
}

impl TourCluster for LiveCluster {
    async fn nodes(&self) -> Vec<NodeView> {
        let reports = self.client.status_all_within(Duration::from_secs(1)).await;
        // Members are the nodes the leader of the highest term lists with a role (without
        // one, those some node lists: a removed node that missed its removal may still
        // list itself until a member tells it); the next addresses after the highest
        // member's are where nodes waiting to be added would be.
        let statuses: Vec<_> = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok())
            .collect();
        let leader = statuses
            .iter()
            .filter(|s| s.role == "Leader")
            .max_by_key(|s| s.term);
        let mut members = BTreeSet::new();
        let mut addrs: BTreeMap<u64, String> = BTreeMap::new();
        for s in &statuses {
            for p in &s.peers {
                if !p.role.is_empty() && leader.is_none_or(|l| l.id == s.id) {
                    members.insert(p.id);
                }
                addrs.entry(p.id).or_insert_with(|| p.api_addr.clone());
            }
        }
        let mut views: BTreeMap<u64, NodeView> = addrs
            .iter()
            .map(|(id, addr)| {
                (
                    *id,
                    NodeView {
                        id: *id,
                        addr: addr.clone(),
                        member: members.contains(id),
                        ..NodeView::default()
                    },
                )
            })
            .collect();
        let mut answered = reports;
        let probes: Vec<String> = next_addrs(&addrs, &members)
            .into_iter()
            .filter(|next| !addrs.values().any(|a| a == next))
            .collect();
        if !probes.is_empty()
            && let Ok(probe) = SmartClient::new(probes, Duration::from_secs(1))
        {
            answered.extend(probe.status_all_within(Duration::from_millis(500)).await);
        }
        for r in answered {
            let Ok(s) = r.status else { continue };
            views.insert(
                s.id,
                NodeView {
                    id: s.id,
                    addr: r.api_addr,
                    up: true,
                    role: s.role,
                    term: s.term,
                    leader: s.leader_id,
                    commit: s.commit_index,
                    applied: s.applied_index,
                    last: s.last_index,
                    frozen: s.frozen,
                    snapshot: s.snapshot_index,
                    member: members.contains(&s.id),
                    elections: s.elections_last_minute,
                    vote: s.vote,
                },
            );
        }
        views.into_values().collect()
    }

    async fn run(&self, line: &str) -> Ran {
        let cmd = match command::parse(line) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return Ran::default(),
            Err(e) => return failed(e),
        };
        match cmd {
            Command::Put { key, value, node } => {
                let result = match node {
                    Some(id) => match self.only(id).await {
                        Ok(c) => c.put(&key, value.as_bytes()).await,
                        Err(e) => return failed(e),
                    },
                    None => self.client.put(&key, value.as_bytes()).await,
                };
                write_ran(result)
            }
            Command::Delete { key, node } => {
                let result = match node {
                    Some(id) => match self.only(id).await {
                        Ok(c) => c.delete(&key).await,
                        Err(e) => return failed(e),
                    },
                    None => self.client.delete(&key).await,
                };
                write_ran(result)
            }
            Command::Get { key, stale, node } => {
                let result = match node {
                    Some(id) => match self.only(id).await {
                        Ok(c) => c.get(&key, stale).await,
                        Err(e) => return failed(e),
                    },
                    None => self.client.get(&key, stale).await,
                };
                match result {
                    Ok(r) if r.value.found => ok(format!(
                        "✓ {} (node {})",
                        String::from_utf8_lossy(&r.value.value),
                        r.value.node_id
                    )),
                    Ok(r) => ok(format!("✓ (not found) (node {})", r.value.node_id)),
                    Err(e) => failed(format!("✗ {e}")),
                }
            }
            Command::Fault(f) => report(faults::run(&self.client, &f).await),
            Command::Lab(l) => report(crate::lab::run(&self.client, &l).await),
            Command::Member(m) => report(members::run(&self.client, &m, &mut |_| {}).await),
            Command::Step(s) => report(step::run(&self.client, s).await),
            Command::Chaos(opts) => {
                let stop = Arc::new(AtomicBool::new(false));
                match chaos::run(self.client.peers(), &opts, stop, &|_| {}).await {
                    Ok(r) => Ran {
                        ok: r.exit_code() == 0,
                        lines: r.lines(self.width, false),
                        duplicate: false,
                    },
                    Err(e) => failed(format!("✗ {e}")),
                }
            }
            _ => failed(format!("{line}: not something the tour types")),
        }
    }

    async fn members(&self) -> Vec<(u64, String)> {
        let reports = self.client.status_all_within(Duration::from_secs(1)).await;
        // The leader's view (the highest term's), else anyone's.
        let best = reports
            .iter()
            .filter_map(|r| r.status.as_ref().ok())
            .max_by_key(|s| (s.role == "Leader", s.term));
        best.map(|s| {
            s.peers
                .iter()
                .filter(|p| !p.role.is_empty())
                .map(|p| (p.id, p.role.clone()))
                .collect()
        })
        .unwrap_or_default()
    }

    async fn held(&self) -> Vec<HeldView> {
        let Ok(map) = ClusterMap::discover_some(&self.client).await else {
            return Vec::new();
        };
        step::held_all(&self.client, &map)
            .await
            .0
            .into_iter()
            .filter_map(|h| {
                let m = h.held.msg?;
                Some(HeldView {
                    node: h.node,
                    hold_id: h.held.hold_id,
                    kind: m.msg_type,
                    from: m.from,
                    to: m.to,
                })
            })
            .collect()
    }

    async fn read(&self, key: &str, at: Option<u64>) -> Result<Option<String>, String> {
        let result = match at {
            Some(id) => self.only(id).await?.get(key, true).await,
            None => self.client.get(key, false).await,
        };
        match result {
            Ok(r) if r.value.found => {
                Ok(Some(String::from_utf8_lossy(&r.value.value).into_owned()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// How many client addresses after the highest member's may hold a node waiting to be
/// added: `./playground --tour` starts three (one for the membership chapter, two for
/// Figure 8's five voters).
const WAITING_PROBES: u16 = 3;

/// The client addresses after the highest member's (same host, port + 1, + 2, ...).
fn next_addrs(addrs: &BTreeMap<u64, String>, members: &BTreeSet<u64>) -> Vec<String> {
    let Some((host, port)) = members
        .iter()
        .max()
        .and_then(|top| addrs.get(top))
        .and_then(|addr| addr.rsplit_once(':'))
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
    else {
        return Vec::new();
    };
    (1..=WAITING_PROBES)
        .filter_map(|i| port.checked_add(i))
        .map(|p| format!("{host}:{p}"))
        .collect()
}

fn ok(line: String) -> Ran {
    Ran {
        ok: true,
        lines: vec![line],
        duplicate: false,
    }
}

fn failed(line: String) -> Ran {
    Ran {
        ok: false,
        lines: vec![line],
        duplicate: false,
    }
}

fn write_ran(
    result: Result<crate::client::Reply<kv_proto::kv::WriteResponse>, ClientError>,
) -> Ran {
    match result {
        Ok(r) => {
            let v = &r.value;
            let dup = if v.duplicate {
                ", already applied: not applied again"
            } else {
                ""
            };
            let tries = r.trace.hops.len();
            let via = if tries > 1 {
                format!(", {tries} attempts with the same request id")
            } else {
                String::new()
            };
            Ran {
                ok: true,
                lines: vec![format!(
                    "✓ OK (index {}, term {}, node {}{via}{dup})",
                    v.index, v.term, v.node_id
                )],
                duplicate: v.duplicate,
            }
        }
        Err(e) => failed(format!("✗ {e}")),
    }
}

fn report(r: crate::admin::Report) -> Ran {
    let mut lines: Vec<String> = r
        .lines
        .iter()
        .map(|l| format!("{} {}", if l.error { "✗" } else { "✓" }, l.text))
        .collect();
    if let Some(json) = r.json {
        lines.push(json);
    }
    Ran {
        ok: r.ending == crate::admin::Ending::Done,
        lines,
        duplicate: false,
    }
}
