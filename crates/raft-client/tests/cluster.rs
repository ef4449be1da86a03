//! Cluster behaviour end to end: real server processes, real disk, real gRPC, real SIGKILL
//! and SIGSTOP, driven through the real `raft-client` binary.

mod common;

use common::{Cluster, assert_exit, assert_ok, stdout_line, wait_for};

#[test]
fn put_through_a_follower_is_redirected_to_the_leader() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    // Only the follower's address: the client must follow the hint to the leader.
    let out = cluster.client_at(&cluster.api_addr(follower), &["-v", "put", "color", "blue"]);
    assert_ok(&out, "put via follower");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains(&format!(
            "not leader, leader is {leader} at {}",
            cluster.api_addr(leader)
        )) && trace.contains("[redirect, same request id]: OK"),
        "expected a redirect to node {leader} in the trace, got:\n{trace}"
    );
    assert_eq!(cluster.get("color"), "blue");
    let out = cluster.client_at(&cluster.api_addr(follower), &["get", "color"]);
    assert_ok(&out, "linearizable get via follower");
    assert_eq!(stdout_line(&out), "blue");
}

#[test]
fn leader_sigkill_elects_a_new_leader_and_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    for i in 0..5 {
        cluster.put(&format!("k{i}"), &format!("v{i}"));
    }
    let old = cluster.wait_leader();
    let old_term = cluster.term_of(old);
    cluster.kill(old);

    let new = cluster.wait_leader();
    assert_ne!(new, old, "a killed node cannot be leader");
    let term = cluster.term_of(new);
    assert!(
        term > old_term,
        "new leader's term {term} should exceed {old_term}"
    );
    for i in 0..5 {
        assert_eq!(cluster.get(&format!("k{i}")), format!("v{i}"));
    }
    cluster.put("after", "failover");

    // The killed node comes back, catches up to the leader's applied index, and serves it.
    cluster.spawn(old);
    let leader_applied = cluster.applied_of(new);
    cluster.wait_applied(old, leader_applied);
    let out = cluster.client_at(&cluster.api_addr(old), &["get", "--stale", "after"]);
    assert_ok(&out, "stale get on the restarted node");
    assert_eq!(stdout_line(&out), "failover");
}

#[test]
fn a_frozen_leader_is_given_up_on_and_the_write_lands_on_the_new_leader() {
    let cluster = Cluster::start(3);
    cluster.put("before", "freeze");
    let leader = cluster.wait_leader();
    cluster.freeze(leader);
    // The others name the frozen node until they elect another, and the client waits on
    // the leader it is sent to for as long as the request may take; the frozen node's
    // connection, no longer answering pings, is what tells the client to go on.
    let out = cluster.client(&["--timeout", "10", "-v", "put", "after", "freeze"]);
    assert_ok(&out, "put with the leader frozen");
    cluster.thaw(leader);
    assert_eq!(cluster.get("after"), "freeze");
}

#[test]
fn sigkill_of_every_node_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    for i in 0..10 {
        cluster.put(&format!("key{i}"), &format!("value{i}"));
    }
    let out = cluster.client(&["delete", "key3"]);
    assert_ok(&out, "delete key3");
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.wait_leader();
    for i in (0..10).filter(|i| *i != 3) {
        assert_eq!(cluster.get(&format!("key{i}")), format!("value{i}"));
    }
    assert_exit(&cluster.client(&["get", "key3"]), 1, "get of a deleted key");
    cluster.put("still", "writable");
}

#[test]
fn a_node_that_missed_a_write_serves_it_stale_but_never_as_linearizable() {
    let cluster = Cluster::start(3);
    cluster.put("x", "old");
    let leader = cluster.wait_leader();
    let lagger = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.wait_applied(lagger, cluster.applied_of(leader));

    cluster.freeze(lagger);
    // The leader keeps streaming to the frozen node until HTTP/2 flow control stops it; on
    // SIGCONT the node would read whatever sits in its socket. Fill that window with large
    // writes first, so "x = new" can only queue up at the leader and never reach it.
    let filler = cluster.data_path().join("filler");
    std::fs::write(&filler, vec![b'f'; 1024 * 1024]).expect("write filler");
    let filler = filler.to_string_lossy().into_owned();
    for i in 0..4 {
        let out = cluster.client(&["put", &format!("filler{i}"), "--value-file", &filler]);
        assert_ok(&out, "1 MiB filler put");
    }
    cluster.put("x", "new");
    assert_eq!(cluster.get("x"), "new");

    for id in (1..=3).filter(|id| *id != lagger) {
        cluster.freeze(id);
    }
    cluster.thaw(lagger);
    let lagger_addr = cluster.api_addr(lagger);
    let stale = wait_for("the thawed node to answer a stale read", || {
        let out = cluster.client_at(&lagger_addr, &["--timeout", "1", "get", "--stale", "x"]);
        if out.status.success() {
            Ok(stdout_line(&out))
        } else {
            Err(format!("{out:?}"))
        }
    });
    assert_eq!(stale, "old", "the frozen node never received the new value");

    let out = cluster.client_at(&lagger_addr, &["--timeout", "2", "get", "x"]);
    assert_exit(
        &out,
        3,
        "linearizable read on a node cut off from the majority",
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("old"),
        "a linearizable read must not return stale data"
    );
    for id in (1..=3).filter(|id| *id != lagger) {
        cluster.thaw(id);
    }
}

