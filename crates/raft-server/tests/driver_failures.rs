//! A node whose driver fails (a full disk, a bad snapshot, a panic inside raft-rs) stops
//! with one error naming the cause, never with a second panic on the way out.
//!
//! Each test runs a real one-node server in this process (real ports, gRPC, raft-engine in
//! its own temp dir) and breaks it through its handle: the storage is told to fail as a
//! full or failing disk does, or a peer sends a snapshot that is not one.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Message, MessageType, Snapshot};
use raft_server::command::{Command, Op};
use raft_server::config::{NodeConfig, PeerMap, Timing};
use raft_server::driver::NodeHandle;
use raft_server::server::{self, RunningNode, ServerError};
use raft_server::status::Role;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

/// A peer port `p` such that `p` and its API port `p + 1000` are free right now, never
/// handed out twice in this process (so parallel tests cannot collide). Its range is apart
/// from bad_input.rs's 30000..39000.
fn free_peer_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..1000 {
        let p: u16 = rand::random::<u16>() % 9000 + 40000;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        let api = p + 1000;
        if !handed_out.contains(&p)
            && !handed_out.contains(&api)
            && TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", api)).is_ok()
        {
            handed_out.insert(p);
            handed_out.insert(api);
            return p;
        }
    }
    panic!("found no free pair of ports p, p + 1000 with p in 40000..49000");
}

/// A one-node cluster of node 1, led by itself once started.
struct Node {
    dir: tempfile::TempDir,
    running: Option<RunningNode>,
    handle: NodeHandle,
    shutdown: CancellationToken,
}

impl Node {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let peers = PeerMap::parse(&format!("1=127.0.0.1:{}", free_peer_port())).expect("peers");
        let cfg = NodeConfig {
            id: 1,
            peers,
            data_dir: dir.path().join("data"),
            timing: Timing {
                tick: Duration::from_millis(10),
                election_ticks: 10,
                heartbeat_ticks: 2,
                max_election_ticks: None,
            },
            request_timeout: Duration::from_secs(5),
            snapshot_every: 0,
            faults_enabled: true,
            join: false,
            listen: None,
            protections: Default::default(),
        };
        let shutdown = CancellationToken::new();
        let running = server::start(cfg, shutdown.clone())
            .await
            .expect("start the node");
        let handle = running.handle.clone();
        let node = Self {
            dir,
            running: Some(running),
            handle,
            shutdown,
        };
        node.wait_for_leadership().await;
        node
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    async fn wait_for_leadership(&self) {
        let start = Instant::now();
        loop {
            let status = self.handle.status().borrow().clone();
            if status.role == Role::Leader {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "expected the one-node cluster to elect itself; status: role {:?}, term {}",
                status.role,
                status.term
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What the node ends with, within the deadline (a stuck node fails the test).
    async fn wait(&mut self) -> Result<(), ServerError> {
        let running = self.running.take().expect("waited once");
        tokio::time::timeout(DEADLINE, running.wait())
            .await
            .expect("expected the node to stop by itself after its driver failed")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Stops whatever is still running if a test failed halfway.
        self.shutdown.cancel();
        self.handle.shutdown();
    }
}

fn put(seq: u64, key: &str) -> Command {
    Command {
        client_id: 7,
        seq,
        timestamp_ms: 0,
        op: Op::Put {
            key: key.into(),
            value: b"v".to_vec(),
        },
    }
}

/// A message from node 2 (not a member: the crafted sender) in a term above the node's.
fn from_a_later_term(node: &NodeHandle, msg_type: MessageType) -> Message {
    let mut m = Message::default();
    m.set_msg_type(msg_type);
    m.from = 2;
    m.to = 1;
    m.term = node.status().borrow().term + 5;
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_node_with_one_clear_error() {
    let mut node = Node::start().await;
    node.handle.propose(put(1, "before")).await.expect("put");
    // What raft-engine's write returns when the file system is full (ENOSPC).
    node.handle.storage().fail_writes(Some(28));
    let err = node
        .handle
        .propose(put(2, "after"))
        .await
        .expect_err("a write cannot be acknowledged without the disk");
    assert!(
        !format!("{err:?}").contains("Timeout"),
        "expected the write to fail when the driver stopped, not to time out; got {err:?}"
    );
    let err = node.wait().await.expect_err("the node cannot go on");
    assert_eq!(
        err.to_string(),
        format!(
            "storage failed: no space left on device in {}",
            node.data_dir().display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snapshot_data_stops_the_node_with_one_clear_error() {
    let mut node = Node::start().await;
    let mut m = from_a_later_term(&node.handle, MessageType::MsgSnapshot);
    let mut snap = Snapshot::default();
    snap.set_data(vec![0xff, 0xff, 0xff].into());
    let md = snap.mut_metadata();
    md.index = 100;
    md.term = m.term;
    md.set_conf_state(ConfState {
        voters: vec![1],
        ..ConfState::default()
    });
    m.set_snapshot(snap);
    node.handle.step(m);
    let err = node.wait().await.expect_err("the node cannot install it");
    let text = err.to_string();
    assert!(
        text.starts_with("snapshot: snapshot data is not a kv.StateMachineSnapshot"),
        "expected one line naming the bad snapshot; got {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_driver_stops_the_node_with_one_clear_error() {
    let mut node = Node::start().await;
    node.handle.propose(put(1, "committed")).await.expect("put");
    // A disk that fails reads (EIO): raft-rs panics on the driver thread when it cannot
    // read the term of an entry, as a linearizable read makes it do.
    node.handle.storage().fail_reads(Some(5));
    let err = node
        .handle
        .read("committed".into(), false)
        .await
        .expect_err("nothing can be read");
    assert!(
        !format!("{err:?}").contains("Timeout"),
        "expected the read to fail when the driver stopped, not to time out; got {err:?}"
    );
    let err = node.wait().await.expect_err("the driver panicked");
    let text = err.to_string();
    assert!(
        text.starts_with("the node driver panicked: ") && text.contains("Input/output error"),
        "expected one line naming raft-rs's panic and its cause; got {text:?}"
    );
}
