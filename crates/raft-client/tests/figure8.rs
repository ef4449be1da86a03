//! The Raft paper's Figure 8 staged on five real nodes in step mode, one message at a time:
//! an entry of an old term stored on a majority is not committed (a leader counts replicas
//! only for entries of its own term), and a later leader replaces it. Plain Raft, as the
//! paper has it: pre-vote and check-quorum off (they change when elections start, not what
//! a leader may commit).
//!
//! raft-rs appends a no-op when a node becomes leader, and that no-op plays the part of the
//! paper's client entries of terms 3 and 4; and where the paper's S1 crashes and restarts,
//! here it only hears of the newer term (a vote request delivered to it).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use raft_client::SmartClient;
use raft_client::admin::ClusterMap;
use raft_client::step::{self, HeldAt};

/// The nodes' view for the choreography: the step API through one client.
struct Stage<'a> {
    c: &'a Cluster,
    client: SmartClient,
    /// One runtime for the client's connections.
    rt: tokio::runtime::Runtime,
}

impl Stage<'_> {
    fn map(&self) -> ClusterMap {
        self.rt
            .block_on(ClusterMap::discover_some(&self.client))
            .unwrap_or_else(|r| panic!("the cluster's members: {r:?}"))
    }

    fn held(&self) -> Vec<HeldAt> {
        self.held_in(&self.map())
    }

    fn held_in(&self, map: &ClusterMap) -> Vec<HeldAt> {
        self.rt.block_on(step::held_all(&self.client, map)).0
    }

    /// Delivers (or drops) every held message `pick` chooses, oldest first.
    fn act_on(&self, deliver: bool, pick: impl Fn(&str, u64, u64) -> bool) {
        let map = self.map();
        for h in self.held_in(&map) {
            let Some(m) = h.held.msg.as_ref() else {
                continue;
            };
            if pick(&m.msg_type, m.from, m.to) {
                self.rt
                    .block_on(step::act(
                        &self.client,
                        &map,
                        h.node,
                        h.held.hold_id,
                        deliver,
                    ))
                    .unwrap_or_else(|e| {
                        panic!("{} {} {}→{}: {e}", deliver, m.msg_type, m.from, m.to)
                    });
            }
        }
    }

    fn deliver(&self, pick: impl Fn(&str, u64, u64) -> bool) {
        self.act_on(true, pick);
    }

    fn drop_where(&self, pick: impl Fn(&str, u64, u64) -> bool) {
        self.act_on(false, pick);
    }

    /// Waits until `n` held messages match `pick` (a message just delivered is answered
    /// once its node has received it, and for a vote, written the vote down).
    fn expect_held(&self, what: &str, n: usize, pick: impl Fn(&str, u64, u64) -> bool) {
        wait_for(what, || {
            let held = self.held();
            let matching = held
                .iter()
                .filter_map(|h| h.held.msg.as_ref())
                .filter(|m| pick(&m.msg_type, m.from, m.to))
                .count();
            if matching >= n {
                Ok(())
            } else {
                let all: Vec<String> = held
                    .iter()
                    .filter_map(|h| h.held.msg.as_ref())
                    .map(|m| format!("{} {}→{}", m.msg_type, m.from, m.to))
                    .collect();
                Err(format!("{matching} of {n}; held: {all:?}"))
            }
        });
    }

    /// Delivers, round after round, every held message that `pick` chooses, dropping the
    /// rest, until `done` holds.
    fn settle_until(
        &self,
        what: &str,
        pick: impl Fn(&str, u64, u64) -> bool,
        done: impl Fn(&Self) -> Result<(), String>,
    ) {
        wait_for(what, || {
            self.deliver(&pick);
            self.drop_where(|t, f, to| !pick(t, f, to));
            done(self)
        });
    }

    fn status(&self, id: u64) -> (String, u64, u64, u64) {
        let s = self.c.node_status(id);
        (
            s["role"].as_str().unwrap_or("?").to_string(),
            s["term"].as_u64().unwrap_or(0),
            s["commit_index"].as_u64().unwrap_or(0),
            s["last_index"].as_u64().unwrap_or(0),
        )
    }

    /// Ticks `id` by hand until it becomes a Candidate; its term then.
    fn campaign(&self, id: u64) -> u64 {
        for _ in 0..60 {
            let out = self.c.client(&["step", "tick", &id.to_string()]);
            assert_ok(&out, &format!("step tick {id}"));
            let (role, term, _, _) = self.status(id);
            if role == "Candidate" {
                return term;
            }
        }
        panic!(
            "node {id} did not campaign in 60 ticks: {:?}",
            self.status(id)
        );
    }
}

