//! The nemesis's membership faults, on a cluster of chaos's own (`--spawn`): `membership`
//! adds a spare id (as a learner, then promoted), removes a voter (the leader half the
//! time) and brings a removed id back through the README's procedure (wipe, `--join`,
//! `member add`); `wipe` loses a voter's data dir, restarts it as it was (the members must
//! refuse it: it forgot its vote), then brings it back the README's way. Every step goes
//! through the same commands a learner types; the members are always the leader's list.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;

use crate::admin::{Ending, Report};
use crate::client::SmartClient;
use crate::members::{self, MemberCommand};
use crate::spawned::SpawnedCluster;

/// Fewer voters than this and a removal would leave no room for another fault.
const MIN_VOTERS: usize = 3;
/// How long a restarted node has to say it waits to be added.
const JOIN_WITHIN: Duration = Duration::from_secs(20);
/// How long a wiped node restarted as it was runs before it is brought back properly.
const CARELESS_FOR: Duration = Duration::from_millis(1500);

/// What the membership faults remember between steps.
#[derive(Debug, Default)]
pub struct Reshaper {
    /// Ids removed and not added again yet: preferred when adding.
    removed: BTreeSet<u64>,
    /// The last membership step added a node (the next one removes, so that removals and
    /// re-adds alternate).
    last_added: bool,
    /// Membership changes made.
    pub changes: usize,
    /// Ids added again after a removal (or a wipe).
    pub readds: usize,
}

/// The members as the leader lists them: `(id, role)`.
pub async fn members_of(client: &SmartClient) -> Result<Vec<(u64, String)>, String> {
    members::list(client)
        .await
        .map(|l| l.members.into_iter().map(|m| (m.id, m.role)).collect())
        .map_err(|r| report_text(&r))
}

impl Reshaper {
    /// One `membership` step; what it did, in a few words.
    pub async fn step(
        &mut self,
        client: &SmartClient,
        cluster: &mut SpawnedCluster,
        rng: &mut StdRng,
        leader: Option<u64>,
    ) -> Result<String, String> {
        let members = members_of(client).await?;
        // A learner left by a step that failed half way is promoted first.
        if let Some((id, _)) = members.iter().find(|(_, r)| r == "learner") {
            run(client, MemberCommand::Promote(*id)).await?;
            self.changes += 1;
            return Ok(format!("promote node {id} (a learner left behind)"));
        }
        let voters: Vec<u64> = voters(&members);
        let spares: Vec<u64> = cluster
            .ids()
            .into_iter()
            .filter(|id| members.iter().all(|(m, _)| m != id))
            .collect();
        if voters.len() > MIN_VOTERS && (self.last_added || spares.is_empty()) {
            let victim = pick(&voters, leader, rng);
            run(client, MemberCommand::Remove(victim)).await?;
            // Out of the way: a removed node takes no part anyway.
            cluster.kill(victim);
            self.removed.insert(victim);
            self.last_added = false;
            self.changes += 1;
            return Ok(format!("remove node {victim}{}", mark(victim, leader)));
        }
        let again: Vec<u64> = spares
            .iter()
            .copied()
            .filter(|id| self.removed.contains(id))
            .collect();
        let Some(&id) = again.choose(rng).or_else(|| spares.choose(rng)) else {
            return Err("no spare id to add".to_string());
        };
        self.add_back(client, cluster, id).await?;
        self.last_added = true;
        let readd = self.removed.remove(&id);
        if readd {
            self.readds += 1;
        }
        Ok(format!(
            "{} node {id} (wipe, --join, member add: learner, then voter)",
            if readd { "re-add" } else { "add" }
        ))
    }

    /// One `wipe` step: a voter loses its data dir.
    pub async fn wipe(
        &mut self,
        client: &SmartClient,
        cluster: &mut SpawnedCluster,
        rng: &mut StdRng,
        leader: Option<u64>,
    ) -> Result<String, String> {
        let members = members_of(client).await?;
        let voters = voters(&members);
        if voters.len() < MIN_VOTERS {
            return Err(format!("only {} voters: no wipe now", voters.len()));
        }
        let victim = pick(&voters, leader, rng);
        cluster.wipe(victim).map_err(|e| e.to_string())?;
        // Restarted as it was, with an empty data dir: it forgot its log and its vote, and
        // the members must refuse it.
        cluster.spawn(victim).map_err(|e| e.to_string())?;
        tokio::time::sleep(CARELESS_FOR).await;
        // Then as the README says: remove it, wipe, --join, add it again.
        run(client, MemberCommand::Remove(victim)).await?;
        self.changes += 1;
        self.add_back(client, cluster, victim).await?;
        self.readds += 1;
        Ok(format!(
            "wipe node {victim}{}: restarted as new, then removed and added back",
            mark(victim, leader)
        ))
    }

    /// Wipes `id`, starts it with `--join`, and adds it (learner, then voter).
    async fn add_back(
        &mut self,
        client: &SmartClient,
        cluster: &mut SpawnedCluster,
        id: u64,
    ) -> Result<(), String> {
        cluster.wipe_and_join(id).map_err(|e| e.to_string())?;
        wait_joining(&cluster.api_addr(id)).await?;
        run(
            client,
            MemberCommand::Add {
                id,
                peer_addr: cluster.peer_addr(id),
                learner: false,
            },
        )
        .await?;
        self.changes += 2;
        Ok(())
    }
}

fn voters(members: &[(u64, String)]) -> Vec<u64> {
    members
        .iter()
        .filter(|(_, r)| r == "voter")
        .map(|(id, _)| *id)
        .collect()
}

/// The leader half the time (when it is among `ids`), else any of them.
fn pick(ids: &[u64], leader: Option<u64>, rng: &mut StdRng) -> u64 {
    match leader {
        Some(l) if ids.contains(&l) && rng.random_bool(0.5) => l,
        _ => *ids.choose(rng).unwrap_or(&ids[0]),
    }
}

fn mark(id: u64, leader: Option<u64>) -> &'static str {
    if leader == Some(id) {
        " (the leader)"
    } else {
        ""
    }
}

/// Runs a membership command; its lines if it did not end well.
async fn run(client: &SmartClient, cmd: MemberCommand) -> Result<(), String> {
    let report = members::run(client, &cmd, &mut |_| {}).await;
    if report.ending == Ending::Done {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", report_text(&report)))
    }
}

fn report_text(r: &Report) -> String {
    let lines: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
    lines.join("; ")
}

/// Waits until the node at `api` says it waits to be added.
async fn wait_joining(api: &str) -> Result<(), String> {
    let Ok(one) = SmartClient::new(vec![api.to_string()], Duration::from_secs(1)) else {
        return Err(format!("bad address {api}"));
    };
    let deadline = Instant::now() + JOIN_WITHIN;
    let mut seen = String::from("no answer");
    while Instant::now() < deadline {
        let reports = one.status_all_within(Duration::from_millis(500)).await;
        for r in &reports {
            match &r.status {
                Ok(s) if s.joining => return Ok(()),
                Ok(s) => {
                    seen = format!(
                        "it answers as node {}, {} in term {}, not waiting",
                        s.id, s.role, s.term
                    );
                }
                Err(e) => seen = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the node at {api} did not start waiting to be added within {JOIN_WITHIN:?} (last \
         seen: {seen})"
    ))
}
