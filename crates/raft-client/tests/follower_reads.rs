//! Linearizable reads at any member (`get --node F`, `--read-from any`): a follower asks the
//! leader for its read index and answers once it has applied that far. Real server
//! processes on loopback; no timing asserts.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Cluster, assert_exit, assert_ok, block_on, stdout_line};
use raft_client::SmartClient;
use raft_client::read_from::ReadFrom;

#[test]
fn a_follower_reads_the_latest_acknowledged_write_at_once() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    block_on(async {
        let timeout = Duration::from_secs(5);
        let writer = SmartClient::new(vec![cluster.api_addr(leader)], timeout).expect("client");
        let at: Vec<(u64, SmartClient)> = followers
            .iter()
            .map(|id| {
                let c = SmartClient::new(vec![cluster.api_addr(*id)], timeout).expect("client");
                (*id, c.pinned())
            })
            .collect();
        for i in 0..200 {
            let value = format!("v{i}");
            writer
                .put("key", value.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("put {i}: {e}"));
            for (id, c) in &at {
                let got = c
                    .get("key", false)
                    .await
                    .unwrap_or_else(|e| panic!("get {i} at node {id}: {e}"));
                assert_eq!(got.value.node_id, *id, "node {id} answered itself");
                assert_eq!(
                    String::from_utf8_lossy(&got.value.value),
                    value,
                    "read {i} at follower {id} after the write was acknowledged"
                );
            }
        }
    });
    // The one-shot commands: `get --node F`, and `--read-from any` spreading gets.
    let f = followers[0].to_string();
    let out = cluster.client(&["get", "key", "--node", &f]);
    assert_ok(&out, "get --node <follower>");
    assert_eq!(stdout_line(&out), "v199");
    let out = cluster.client(&["--read-from", "any", "get", "key"]);
    assert_ok(&out, "--read-from any get");
    assert_eq!(stdout_line(&out), "v199");
    // `--read-from any` spreads them: 30 random picks of 3 all landing on one node would
    // be a bug (odds 3^-29), not bad luck.
    let answered: BTreeSet<u64> = block_on(async {
        let any = SmartClient::new(
            cluster.api_addrs().split(',').map(str::to_string).collect(),
            Duration::from_secs(5),
        )
        .expect("client")
        .with_read_from(ReadFrom::Any);
        let mut ids = BTreeSet::new();
        for _ in 0..30 {
            let got = any.get("key", false).await.expect("get from any member");
            assert_eq!(String::from_utf8_lossy(&got.value.value), "v199");
            ids.insert(got.value.node_id);
        }
        ids
    });
    assert!(answered.len() > 1, "every get went to {answered:?}");
}

#[test]
fn a_follower_cut_off_from_the_leader_refuses() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let f = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.put("x", "1");
    assert_ok(
        &cluster.client(&["fault", "isolate", &f.to_string()]),
        "fault isolate",
    );
    // At once (its ReadIndex request is dropped on the way out: it must end, not hang) and
    // again once it has given the leader up (it knows no leader: refused at once).
    for round in 0..2 {
        let out = cluster.client(&["--timeout", "3", "get", "x", "--node", &f.to_string()]);
        assert_exit(
            &out,
            3,
            &format!("get --node {f} while cut off (round {round})"),
        );
    }
    // The majority side still answers at its followers, and the healed node again.
    let other = (1..=3)
        .find(|id| *id != leader && *id != f)
        .expect("two followers");
    let out = cluster.client(&["get", "x", "--node", &other.to_string()]);
    assert_ok(&out, "get at the other follower");
    assert_ok(&cluster.client(&["fault", "heal"]), "fault heal");
    common::wait_for("the healed node to answer a linearizable get", || {
        let out = cluster.client(&["--timeout", "2", "get", "x", "--node", &f.to_string()]);
        if out.status.success() && stdout_line(&out) == "1" {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
}

#[test]
fn chaos_reading_from_any_member_is_linearizable() {
    let _ = common::server_bin();
    let (out, v) = common::chaos_json(&[
        "--spawn",
        "3",
        "--seconds",
        "12",
        "--read-from",
        "any",
        "--faults",
        "isolate,kill",
    ]);
    assert_eq!(
        v["verdict"],
        "linearizable",
        "{v}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exit(&out, 0, "chaos --read-from any");
    assert!(v["ops"].as_u64().unwrap_or(0) > 100, "{v}");
}
