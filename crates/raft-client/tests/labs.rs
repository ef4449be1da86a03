//! Raft's protections switched off, one at a time, on real clusters: each lab's symptom
//! shows, and the same scenario with the protection on does not. Also the one-way cut and
//! the flags' own errors.

mod common;

use std::process::Command;

use common::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn role(c: &Cluster, id: u64) -> String {
    c.node_status(id)["role"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn others(c: &Cluster, id: u64) -> String {
    (1..=3)
        .filter(|i| *i != id)
        .map(|i| c.api_addr(i))
        .collect::<Vec<_>>()
        .join(",")
}

/// An isolated follower campaigns (twice at least), then comes back. Returns the leader
/// before and its term, and the term once the cluster has one leader again.
fn a_follower_away_and_back(c: &Cluster) -> (u64, u64, u64) {
    let leader = c.wait_leader();
    let before = c.term_of(leader);
    let f = (1..=3).find(|i| *i != leader).unwrap_or(1);
    assert_ok(&c.client(&["fault", "isolate", &f.to_string()]), "isolate");
    wait_for("the cut-off follower to campaign twice", || {
        let s = c.node_status(f);
        let n = s["elections_last_minute"].as_u64().unwrap_or(0);
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} elections so far: {s}"))
        }
    });
    assert_ok(&c.client(&["fault", "heal"]), "heal");
    // Back, it follows a leader, or (its log as good as theirs) leads itself.
    let after = wait_for("one leader that the node back knows too", || {
        let l = c.wait_leader();
        let s = c.node_status(f);
        if s["leader_id"].as_u64() == Some(l) {
            Ok(c.term_of(l))
        } else {
            Err(format!("{s}"))
        }
    });
    (leader, before, after)
}

#[test]
fn without_pre_vote_a_node_back_from_a_partition_deposes_a_healthy_leader() {
    let c = Cluster::start_with(3, &["--no-pre-vote"]);
    let status = c.status();
    assert_eq!(
        status[0]["protections"]["pre_vote"], false,
        "{:?}",
        status[0]
    );
    let (_, before, after) = a_follower_away_and_back(&c);
    assert!(
        after >= before + 2,
        "its raised term deposes the leader: term {before} before, {after} after"
    );
    c.put("k", "v");
}

#[test]
fn with_pre_vote_a_node_back_from_a_partition_changes_nothing() {
    let c = Cluster::start(3);
    let (leader, before, after) = a_follower_away_and_back(&c);
    assert_eq!(after, before, "the term stays");
    assert_eq!(c.wait_leader(), leader, "the leader stays");
}

/// Isolates the leader until the others elect another; returns (old, new) leader.
fn isolate_the_leader(c: &Cluster) -> (u64, u64) {
    let old = c.wait_leader();
    assert_ok(
        &c.client(&["fault", "isolate", &old.to_string()]),
        "isolate",
    );
    let new = wait_for("the others to elect a leader", || {
        let s = c.status();
        s.iter()
            .filter(|n| n["id"].as_u64() != Some(old) && n["role"] == "Leader")
            .find_map(|n| n["id"].as_u64())
            .ok_or_else(|| format!("{s:?}"))
    });
    (old, new)
}

#[test]
fn without_check_quorum_an_isolated_leader_goes_on_calling_itself_leader() {
    let c = Cluster::start_with(3, &["--no-check-quorum"]);
    let (old, new) = isolate_the_leader(&c);
    // The others have moved on (a write commits there); the old one has heard nothing.
    let out = c.client_at(&others(&c, old), &["put", "moved", "on"]);
    assert_ok(&out, "a write to the new leader");
    assert_eq!(role(&c, old), "Leader", "node {old} still says Leader");
    assert!(c.term_of(old) < c.term_of(new), "in an older term");
}

#[test]
fn with_check_quorum_an_isolated_leader_steps_down() {
    let c = Cluster::start(3);
    let (old, _) = isolate_the_leader(&c);
    wait_for("the isolated leader to step down", || {
        match role(&c, old).as_str() {
            "Leader" => Err("still Leader".to_string()),
            _ => Ok(()),
        }
    });
}

/// A leader isolated and frozen past its election timeout while the others elect a new
/// leader and overwrite `k`; then thawed, still isolated: what a read at it returns.
fn read_at_a_paused_old_leader(c: &Cluster) -> std::process::Output {
    c.put("k", "before");
    let (old, _) = isolate_the_leader(c);
    assert_ok(&c.client(&["fault", "freeze", &old.to_string()]), "freeze");
    assert_ok(
        &c.client_at(&others(c, old), &["put", "k", "after"]),
        "overwrite k",
    );
    assert_ok(&c.client(&["fault", "thaw", &old.to_string()]), "thaw");
    c.client_at(&c.api_addr(old), &["--timeout", "2", "get", "k"])
}

