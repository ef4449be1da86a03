//! The `step` fault: step mode on every member for a while, the nemesis as the learner who
//! delivers. It delivers the held messages in a random order (not the order they were
//! sent: Raft must not care), drops some, and ticks random nodes by hand, so elections and
//! replication go on under reordering and loss; then `step off` sends what is still held
//! and starts the clocks again. With a cluster chaos started, it first stages a crash in
//! the middle of an election (see `double_vote`).

use rand::Rng as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use tokio::time::{Duration, Instant};

use crate::admin::ClusterMap;
use crate::client::SmartClient;
use crate::spawned::SpawnedCluster;
use crate::step::{self, StepCommand};

/// Share of the held messages dropped instead of delivered.
const DROP_PERCENT: u32 = 10;
/// Share of the moves that are a tick of a random node (else a delivery).
const TICK_PERCENT: u32 = 25;

/// What one `step` fault did.
#[derive(Debug, Default)]
pub struct Stepped {
    pub delivered: usize,
    pub dropped: usize,
    pub ticks: usize,
    /// How far the staged crash mid-election got, when one was staged.
    pub staged: Option<String>,
    /// Refusals and failures seen (a node that could not be told).
    pub warnings: Vec<String>,
}

/// Runs step mode for `hold`, or until `stopped()`; always ends with `step off`.
pub async fn run(
    client: &SmartClient,
    rng: &mut StdRng,
    hold: Duration,
    cluster: Option<&mut SpawnedCluster>,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Stepped {
    let mut done = Stepped::default();
    let on = step::run(client, StepCommand::On).await;
    done.warnings
        .extend(on.lines.iter().filter(|l| l.error).map(|l| l.text.clone()));
    let map = ClusterMap::discover(client).await;
    let ids = map.ids();
    let end = Instant::now() + hold;
    if let Some(cluster) = cluster {
        done.staged = Some(super::double_vote::stage(client, &map, cluster).await);
    }
    while Instant::now() < end && !stopped() {
        let (held, _) = step::held_all(client, &map).await;
        let tick = held.is_empty() || rng.random_ratio(TICK_PERCENT, 100);
        if tick {
            if let Some(&id) = ids.choose(rng) {
                match step::tick(client, &map, id).await {
                    Ok(_) => done.ticks += 1,
                    Err(why) => done.warnings.push(why),
                }
            }
        } else if let Some(h) = held.choose(rng) {
            let deliver = !rng.random_ratio(DROP_PERCENT, 100);
            match step::act(client, &map, h.node, h.held.hold_id, deliver).await {
                Ok(said) if said.starts_with("delivered") => done.delivered += 1,
                Ok(said) if said.starts_with("dropped") => done.dropped += 1,
                // Already gone: another move took it (or the node restarted).
                Ok(_) => {}
                Err(why) => done.warnings.push(why),
            }
        }
    }
    let off = step::run(client, StepCommand::Off).await;
    done.warnings
        .extend(off.lines.iter().filter(|l| l.error).map(|l| l.text.clone()));
    done
}
