//! Where one write's time goes, on a running cluster: COUNT timed puts one after the other
//! (`put --timing`'s stamps), and for each step of the journey its median offset from the
//! client's send, in path order, with the fsync floor beside it.
//!
//! ```text
//! JOURNEY_PEERS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 cargo bench -p raft-client --bench journey
//! JOURNEY_COUNT=500 ...                                       # default 200
//! JOURNEY_BACK_TO_BACK=1 ...     # do not wait for the followers to apply between writes
//! ```
//! By default each write waits until the followers have applied it (they learn the commit
//! with the leader's next heartbeat), so every write starts on an idle cluster; back to
//! back, the next write follows at once (after the stamps are collected).
//! Followers are named by their place (`F1` the first to store the entry), the leader `L`,
//! so the medians of different writes line up.

use std::collections::BTreeMap;
use std::time::Duration;

use raft_client::client::SmartClient;
use raft_client::journey;

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let peers: Vec<String> = std::env::var("JOURNEY_PEERS")
        .unwrap_or_else(|_| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let count: usize = std::env::var("JOURNEY_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let back_to_back = std::env::var("JOURNEY_BACK_TO_BACK").is_ok_and(|v| v == "1");
    let client = SmartClient::new(peers, Duration::from_secs(5)).expect("peers");
    client
        .put("journey-warm", b"up")
        .await
        .expect("warm-up put");
    // step (named by role) -> offsets; and its mean position in the journeys, for the order.
    let mut offsets: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut place: BTreeMap<String, f64> = BTreeMap::new();
    let mut totals = Vec::new();
    for i in 0..count {
        let sent = journey::now_us();
        let r = client
            .put_timed(&format!("journey-{}", i % 16), b"v")
            .await
            .expect("timed put");
        totals.push(i64::try_from(journey::now_us() - sent).unwrap_or(0));
        let leader = r.value.node_id;
        let steps = if back_to_back {
            journey::collect_now(&client, &r.value, sent).await
        } else {
            journey::collect(&client, &r.value, sent).await
        };
        // Followers by the order they stored the entry.
        let mut followers: Vec<u64> = Vec::new();
        for s in &steps {
            if s.node != leader && s.step == "stored and fsynced" {
                followers.push(s.node);
            }
        }
        for (k, s) in steps.iter().enumerate() {
            let who = if s.node == leader {
                "L".to_string()
            } else {
                match followers.iter().position(|f| *f == s.node) {
                    Some(p) => format!("F{}", p + 1),
                    None => continue,
                }
            };
            let mut step = s.step.replace(&format!("node {leader}"), "L");
            for (p, f) in followers.iter().enumerate() {
                step = step.replace(&format!("node {f}"), &format!("F{}", p + 1));
            }
            let key = format!("{who:>2} {step}");
            offsets.entry(key.clone()).or_default().push(s.us);
            *place.entry(key).or_default() += k as f64 / count as f64;
        }
    }
    let mut rows: Vec<(String, i64, usize)> = offsets
        .into_iter()
        .map(|(k, mut v)| {
            let n = v.len();
            (k, median(&mut v), n)
        })
        .collect();
    rows.sort_by(|a, b| {
        let (pa, pb) = (place[&a.0] / a.2 as f64, place[&b.0] / b.2 as f64);
        a.1.cmp(&b.1).then(pa.total_cmp(&pb))
    });
    println!("median offset from the send, {count} timed puts one after the other:");
    for (k, us, n) in rows {
        println!(
            "  +{us:>6} µs  {k}{}",
            if n < count {
                format!("  ({n} of {count})")
            } else {
                String::new()
            }
        );
    }
    println!(
        "  the whole put, as the client saw it: p50 {} µs",
        median(&mut totals)
    );
}
