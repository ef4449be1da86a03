//! Membership changes end to end: real server processes joining, catching up, being
//! promoted and removed through `raft-client member ...` and `transfer`, under writes, across
//! restarts, and the changes that are refused.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Cluster, assert_exit, assert_ok, block_on, stdout_line, wait_for};
use kv_proto::admin::ListMembersRequest;
use kv_proto::admin::admin_client::AdminClient;
use raft_client::SmartClient;
use serde_json::Value;

/// `(id, role, peer address)` of every member, as node `id` knows them.
fn members_seen_by(cluster: &Cluster, id: u64) -> BTreeSet<(u64, String, String)> {
    block_on(async {
        let mut admin = AdminClient::connect(format!("http://{}", cluster.api_addr(id)))
            .await
            .expect("connect");
        let list = admin
            .list_members(ListMembersRequest {})
            .await
            .expect("list members")
            .into_inner();
        list.members
            .into_iter()
            .map(|m| (m.id, m.role, m.peer_addr))
            .collect()
    })
}

/// `member list --json`, asserting success.
fn member_list(cluster: &Cluster) -> Vec<Value> {
    let out = cluster.client(&["member", "list", "--json"]);
    assert_ok(&out, "member list --json");
    match serde_json::from_str::<Value>(&stdout_line(&out)) {
        Ok(Value::Array(items)) => items,
        other => panic!("member list --json printed {other:?}"),
    }
}

fn roles(list: &[Value]) -> Vec<(u64, String)> {
    list.iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap_or(0),
                m["role"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Writes `w0, w1, ...` through one smart client until stopped; returns the keys it was
/// told were written.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Writer {
    fn start(addrs: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let client = SmartClient::new(addrs, Duration::from_secs(10)).expect("client");
                let mut acked = Vec::new();
                let mut i = 0;
                while !flag.load(Ordering::Relaxed) {
                    let key = format!("w{i}");
                    if client.put(&key, b"v").await.is_ok() {
                        acked.push(key);
                    }
                    i += 1;
                }
                acked
            })
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("writer thread")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_node_joins_by_snapshot_is_promoted_and_the_leader_is_removed_under_writes() {
    // Snapshots every 50 entries: by the time node 4 joins, the log it needs is compacted.
    let mut cluster = Cluster::start_with(3, &["--snapshot-every", "50"]);
    for i in 0..120 {
        cluster.put(&format!("early{i}"), "v");
    }
    let writer = Writer::start(cluster.api_addrs().split(',').map(str::to_string).collect());

    let new = cluster.add_node();
    wait_for("the new node to wait to be added", || {
        let log = cluster.log(new);
        let told = format!(
            "waiting to be added: run `raft-client member add {new} {}`",
            cluster.peer_addr(new)
        );
        if log.contains(&told) {
            Ok(())
        } else {
            Err(log)
        }
    });
    let out = cluster.client(&[
        "member",
        "add",
        &new.to_string(),
        &cluster.peer_addr(new),
        "--learner",
    ]);
    assert_ok(&out, "member add --learner");
    let leader = cluster.wait_leader();
    wait_for("the learner to catch up", || {
        let s = &cluster.status()[new as usize - 1];
        let leader_applied = cluster.status()[leader as usize - 1]["applied_index"]
            .as_u64()
            .unwrap_or(0);
        match s["applied_index"].as_u64() {
            Some(a) if a + 20 >= leader_applied && a > 0 => Ok(()),
            _ => Err(s.to_string()),
        }
    });
    assert!(
        cluster
            .log(new)
            .contains("installed a snapshot from the leader"),
        "the learner should have caught up from a snapshot:\n{}",
        cluster.log(new)
    );
    assert_eq!(
        roles(&member_list(&cluster)),
        [
            (1, "voter".to_string()),
            (2, "voter".to_string()),
            (3, "voter".to_string()),
            (new, "learner".to_string())
        ]
    );

    let out = cluster.client(&["member", "promote", &new.to_string()]);
    assert_ok(&out, "member promote");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("entered a joint configuration"), "{said}");

    let leader = cluster.wait_leader();
    let out = cluster.client(&["member", "remove", &leader.to_string()]);
    assert_ok(&out, "member remove <leader>");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("handing leadership"), "{said}");
    wait_for("the removed leader to know it", || {
        let log = cluster.log(leader);
        if log.contains("removed from the cluster at index") {
            Ok(())
        } else {
            Err(log)
        }
    });
    assert!(
        cluster.is_running(leader),
        "a removed node stays up until stopped"
    );

    let acked = writer.stop();
    assert!(!acked.is_empty(), "the writer got nothing done");
    cluster.kill(leader);
    let remaining: Vec<u64> = (1..=4).filter(|id| *id != leader).collect();
    // The cluster keeps accepting writes, and every node agrees on who is in it.
    cluster.put("after", "changes");
    let expected = members_seen_by(&cluster, remaining[0]);
    assert_eq!(expected.len(), 3, "{expected:?}");
    for id in &remaining {
        wait_for(&format!("node {id} to agree on the members"), || {
            let seen = members_seen_by(&cluster, *id);
            if seen == expected {
                Ok(())
            } else {
                Err(format!("{seen:?} vs {expected:?}"))
            }
        });
    }
    // No acknowledged write is lost.
    for key in acked.iter().step_by(7).chain(acked.last()) {
        assert_eq!(cluster.get(key), "v", "acknowledged {key}");
    }

    // Every node restarts from disk: membership and addresses come back.
    let before = member_list(&cluster);
    for id in &remaining {
        cluster.kill(*id);
    }
    for id in &remaining {
        cluster.spawn(*id);
    }
    cluster.wait_leader();
    assert_eq!(member_list(&cluster), before);
    for id in &remaining {
        assert_eq!(
            members_seen_by(&cluster, *id),
            expected,
            "node {id} after a restart"
        );
    }
    assert_eq!(cluster.get("after"), "changes");
    assert_eq!(cluster.get("early7"), "v");
    cluster.put("after", "restart");
}

