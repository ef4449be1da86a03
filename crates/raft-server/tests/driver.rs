//! The node driver over the in-process network: elections, replication, and what happens
//! to requests when a leader is cut off. No sockets, fast ticks, real raft-engine on disk.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, Message, MessageType};
use raft_server::command::{Command, Op};
use raft_server::config::{NodeConfig, PeerMap, Timing};
use raft_server::driver::{AdminCommand, DriverError, NodeDriver, NodeHandle, RequestError};
use raft_server::status::Role;
use raft_server::storage::EngineStorage;
use raft_server::transport::local::LocalNetwork;

const DEADLINE: Duration = Duration::from_secs(20);

struct TestCluster {
    dir: tempfile::TempDir,
    peers: PeerMap,
    snapshot_every: u64,
    net: LocalNetwork,
    nodes: Vec<NodeHandle>,
    /// Each node's driver thread, to see it stop (or panic).
    drivers: Vec<JoinHandle<Result<(), DriverError>>>,
}

impl TestCluster {
    fn start(n: u64) -> Self {
        Self::start_with(n, 0)
    }

    /// `n` nodes that snapshot every `snapshot_every` applied entries (0: never).
    fn start_with(n: u64, snapshot_every: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Addresses are never dialled by the local network; they only name the members.
        let spec: Vec<String> = (1..=n)
            .map(|i| format!("{i}=127.0.0.1:{}", 1 + i))
            .collect();
        let peers = PeerMap::parse(&spec.join(",")).expect("peers");
        let mut cluster = Self {
            dir,
            peers,
            snapshot_every,
            net: LocalNetwork::default(),
            nodes: Vec::new(),
            drivers: Vec::new(),
        };
        for id in 1..=n {
            let (handle, driver) = cluster.run_node(id);
            cluster.nodes.push(handle);
            cluster.drivers.push(driver);
        }
        cluster
    }

