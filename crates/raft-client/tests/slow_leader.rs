//! A slow commit is not a dead leader: the smart client waits for the leader it knows up to
//! the request's deadline (one attempt, success), yet still gives up on a leader that is
//! gone or frozen and goes where the write can land.
//!
//! The nodes are fake `KvApi` servers in this process, on ports of their own, so the test
//! decides exactly how slow a commit is and when a node freezes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kv_proto::kv::kv_api_server::{KvApi, KvApiServer};
use kv_proto::kv::{self as pb};
use prost::Message as _;
use raft_client::client::SmartClient;
use raft_client::trace::HopOutcome;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status};

/// What a fake node does with a put.
#[derive(Clone, Default)]
struct FakeNode {
    /// Puts received.
    puts: Arc<AtomicUsize>,
    /// Leads and answers every put after the first this late (a slow commit).
    slow_after_first: Option<Duration>,
    /// Does not lead (until `leads` is set) and names this address as the leader.
    hint: Option<String>,
    leads: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl KvApi for FakeNode {
    async fn put(
        &self,
        _request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        if let Some(hint) = &self.hint
            && !self.leads.load(Ordering::SeqCst)
        {
            let details = pb::LeaderHint {
                leader_id: 1,
                api_addr: hint.clone(),
                term: 1,
            };
            return Err(Status::with_details(
                Code::FailedPrecondition,
                format!("not the leader; leader is at {hint}"),
                details.encode_to_vec().into(),
            ));
        }
        if let Some(delay) = self.slow_after_first.filter(|_| n > 1) {
            tokio::time::sleep(delay).await;
        }
        Ok(Response::new(pb::WriteResponse {
            index: n,
            term: 1,
            existed: false,
            duplicate: false,
            node_id: 1,
            timing: Vec::new(),
        }))
    }

    async fn delete(
        &self,
        _request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        Err(Status::unimplemented("fake node"))
    }

    async fn get(
        &self,
        _request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        Err(Status::unimplemented("fake node"))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        Err(Status::unimplemented("fake node"))
    }
}

/// Serves `node` on a free loopback port for the rest of the test; returns its address.
async fn serve(node: FakeNode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvApiServer::new(node))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

/// A TCP relay to `upstream` that can freeze: from then on it passes no byte either way
/// and keeps every connection open, like a SIGSTOPped process whose kernel still holds
/// the sockets.
async fn freezable_relay(upstream: String, frozen: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_rx, client_tx) = client.into_split();
            let (server_rx, server_tx) = server.into_split();
            tokio::spawn(pipe(client_rx, server_tx, Arc::clone(&frozen)));
            tokio::spawn(pipe(server_rx, client_tx, Arc::clone(&frozen)));
        }
    });
    addr
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            // Hold both ends open and pass nothing, for as long as the test runs.
            let _kept = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_commit_on_the_known_leader_is_waited_for_not_retried_elsewhere() {
    let leader = FakeNode {
        // Longer than an attempt at a node not known to lead (1.5 s).
        slow_after_first: Some(Duration::from_millis(2500)),
        ..FakeNode::default()
    };
    let leader_addr = serve(leader.clone()).await;
    let follower = FakeNode {
        hint: Some(leader_addr.clone()),
        ..FakeNode::default()
    };
    let follower_addr = serve(follower.clone()).await;
    let client = SmartClient::new(
        vec![leader_addr.clone(), follower_addr],
        Duration::from_secs(10),
    )
    .expect("client");

    client.put("first", b"quick").await.expect("the first put");
    assert_eq!(client.leader_hint().as_deref(), Some(leader_addr.as_str()));
    let puts_before = leader.puts.load(Ordering::SeqCst);

    let reply = client
        .put("second", b"slow to commit")
        .await
        .expect("a slow commit is still a success");
    let hops: Vec<String> = reply.trace.hops.iter().map(|h| h.to_string()).collect();
    assert!(
        reply.trace.hops.len() == 1 && matches!(reply.trace.hops[0].outcome, HopOutcome::Ok),
        "expected one attempt, at the leader, that succeeded; got {hops:?}"
    );
    assert_eq!(
        leader.puts.load(Ordering::SeqCst) - puts_before,
        1,
        "expected the write to be proposed once; attempts: {hops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_known_leader_is_given_up_on() {
    let old_leader = FakeNode::default();
    let old_leader_addr = serve(old_leader.clone()).await;
    let frozen = Arc::new(AtomicBool::new(false));
    let relay = freezable_relay(old_leader_addr, Arc::clone(&frozen)).await;
    let next = FakeNode {
        hint: Some(relay.clone()),
        ..FakeNode::default()
    };
    let next_addr = serve(next.clone()).await;
    let client =
        SmartClient::new(vec![relay.clone(), next_addr], Duration::from_secs(10)).expect("client");
    client.put("first", b"v").await.expect("the first put");
    assert_eq!(client.leader_hint().as_deref(), Some(relay.as_str()));

    // The leader freezes; the other node is elected and leads from now on.
    frozen.store(true, Ordering::SeqCst);
    next.leads.store(true, Ordering::SeqCst);
    let reply = client
        .put("second", b"v")
        .await
        .expect("the write lands on the new leader within the deadline");
    let hops: Vec<String> = reply.trace.hops.iter().map(|h| h.to_string()).collect();
    assert!(
        matches!(
            reply.trace.hops.first().map(|h| &h.outcome),
            Some(HopOutcome::Unreachable(_))
        ) && matches!(
            reply.trace.hops.last().map(|h| &h.outcome),
            Some(HopOutcome::Ok)
        ),
        "expected the frozen leader found unreachable (its connection stopped answering \
         pings), then success elsewhere; got {hops:?}"
    );
}
