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
        // A follower that voted for the leader it follows (read in one status).
        let (f, leader, term) = wait_for("a follower that voted for its leader", || {
            let l = c.wait_leader();
            let f = (1..=3).find(|i| *i != l).unwrap_or(1);
            let s = c.node_status(f);
            let (vote, leader) = (s["vote"].as_u64(), s["leader_id"].as_u64());
            match (vote, leader) {
                (Some(v), Some(l)) if v == l && v != 0 => Ok((f, l, s["term"].as_u64())),
                _ => Err(format!("{s}")),
            }
        });
        let term = term.unwrap_or(0);
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

/// Node `id`'s step-mode answer to `action` (`list`, `next` with a hold id, ...).
fn try_step_rpc(
    c: &Cluster,
    id: u64,
    action: &str,
    hold_id: u64,
) -> Result<kv_proto::admin::StepReply, String> {
    use kv_proto::admin::admin_client::AdminClient;
    block_on(async {
        let mut admin = AdminClient::connect(format!("http://{}", c.api_addr(id)))
            .await
            .map_err(|e| e.to_string())?;
        admin
            .step(kv_proto::admin::StepRequest {
                action: action.to_string(),
                hold_id,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|e| e.to_string())
    })
}

fn step_rpc(c: &Cluster, id: u64, action: &str, hold_id: u64) -> kv_proto::admin::StepReply {
    try_step_rpc(c, id, action, hold_id)
        .unwrap_or_else(|e| panic!("step {action} on node {id}: {e}"))
}

/// Waits until node `from`'s link to node `to` is connected (after `to` restarted, the
/// link reconnects within its backoff; a message delivered before would be lost, and in
/// step mode nothing sends it again).
fn wait_link(c: &Cluster, from: u64, to: u64) {
    use kv_proto::kv::kv_api_client::KvApiClient;
    wait_for(&format!("node {from}'s link to node {to}"), || {
        block_on(async {
            let mut kv = KvApiClient::connect(format!("http://{}", c.api_addr(from)))
                .await
                .map_err(|e| e.to_string())?;
            let s = kv
                .status(kv_proto::kv::StatusRequest {})
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            match s.peers.iter().find(|p| p.id == to) {
                Some(p) if p.link_up => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
    });
}

/// Delivers the message of type `t` that node `from` holds for node `to`.
fn deliver(c: &Cluster, from: u64, t: &str, to: u64) {
    wait_link(c, from, to);
    // The message may still be on its way: the answer to a message just delivered is held
    // once its node has received it (and, for a vote, written the vote down).
    let hold_id = wait_for(&format!("node {from} to hold a {t} to {to}"), || {
        let held = step_rpc(c, from, "list", 0).held;
        held.iter()
            .find(|h| {
                h.msg
                    .as_ref()
                    .is_some_and(|m| m.msg_type == t && m.to == to)
            })
            .map(|h| h.hold_id)
            .ok_or_else(|| format!("held: {held:?}"))
    });
    let said = step_rpc(c, from, "next", hold_id).said;
    assert!(said.starts_with("delivered"), "{said}");
}

/// Ticks `id` until its election timer fires.
fn campaign_by_hand(c: &Cluster, id: u64) {
    for _ in 0..200 {
        if step_rpc(c, id, "tick", 0)
            .said
            .contains("the election timer fired")
        {
            return;
        }
    }
    panic!("node {id}'s timer never fired");
}

/// Restarts `id` and puts it in step mode at once (its clock runs from its start).
fn restart_into_step_mode(c: &mut Cluster, id: u64) {
    c.kill(id);
    c.spawn(id);
    wait_for("the node back, in step mode", || {
        match try_step_rpc(c, id, "on", 0) {
            Ok(a) if a.step_mode && a.role == "Follower" => Ok(()),
            Ok(a) => Err(format!("{a:?}")),
            Err(e) => Err(e),
        }
    });
}

/// Two candidates in one term and one voter asked by both, a restart between the two
/// requests, staged in step mode; the role each candidate ends with.
fn a_vote_asked_twice_in_one_term(forget_vote: bool) -> (String, String, u64, u64) {
    // Slow ticks (2-4 s elections): a restarted node is in step mode before its timer runs
    // out. No pre-vote, so that a fired timer is a vote request straight away.
    let mut args = vec!["--no-pre-vote", "--tick-ms", "200"];
    if forget_vote {
        args.extend(["--unsafe", "forget-vote"]);
    }
    let mut c = Cluster::start_with(3, &args);
    let voter = c.wait_leader();
    let (b, cc) = {
        let rest: Vec<u64> = (1..=3).filter(|i| *i != voter).collect();
        (rest[0], rest[1])
    };
    assert_ok(&c.client(&["step", "on"]), "step on");
    // The old leader comes back as a follower that knows no leader: it will grant a vote.
    restart_into_step_mode(&mut c, voter);
    campaign_by_hand(&c, b);
    campaign_by_hand(&c, cc);
    assert_eq!(c.term_of(b), c.term_of(cc), "both candidates in one term");
    deliver(&c, b, "MsgRequestVote", voter);
    deliver(&c, voter, "MsgRequestVoteResponse", b);
    assert_eq!(role(&c, b), "Leader", "node {b} won with the voter's vote");
    // The voter restarts: with forget-vote it no longer knows it voted in this term.
    restart_into_step_mode(&mut c, voter);
    deliver(&c, cc, "MsgRequestVote", voter);
    deliver(&c, voter, "MsgRequestVoteResponse", cc);
    (role(&c, b), role(&c, cc), c.term_of(b), c.term_of(cc))
}

#[test]
fn with_forget_vote_a_restarted_voter_makes_two_leaders_in_one_term() {
    let (b, c, tb, tc) = a_vote_asked_twice_in_one_term(true);
    assert_eq!(
        (b.as_str(), c.as_str()),
        ("Leader", "Leader"),
        "two leaders"
    );
    assert_eq!(tb, tc, "in one term");
}

#[test]
fn with_its_vote_on_disk_the_restarted_voter_refuses_the_second_candidate() {
    let (b, c, tb, tc) = a_vote_asked_twice_in_one_term(false);
    assert_eq!(b, "Leader");
    assert_eq!(c, "Candidate", "refused: the voter remembers its vote");
    assert_eq!(tb, tc);
}

/// `lab` on a running cluster (started with every protection on) switches a protection
/// off on every node at once, with the same symptom as the server's flag; `lab none`
/// switches it back; bad flags are refused in one line.
#[test]
fn lab_switches_a_running_cluster_and_none_switches_it_back() {
    let c = Cluster::start_with(3, &["--election-ticks", "30"]);
    let out = c.client(&["lab", "--read-mode", "lease"]);
    assert_ok(&out, "lab --read-mode lease");
    for s in c.status() {
        assert_eq!(s["protections"]["read_mode"], "lease", "{s}");
    }
    let read = read_at_a_paused_old_leader(&c);
    assert_ok(&read, "the lease read");
    assert_eq!(stdout_line(&read), "before", "stale: {}", text(&read));
    c.client(&["fault", "heal"]);
    assert_ok(&c.client(&["lab", "none"]), "lab none");
    for s in c.status() {
        assert_eq!(s["protections"]["read_mode"], "safe", "{s}");
    }
    let shown = c.client(&["lab"]);
    assert_ok(&shown, "lab");
    assert_eq!(
        text(&shown).matches("every protection on").count(),
        3,
        "{}",
        text(&shown)
    );
    let bad = c.client(&["lab", "--read-mode", "lease", "--no-check-quorum"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert_eq!(text(&bad).trim().lines().count(), 1, "{}", text(&bad));
    assert!(text(&bad).contains("needs check-quorum"), "{}", text(&bad));
    let unknown = c.client(&["lab", "--node", "9", "--no-pre-vote"]);
    assert_eq!(unknown.status.code(), Some(4), "{}", text(&unknown));
}

#[test]
fn lab_no_pre_vote_on_a_running_cluster_lets_a_node_back_depose_the_leader() {
    let c = Cluster::start_with(3, &[]);
    assert_ok(&c.client(&["lab", "--no-pre-vote"]), "lab --no-pre-vote");
    let (_, before, after) = a_follower_away_and_back(&c);
    assert!(after >= before + 2, "term {before} before, {after} after");
}
