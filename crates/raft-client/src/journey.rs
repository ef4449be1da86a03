//! A write's journey, timed (`put --timing`, `timing on` in the interactive client): the
//! write is sent asking every node to stamp it, and the stamps (the leader's, in its
//! answer; each other member's, asked of it by the entry's index) are put in time order
//! as offsets from the client's send, one line per step: `+212 node 1 appended and
//! fsynced`. The offsets compare clocks of different nodes: exact on one host, mixed
//! across hosts (said so then).

use std::time::{SystemTime, UNIX_EPOCH};

use kv_proto::admin::StampsRequest;
use kv_proto::kv::{Stamp, WriteResponse};
use serde::Serialize;

use crate::client::SmartClient;

/// One step of the journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The node that stamped it.
    pub node: u64,
    /// What happened.
    pub step: String,
    /// Microseconds after the client sent the write.
    pub us: i64,
}

/// The wall clock in µs since the Unix epoch: taken just before the write is sent.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The whole journey of the write `resp` answered, sent at `sent_us`: the leader's stamps
/// and every other member's, in time order (each step once per node).
pub async fn collect(client: &SmartClient, resp: &WriteResponse, sent_us: u64) -> Vec<Step> {
    // The followers learn of the commit after the leader answered (its next message says
    // so): asked again for a moment, until every node that stamped it has applied it.
    let until = tokio::time::Instant::now() + FOLLOWERS_APPLY_WITHIN;
    loop {
        let stamps = ask_all(client, resp).await;
        let nodes: std::collections::BTreeSet<u64> = stamps.iter().map(|s| s.node).collect();
        let applied = nodes
            .iter()
            .all(|n| stamps.iter().any(|s| s.node == *n && s.step == "applied"));
        if applied || tokio::time::Instant::now() >= until {
            return order(stamps, sent_us);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`collect`] without waiting for the followers to apply: what every node has stamped
/// by now (a benchmark's back-to-back writes).
pub async fn collect_now(client: &SmartClient, resp: &WriteResponse, sent_us: u64) -> Vec<Step> {
    order(ask_all(client, resp).await, sent_us)
}

/// How long the followers' "applied" stamps are waited for.
const FOLLOWERS_APPLY_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The answer's stamps and every member's.
async fn ask_all(client: &SmartClient, resp: &WriteResponse) -> Vec<Stamp> {
    let mut stamps: Vec<Stamp> = resp.timing.clone();
    // Every member the client knows, the leader too: its stamps after the answer (a slower
    // follower's acknowledgement) are only in its own list.
    let bound = client.timeout().min(std::time::Duration::from_secs(2));
    for addr in client.peers() {
        let Ok(mut admin) = client.admin_at(&addr) else {
            continue;
        };
        let ask = admin.stamps(StampsRequest { index: resp.index });
        if let Ok(Ok(reply)) = tokio::time::timeout(bound, ask).await {
            stamps.extend(reply.into_inner().stamps);
        }
    }
    stamps
}

/// `stamps` in time order as offsets from `sent_us`, each (node, step) once.
pub fn order(mut stamps: Vec<Stamp>, sent_us: u64) -> Vec<Step> {
    stamps.sort_by_key(|s| s.unix_us);
    let mut out: Vec<Step> = Vec::with_capacity(stamps.len());
    for s in stamps {
        if out.iter().any(|o| o.node == s.node && o.step == s.step) {
            continue;
        }
        let us = i64::try_from(s.unix_us).unwrap_or(i64::MAX)
            - i64::try_from(sent_us).unwrap_or(i64::MAX);
        out.push(Step {
            node: s.node,
            step: s.step,
            us,
        });
    }
    out
}

/// The journey as the contract prints it: `+<µs> node <id> <step>`, one line per step,
/// and a note when the nodes are on more than one host.
pub fn lines(steps: &[Step], peers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = steps
        .iter()
        .map(|s| format!("+{} node {} {}", s.us, s.node, s.step))
        .collect();
    let hosts: std::collections::BTreeSet<&str> = peers
        .iter()
        .map(|p| p.rsplit_once(':').map_or(p.as_str(), |(h, _)| h))
        .collect();
    if hosts.len() > 1 {
        out.push(format!(
            "(the nodes are on {} hosts: these offsets mix their clocks)",
            hosts.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(node: u64, step: &str, unix_us: u64) -> Stamp {
        Stamp {
            node,
            step: step.into(),
            unix_us,
        }
    }

    #[test]
    fn stamps_are_ordered_by_time_once_each_as_offsets_from_the_send() {
        let steps = order(
            vec![
                stamp(1, "answered", 1_900),
                stamp(2, "stored and fsynced", 1_500),
                stamp(1, "received the request", 1_100),
                stamp(1, "answered", 1_900),
            ],
            1_000,
        );
        assert_eq!(
            lines(&steps, &["127.0.0.1:7001".into(), "127.0.0.1:7002".into()]),
            [
                "+100 node 1 received the request",
                "+500 node 2 stored and fsynced",
                "+900 node 1 answered"
            ]
        );
        let two_hosts = lines(&steps, &["10.0.0.1:7001".into(), "10.0.0.2:7001".into()]);
        assert!(
            two_hosts
                .last()
                .is_some_and(|l| l.contains("mix their clocks"))
        );
    }
}