#[test]
fn a_client_started_with_the_first_three_addresses_follows_the_cluster_to_node_4() {
    let mut cluster = Cluster::start(3);
    let first: Vec<String> = cluster.api_addrs().split(',').map(str::to_string).collect();
    let client = SmartClient::new(first, Duration::from_secs(10)).expect("client");
    // One runtime for the client's whole life: its connections live on it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let put = |key: &str, value: &str| {
        if let Err(e) = rt.block_on(client.put(key, value.as_bytes())) {
            if let raft_client::ClientError::Unavailable { trace, .. } = &e {
                for hop in &trace.hops {
                    eprintln!("  {hop}");
                }
            }
            panic!("put {key}: {e} (client knows {:?})", client.peers());
        }
    };
    let get = |key: &str| -> String {
        let reply = rt
            .block_on(client.get(key, false))
            .unwrap_or_else(|e| panic!("get {key}: {e}"));
        String::from_utf8_lossy(&reply.value.value).into_owned()
    };
    put("k", "0");
    let new = cluster.add_node();
    assert_ok(
        &cluster.client(&["member", "add", &new.to_string(), &cluster.peer_addr(new)]),
        "member add (learner, then voter)",
    );
    put("k", "1");
    // The client looks the members up now and then (every 2 s at most) after a success:
    // it must know node 4 before the nodes it started with are gone.
    let new_addr = cluster.api_addr(new);
    wait_for("the client to learn node 4's address", || {
        get("k");
        let known = client.peers();
        if known.contains(&new_addr) {
            Ok(())
        } else {
            Err(format!("it knows {known:?}"))
        }
    });
    for old in 1..=3 {
        let out = cluster.client(&["member", "remove", &old.to_string()]);
        assert_ok(&out, &format!("member remove {old}"));
        cluster.kill(old);
        put("k", &format!("after removing {old}"));
        assert_eq!(get("k"), format!("after removing {old}"));
    }
    let list = member_list(&cluster);
    assert_eq!(roles(&list), [(new, "voter".to_string())]);
    put("only", "node 4");
    assert_eq!(get("only"), "node 4");
}

