//! Before the leader adds a node, it asks the node itself (its `Status`, on the client API
//! port) who it is: that it runs, that it is the id the operator typed, that it is waiting
//! to be added (started with `--join` on an empty data dir, not an old or removed member
//! with its old log), and its data dir's incarnation, which goes into the change so every
//! member knows this data dir, and only this one, as the new member.
//!
//! Asking first means a typo or a node not started yet is refused with nothing changed,
//! instead of a learner that never answers staying in the configuration.

use std::time::Duration;

use kv_proto::kv::kv_api_client::KvApiClient;
use kv_proto::kv::{StatusRequest, StatusResponse};
use tonic::Status;
use tonic::transport::Endpoint;

use crate::addr::HostPort;
use crate::config::api_addr_of;
use crate::transport::grpc::error_chain;

/// How long the new node has to answer.
const ASK_WITHIN: Duration = Duration::from_secs(2);

/// What the leader knows of the cluster, to judge the new node by.
pub struct Cluster<'a> {
    /// The cluster id (0 when the leader does not know one, which cannot happen).
    pub id: u64,
    /// The member that already listens at the new node's address, if one does.
    pub owner_of_addr: Option<u64>,
    /// The peer addresses the new node is asked to listen at, for the hints.
    pub peers_hint: &'a str,
}

/// Asks node `id` at `peer_addr` whether it can be added; its incarnation if it can.
pub async fn check(id: u64, peer_addr: &HostPort, cluster: &Cluster<'_>) -> Result<u64, Status> {
    let refused = |why: String| Err(Status::failed_precondition(why));
    let Some(api) = api_addr_of(peer_addr) else {
        return refused(format!(
            "peer port {} is too high: the client API needs port + 1000 <= 65535",
            peer_addr.port()
        ));
    };
    let start_it = format!(
        "start it first, waiting to be added (raft-server --id {id} --peers {} --join, with \
         an empty data dir), then add it; nothing was changed",
        cluster.peers_hint
    );
    let status = match ask(&api).await {
        Ok(s) => s,
        Err(why) => {
            if let Some(other) = cluster.owner_of_addr {
                return refused(format!(
                    "{peer_addr} is node {other}'s address: give node {id} its own port"
                ));
            }
            return refused(format!(
                "node {id} does not answer at {api} ({why}): {start_it}"
            ));
        }
    };
    if status.id != id {
        return refused(match cluster.owner_of_addr {
            Some(other) => {
                format!("{peer_addr} is node {other}'s address: give node {id} its own port")
            }
            None => format!(
                "the node at {peer_addr} is node {}, not node {id}: check the id and the address",
                status.id
            ),
        });
    }
    if status.removed_at != 0 {
        return refused(format!(
            "node {id} at {peer_addr} still runs with the data dir it was removed with (removed \
             at index {}): stop it, empty its data dir, {start_it}",
            status.removed_at
        ));
    }
    if !status.joining {
        return refused(format!(
            "node {id} at {peer_addr} is not waiting to be added: it runs as a member (of this \
             cluster or another) with its own log; stop it, empty its data dir, {start_it}"
        ));
    }
    if status.cluster_id != 0 && status.cluster_id != cluster.id {
        return refused(format!(
            "node {id} at {peer_addr} already joined another cluster ({:x}): stop it, empty its \
             data dir, {start_it}",
            status.cluster_id
        ));
    }
    Ok(status.incarnation)
}

/// The `Status` of the node at `api`, within [`ASK_WITHIN`].
async fn ask(api: &HostPort) -> Result<StatusResponse, String> {
    let endpoint = Endpoint::from_shared(format!("http://{api}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(ASK_WITHIN)
        .timeout(ASK_WITHIN);
    let asked = async {
        let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
        KvApiClient::new(channel)
            .status(StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.message().to_string())
    };
    tokio::time::timeout(ASK_WITHIN, asked)
        .await
        .map_err(|_| format!("no answer within {ASK_WITHIN:?}"))?
}
