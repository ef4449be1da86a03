//! The watch stream and the cluster view's model on real clusters: an election as the
//! records tell it (every request and answer, each send paired with its receipt), a
//! partitioned leader's divergent entry and its replacement, a watcher that never reads,
//! and the view's source across a node's restart and a node that joins.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, DEADLINE, assert_ok, wait_for};
use kv_proto::watch::{self as pb, watch_client::WatchClient, watch_record::Kind};
use raft_client::SmartClient;
use raft_client::view::model::ClusterModel;
use raft_client::view::source::{self, Feed};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Every record the nodes at `addrs` stream, gathered as they come.
fn gather(rt: &tokio::runtime::Runtime, addrs: &[String]) -> Arc<Mutex<Vec<pb::WatchRecord>>> {
    let records = Arc::new(Mutex::new(Vec::new()));
    for addr in addrs {
        let (addr, records) = (addr.clone(), Arc::clone(&records));
        rt.spawn(async move {
            let mut client = WatchClient::connect(format!("http://{addr}"))
                .await
                .expect("connect to the watch stream");
            let mut stream = client
                .watch(pb::WatchRequest { log_tail: 0 })
                .await
                .expect("watch")
                .into_inner();
            while let Ok(Some(batch)) = stream.message().await {
                records.lock().expect("records").extend(batch.records);
            }
        });
    }
    records
}

fn snapshot(records: &Arc<Mutex<Vec<pb::WatchRecord>>>) -> Vec<pb::WatchRecord> {
    records.lock().expect("records").clone()
}

/// The messages of `kind` (`send` or `recv`) in `records`, recorded by `node`.
fn messages(
    records: &[pb::WatchRecord],
    node: u64,
    send: bool,
) -> impl Iterator<Item = &pb::PeerMessage> {
    records
        .iter()
        .filter(move |r| r.node == node)
        .filter_map(move |r| match &r.kind {
            Some(Kind::Send(m)) if send => Some(m),
            Some(Kind::Recv(m)) if !send => Some(m),
            _ => None,
        })
}

#[test]
fn an_election_as_the_watch_records_tell_it() {
    let mut cluster = Cluster::start(3);
    let old = cluster.wait_leader();
    let old_term = cluster.term_of(old);
    let rt = runtime();
    let addrs: Vec<String> = (1..=3).map(|id| cluster.api_addr(id)).collect();
    let records = gather(&rt, &addrs);
    wait_for("a first state from every node", || {
        let seen = snapshot(&records);
        let states = (1..=3)
            .filter(|id| {
                seen.iter()
                    .any(|r| r.node == *id && matches!(r.kind, Some(Kind::State(_))))
            })
            .count();
        if states == 3 {
            Ok(())
        } else {
            Err(format!("{states} of 3"))
        }
    });
    cluster.kill(old);
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let new = wait_for("a new leader in the records", || {
        let seen = snapshot(&records);
        seen.iter()
            .find_map(|r| match &r.kind {
                Some(Kind::State(s)) if s.role == "Leader" && s.term > old_term => Some(r.node),
                _ => None,
            })
            .ok_or_else(|| "none yet".to_string())
    });
    assert!(others.contains(&new));
    let voter = *others
        .iter()
        .find(|id| **id != new)
        .expect("the other survivor");
    // Let the last answers arrive.
    wait_for("the winner's first append to be received", || {
        let seen = snapshot(&records);
        if messages(&seen, voter, false).any(|m| m.msg_type == "MsgAppend" && m.from == new) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    let seen = snapshot(&records);
    for t in ["MsgRequestPreVote", "MsgRequestVote"] {
        for to in [old, voter] {
            assert!(
                messages(&seen, new, true).any(|m| m.msg_type == t && m.to == to),
                "node {new} sent {t} to node {to}"
            );
        }
        // The one that lived received it, with the id the sender gave it.
        let sent: Vec<u64> = messages(&seen, new, true)
            .filter(|m| m.msg_type == t && m.to == voter)
            .map(|m| m.msg_id)
            .collect();
        assert!(sent.iter().all(|id| *id != 0), "numbered while watched");
        assert!(
            messages(&seen, voter, false).any(|m| m.msg_type == t && sent.contains(&m.msg_id)),
            "node {voter}'s receipt of {t} pairs with node {new}'s send {sent:?}"
        );
        let answer = format!("{t}Response");
        let answered: Vec<u64> = messages(&seen, voter, true)
            .filter(|m| m.msg_type == answer && m.to == new && !m.reject)
            .map(|m| m.msg_id)
            .collect();
        assert!(!answered.is_empty(), "node {voter} granted {t}");
        assert!(
            messages(&seen, new, false)
                .any(|m| m.msg_type == answer && answered.contains(&m.msg_id)),
            "node {new} received node {voter}'s {answer}"
        );
    }
    // The model pairs them too.
    let mut model = ClusterModel::new();
    for r in &seen {
        model.apply(r);
    }
    let paired = model
        .positions()
        .filter_map(|p| model.at(p))
        .filter(|e| e.msg.msg_type == "MsgRequestVote" && e.partner.is_some())
        .count();
    assert!(
        paired >= 2,
        "the vote request to node {voter} and its receipt"
    );
    assert_eq!(model.leader(), Some(new));
}

#[test]
fn a_partitioned_leaders_entry_differs_until_healing_replaces_it() {
    let cluster = Cluster::start(3);
    let old = cluster.wait_leader();
    let rt = runtime();
    let addrs: Vec<String> = (1..=3).map(|id| cluster.api_addr(id)).collect();
    let records = gather(&rt, &addrs);
    assert_ok(
        &cluster.client(&["fault", "isolate", &old.to_string()]),
        "isolate the leader",
    );
    // To node `old` alone.
    let out = cluster.client_at(
        &cluster.api_addr(old),
        &["--timeout", "1", "put", "x", "lost"],
    );
    assert_eq!(out.status.code(), Some(3), "never committed: {out:?}");
    let lonely = cluster.node_status(old)["last_index"].as_u64().unwrap_or(0);
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
    let model_now = || {
        let mut m = ClusterModel::new();
        for r in snapshot(&records) {
            m.apply(&r);
        }
        m
    };
    wait_for(
        "the others to elect a leader with its own entry there",
        || {
            let m = model_now();
            match m.leader() {
                Some(l) if others.contains(&l) && m.differs(old, lonely) => Ok(()),
                l => Err(format!(
                    "leader {l:?}; node {old} at {lonely}: {:?}",
                    m.node(old).and_then(|n| n.log.get(&lonely))
                )),
            }
        },
    );
    assert_ok(&cluster.client(&["fault", "heal"]), "heal");
    wait_for(
        "the isolated node's entry to be replaced by the leader's",
        || {
            let m = model_now();
            if !m.differs(old, lonely) && m.node(old).is_some_and(|n| n.log.contains_key(&lonely)) {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    m.node(old).and_then(|n| n.log.get(&lonely))
                ))
            }
        },
    );
}