/// Runs the client and expects a refusal (exit 4) in one line that contains `needle`.
fn refused(cluster: &Cluster, args: &[&str], needle: &str) {
    let out = cluster.client(args);
    assert_exit(&out, 4, &format!("{args:?}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn membership_changes_that_are_not_allowed_are_refused() {
    // Long elections (100 ticks of 30 ms) so a 1 s delay on the followers keeps the leader
    // leading while a change waits for them.
    let mut cluster = Cluster::start_with(3, &["--tick-ms", "30", "--election-ticks", "100"]);
    let leader = cluster.wait_leader();
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    refused(
        &cluster,
        &["member", "add", "2", "127.0.0.1:1", "--learner"],
        "already a member",
    );
    refused(
        &cluster,
        &["member", "remove", "9"],
        "node 9 is not a member",
    );
    refused(
        &cluster,
        &["member", "promote", "9"],
        "node 9 is not a member",
    );
    refused(&cluster, &["transfer", "9"], "node 9 is not a member");
    // A node that does not run is not added (nothing changes): the leader asks it first.
    let nobody = "127.0.0.1:1";
    refused(
        &cluster,
        &["member", "add", "5", nobody, "--learner"],
        "node 5 does not answer at 127.0.0.1:1001",
    );
    assert_eq!(member_list(&cluster).len(), 3, "nothing was added");
    // A learner that has received nothing (frozen before its first snapshot) is far
    // behind: it cannot be promoted, nor lead.
    let new = cluster.add_joining_node();
    let new_addr = cluster.peer_addr(new);
    assert_ok(
        &cluster.client_at(
            &cluster.api_addr(new),
            &["fault", "freeze", &new.to_string()],
        ),
        "freeze the new node",
    );
    assert_ok(
        &cluster.client(&["member", "add", &new.to_string(), &new_addr, "--learner"]),
        "member add --learner",
    );
    refused(
        &cluster,
        &["member", "promote", &new.to_string()],
        "received nothing yet",
    );
    refused(&cluster, &["transfer", &new.to_string()], "is a learner");
    refused(
        &cluster,
        &["member", "add", "6", &new_addr, "--learner"],
        &format!("is node {new}'s address"),
    );

    // One change at a time: while a change waits for slow followers, another waits for
    // it (and says so), then is decided.
    for id in &followers {
        assert_ok(
            &cluster.client(&["fault", "delay", &id.to_string(), "1000"]),
            "fault delay",
        );
    }
    let slow = cluster.background(
        &["--timeout", "20", "member", "remove", &new.to_string()],
        std::process::Stdio::piped(),
    );
    wait_for("the leader to propose removing the new node", || {
        let log = cluster.log(leader);
        if log.contains(&format!("proposed: remove {new}")) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    let second_out = cluster.dir.path().join("second.out");
    let second = cluster.background(
        &["--timeout", "20", "member", "remove", "9"],
        std::fs::File::create(&second_out)
            .expect("second.out")
            .into(),
    );
    wait_for("the second command to say it waits for the first", || {
        let out = std::fs::read_to_string(&second_out).unwrap_or_default();
        if out.contains("waiting: one change at a time") {
            Ok(())
        } else {
            Err(format!("its output so far: {out:?}"))
        }
    });
    for id in &followers {
        assert_ok(
            &cluster.client(&["fault", "heal", &id.to_string()]),
            "fault heal",
        );
    }
    let out = slow.wait_with_output().expect("member remove (slow)");
    assert_ok(&out, "member remove (slow)");
    // Removed (and still frozen): out of the way.
    cluster.kill(new);
    let out = second.wait_with_output().expect("member remove 9");
    assert_exit(&out, 4, "member remove 9, after waiting");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node 9 is not a member"), "{err}");
    assert_eq!(
        roles(&member_list(&cluster)),
        [
            (1, "voter".to_string()),
            (2, "voter".to_string()),
            (3, "voter".to_string())
        ]
    );

    // Leadership moves to the voter asked for (one that does not lead now).
    let now = cluster.wait_leader();
    let to = (1..=3)
        .find(|id| *id != now)
        .expect("a voter other than the leader");
    let out = cluster.client(&["transfer", &to.to_string()]);
    assert_ok(&out, "transfer");
    assert_eq!(cluster.wait_leader(), to);
}

#[test]
fn the_last_voter_cannot_be_removed() {
    let cluster = Cluster::start(1);
    let out = cluster.client(&["member", "remove", "1"]);
    assert_exit(&out, 4, "member remove of the last voter");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the last voter"), "{err}");
    cluster.put("still", "here");
}
