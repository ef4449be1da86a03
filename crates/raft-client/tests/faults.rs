//! Faults end to end: real server processes, real gRPC, the real `raft-client fault ...`
//! commands. Each test breaks its own cluster on purpose and checks what Raft promises:
//! no acknowledged write lost, no stale linearizable read, no success for an uncommitted
//! write, and a cluster that heals.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, assert_exit, assert_ok, stdout_line, wait_for};
use serde_json::Value;

/// `fault list --json`, asserting success.
fn fault_list(cluster: &Cluster) -> Vec<Value> {
    let out = cluster.client(&["fault", "list", "--json"]);
    assert_ok(&out, "fault list --json");
    match serde_json::from_str::<Value>(&stdout_line(&out)) {
        Ok(Value::Array(items)) => items,
        other => panic!("fault list --json printed {other:?}"),
    }
}

fn node(list: &[Value], id: u64) -> &Value {
    list.iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("node {id} missing from {list:?}"))
}

/// Milliseconds since node `id` last heard from `peer`, from its `Status`.
fn last_heard_ms(cluster: &Cluster, id: u64, peer: u64) -> i64 {
    use kv_proto::kv::StatusRequest;
    use kv_proto::kv::kv_api_client::KvApiClient;
    common::block_on(async {
        let mut api = KvApiClient::connect(format!("http://{}", cluster.api_addr(id)))
            .await
            .expect("connect");
        let s = api
            .status(StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        s.peers
            .iter()
            .find(|p| p.id == peer)
            .map_or(-1, |p| p.last_heard_ms)
    })
}

/// The leader as `id` sees it, with its term (0, term when none).
fn leader_seen_by(cluster: &Cluster, id: u64) -> (u64, u64) {
    let s = &cluster.status()[id as usize - 1];
    (
        s["leader_id"].as_u64().unwrap_or(0),
        s["term"].as_u64().unwrap_or(0),
    )
}

/// Waits until the nodes in `among` agree on a leader other than `not`; returns it.
fn new_leader_among(cluster: &Cluster, among: &[u64], not: u64) -> u64 {
    wait_for(
        &format!("nodes {among:?} to elect a leader other than {not}"),
        || {
            let status = cluster.status();
            let leaders: Vec<u64> = among
                .iter()
                .map(|id| status[*id as usize - 1]["leader_id"].as_u64().unwrap_or(0))
                .collect();
            let l = leaders[0];
            let leading = l != 0
                && status
                    .get(l as usize - 1)
                    .is_some_and(|s| s["role"] == "Leader");
            if l != not && leading && leaders.iter().all(|x| *x == l) {
                Ok(l)
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
}

#[test]
fn an_isolated_leader_is_replaced_loses_its_uncommitted_writes_and_rejoins() {
    let cluster = Cluster::start(3);
    for i in 0..3 {
        cluster.put(&format!("before{i}"), "v");
    }
    cluster.put("x", "old");
    let old = cluster.wait_leader();
    let (_, old_term) = leader_seen_by(&cluster, old);
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let old_addr = cluster.api_addr(old);

    let isolated_at = Instant::now();
    assert_ok(
        &cluster.client(&["fault", "isolate", &old.to_string()]),
        "fault isolate",
    );
    // A write sent only to the old leader right away lands in its log and can never commit:
    // it must not be reported as a success.
    let lost = cluster.client_at(&old_addr, &["--timeout", "3", "put", "lost", "never"]);
    assert_exit(&lost, 3, "a write sent only to the isolated leader");

    let new = new_leader_among(&cluster, &others, old);
    eprintln!(
        "new leader {new} agreed on {:?} after isolating node {old}",
        isolated_at.elapsed()
    );
    cluster.put("x", "new");
    for i in 0..3 {
        cluster.put(&format!("after{i}"), "v");
    }

    // The old leader: a linearizable read there fails, a stale one returns the old value.
    let out = cluster.client_at(&old_addr, &["--timeout", "2", "get", "x"]);
    assert_exit(&out, 3, "linearizable get on the isolated old leader");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("old"),
        "a linearizable read must not return stale data"
    );
    let out = cluster.client_at(&old_addr, &["get", "--stale", "x"]);
    assert_ok(&out, "stale get on the isolated old leader");
    assert_eq!(stdout_line(&out), "old");
    let list = fault_list(&cluster);
    assert_eq!(node(&list, old)["isolated"], true, "{list:?}");

    assert_ok(&cluster.client(&["fault", "heal"]), "fault heal");
    let list = fault_list(&cluster);
    assert!(
        list.iter().all(|n| n["isolated"] == false),
        "healed: {list:?}"
    );
    // The old leader follows, in a higher term, and converges with everyone.
    wait_for("the old leader to follow in a higher term", || {
        let s = &cluster.status()[old as usize - 1];
        if s["role"] == "Follower" && s["term"].as_u64().unwrap_or(0) > old_term {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    let applied = cluster.applied_of(new);
    for id in 1..=3 {
        cluster.wait_applied(id, applied);
    }
    wait_for("every node to reach the same applied index", || {
        let status = cluster.status();
        let applied: Vec<u64> = status
            .iter()
            .map(|s| s["applied_index"].as_u64().unwrap_or(0))
            .collect();
        if applied.iter().all(|a| *a == applied[0]) {
            Ok(())
        } else {
            Err(format!("{applied:?}"))
        }
    });
    assert!(
        cluster
            .log(old)
            .contains(") replaced by the leader's (term"),
        "the old leader's uncommitted entries should have been replaced:\n{}",
        cluster.log(old)
    );
    for id in 1..=3 {
        let at = cluster.api_addr(id);
        for key in ["before0", "before2", "after0", "after2"] {
            let out = cluster.client_at(&at, &["get", "--stale", key]);
            assert_ok(&out, &format!("stale get {key} on node {id}"));
        }
        let out = cluster.client_at(&at, &["get", "--stale", "x"]);
        assert_eq!(stdout_line(&out), "new", "node {id}");
        let out = cluster.client_at(&at, &["get", "--stale", "lost"]);
        assert_exit(
            &out,
            1,
            &format!("the uncommitted write is gone on node {id}"),
        );
    }
}

#[test]
fn cut_drop_and_delay_keep_writes_flowing_and_heal_removes_them() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (a, b) = (followers[0], followers[1]);
    let steps: [(Vec<String>, &str); 3] = [
        (
            vec!["cut".into(), a.to_string(), b.to_string()],
            "cut between the followers",
        ),
        (vec!["drop".into(), a.to_string(), "30".into()], "30% loss"),
        (
            vec!["delay".into(), b.to_string(), "200".into()],
            "200 ms delay",
        ),
    ];
    for (args, what) in &steps {
        let mut cmd = vec!["fault"];
        cmd.extend(args.iter().map(String::as_str));
        assert_ok(&cluster.client(&cmd), what);
        for i in 0..5 {
            cluster.put(&format!("{}-{i}", args[0]), "v");
        }
    }
    let list = fault_list(&cluster);
    assert_eq!(node(&list, a)["cut"], serde_json::json!([b]), "{list:?}");
    assert_eq!(node(&list, b)["cut"], serde_json::json!([a]), "{list:?}");
    assert_eq!(node(&list, a)["drop_percent"], 30, "{list:?}");
    assert_eq!(node(&list, b)["delay_ms"], 200, "{list:?}");
    assert_eq!(
        node(&list, leader)["cut"],
        serde_json::json!([]),
        "{list:?}"
    );
    // The delayed and lossy nodes still catch up: every write is everywhere.
    let applied = cluster.applied_of(leader);
    for id in 1..=3 {
        cluster.wait_applied(id, applied);
    }
    let out = cluster.client(&["fault", "list"]);
    assert_ok(&out, "fault list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("drop 30%") && text.contains("delay 200 ms"),
        "{text}"
    );

    // Healing one node clears its faults and the cut the other side holds towards it.
    let out = cluster.client(&["fault", "heal", &a.to_string()]);
    assert_ok(&out, "fault heal a");
    let list = fault_list(&cluster);
    assert_eq!(node(&list, a)["cut"], serde_json::json!([]), "{list:?}");
    assert_eq!(node(&list, a)["drop_percent"], 0, "{list:?}");
    assert_eq!(node(&list, b)["cut"], serde_json::json!([]), "{list:?}");
    assert_eq!(
        node(&list, b)["delay_ms"],
        200,
        "b keeps its own delay: {list:?}"
    );
    assert_ok(&cluster.client(&["fault", "heal"]), "fault heal");
    let list = fault_list(&cluster);
    for n in &list {
        assert_eq!(
            (
                &n["cut"],
                &n["drop_percent"],
                &n["delay_ms"],
                &n["isolated"]
            ),
            (
                &serde_json::json!([]),
                &Value::from(0),
                &Value::from(0),
                &Value::from(false)
            ),
            "{list:?}"
        );
    }
    cluster.put("healed", "yes");
}

#[test]
fn a_frozen_leader_is_replaced_and_rejoins_as_a_follower_when_thawed() {
    let cluster = Cluster::start(3);
    cluster.put("k", "v1");
    let old = cluster.wait_leader();
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    assert_ok(
        &cluster.client(&["fault", "freeze", &old.to_string()]),
        "fault freeze",
    );
    let list = fault_list(&cluster);
    assert_eq!(node(&list, old)["frozen"], true, "{list:?}");
    // Status keeps answering while frozen, and says so.
    let status = cluster.status();
    assert_eq!(status[old as usize - 1]["reachable"], true, "{status:?}");
    // A request to the frozen node waits, like one to a paused process: no answer.
    let out = cluster.client_at(
        &cluster.api_addr(old),
        &["--timeout", "1", "get", "--stale", "k"],
    );
    assert_exit(&out, 3, "a read from a frozen node waits past the deadline");

    let new = new_leader_among(&cluster, &others, old);
    cluster.put("k", "v2");
    assert_ok(
        &cluster.client(&["fault", "thaw", &old.to_string()]),
        "fault thaw",
    );
    wait_for("the thawed node to follow the new leader", || {
        let s = &cluster.status()[old as usize - 1];
        if s["role"] == "Follower" && s["leader_id"] == new {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    let out = wait_for("the thawed node to catch up", || {
        let out = cluster.client_at(&cluster.api_addr(old), &["get", "--stale", "k"]);
        if stdout_line(&out) == "v2" {
            Ok(out)
        } else {
            Err(format!("{out:?}"))
        }
    });
    assert_ok(&out, "stale read on the thawed node");
}

#[test]
fn in_slow_motion_an_election_waits_for_the_stretched_timeout() {
    let mut cluster = Cluster::start(3);
    cluster.put("k", "v");
    assert_ok(&cluster.client(&["slow", "10"]), "slow 10");
    let list = fault_list(&cluster);
    assert!(list.iter().all(|n| n["slow_factor"] == 10), "{list:?}");
    let old = cluster.wait_leader();
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let killed_at = Instant::now();
    cluster.kill(old);
    let new = new_leader_among(&cluster, &others, old);
    let took = killed_at.elapsed();
    // Ticks of 50 ms x 10: a follower campaigns only after 10-20 ticks (5-10 s) without
    // hearing from a leader, and a peer grants a pre-vote only after 10 ticks of silence
    // too. Ticks run at their own phase, so the silence is at least 9 whole ticks plus a
    // part: 4.5 s. The old leader's last heartbeat went out at most 2 ticks (1 s) before
    // the kill.
    let silence = last_heard_ms(&cluster, new, old);
    assert!(
        silence >= 4_500,
        "node {new} won after only {silence} ms without hearing from node {old}: slow \
         motion x10 should stretch the election timeout to 5-10 s"
    );
    assert!(
        took >= Duration::from_millis(3_500),
        "a new leader {took:?} after the kill: slow motion x10 should take seconds"
    );
    eprintln!("slow motion x10: new leader {new} {took:?} after the kill");
    // While a node is down, slow motion reaches the others and the command says so.
    let out = cluster.client(&["slow", "1"]);
    assert_exit(&out, 3, "slow 1 with a node down");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("node {old}")),
        "{out:?}"
    );
    // A restart clears that node's own faults: it comes back at normal speed.
    cluster.spawn(old);
    cluster.wait_leader();
    let list = fault_list(&cluster);
    assert!(list.iter().all(|n| n["slow_factor"] == 1), "{list:?}");
    cluster.put("back", "to normal");
}

#[test]
fn bad_fault_commands_are_refused_and_change_nothing() {
    let cluster = Cluster::start(3);
    for (args, code, needle) in [
        (vec!["fault", "isolate", "9"], 4, "unknown node 9"),
        (vec!["fault", "drop", "2", "150"], 4, "0 to 100"),
        (vec!["fault", "drop", "2", "-1"], 4, "0 to 100"),
        (vec!["fault", "delay", "2", "-5"], 4, "0 to 10000"),
        (vec!["fault", "delay", "2", "99999999"], 4, "0 to 10000"),
        (vec!["fault", "cut", "2", "2"], 4, "from itself"),
        (vec!["slow", "0"], 4, "out of range"),
        (vec!["fault", "isolate", "two"], 2, "invalid value"),
        (vec!["fault", "bogus"], 2, "unrecognized subcommand"),
    ] {
        let out = cluster.client(&args);
        assert_exit(&out, code, &format!("{args:?}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        if code == 4 {
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
    }
    let list = fault_list(&cluster);
    for n in &list {
        assert_eq!(n["isolated"], false, "{list:?}");
        assert_eq!(n["drop_percent"], 0, "{list:?}");
        assert_eq!(n["delay_ms"], 0, "{list:?}");
        assert_eq!(n["slow_factor"], 1, "{list:?}");
    }
}

#[test]
fn a_no_faults_server_refuses_every_fault_command() {
    let cluster = Cluster::start_with(1, &["--no-faults"]);
    for args in [
        vec!["fault", "isolate", "1"],
        vec!["fault", "drop", "1", "10"],
        vec!["fault", "delay", "1", "10"],
        vec!["fault", "freeze", "1"],
        vec!["fault", "heal", "1"],
        vec!["slow", "2"],
    ] {
        let out = cluster.client(&args);
        assert_exit(&out, 4, &format!("{args:?} on a --no-faults server"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--no-faults"), "{args:?}: {err}");
    }
    let list = fault_list(&cluster);
    assert_eq!(list[0]["frozen"], false);
    assert_eq!(list[0]["slow_factor"], 1);
    cluster.put("still", "works");
}

#[test]
fn an_unreachable_node_is_named_and_the_rest_is_applied() {
    let mut cluster = Cluster::start(3);
    cluster.kill(3);
    let out = cluster.client(&["fault", "cut", "1", "3"]);
    assert_exit(&out, 3, "cut with node 3 down");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node 3") && err.contains("unreachable"),
        "{err}"
    );
    let list = fault_list(&cluster);
    assert_eq!(
        node(&list, 1)["cut"],
        serde_json::json!([3]),
        "applied on node 1: {list:?}"
    );
}

#[test]
fn a_commit_slowed_by_delayed_followers_is_waited_for_in_one_attempt() {
    // Raft needs messages much faster than its election timeout: with 1 s delays a leader
    // keeps its quorum only if elections wait longer (100 ticks of 30 ms: 3-6 s).
    let cluster = Cluster::start_with(3, &["--tick-ms", "30", "--election-ticks", "100"]);
    let leader = cluster.wait_leader();
    // Every message to and from both followers takes 1 s more each way: a commit needs
    // about 2 s, longer than the client's 1.5 s cut for an attempt at an unknown node.
    for id in (1..=3).filter(|id| *id != leader) {
        assert_ok(
            &cluster.client(&["fault", "delay", &id.to_string(), "1000"]),
            "fault delay",
        );
    }
    let out = cluster.client_at(
        &cluster.api_addr(leader),
        &["-v", "--timeout", "10", "put", "slow", "commit"],
    );
    assert_ok(&out, "a put through a slow commit");
    let trace = String::from_utf8_lossy(&out.stderr);
    let hops = trace.lines().filter(|l| l.contains(" [")).count();
    assert_eq!(hops, 1, "one attempt, waited for:\n{trace}");
    assert_ok(&cluster.client(&["fault", "heal"]), "fault heal");
    assert_eq!(cluster.get("slow"), "commit");
}