#[test]
fn a_lease_read_at_a_paused_old_leader_is_stale() {
    // Long election timeouts (1.5-3 s): the read after the thaw lands inside the old
    // leader's lease however loaded the machine is.
    let c = Cluster::start_with(3, &["--read-mode", "lease", "--election-ticks", "30"]);
    let out = read_at_a_paused_old_leader(&c);
    assert_ok(&out, "the lease read");
    assert_eq!(
        stdout_line(&out),
        "before",
        "the stale value: {}",
        text(&out)
    );
}

#[test]
fn a_safe_read_at_a_paused_old_leader_is_refused() {
    let c = Cluster::start_with(3, &["--election-ticks", "30"]);
    let out = read_at_a_paused_old_leader(&c);
    assert_ne!(out.status.code(), Some(0), "no answer: {}", text(&out));
    assert!(!text(&out).contains("before\n"), "{}", text(&out));
}

#[test]
fn with_ack_on_append_an_acknowledged_write_is_lost() {
    let c = Cluster::start_with(3, &["--unsafe", "ack-on-append"]);
    let status = c.status();
    assert_eq!(status[0]["protections"]["unsafe"][0], "ack-on-append");
    let old = c.wait_leader();
    assert_ok(
        &c.client(&["fault", "isolate", &old.to_string()]),
        "isolate",
    );
    let out = c.client_at(
        &c.api_addr(old),
        &["--timeout", "2", "put", "lost", "write"],
    );
    assert_ok(&out, "the isolated leader acknowledges the write at once");
    let new = wait_for("the others to elect a leader", || {
        let s = c.status();
        s.iter()
            .filter(|n| n["id"].as_u64() != Some(old) && n["role"] == "Leader")
            .find_map(|n| n["id"].as_u64())
            .ok_or_else(|| format!("{s:?}"))
    });
    assert_ok(&c.client(&["fault", "heal"]), "heal");
    let applied = c.applied_of(new);
    c.wait_applied(old, applied);
    let out = c.client(&["get", "lost"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "acknowledged, then lost: {}",
        text(&out)
    );
}

#[test]
fn without_ack_on_append_the_isolated_leader_never_acknowledges() {
    let c = Cluster::start(3);
    let old = c.wait_leader();
    assert_ok(
        &c.client(&["fault", "isolate", &old.to_string()]),
        "isolate",
    );
    let out = c.client_at(&c.api_addr(old), &["--timeout", "2", "put", "k", "v"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "outcome unknown: {}",
        text(&out)
    );
}

#[test]
fn with_forget_vote_a_restarted_voter_has_voted_for_nobody() {
    for (args, forgets) in [(&["--unsafe", "forget-vote"][..], true), (&[][..], false)] {
        let mut c = Cluster::start_with(3, args);
        let leader = c.wait_leader();
        let f = (1..=3).find(|i| *i != leader).unwrap_or(1);
        let term = c.term_of(f);
        assert_eq!(c.node_status(f)["vote"].as_u64(), Some(leader));
        c.kill(f);
        c.spawn(f);
        wait_for("the follower back", || {
            let s = c.node_status(f);
            if s["reachable"] == true {
                Ok(())
            } else {
                Err(format!("{s}"))
            }
        });
        let s = c.node_status(f);
        if forgets && s["term"].as_u64() == Some(term) {
            assert_eq!(s["vote"].as_u64(), Some(0), "its vote was not kept: {s}");
        } else if !forgets {
            assert_eq!(s["vote"].as_u64(), Some(leader), "its vote was kept: {s}");
        }
    }
}

#[test]
fn a_one_way_cut_drops_one_direction_and_both_sides_say_so() {
    let c = Cluster::start(3);
    let out = c.client(&["fault", "cut", "1", "2", "--one-way"]);
    assert_ok(&out, "one-way cut");
    let out = c.client(&["fault", "list", "--json"]);
    let list: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(list[0]["cut_out"], serde_json::json!([2]), "{list}");
    assert_eq!(list[1]["cut_in"], serde_json::json!([1]), "{list}");
    assert_eq!(
        list[0]["cut"],
        serde_json::json!([]),
        "not both ways: {list}"
    );
    let out = c.client(&["fault", "list"]);
    assert!(text(&out).contains("one-way cut"), "{}", text(&out));
    assert_ok(&c.client(&["fault", "heal"]), "heal");
    let out = c.client(&["fault", "list", "--json"]);
    assert!(!text(&out).contains("cut_out"), "{}", text(&out));
}

#[test]
fn a_lease_without_check_quorum_is_refused_in_one_line() {
    let out = Command::new(server_bin())
        .args(["--id", "1", "--read-mode", "lease", "--no-check-quorum"])
        .output()
        .expect("run raft-server");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("check-quorum"), "{err}");
}