#[test]
fn sigterm_stops_a_connected_node_cleanly_and_it_rejoins() {
    let mut cluster = Cluster::start(3);
    cluster.put("before", "stop");
    let leader = cluster.wait_leader();
    // Peers hold long-lived streams to it: a clean shutdown must not wait on them.
    assert_eq!(
        cluster.terminate(leader),
        Some(0),
        "SIGTERM should exit 0\n{}",
        cluster.log(leader)
    );
    cluster.put("while", "down");
    cluster.spawn(leader);
    cluster.wait_leader();
    let out = cluster.client_at(&cluster.api_addr(leader), &["get", "--stale", "before"]);
    assert_ok(&out, "stale read on the restarted node");
    assert_eq!(stdout_line(&out), "stop");
}

#[test]
fn a_node_whose_data_dir_was_wiped_reports_it_instead_of_crashing() {
    let mut cluster = Cluster::start(3);
    for i in 0..5 {
        cluster.put(&format!("w{i}"), "v");
    }
    let leader = cluster.wait_leader();
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(victim);
    std::fs::remove_dir_all(cluster.data_dir(victim)).expect("wipe the data dir");
    cluster.spawn(victim);
    // The leader's heartbeats claim a commit index beyond the wiped log; raft-rs would panic
    // on that. Raft cannot repair a node that lost its log under the same leader (it trusts
    // what the node acknowledged), so the node must stay up and say what happened.
    wait_for("the wiped node to report its short log", || {
        let log = cluster.log(victim);
        if log.contains("data dir wiped") {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(
        cluster.is_running(victim),
        "the wiped node crashed:\n{}",
        cluster.log(victim)
    );
    cluster.put("cluster", "still writable");
    assert!(
        cluster.is_running(victim),
        "the wiped node crashed:\n{}",
        cluster.log(victim)
    );
}

#[test]
fn a_node_far_behind_catches_up_from_a_snapshot_and_restarts_use_it() {
    // A snapshot every 20 entries, keeping 10 behind it: a node that misses 100 writes
    // finds the entries it needs compacted away and must install the leader's snapshot.
    let mut cluster = Cluster::start_with(3, &["--snapshot-every", "20"]);
    let leader = cluster.wait_leader();
    let lagger = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(lagger);
    for i in 0..100 {
        cluster.put(&format!("snap{i:03}"), &format!("v{i}"));
    }
    assert!(
        cluster.log(leader).contains("snapshot at index"),
        "the leader should have taken snapshots:\n{}",
        cluster.log(leader)
    );
    let applied = cluster.applied_of(leader);
    cluster.spawn(lagger);
    cluster.wait_applied(lagger, applied);
    assert!(
        cluster
            .log(lagger)
            .contains("installed a snapshot from the leader"),
        "the lagging node should have caught up from a snapshot:\n{}",
        cluster.log(lagger)
    );
    for key in ["snap000", "snap050", "snap099"] {
        let out = cluster.client_at(&cluster.api_addr(lagger), &["get", "--stale", key]);
        assert_ok(
            &out,
            &format!("stale get {key} on the node that installed the snapshot"),
        );
    }

    // Every node restarts from its own snapshot plus the log after it.
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.wait_leader();
    for i in [0, 19, 20, 21, 57, 99] {
        assert_eq!(cluster.get(&format!("snap{i:03}")), format!("v{i}"));
    }
    cluster.put("after", "restart");
    let restarted = cluster.log(1);
    assert!(restarted.matches("snapshot ").count() > 0, "{restarted}");
}