fn votes(t: &str) -> bool {
    t == "MsgRequestVote" || t == "MsgRequestVoteResponse"
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_and_a_later_leader_replaces_it() {
    let c = Cluster::start_with(5, &["--no-pre-vote", "--no-check-quorum"]);
    let s1 = c.wait_leader();
    c.put("before", "1");
    let others: Vec<u64> = (1..=5).filter(|i| *i != s1).collect();
    let (s2, s3, s4, s5) = (others[0], others[1], others[2], others[3]);
    // The leader may append entries of its own after the put (the members' data dirs):
    // wait until every log ends at one index, committed everywhere.
    let k = wait_for(
        "every node's log to end at one index, known committed",
        || {
            let k = c.node_status(s1)["last_index"].as_u64().unwrap_or(0);
            let behind: Vec<(u64, u64, u64)> = (1..=5)
                .map(|i| {
                    let s = c.node_status(i);
                    let field = |f: &str| s[f].as_u64().unwrap_or(0);
                    (i, field("commit_index"), field("last_index"))
                })
                .filter(|(_, commit, last)| (*commit, *last) != (k, k))
                .collect();
            if behind.is_empty() {
                Ok(k)
            } else {
                Err(format!(
                    "the leader's last index is {k}; (node, commit, last) elsewhere: {behind:?}"
                ))
            }
        },
    );
    let stage = Stage {
        c: &c,
        client: SmartClient::new(
            c.api_addrs().split(',').map(str::to_string).collect(),
            Duration::from_secs(5),
        )
        .expect("client"),
        rt: tokio::runtime::Runtime::new().expect("runtime"),
    };
    assert_ok(&c.client(&["step", "on"]), "step on");
    let term = stage.status(s1).1;

    // (a) S1 leads in term T and replicates a new entry, k+1, to S2 only.
    let mut put = c.background(&["--timeout", "2", "put", "f8", "of-term-T"], Stdio::null());
    wait_for("S1 to append the write", || {
        let last = stage.status(s1).3;
        if last == k + 1 {
            Ok(())
        } else {
            Err(format!("S1's last index {last}, want {}", k + 1))
        }
    });
    stage.deliver(|t, _, to| t == "MsgAppend" && to == s2);
    wait_for("S2 to store entry k+1", || match stage.status(s2).3 {
        l if l == k + 1 => Ok(()),
        l => Err(format!("S2's last index {l}")),
    });
    // S1 crashes before anything else leaves it (S2's acknowledgement is lost with it).
    stage.drop_where(|_, _, _| true);
    // Its client gives up, told "outcome unknown" (before any other node could lead and
    // take its retry).
    let status = put.wait().expect("the put's exit");
    assert_eq!(status.code(), Some(3), "the put's outcome is unknown");

    // (b) S5 is elected in term T+1 by S3, S4 and itself, appends its no-op at k+1 (a
    // different entry at the same index), and crashes before sending it. S1 hears of the
    // term (where the paper's S1 restarts): it refuses S5, whose log is older than its own.
    let t1 = stage.campaign(s5);
    assert_eq!(t1, term + 1);
    let vote_from = |from: u64| move |t: &str, f: u64, _: u64| t == "MsgRequestVote" && f == from;
    let answer_to =
        |to: u64| move |t: &str, _: u64, m_to: u64| t == "MsgRequestVoteResponse" && m_to == to;
    stage.expect_held("S5's vote requests", 4, vote_from(s5));
    stage.deliver(|t, f, to| t == "MsgRequestVote" && f == s5 && to != s2);
    stage.expect_held("the answers of S1, S3 and S4 to S5", 3, answer_to(s5));
    stage.deliver(|t, f, to| t == "MsgRequestVoteResponse" && to == s5 && f != s1);
    stage.expect_held("S5's appends as a leader", 4, |t, f, _| {
        t == "MsgAppend" && f == s5
    });
    let (role, _, _, last) = stage.status(s5);
    assert_eq!(
        (role.as_str(), last),
        ("Leader", k + 1),
        "S5 leads with its no-op at k+1"
    );
    assert_eq!(stage.status(s1).0, "Follower", "S1 learned of term T+1");
    stage.drop_where(|_, _, _| true);

    // (c) S1 is elected in term T+2 (S5 refuses, and learns the term) and sends its log to
    // S3 only: entry k+1 of term T is now on S1, S2 and S3, a majority.
    let t2 = stage.campaign(s1);
    assert_eq!(t2, term + 2, "S1 campaigns in term T+2");
    stage.expect_held("S1's vote requests", 4, vote_from(s1));
    stage.deliver(vote_from(s1));
    stage.expect_held("the four answers to S1", 4, answer_to(s1));
    stage.deliver(answer_to(s1));
    stage.expect_held("S1's appends as a leader", 4, |t, f, _| {
        t == "MsgAppend" && f == s1
    });
    assert_eq!(stage.status(s1).0, "Leader", "S1 leads in term T+2");
    // Its appends (its no-op at k+2, after k+1) reach S3 only: S3 refuses the first (it
    // lacks k+1), and takes k+1 and k+2 in the next.
    stage.settle_until(
        "S3 to store k+1 (term T) and k+2 (term T+2) from S1",
        |t, f, to| {
            matches!(t, "MsgAppend" | "MsgAppendResponse")
                && ((f == s1 && to == s3) || (f == s3 && to == s1))
        },
        |st| match st.status(s3).3 {
            l if l == k + 2 => Ok(()),
            l => Err(format!("S3's last index {l}")),
        },
    );
    assert_eq!(stage.status(s2).3, k + 1, "S2 has k+1 (term T)");
    for id in 1..=5 {
        let commit = stage.status(id).2;
        assert_eq!(
            commit, k,
            "node {id}: entry k+1 is on 3 of 5 logs, but no leader of its own term counted it"
        );
    }

    // (d) S1 crashes; S5 is elected in term T+3 by S2, S4 and itself (its last entry, of
    // term T+1, is newer than S2's of term T) and replaces entry k+1 everywhere it reaches.
    let t3 = stage.campaign(s5);
    assert!(t3 > t2, "S5 campaigns in a term above S1's");
    stage.settle_until(
        "S5 to lead in term T+3, commit its no-op at k+2 (and with it its k+1), and bring S2 \
         and S4 to its log",
        |t, f, to| f != s1 && to != s1 && (votes(t) || t.starts_with("MsgAppend")),
        |st| {
            let (role, _, commit, last) = st.status(s5);
            let (l2, l4) = (st.status(s2).3, st.status(s4).3);
            if role == "Leader" && commit >= k + 2 && l2 == last && l4 == last {
                Ok(())
            } else {
                Err(format!(
                    "S5 {role}, commit {commit}, last {last}; S2's last {l2}, S4's {l4}"
                ))
            }
        },
    );
    wait_for("S2's events to say its entry k+1 was replaced", || {
        let log = c.log(s2);
        if log.contains(&format!("uncommitted entry {} (term {term})", k + 1)) {
            Ok(())
        } else {
            Err("no replacement in S2's log yet".to_string())
        }
    });

    // The write stored on a majority never committed: once the cluster runs again the key
    // is not there.
    assert_ok(&c.client(&["step", "off"]), "step off");
    c.wait_leader();
    let out = c.client(&["get", "f8"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "f8 is not found: {}",
        stdout_line(&out)
    );
}