#[test]
fn a_watcher_that_never_reads_holds_up_nothing() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let rt = runtime();
    let addr = cluster.api_addr(leader);
    // Opened, then never read.
    let stuck = rt.block_on(async move {
        let mut client = WatchClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        client
            .watch(pb::WatchRequest { log_tail: 0 })
            .await
            .expect("watch")
            .into_inner()
    });
    let rss = |c: &Cluster| c.node_status(leader)["rss_bytes"].as_u64().unwrap_or(0);
    let before = rss(&cluster);
    let out = cluster.client(&[
        "bench",
        "--op",
        "put",
        "--clients",
        "16",
        "--seconds",
        "4",
        "--json",
    ]);
    assert_ok(&out, "bench with a stuck watcher");
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench json");
    eprintln!(
        "with a watcher that never reads: {} puts/s",
        bench["ops_per_sec"]
    );
    assert!(bench["ops"].as_u64().unwrap_or(0) > 100, "{bench}");
    let after = rss(&cluster);
    // The ring holds 20,000 records; nothing else waits for the watcher.
    assert!(
        after < before + 96 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes with a watcher that never reads"
    );
    drop(stuck);
}

#[test]
fn the_view_follows_a_node_that_restarts_and_one_that_joins() {
    let mut cluster = Cluster::start(3);
    cluster.wait_leader();
    let rt = runtime();
    let peers: Vec<String> = (1..=3).map(|id| cluster.api_addr(id)).collect();
    let client = Arc::new(SmartClient::new(peers, Duration::from_secs(2)).expect("client"));
    let model = Arc::new(Mutex::new(ClusterModel::new()));
    {
        let model = Arc::clone(&model);
        rt.spawn(async move {
            let (mut feed, _supervisor) = source::spawn(client);
            while let Some(f) = feed.recv().await {
                let mut m = model.lock().expect("model");
                match f {
                    Feed::Record(r) => m.apply(&r),
                    Feed::Down(id, _) => m.set_connected(id, false),
                }
            }
        });
    }
    let node = |id: u64| {
        let m = model.lock().expect("model");
        m.node(id).map(|n| (n.connected, n.state.clone()))
    };
    wait_for("every node streaming", || {
        let up = (1..=3)
            .filter(|id| node(*id).is_some_and(|(c, s)| c && s.is_some()))
            .count();
        if up == 3 {
            Ok(())
        } else {
            Err(format!("{up} of 3"))
        }
    });
    cluster.kill(2);
    wait_for("node 2's stream down", || match node(2) {
        Some((false, _)) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let term_before = node(2).and_then(|(_, s)| s).map_or(0, |s| s.term);
    cluster.spawn(2);
    // Back, it follows the leader elected meanwhile, or (restarted before the others'
    // timers ran out, its log as good as theirs) wins the election itself.
    wait_for("node 2 streaming again", || match node(2) {
        Some((true, Some(s)))
            if s.leader != 0 && (s.role == "Follower" || s.term > term_before) =>
        {
            Ok(())
        }
        other => Err(format!("{other:?}")),
    });
    let new = cluster.add_joining_node();
    let addr = cluster.peer_addr(new);
    assert_ok(
        &cluster.client(&["--timeout", "20", "member", "add", &new.to_string(), &addr]),
        "member add",
    );
    let start = std::time::Instant::now();
    loop {
        let joined = {
            let m = model.lock().expect("model");
            m.members().contains(&new)
                && m.node(new)
                    .and_then(|n| n.state.as_ref())
                    .is_some_and(|s| s.role == "Follower" && s.applied > 0)
        };
        if joined {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "node {new} should appear in the view as a member"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child killed if the test ends before it is taken out.
struct Stopped(Option<std::process::Child>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_recording_holds_the_header_and_every_nodes_records_in_time_order() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let file = cluster.dir.path().join("run.jsonl");
    let file_arg = file.to_string_lossy().to_string();
    let mut recorder = Stopped(Some(cluster.background(
        &["record", &file_arg, "--seconds", "600"],
        std::process::Stdio::null(),
    )));
    // The recorder is running once the header is out; then a write goes into the recording.
    wait_for("the recording's header", || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().next().is_some() {
            Ok(())
        } else {
            Err(format!("{} bytes", text.len()))
        }
    });
    cluster.put("recorded", "yes");
    let put_index = cluster.applied_of(leader);
    let follower = if leader == 3 { 2 } else { 3 };
    for fault in [
        &["fault", "delay", &follower.to_string(), "20"][..],
        &["fault", "heal"],
    ] {
        assert_ok(&cluster.client(fault), &fault.join(" "));
    }
    // Until Ctrl+C. (Records the streams sent before, within the moment they are held.)
    let recorder = recorder.0.take().expect("the recorder");
    common::interrupt(&recorder);
    let out = recorder.wait_with_output().expect("record");
    assert_ok(&out, "record, interrupted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("of 3 nodes"), "its summary: {err}");

    let text = std::fs::read_to_string(&file).expect("the recording");
    let mut lines = text.lines();
    let header: serde_json::Value =
        serde_json::from_str(lines.next().expect("a header")).expect("a JSON header");
    assert_eq!(header["format"], "raft-playground-record", "{header}");
    assert_eq!(header["version"], 1, "{header}");
    let ids: Vec<u64> = header["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(ids, [1, 2, 3], "{header}");
    assert_eq!(
        header["nodes"][0]["api_addr"],
        cluster.api_addr(1),
        "{header}"
    );

    let records: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut last_t = 0;
    let mut last_seq = std::collections::HashMap::new();
    for r in &records {
        let t = r["t_us"].as_u64().expect("t_us");
        assert!(t >= last_t, "out of time order at {r}");
        last_t = t;
        let node = r["node"].as_u64().expect("node");
        let seq = r["seq"].as_u64().unwrap_or(0);
        let before = last_seq.insert(node, seq).unwrap_or(0);
        assert!(
            seq > before || seq == 0,
            "node {node}'s seq went back at {r}"
        );
    }
    let of = |kind: &'static str| records.iter().filter(move |r| r["kind"] == kind);
    for id in 1..=3u64 {
        assert!(
            of("state").any(|r| r["node"] == id && r["election_timeout"].as_u64() > Some(0)),
            "a state record of node {id} with its election timer"
        );
        assert!(
            of("entry").any(|r| r["node"] == id && r["index"] == put_index),
            "node {id} appending entry {put_index} (the put)"
        );
    }
    let faults: Vec<_> = of("fault").filter(|r| r["node"] == follower).collect();
    assert!(
        faults.len() == 2
            && faults[0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("delaying"))
            && faults[1]["text"]
                .as_str()
                .is_some_and(|t| t.contains("healed")),
        "node {follower}'s delay and heal as fault records: {faults:?}"
    );
    let append = of("send")
        .find(|r| r["type"] == "MsgAppend" && r["entries"].as_u64() > Some(0))
        .unwrap_or_else(|| panic!("an append with entries among {} records", records.len()));
    assert_eq!(append["fate"], "delivered", "{append}");
    assert!(
        of("recv").any(|r| r["msg_id"] == append["msg_id"] && r["node"] == append["to"]),
        "the receipt of {append}"
    );
}

#[test]
fn record_refuses_a_bad_duration_and_says_when_no_node_answers() {
    let cluster = Cluster::unstarted(1, &[]);
    let file = cluster.dir.path().join("never.jsonl");
    let file_arg = file.to_string_lossy().to_string();
    let out = cluster.client(&["record", &file_arg, "--seconds", "0"]);
    common::assert_exit(&out, 2, "record --seconds 0");
    let out = cluster.client(&["--timeout", "2", "record", &file_arg, "--seconds", "1"]);
    common::assert_exit(&out, 3, "record with no node up");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the cluster running?"), "{err}");
    assert!(
        !file.exists(),
        "no file is left behind when nothing was recorded"
    );
}
