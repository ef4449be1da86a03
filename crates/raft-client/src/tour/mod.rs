//! The guided tour (`tour` in the client, `./playground --tour`): the classic Raft scenarios
//! played step by step on the live cluster, each step explained, typed through the client's
//! own commands, and checked against what the cluster really did.
//!
//! - [`engine`]: steps and the loop that shows, waits for keys, acts and checks.
//! - `claims`: what each claim means, checked against the cluster and put in words.
//! - [`chapters`]: the chapters, as data.
//! - `labs`: the chapters that switch one of Raft's protections off, and back on.
//! - `figure8`: the Raft paper's Figure 8, staged message by message in step mode.
//! - `stepping`: the engine's acts in step mode (deliver, drop, tick until a campaign).
//! - [`live`]: the real cluster behind the engine.

pub mod chapters;
mod claims;
pub mod engine;
mod figure8;
mod labs;
pub mod live;
mod stepping;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::SmartClient;
use crate::faults::{self, FaultCommand};

/// The table of contents: one line per chapter, numbered from 1 as `tour N` takes them.
pub fn contents() -> Vec<String> {
    chapters::chapters()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let steps = c.steps.len();
            let s = if steps == 1 { "" } else { "s" };
            format!("{}. {} ({steps} step{s})", i + 1, c.title)
        })
        .collect()
}

/// Heals every fault and restores normal speed, within a few seconds at most: what quitting
/// the client in the middle of a tour does, so no chapter leaves the cluster broken.
pub async fn heal(client: &SmartClient) {
    let undo = async {
        faults::run(client, &FaultCommand::Heal(None)).await;
        faults::run(client, &FaultCommand::Slow(1)).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), undo).await;
}
