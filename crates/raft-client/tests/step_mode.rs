//! Step mode on a real cluster: the clocks stopped and every Raft message held, an election
//! fired by hand and carried out one message at a time, check-quorum's refusal seen, a
//! write applied once its messages are delivered, and `step off` losing nothing.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `step next`: the line it printed, or `None` when nothing is held (exit 4).
fn next(c: &Cluster) -> Option<String> {
    let out = c.client(&["step", "next"]);
    match out.status.code() {
        Some(0) => Some(stdout_line(&out)),
        Some(4) if text(&out).contains("nothing is held") => None,
        _ => panic!("step next: {:?}: {}", out.status.code(), text(&out)),
    }
}

/// Delivers everything held; returns what was delivered.
fn drain(c: &Cluster) -> Vec<String> {
    let mut delivered = Vec::new();
    let started = Instant::now();
    while let Some(line) = next(c) {
        delivered.push(line);
        assert!(
            started.elapsed() < DEADLINE,
            "still delivering after {DEADLINE:?}: {delivered:#?}"
        );
    }
    delivered
}

/// `step tick ID`: the line it printed.
fn tick(c: &Cluster, id: u64) -> String {
    let out = c.client(&["step", "tick", &id.to_string()]);
    assert_ok(&out, &format!("step tick {id}"));
    stdout_line(&out)
}

/// `(elapsed, timeout)` from a tick's line (`... election timer 4 of 13 ...`).
fn timer(line: &str) -> (u64, u64) {
    let rest = line
        .split("election timer ")
        .nth(1)
        .unwrap_or_else(|| panic!("no timer in {line:?}"));
    let mut words = rest.split([' ', ',']);
    let elapsed = words.next().and_then(|w| w.parse().ok());
    let timeout = words.nth(1).and_then(|w| w.parse().ok());
    match (elapsed, timeout) {
        (Some(e), Some(t)) => (e, t),
        _ => panic!("no timer in {line:?}"),
    }
}

