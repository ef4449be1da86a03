//! Incoming peer streams: checks who is talking, decodes raft-rs messages and hands them
//! to the driver. Batches from another cluster or from a node not in `--peers` are refused.
//! Every message passes the node's [`FaultFilter`] on the way in; delayed ones reach the
//! driver through a delay line of the stream's own, so a stream never reorders.

use kv_proto::peer::raft_transport_server::RaftTransport;
use kv_proto::peer::{RaftBatch, StreamDone};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::config::PeerMap;
use crate::driver::NodeHandle;
use crate::transport::delay::DelayLines;
use crate::transport::fault::{FaultFilter, Verdict};

/// The `RaftTransport` service of one node.
pub struct PeerService {
    me: u64,
    cluster_id: u64,
    peers: PeerMap,
    node: NodeHandle,
    filter: FaultFilter,
    shutdown: CancellationToken,
}

impl PeerService {
    /// Serves node `me` of cluster `cluster_id` until `shutdown`; incoming messages pass
    /// `filter`.
    pub fn new(
        me: u64,
        cluster_id: u64,
        peers: PeerMap,
        node: NodeHandle,
        filter: FaultFilter,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            me,
            cluster_id,
            peers,
            node,
            filter,
            shutdown,
        }
    }

    fn check(&self, batch: &RaftBatch) -> Result<(), Status> {
        if batch.cluster_id != self.cluster_id {
            return Err(Status::permission_denied(format!(
                "node {} belongs to cluster {:x}, this batch is from cluster {:x}: check --peers",
                self.me, self.cluster_id, batch.cluster_id
            )));
        }
        if batch.from == self.me || self.peers.get(batch.from).is_none() {
            return Err(Status::permission_denied(format!(
                "node {} is not a peer of node {}",
                batch.from, self.me
            )));
        }
        if batch.to != self.me {
            return Err(Status::permission_denied(format!(
                "batch for node {} reached node {}: check --peers",
                batch.to, self.me
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftTransport for PeerService {
    async fn stream(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<StreamDone>, Status> {
        let mut stream = request.into_inner();
        let node = self.node.clone();
        let mut delays = DelayLines::new(format!("node-{}-in", self.me), move |m| node.step(m));
        loop {
            // Peer streams never end by themselves; end them on shutdown, or the server's
            // graceful shutdown would wait for them forever.
            let batch = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                batch = stream.message() => batch?,
            };
            let Some(batch) = batch else { break };
            if let Err(status) = self.check(&batch) {
                tracing::warn!("refused a peer stream: {}", status.message());
                return Err(status);
            }
            for bytes in &batch.messages {
                let msg = Message::parse_from_bytes(bytes)
                    .map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))?;
                if msg.from != batch.from || msg.to != self.me {
                    return Err(Status::invalid_argument(
                        "raft message addressing does not match its batch",
                    ));
                }
                // Nodes here never forward proposals or reads (only the leader takes them),
                // so such a message from the wire is forged or foreign: a proposal could
                // even carry a conf change. Drop it.
                if matches!(
                    msg.get_msg_type(),
                    MessageType::MsgPropose | MessageType::MsgReadIndex
                ) {
                    tracing::warn!("dropped a {:?} from node {}", msg.get_msg_type(), msg.from);
                    continue;
                }
                match self.filter.incoming(&msg) {
                    Verdict::Deliver => delays.pass(msg.from, None, msg),
                    Verdict::Delay(d) => delays.pass(msg.from, Some(d), msg),
                    Verdict::Drop => {}
                }
            }
        }
        Ok(Response::new(StreamDone {}))
    }
}
