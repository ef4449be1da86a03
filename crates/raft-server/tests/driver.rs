//! The node driver over the in-process network: elections, replication, and what happens
//! to requests when a leader is cut off. No sockets, fast ticks, real raft-engine on disk.

use std::time::{Duration, Instant};

use raft_server::command::{Command, Op};
use raft_server::config::{NodeConfig, PeerMap, Timing};
use raft_server::driver::{AdminCommand, NodeDriver, NodeHandle, RequestError};
use raft_server::status::Role;
use raft_server::storage::EngineStorage;
use raft_server::transport::local::LocalNetwork;

const DEADLINE: Duration = Duration::from_secs(20);

struct TestCluster {
    _dir: tempfile::TempDir,
    net: LocalNetwork,
    nodes: Vec<NodeHandle>,
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
        let net = LocalNetwork::default();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let cfg = NodeConfig {
                id,
                peers: peers.clone(),
                data_dir: dir.path().join(format!("node-{id}")),
                timing: Timing {
                    tick: Duration::from_millis(10),
                    election_ticks: 10,
                    heartbeat_ticks: 2,
                },
                request_timeout: Duration::from_secs(10),
                snapshot_every,
                faults_enabled: true,
            };
            let (storage, recovered) =
                EngineStorage::open(&cfg.data_dir, id, peers.cluster_id(), &peers.ids())
                    .expect("open storage");
            let (driver, handle) =
                NodeDriver::new(&cfg, storage, recovered, |_| Box::new(net.transport(id)))
                    .expect("driver");
            net.register(id, handle.clone());
            std::thread::spawn(move || driver.run());
            nodes.push(handle);
        }
        Self {
            _dir: dir,
            net,
            nodes,
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
        .read("a".into())
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
        .read("a".into())
        .await
        .expect_err("not leader");
    assert!(matches!(err, RequestError::NotLeader { .. }), "{err:?}");

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
    // At-most-once survives the snapshot: a retry of the last write is a duplicate.
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    let again = cluster
        .node(leader)
        .propose(put(60, "k60", "v"))
        .await
        .expect("retry");
    assert!(again.duplicate);
}