fn role(c: &Cluster, id: u64) -> String {
    c.node_status(id)["role"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn held(c: &Cluster, id: u64) -> u64 {
    c.node_status(id)["held_messages"].as_u64().unwrap_or(0)
}

/// Ticks `id` until its election timer fires; the lines the ticks printed.
fn tick_until_it_campaigns(c: &Cluster, id: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..40 {
        let line = tick(c, id);
        lines.push(line.clone());
        if line.contains("the election timer fired") {
            return lines;
        }
    }
    panic!("node {id}'s election timer never fired in 40 ticks: {lines:#?}");
}

#[test]
fn an_election_by_hand_one_message_at_a_time() {
    let mut c = Cluster::start(3);
    let old = c.wait_leader();
    c.put("before", "1");
    let out = c.client(&["step", "on"]);
    assert_ok(&out, "step on");
    for s in c.status() {
        assert_eq!(s["step_mode"], true, "status --json in step mode: {s}");
    }
    c.kill(old);
    // What the nodes sent before the kill (heartbeat answers, ...) goes first.
    drain(&c);
    let followers: Vec<u64> = (1..=3).filter(|i| *i != old).collect();
    // The one with the larger timeout waits; the other's timer is fired by hand.
    let timers: Vec<(u64, (u64, u64))> = followers
        .iter()
        .map(|f| (*f, timer(&tick(&c, *f))))
        .collect();
    let (candidate, voter) = if timers[0].1.1 <= timers[1].1.1 {
        (timers[0].0, timers[1].0)
    } else {
        (timers[1].0, timers[0].0)
    };
    let term_before = c.term_of(candidate);
    let ticks = tick_until_it_campaigns(&c, candidate);
    assert_eq!(role(&c, candidate), "PreCandidate", "after {ticks:#?}");
    assert!(held(&c, candidate) >= 2, "its pre-vote requests are held");
    assert_eq!(role(&c, voter), "Follower");

    // Check-quorum: the voter heard from its leader within its election timeout (its clock
    // stands still), so it ignores the pre-vote and sends no answer at all.
    let delivered = drain(&c);
    assert!(
        delivered
            .iter()
            .any(|l| l.contains(&format!("MsgRequestPreVote {candidate}→{voter}"))),
        "the pre-vote to the voter was delivered: {delivered:#?}"
    );
    assert_eq!(held(&c, voter), 0, "the voter answered nothing");
    wait_for("the voter to say why it gave no answer", || {
        let log = c.log(voter);
        if log.contains("no answer") && log.contains("check-quorum's lease") {
            Ok(())
        } else {
            Err("no line about check-quorum's lease in its log".to_string())
        }
    });
    assert_eq!(
        role(&c, candidate),
        "PreCandidate",
        "no pre-vote, no election"
    );

    // Tick the voter out of its lease (the base election timeout is 10 ticks); should its
    // own timer fire first, it becomes the candidate, as it would in a real cluster.
    let mut fired = None;
    for _ in 0..20 {
        let line = tick(&c, voter);
        if line.contains("the election timer fired") {
            fired = Some(voter);
            break;
        }
        if timer(&line).0 >= 10 {
            break;
        }
    }
    let (candidate, voter) = match fired {
        Some(v) => (v, candidate),
        None => {
            tick_until_it_campaigns(&c, candidate);
            (candidate, voter)
        }
    };

    // Now one message at a time: the candidate leads only once the vote it needs arrives.
    let mut delivered = Vec::new();
    let started = Instant::now();
    loop {
        let line = next(&c).unwrap_or_else(|| {
            panic!("nothing is held, yet node {candidate} does not lead: {delivered:#?}")
        });
        delivered.push(line.clone());
        let now = role(&c, candidate);
        if now == "Leader" {
            assert!(
                line.contains(&format!("MsgRequestVoteResponse {voter}→{candidate}"))
                    && line.contains("granted"),
                "node {candidate} became leader on delivering {line:?}, not on the vote \
                 it needed: {delivered:#?}"
            );
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "node {candidate} is {now} after {delivered:#?}"
        );
    }
    assert!(
        delivered
            .iter()
            .any(|l| l.contains(&format!("MsgRequestPreVoteResponse {voter}→{candidate}"))),
        "a granted pre-vote came first: {delivered:#?}"
    );
    assert!(c.term_of(candidate) > term_before);
    // Its first append (the empty entry of its term) waits for the learner.
    assert!(
        held(&c, candidate) >= 1,
        "the new leader's first append is held"
    );
    let voter_last = c.node_status(voter)["last_index"].as_u64().unwrap_or(0);

    // A write in step mode reaches the leader and is applied once its messages are
    // delivered, at a person's pace.
    let mut put = c.background(
        &["--timeout", "30", "put", "during", "step"],
        Stdio::piped(),
    );
    let started = Instant::now();
    let done = loop {
        if let Some(status) = put.try_wait().expect("poll the put") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(300));
        next(&c);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the put did not finish while its messages were delivered"
        );
    };
    assert!(done.success(), "the put made in step mode succeeded");
    assert!(c.node_status(voter)["last_index"].as_u64().unwrap_or(0) > voter_last);

    // step off: what is held goes, the clocks run, nothing is lost.
    // The killed node cannot be told (exit 3, said); the others can.
    let out = c.client(&["step", "off"]);
    assert_eq!(out.status.code(), Some(3), "step off: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().count() == 1 && err.contains(&format!("node {old} ")),
        "only the killed node is unreachable: {err}"
    );
    for s in c.status().iter().filter(|s| s["reachable"] == true) {
        assert_eq!(s["step_mode"], false, "{s}");
        assert_eq!(s["held_messages"], 0, "{s}");
    }
    c.spawn(old);
    let leader = c.wait_leader();
    assert_eq!(c.get("before"), "1");
    assert_eq!(c.get("during"), "step");
    c.put("after", "2");
    let applied = c.applied_of(leader);
    for id in 1..=3 {
        c.wait_applied(id, applied);
    }
}

#[test]
fn step_commands_say_what_is_wrong() {
    let c = Cluster::start(3);
    let out = c.client(&["step", "next"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("step on"), "{}", text(&out));
    let out = c.client(&["step", "tick", "9"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("unknown node 9"), "{}", text(&out));
    let out = c.client(&["step", "tick", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("step on"), "{}", text(&out));
    let out = c.client(&["step", "sideways"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A frozen node does not tick, but what it holds is in the network: step off sends it.
    assert_ok(&c.client(&["step", "on"]), "step on");
    assert_ok(&c.client(&["fault", "freeze", "1"]), "freeze 1");
    let out = c.client(&["step", "tick", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("frozen"), "{}", text(&out));
    assert_ok(&c.client(&["step", "off"]), "step off with node 1 frozen");
    assert_ok(&c.client(&["fault", "thaw", "1"]), "thaw 1");
    for s in c.status() {
        assert_eq!(s["step_mode"], false, "{s}");
    }
    c.wait_leader();
    c.put("after", "thaw");
}
