//! Membership changes under faults, with real processes: a removed node wiped and added
//! again (twice, and as a learner) takes full part; a member that missed changes hears the
//! leader they made; a member that has not applied a re-add does not stop the re-added
//! node; a removed leader steps down; a wiped voter restarted without `--join` is refused
//! until it is removed and added again; `member remove <leader>` under load waits for the
//! new leader instead of failing.

mod common;

use std::process::{Child, Stdio};

use common::{Cluster, DEADLINE, assert_ok, wait_for};
use serde_json::Value;

/// `member list --json` as the leader knows it: (id, role).
fn roles(cluster: &Cluster) -> Vec<(u64, String)> {
    let out = cluster.client(&["member", "list", "--json"]);
    assert_ok(&out, "member list --json");
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("member list json");
    list.iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap_or(0),
                m["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Makes node `id` the leader (if it is not) and waits until everyone follows it.
fn lead(cluster: &Cluster, id: u64) {
    if cluster.wait_leader() != id {
        assert_ok(&cluster.client(&["transfer", &id.to_string()]), "transfer");
    }
    wait_for(&format!("node {id} to lead"), || {
        let leader = cluster.wait_leader();
        if leader == id {
            Ok(())
        } else {
            Err(format!("node {leader} leads"))
        }
    });
}

/// A write that must succeed within 20 s (the cluster may be electing).
fn put_within(cluster: &Cluster, key: &str, value: &str) {
    let out = cluster.client(&["--timeout", "20", "put", key, value]);
    assert_ok(&out, &format!("put {key}={value}"));
}

/// Waits until every running member has applied what the leader has.
fn wait_converged(cluster: &Cluster, ids: &[u64]) {
    let leader = cluster.wait_leader();
    let applied = cluster.applied_of(leader);
    for id in ids {
        cluster.wait_applied(*id, applied);
    }
}

/// The README's procedure: remove, stop, wipe, `--join`, `member add` (as a learner first
/// when `learner`).
fn remove_wipe_and_add(cluster: &mut Cluster, id: u64, learner: bool) {
    assert_ok(
        &cluster.client(&["--timeout", "20", "member", "remove", &id.to_string()]),
        "member remove",
    );
    cluster.wipe_and_join(id);
    let addr = cluster.peer_addr(id);
    let mut args = vec!["--timeout", "20", "member", "add"];
    let id_text = id.to_string();
    args.extend([id_text.as_str(), addr.as_str()]);
    if learner {
        args.push("--learner");
    }
    assert_ok(&cluster.client(&args), "member add");
}

#[test]
fn a_removed_node_wiped_and_added_again_takes_full_part_twice_in_a_row() {
    let mut cluster = Cluster::start(3);
    for k in 0..20 {
        cluster.put(&format!("k{k}"), "before");
    }
    lead(&cluster, 1);
    for round in 1..=2 {
        // The second time node 3 comes back as a learner first.
        let learner = round == 2;
        remove_wipe_and_add(&mut cluster, 3, learner);
        cluster.put(&format!("round{round}"), "after the re-add");
        wait_converged(&cluster, &[3]);
        if learner {
            assert_eq!(roles(&cluster)[2], (3, "learner".to_string()));
            // A learner that replayed its own old removal would stop applying here.
            cluster.put("learner", "follows");
            wait_converged(&cluster, &[3]);
            assert_ok(
                &cluster.client(&["--timeout", "20", "member", "promote", "3"]),
                "member promote 3",
            );
        }
        assert_eq!(
            roles(&cluster),
            [
                (1, "voter".to_string()),
                (2, "voter".to_string()),
                (3, "voter".to_string())
            ]
        );
        let s = cluster.node_status(3);
        assert_eq!(s["removed_at"], 0, "node 3 is a member again: {s}");
        // Node 3 takes full part: with node 2 stopped, writes need it.
        cluster.kill(2);
        put_within(&cluster, &format!("without2-{round}"), "needs node 3");
        assert_eq!(cluster.get(&format!("without2-{round}")), "needs node 3");
        cluster.spawn(2);
        wait_converged(&cluster, &[2, 3]);
        lead(&cluster, 1);
    }
    assert_eq!(cluster.get("k7"), "before");
}

#[test]
fn a_member_that_missed_changes_hears_the_leader_they_made() {
    let mut cluster = Cluster::start(3);
    lead(&cluster, 1);
    assert_ok(&cluster.client(&["fault", "isolate", "3"]), "isolate 3");
    for _ in 0..2 {
        let new = cluster.add_joining_node();
        let addr = cluster.peer_addr(new);
        assert_ok(
            &cluster.client_at(
                &cluster.api_addr(1),
                &["--timeout", "20", "member", "add", &new.to_string(), &addr],
            ),
            "member add",
        );
    }
    // Node 5 leads; node 3, cut off all along, knows neither 4 nor 5.
    assert_ok(
        &cluster.client_at(&cluster.api_addr(1), &["--timeout", "10", "transfer", "5"]),
        "transfer 5",
    );
    assert_ok(&cluster.client(&["fault", "heal", "3"]), "heal 3");
    wait_for("node 3 to follow node 5", || {
        let s = cluster.node_status(3);
        if s["leader_id"] == 5 {
            Ok(())
        } else {
            Err(format!("{s}\nnode 3's log:\n{}", tail(&cluster.log(3))))
        }
    });
    cluster.put("after", "heal");
    wait_converged(&cluster, &[3, 4, 5]);
    // With two of five stopped, the other three (node 3 among them) still commit.
    cluster.kill(1);
    cluster.kill(2);
    put_within(&cluster, "three", "of five");
    assert_eq!(cluster.get("three"), "of five");
}

#[test]
fn a_member_that_has_not_applied_the_re_add_does_not_stop_the_re_added_node() {
    let mut cluster = Cluster::start(4);
    lead(&cluster, 1);
    assert_ok(
        &cluster.client(&["--timeout", "20", "member", "remove", "4"]),
        "member remove 4",
    );
    // Node 3 has applied the removal; frozen, it will not apply the re-add.
    wait_converged(&cluster, &[3]);
    assert_ok(&cluster.client(&["fault", "freeze", "3"]), "freeze 3");
    cluster.wipe_and_join(4);
    let addr = cluster.peer_addr(4);
    assert_ok(
        &cluster.client(&["--timeout", "20", "member", "add", "4", &addr]),
        "member add 4",
    );
    // Leading, node 4 sends to node 3, which still knows an id 4 that was removed.
    assert_ok(
        &cluster.client(&["--timeout", "10", "transfer", "4"]),
        "transfer 4",
    );
    for i in 0..5 {
        put_within(&cluster, &format!("via4-{i}"), "while 3 is frozen");
    }
    let s = cluster.node_status(4);
    assert_eq!(s["role"], "Leader", "node 4 still leads: {s}");
    assert_eq!(s["removed_at"], 0, "node 4 is not removed: {s}");
    assert_ok(&cluster.client(&["fault", "thaw", "3"]), "thaw 3");
    cluster.put("after", "thaw");
    wait_converged(&cluster, &[1, 2, 3, 4]);
    assert_eq!(cluster.get("via4-4"), "while 3 is frozen");
}

#[test]
fn a_leader_that_applies_its_own_removal_steps_down() {
    // Node 2 campaigns far sooner than the others (elections of 4 ticks against 40), so
    // once the leader steps down in the joint configuration, node 2 wins, and it is node 2
    // that commits the entry leaving the joint configuration, which removes itself.
    let mut cluster = Cluster::unstarted(3, &[]);
    for id in [1, 3] {
        cluster.spawn_with(id, &["--election-ticks", "40"]);
    }
    cluster.spawn_with(2, &["--election-ticks", "4", "--heartbeat-ticks", "1"]);
    lead(&cluster, 1);
    assert_ok(&cluster.client(&["fault", "isolate", "3"]), "isolate 3");
    // Entering the joint configuration needs nodes 1 and 2; leaving it needs node 3 too.
    let remove = cluster.background(&["--timeout", "30", "member", "remove", "2"], Stdio::null());
    wait_for("node 1 to step down in the joint configuration", || {
        let s = cluster.node_status(1);
        let log = cluster.log(1);
        if log.contains("joint configuration") && s["role"] != "Leader" {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    assert_ok(&cluster.client(&["fault", "heal", "3"]), "heal 3");
    wait_for("node 2 to apply its own removal", || {
        let log = cluster.log(2);
        if log.contains("removed from the cluster") {
            Ok(())
        } else {
            Err(tail(&log))
        }
    });
    assert!(
        cluster
            .log(2)
            .contains("stepped down: a removed node cannot lead"),
        "node 2 should have led when it applied its removal:\n{}",
        tail(&cluster.log(2))
    );
    wait_for("one leader, and node 2 not among them", || {
        let s2 = cluster.node_status(2);
        let leaders: Vec<u64> = [1, 3]
            .into_iter()
            .filter(|id| cluster.node_status(*id)["role"] == "Leader")
            .collect();
        if s2["role"] != "Leader" && leaders.len() == 1 {
            Ok(())
        } else {
            Err(format!("node 2: {s2}; leaders among 1 and 3: {leaders:?}"))
        }
    });
    let _ = wait_child(remove);
    cluster.kill(2);
    assert_eq!(
        roles(&cluster),
        [(1, "voter".to_string()), (3, "voter".to_string())]
    );
    put_within(&cluster, "after", "removal");
}

#[test]
fn a_wiped_voter_restarted_without_join_is_refused_until_removed_and_added_again() {
    let mut cluster = Cluster::start(3);
    lead(&cluster, 1);
    cluster.put("a", "1");
    wait_for("the leader to record the members' data dirs", || {
        let log = cluster.log(1);
        if log.contains("recorded data dir incarnations") {
            Ok(())
        } else {
            Err(tail(&log))
        }
    });
    // Node 3 loses its data dir and comes back as if new: term 1, no vote.
    cluster.kill(3);
    std::fs::remove_dir_all(cluster.data_dir(3)).expect("wipe node 3");
    cluster.spawn(3);
    let refused = wait_for("the members to refuse node 3", || {
        let s = cluster.node_status(3);
        match s["refused"].as_str() {
            Some(why) => Ok(why.to_string()),
            None => Err(s.to_string()),
        }
    });
    assert!(refused.contains("data dir"), "{refused}");
    assert!(
        refused.contains("member remove 3"),
        "says what to type: {refused}"
    );
    assert!(
        cluster.log(3).contains("member remove 3"),
        "its log says it too:\n{}",
        tail(&cluster.log(3))
    );
    // Refused, it takes no part: kill node 2 and no write commits until node 2 is back,
    // however long node 3 campaigns (it could have voted a second time in a term).
    cluster.kill(2);
    let out = cluster.client(&["--timeout", "3", "put", "b", "2"]);
    assert_eq!(out.status.code(), Some(3), "no quorum without node 2");
    let s = cluster.node_status(3);
    assert_ne!(s["role"], "Leader", "node 3 never leads: {s}");
    cluster.spawn(2);
    cluster.wait_applied(2, 1);
    // The README's way back makes it a member again.
    remove_wipe_and_add(&mut cluster, 3, false);
    cluster.put("c", "3");
    wait_converged(&cluster, &[2, 3]);
    assert_eq!(cluster.node_status(3)["refused"], Value::Null);
}

#[test]
fn removing_the_leader_waits_for_the_new_leader_to_apply_its_log() {
    let mut cluster = Cluster::start(3);
    let new = cluster.add_joining_node();
    let addr = cluster.peer_addr(new);
    assert_ok(
        &cluster.client(&["--timeout", "20", "member", "add", "4", &addr]),
        "member add 4",
    );
    let leader = cluster.wait_leader();
    // Under load, the node that takes over holds entries it does not know are committed;
    // two of the other three answer slowly, so it commits (and applies) them only after a
    // slow round trip, and takes no change until then.
    let load = cluster.background(
        &["bench", "--op", "put", "--clients", "8", "--seconds", "8"],
        Stdio::null(),
    );
    let before = cluster.applied_of(leader);
    wait_for("the load to be under way", || {
        let now = cluster.applied_of(leader);
        if now > before + 200 {
            Ok(())
        } else {
            Err(format!("applied {now}, {before} before"))
        }
    });
    let others: Vec<u64> = (1..=4).filter(|id| *id != leader).collect();
    for id in &others[1..] {
        assert_ok(
            &cluster.client(&["fault", "delay", &id.to_string(), "150"]),
            "fault delay",
        );
    }
    let out = cluster.client(&["--timeout", "30", "member", "remove", &leader.to_string()]);
    let _ = wait_child(load);
    assert_ok(&out, "member remove <leader>");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("has not applied its log yet"),
        "it waited for the new leader, and said so: {said}"
    );
    assert_ok(&cluster.client(&["fault", "heal"]), "fault heal");
    cluster.kill(leader);
    assert_eq!(roles(&cluster).len(), 3);
    put_within(&cluster, "after", "leader removed");
}

/// Waits (with a deadline) for a background client; kills it at the deadline.
fn wait_child(mut child: Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + DEADLINE * 2;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The last lines of a log, for failure messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
