//! The systems a benchmark can drive, behind one [`Target`] trait so that one closed loop
//! measures both: this project's cluster ([`Playground`], through the smart client) and an
//! etcd v3 cluster ([`Etcd`], through its gRPC KV API). Also how each finds its leader.

use std::future::Future;
use std::time::Duration;

use kv_proto::etcd::kv_client::KvClient;
use kv_proto::etcd::maintenance_client::MaintenanceClient;
use kv_proto::etcd::{PutRequest, RangeRequest, StatusRequest};
use tonic::transport::{Channel, Endpoint};

use super::BenchError;
use crate::client::{SmartClient, describe};
use crate::read_from::ReadFrom;

/// One benchmark client: a connection of its own, one request at a time. An error is a
/// one-line description; the loop counts it as a failed operation.
pub trait Target: Send + 'static {
    /// Sets `key` to `value`, answering once the system has committed it.
    fn put(&mut self, key: &str, value: &[u8]) -> impl Future<Output = Result<(), String>> + Send;
    /// Reads `key` linearizably; a missing key is an error (the warm-up wrote every key).
    fn get(&mut self, key: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// A client of this project's cluster: a [`SmartClient`] of its own, so it has its own
/// client id (writes keep their request id across retries: at most once holds) and its own
/// connections (a `SmartClient` caches one channel per address, per client object).
pub struct Playground {
    client: SmartClient,
}

impl Playground {
    /// A client of the nodes at `peers` whose requests each end within `timeout`, sending
    /// gets first where `read_from` says.
    pub fn new(
        peers: &[String],
        timeout: Duration,
        read_from: ReadFrom,
    ) -> Result<Self, BenchError> {
        SmartClient::new(peers.to_vec(), timeout)
            .map(|client| Self {
                client: client.with_read_from(read_from),
            })
            .map_err(|e| BenchError::Usage(e.to_string()))
    }

    /// The leader this client talks to, once a request has succeeded.
    pub fn leader(&self) -> Option<String> {
        self.client.leader_hint()
    }
}

impl Target for Playground {
    async fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.client
            .put(key, value)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn get(&mut self, key: &str) -> Result<(), String> {
        match self.client.get(key, false).await {
            Ok(reply) if reply.value.found => Ok(()),
            Ok(_) => Err(format!("key {key:?} not found")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The leader of this project's cluster as its nodes report it: `"node N at ADDR"`, or
/// `None` when no node knows one yet (the smart clients will still find it). Fails only
/// when no node answers.
pub async fn playground_leader(client: &SmartClient) -> Result<Option<String>, BenchError> {
    let reports = client.status_all().await;
    let mut last = String::from("no address given");
    let mut leader = None;
    for report in &reports {
        match &report.status {
            Ok(s) if s.role == "Leader" => {
                leader = Some(format!("node {} at {}", s.id, report.api_addr));
            }
            Ok(_) => {}
            Err(e) => last = format!("{}: {e}", report.api_addr),
        }
    }
    if reports.iter().all(|r| r.status.is_err()) {
        return Err(BenchError::Unavailable(format!(
            "no node of the cluster answered (last: {last})"
        )));
    }
    Ok(leader)
}

/// A client of an etcd v3 cluster on a connection of its own to one member (the leader).
pub struct Etcd {
    kv: KvClient<Channel>,
    timeout: Duration,
}

impl Etcd {
    /// A client of the member at `addr` (`host:port` of its client URL); connects lazily.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, BenchError> {
        // `connect_lazy` makes a new HTTP/2 connection per call: one per benchmark client.
        Ok(Self {
            kv: KvClient::new(etcd_endpoint(addr)?.connect_lazy()),
            timeout,
        })
    }
}

impl Target for Etcd {
    async fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        let req = PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            lease: 0,
        };
        match tokio::time::timeout(self.timeout, self.kv.put(req)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(describe(&status)),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn get(&mut self, key: &str) -> Result<(), String> {
        // `serializable: false` (the default) is etcd's linearizable read, like ours.
        let req = RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        };
        match tokio::time::timeout(self.timeout, self.kv.range(req)).await {
            Ok(Ok(resp)) if !resp.get_ref().kvs.is_empty() => Ok(()),
            Ok(Ok(_)) => Err(format!("key {key:?} not found")),
            Ok(Err(status)) => Err(describe(&status)),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// Where the etcd benchmark's clients connect, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdLeader {
    /// The member's client address.
    pub addr: String,
    /// For the report: `"the leader, member 8e9e05c52164694d at ADDR"`, or a note that the
    /// leader is not among `--peers`.
    pub description: String,
}

/// Finds the etcd leader among `peers` by asking each member's `Maintenance.Status`: the
/// leader is the member whose own id (`header.member_id`) is the `leader` it reports.
/// Followers would forward proposals and ReadIndex requests to the leader internally, an
/// extra hop our smart client does not make; talking to the leader measures both the same
/// way. When the leader is not among `peers`, the first member that answered is used.
pub async fn etcd_leader(peers: &[String], timeout: Duration) -> Result<EtcdLeader, BenchError> {
    let mut answers = Vec::new();
    let mut last = String::from("no address given");
    for addr in peers {
        let mut maintenance = MaintenanceClient::new(etcd_endpoint(addr)?.connect_lazy());
        match tokio::time::timeout(timeout, maintenance.status(StatusRequest {})).await {
            Ok(Ok(resp)) => {
                let s = resp.into_inner();
                let me = s.header.map_or(0, |h| h.member_id);
                answers.push((addr.clone(), me, s.leader));
            }
            Ok(Err(status)) => last = format!("{addr}: {}", describe(&status)),
            Err(_) => last = format!("{addr}: no answer within {timeout:?}"),
        }
    }
    if let Some((addr, me, _)) = answers.iter().find(|(_, me, l)| *l != 0 && me == l) {
        return Ok(EtcdLeader {
            addr: addr.clone(),
            description: format!("the leader, member {me:x} at {addr}"),
        });
    }
    match answers.iter().find(|(_, _, leader)| *leader != 0) {
        Some((addr, _, leader)) => Ok(EtcdLeader {
            addr: addr.clone(),
            description: format!(
                "{addr}, which forwards to the leader (member {leader:x}, not among --peers)"
            ),
        }),
        None if answers.is_empty() => Err(BenchError::Unavailable(format!(
            "no etcd member answered Maintenance.Status (last: {last})"
        ))),
        None => Err(BenchError::Unavailable(
            "the etcd cluster has no leader".to_string(),
        )),
    }
}

/// The same connection settings as the smart client's, so neither side is favoured.
fn etcd_endpoint(addr: &str) -> Result<Endpoint, BenchError> {
    let bad = || BenchError::Usage(format!("bad etcd address {addr:?}: use host:port"));
    if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
        return Err(bad());
    }
    Endpoint::from_shared(format!("http://{addr}"))
        .map(|e| {
            e.connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
        })
        .map_err(|_| bad())
}