    fn data_dir(&self, id: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// Opens node `id`'s data dir, starts its driver and connects it to the network.
    fn run_node(&self, id: u64) -> (NodeHandle, JoinHandle<Result<(), DriverError>>) {
        let cfg = NodeConfig {
            id,
            peers: self.peers.clone(),
            data_dir: self.data_dir(id),
            timing: Timing {
                tick: Duration::from_millis(10),
                election_ticks: 10,
                heartbeat_ticks: 2,
                max_election_ticks: None,
            },
            request_timeout: Duration::from_secs(10),
            snapshot_every: self.snapshot_every,
            faults_enabled: true,
            join: false,
            listen: None,
            protections: Default::default(),
        };
        let peers = &self.peers;
        let (storage, recovered) =
            EngineStorage::open(&cfg.data_dir, id, peers.cluster_id(), &peers.ids())
                .expect("open storage");
        let (driver, handle) = NodeDriver::new(&cfg, storage, recovered, |_| {
            Box::new(self.net.transport(id))
        })
        .expect("driver");
        self.net.register(id, handle.clone());
        (handle, std::thread::spawn(move || driver.run()))
    }

    /// Stops node `id`, wipes its data dir and starts it again, cut off from every node.
    fn restart_wiped_and_isolated(&mut self, id: u64) {
        self.restart_wiped_and_isolated_after(id, |_| {});
    }

    /// As [`Self::restart_wiped_and_isolated`], with `crash` run on the empty data dir
    /// before the node starts.
    fn restart_wiped_and_isolated_after(&mut self, id: u64, crash: impl FnOnce(&Self)) {
        let slot = id as usize - 1;
        self.node(id).shutdown();
        let start = Instant::now();
        while !self.drivers[slot].is_finished() {
            assert!(
                start.elapsed() < DEADLINE,
                "node {id}'s driver did not stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.net.isolate(id);
        std::fs::remove_dir_all(self.data_dir(id)).expect("wipe the data dir");
        crash(self);
        let (handle, driver) = self.run_node(id);
        self.nodes[slot] = handle;
        self.drivers[slot] = driver;
    }

    /// Polls node `id`'s status until `ready` holds; fails saying `what` and the last view.
    async fn wait_status(
        &self,
        id: u64,
        what: &str,
        ready: impl Fn(&raft_server::status::NodeStatus) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let status = self.node(id).status().borrow().clone();
            if ready(&status) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "expected {what}; node {id} is {:?} in term {} (leader {}), commit {}, \
                 applied {}, last {}; events: {:?}",
                status.role,
                status.term,
                status.leader_id,
                status.commit_index,
                status.applied_index,
                status.last_index,
                status.events.iter().map(|e| &e.text).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn node(&self, id: u64) -> &NodeHandle {
        &self.nodes[id as usize - 1]
    }

    /// Waits until one of `among` is leader and the others of `among` follow it.
    async fn leader_among(&self, among: &[u64]) -> u64 {
        let start = Instant::now();
        loop {
            let views: Vec<_> = among
                .iter()
                .map(|id| self.node(*id).status().borrow().clone())
                .collect();
            if let Some(l) = views.iter().find(|s| s.role == Role::Leader)
                && views.iter().all(|s| s.leader_id == l.id)
            {
                return l.id;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no agreed leader among {among:?}; roles: {:?}",
                views
                    .iter()
                    .map(|s| (s.id, s.role, s.term, s.leader_id))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.shutdown();
        }
    }
}

fn put(seq: u64, key: &str, value: &str) -> Command {
    Command {
        client_id: 42,
        seq,
        timestamp_ms: 0,
        op: Op::Put {
            key: key.into(),
            value: value.as_bytes().to_vec(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_and_fails_over_with_retryable_errors() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let out = cluster
        .node(leader)
        .propose(put(1, "a", "1"))
        .await
        .expect("put on leader");
    assert!(!out.duplicate);
    let read = cluster
        .node(leader)
        .read("a".into(), false)
        .await
        .expect("read on leader");
    assert_eq!(read.value.as_deref(), Some(&b"1"[..]));

    // A follower refuses writes and linearizable reads, naming the leader.
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    let err = cluster
        .node(follower)
        .propose(put(2, "b", "2"))
        .await
        .expect_err("not leader");
    assert!(
        matches!(err, RequestError::NotLeader { leader_id: Some(l), .. } if l == leader),
        "{err:?}"
    );
    let err = cluster
        .node(follower)
        .read("a".into(), false)
        .await
        .expect_err("not leader");
    assert!(matches!(err, RequestError::NotLeader { .. }), "{err:?}");
    // Asked to answer itself, it does: with the leader's read index, so the write is there.
    let read = cluster
        .node(follower)
        .read("a".into(), true)
        .await
        .expect("linearizable read at a follower");
    assert_eq!(read.value.as_deref(), Some(&b"1"[..]));

    // Cut the leader off: a write proposed there cannot commit. It must fail with a
    // retryable error when the leader steps down (check_quorum), not wait for its deadline.
    cluster.net.isolate(leader);
    let err = cluster
        .node(leader)
        .propose(put(3, "c", "lost?"))
        .await
        .expect_err("an isolated leader cannot commit");
    assert_eq!(err, RequestError::LeadershipLost);

    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = cluster.leader_among(&others).await;
    // The client retries the same request id on the new leader: applied once.
    let first = cluster
        .node(new_leader)
        .propose(put(3, "c", "lost?"))
        .await
        .expect("retry");
    let again = cluster
        .node(new_leader)
        .propose(put(3, "c", "lost?"))
        .await
        .expect("retry again");
    assert!(again.duplicate, "a resent request id is not applied twice");
    assert_eq!(again.index, first.index);

    // Heal: the old leader rejoins as a follower and catches up.
    cluster.net.recover();
    cluster.leader_among(&[1, 2, 3]).await;
    let start = Instant::now();
    while cluster
        .node(leader)
        .stale_read("c")
        .await
        .expect("stale read")
        .value
        .is_none()
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the old leader did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cluster
            .node(leader)
            .stale_read("a")
            .await
            .expect("stale read")
            .value
            .as_deref(),
        Some(&b"1"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_transfer_leadership_and_campaign() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    cluster
        .node(leader)
        .propose(put(1, "x", "1"))
        .await
        .expect("put");
    let follower = (1..=3).find(|id| *id != leader).expect("follower");

    // Only the leader can transfer; a follower says so.
    let answer = cluster
        .node(follower)
        .admin(AdminCommand::TransferLeader)
        .await;
    assert!(answer.contains("only the leader"), "{answer}");

    // `t` on the leader: leadership moves to an up-to-date follower.
    let answer = cluster
        .node(leader)
        .admin(AdminCommand::TransferLeader)
        .await;
    assert!(
        answer.contains("transferring leadership to node"),
        "{answer}"
    );
    let start = Instant::now();
    let new_leader = loop {
        let now_leader = cluster.leader_among(&[1, 2, 3]).await;
        if now_leader != leader {
            break now_leader;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "leadership did not move from node {leader}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // `c` on the leader: nothing to do.
    let answer = cluster.node(new_leader).admin(AdminCommand::Campaign).await;
    assert!(answer.contains("already the leader"), "{answer}");
    // `c` on a follower starts a pre-vote campaign; with a healthy leader it is refused
    // (check_quorum + pre-vote), so the leader stays.
    let answer = cluster.node(leader).admin(AdminCommand::Campaign).await;
    assert!(answer.contains("campaign started"), "{answer}");
    cluster
        .node(new_leader)
        .propose(put(2, "y", "2"))
        .await
        .expect("the leader still leads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_follower_catches_up_by_installing_a_snapshot() {
    let cluster = TestCluster::start_with(3, 10);
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let lagger = (1..=3).find(|id| *id != leader).expect("follower");
    cluster.net.isolate(lagger);
    let others: Vec<u64> = (1..=3).filter(|id| *id != lagger).collect();
    let leader = cluster.leader_among(&others).await;
    for seq in 1..=60 {
        cluster
            .node(leader)
            .propose(put(seq, &format!("k{seq}"), "v"))
            .await
            .expect("put while the follower is cut off");
    }
    let leader_status = cluster.node(leader).status().borrow().clone();
    assert!(leader_status.snapshot_index >= 50, "{leader_status:?}");
    assert!(
        leader_status.first_index > 2,
        "the log was compacted: {leader_status:?}"
    );

    cluster.net.recover();
    let start = Instant::now();
    while cluster
        .node(lagger)
        .stale_read("k60")
        .await
        .expect("stale read")
        .value
        .is_none()
    {
        assert!(start.elapsed() < DEADLINE, "the follower did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = cluster.node(lagger).status().borrow().clone();
    assert!(
        status
            .events
            .iter()
            .any(|e| e.text.contains("installed a snapshot")),
        "caught up by a snapshot: {:?}",
        status.events
    );
    assert_eq!(
        cluster
            .node(lagger)
            .stale_read("k1")
            .await
            .expect("stale read")
            .value
            .as_deref(),
        Some(&b"v"[..])
    );
    // The files of what the snapshot replaced go: no older snapshot file stays behind.
    let snap_dir = cluster.data_dir(lagger).join("snap");
    let older = || -> Vec<String> {
        let installed = cluster.node(lagger).status().borrow().snapshot_index;
        std::fs::read_dir(&snap_dir)
            .map(|items| {
                items
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| {
                        name.strip_prefix("snapshot-")
                            .and_then(|rest| rest.split('-').next())
                            .and_then(|n| n.parse::<u64>().ok())
                            .is_some_and(|index| index < installed)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let start = Instant::now();
    while !older().is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "expected only the installed snapshot's file in {}, found older ones: {:?}",
            snap_dir.display(),
            older()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // At-most-once survives the snapshot: a retry of the last write is a duplicate.
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let again = cluster
        .node(leader)
        .propose(put(60, "k60", "v"))
        .await
        .expect("retry");
    assert!(again.duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_never_commits_what_a_stale_leader_appended() {
    let mut cluster = TestCluster::start(5);
    let all = [1, 2, 3, 4, 5];
    let stale = cluster.leader_among(&all).await;
    let stale_term = cluster.node(stale).status().borrow().term;
    let before = cluster
        .node(stale)
        .propose(put(1, "before", "1"))
        .await
        .expect("put")
        .index;

    // A newer leader takes over (the old one is cut off meanwhile) and commits a write.
    cluster.net.isolate(stale);
    let others: Vec<u64> = all.iter().copied().filter(|id| *id != stale).collect();
    cluster.leader_among(&others).await;
    cluster.net.recover();
    let leader = cluster.leader_among(&all).await;
    let fresh = cluster
        .node(leader)
        .propose(put(2, "fresh", "1"))
        .await
        .expect("put")
        .index;
    let wiped = *others
        .iter()
        .find(|id| **id != leader)
        .expect("a follower other than the old leader");
    cluster
        .wait_status(wiped, "the follower to apply the fresh write", |s| {
            s.applied_index >= fresh
        })
        .await;

    // Its data dir is wiped while the leader still counts its log as matched.
    cluster.restart_wiped_and_isolated(wiped);

    // The stale leader reaches it first: its log up to "before" (committed everywhere)
    // and a write it never got committed, at the index where the leader has other entries.
    let mut entries = cluster
        .node(stale)
        .storage()
        .read_entries(1, before + 1)
        .expect("read the old leader's log");
    let ghost = Command {
        client_id: 43,
        seq: 1,
        timestamp_ms: 0,
        op: Op::Put {
            key: "ghost".into(),
            value: b"never committed".to_vec(),
        },
    };
    entries.push(Entry {
        index: before + 1,
        term: stale_term,
        data: ghost.encode().into(),
        ..Entry::default()
    });
    // The log starts after the cluster's initial snapshot (index 1): the append matches
    // the entry just before its first one.
    let prev = entries.first().map_or(before, |e| e.index - 1);
    let prev_term =
        raft::Storage::term(cluster.node(stale).storage(), prev).expect("term of the entry before");
    let mut append = Message::default();
    append.set_msg_type(MessageType::MsgAppend);
    append.from = stale;
    append.to = wiped;
    append.term = stale_term;
    append.index = prev;
    append.log_term = prev_term;
    append.commit = before;
    append.set_entries(entries.into());
    cluster.node(wiped).step(append);
    cluster
        .wait_status(
            wiped,
            "the wiped node to take the stale leader's log",
            |s| s.last_index == before + 1 && s.applied_index == before,
        )
        .await;

    // Now the real leader's heartbeats arrive, claiming a commit past that log.
    cluster.net.recover();
    cluster
        .wait_status(wiped, "the wiped node to hear the leader and warn", |s| {
            s.leader_id == leader && s.events.iter().any(|e| e.text.contains("data dir wiped"))
        })
        .await;
    let status = cluster.node(wiped).status().borrow().clone();
    assert!(
        status.commit_index <= before
            && cluster
                .node(wiped)
                .stale_read("ghost")
                .await
                .expect("stale read")
                .value
                .is_none(),
        "the wiped node committed entries its leader never sent it: commit {}, ghost {:?}",
        status.commit_index,
        cluster
            .node(wiped)
            .stale_read("ghost")
            .await
            .expect("stale read")
            .value
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    );

    // A new leader probes every log afresh and repairs this one; the node survives it.
    cluster.net.isolate(leader);
    let rest: Vec<u64> = all.iter().copied().filter(|id| *id != leader).collect();
    let new_leader = cluster.leader_among(&rest).await;
    cluster.net.recover();
    let after = cluster
        .node(new_leader)
        .propose(put(3, "after", "1"))
        .await
        .expect("put")
        .index;
    cluster
        .wait_status(
            wiped,
            "the wiped node to catch up with the new leader",
            |s| s.applied_index >= after,
        )
        .await;
    let node = cluster.node(wiped);
    assert_eq!(
        node.stale_read("fresh")
            .await
            .expect("stale read")
            .value
            .as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        node.stale_read("after")
            .await
            .expect("stale read")
            .value
            .as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        node.stale_read("ghost").await.expect("stale read").value,
        None
    );
    assert!(
        !cluster.drivers[wiped as usize - 1].is_finished(),
        "the wiped node's driver stopped"
    );
}

/// A crash between writing a new data dir's marker and its first snapshot leaves a dir
/// that is no longer new and still empty: it must still start the cluster's way (from the
/// initial snapshot at index 1), or the cluster later refuses every `member add` (its log
/// would start at index 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_first_snapshot_still_bootstraps() {
    let mut cluster = TestCluster::start(3);
    cluster.leader_among(&[1, 2, 3]).await;
    cluster.restart_wiped_and_isolated_after(3, |c| {
        // The marker (and the initial voters) written, then the process died.
        let (storage, recovered) =
            EngineStorage::open(&c.data_dir(3), 3, c.peers.cluster_id(), &c.peers.ids())
                .expect("open storage");
        assert!(recovered.fresh);
        drop(storage);
    });
    let status = cluster.node(3).status().borrow().clone();
    assert_eq!(
        status.snapshot_index,
        1,
        "node 3 starts from the initial snapshot; events: {:?}",
        status.events.iter().map(|e| &e.text).collect::<Vec<_>>()
    );
}

/// The events of node `id`, newest last.
fn events_of(cluster: &TestCluster, id: u64) -> Vec<String> {
    cluster
        .node(id)
        .status()
        .borrow()
        .events
        .iter()
        .map(|e| e.text.clone())
        .collect()
}

/// Waits until node `id` has an event containing `needle`; fails with its events.
async fn wait_event(cluster: &TestCluster, id: u64, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let events = events_of(cluster, id);
        if let Some(e) = events.iter().find(|e| e.contains(needle)) {
            return e.clone();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "expected node {id} to say {needle:?}; its events: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the dashboard's help and the tour teach about refused votes, as the events say it:
/// a request inside check-quorum's lease gets no answer (said on the receiver), and a
/// candidate whose log is behind is refused for that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_say_why_a_vote_went_unanswered_or_was_refused() {
    let cluster = TestCluster::start(3);
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    let other = (1..=3)
        .find(|id| *id != leader && *id != follower)
        .expect("another follower");
    // With a healthy leader, a campaign gets no answer: the others are inside the lease.
    let answer = cluster.node(follower).admin(AdminCommand::Campaign).await;
    assert!(answer.contains("campaign started"), "{answer}");
    let said = wait_event(&cluster, other, "no answer").await;
    assert!(
        said.contains(&format!("node {follower} asks for a pre-vote"))
            && said.contains(&format!("heard from leader {leader}")),
        "{said}"
    );

    // A candidate whose log is behind is refused, and the reason said. (A pre-vote marked
    // as a leadership transfer's, so that the lease does not hide the answer.)
    let term = cluster.node(other).status().borrow().term;
    let mut ask = Message::default();
    ask.set_msg_type(MessageType::MsgRequestPreVote);
    ask.from = follower;
    ask.to = other;
    ask.term = term + 1;
    ask.log_term = 1;
    ask.index = 1;
    ask.context = b"CampaignTransfer".to_vec().into();
    cluster.node(other).step(ask);
    let said = wait_event(&cluster, other, "is behind ours").await;
    assert!(
        said.contains(&format!("refused node {follower} a pre-vote"))
            && said.contains("its log (last entry of term 1, index 1)"),
        "{said}"
    );
}
