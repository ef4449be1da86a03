//! Incoming peer streams: checks who is talking, decodes raft-rs messages and hands them
//! to the driver. Batches from another cluster are refused, and so are a removed node
//! (`FAILED_PRECONDITION`, "removed at index N", which is how a removed node that missed
//! its own removal learns it) and a node whose data dir is not the incarnation the log
//! knows (`PERMISSION_DENIED`, "data dir replaced": it was wiped and lost its vote). A
//! sender not known as a member is heard: it may have been added while this node was cut
//! off.
//! A node that joined without a cluster id takes the first one its peers send.
//! Every message passes the node's [`FaultFilter`] on the way in; delayed ones reach the
//! driver through a delay line of the stream's own, so a stream never reorders.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_proto::peer::raft_transport_server::RaftTransport;
use kv_proto::peer::{RaftBatch, StreamDone};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::driver::NodeHandle;
use crate::membership::Refusal;
use crate::transport::delay::DelayLines;
use crate::transport::fault::{FaultFilter, Verdict};

/// The longest ReadIndex context a peer may send (the driver's are 16 bytes: node id and
/// request id).
const MAX_READ_CONTEXT_BYTES: usize = 64;

/// The prefix of the refusal a removed node gets; its transport looks for it.
pub const REMOVED_PREFIX: &str = "removed at index ";
/// The prefix of the refusal a node whose data dir was replaced gets (followed by the
/// refuser's applied index); its transport looks for it.
pub const REPLACED_PREFIX: &str = "data dir replaced, as of index ";

/// The `RaftTransport` service of one node.
pub struct PeerService {
    me: u64,
    cluster_id: Arc<AtomicU64>,
    node: NodeHandle,
    filter: FaultFilter,
    shutdown: CancellationToken,
}

impl PeerService {
    /// Serves node `me` of cluster `cluster_id` until `shutdown`; incoming messages pass
    /// `filter`.
    pub fn new(
        me: u64,
        cluster_id: Arc<AtomicU64>,
        node: NodeHandle,
        filter: FaultFilter,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            me,
            cluster_id,
            node,
            filter,
            shutdown,
        }
    }

    fn check(&self, batch: &RaftBatch) -> Result<(), Status> {
        let joining = self.node.membership().with(|m| m.is_empty());
        let mut ours = self.cluster_id.load(Ordering::Relaxed);
        if ours == 0 && joining && batch.cluster_id != 0 {
            // Waiting to be added: the first member to reach us names the cluster.
            ours = self.adopt(batch.cluster_id);
        }
        if batch.cluster_id != ours {
            return Err(Status::permission_denied(format!(
                "node {} belongs to cluster {:x}, this batch is from cluster {:x}: check --peers",
                self.me, ours, batch.cluster_id
            )));
        }
        // Only a removed node and a replaced data dir are refused: a sender this node does
        // not know as a member may be one added while it was cut off, even the leader, and
        // the entries that would teach it come from that leader.
        let refusal = self
            .node
            .membership()
            .with(|m| m.refusal(batch.from, batch.incarnation));
        match refusal {
            Some(Refusal::Removed(index)) => {
                return Err(Status::failed_precondition(format!(
                    "{REMOVED_PREFIX}{index}: node {} is no longer a member of this cluster",
                    batch.from
                )));
            }
            Some(Refusal::Replaced { known }) => {
                let from = batch.from;
                let applied = self.node.status().borrow().applied_index;
                return Err(Status::permission_denied(format!(
                    "{REPLACED_PREFIX}{applied}: node {} knows node {from} by data dir \
                     {known:016x} (as of index {applied}), this one is {:016x}: its data dir was \
                     wiped, and with it its log and its vote, so the members refuse it. To \
                     bring it back: stop it, `raft-client member remove {from}`, start it with \
                     an empty data dir and --join, then `raft-client member add {from} <its peer \
                     address>`",
                    self.me, batch.incarnation
                )));
            }
            None => {}
        }
        if batch.from == self.me {
            return Err(Status::permission_denied(format!(
                "batch from node {} claims to be node {} itself: check --peers",
                batch.from, self.me
            )));
        }
        if batch.to != self.me {
            return Err(Status::permission_denied(format!(
                "batch for node {} reached node {}: check --peers",
                batch.to, self.me
            )));
        }
        self.node.note_incarnation(batch.from, batch.incarnation);
        if !batch.from_addr.is_empty() && self.node.membership().addr(batch.from).is_none() {
            self.node.learn_address(batch.from, &batch.from_addr);
        }
        Ok(())
    }
}

impl PeerService {
    /// Takes `cluster_id` as this node's cluster (a joining node's first contact) and
    /// records it in the data dir; returns the id in force.
    fn adopt(&self, cluster_id: u64) -> u64 {
        match self
            .cluster_id
            .compare_exchange(0, cluster_id, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                if let Err(e) = self.node.storage().adopt_cluster_id(self.me, cluster_id) {
                    tracing::warn!("cannot record the cluster id in the data dir: {e}");
                }
                tracing::info!("joined cluster {cluster_id:x}");
                cluster_id
            }
            Err(current) => current,
        }
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
            for (i, bytes) in batch.messages.iter().enumerate() {
                let msg_id = batch.msg_ids.get(i).copied().unwrap_or(0);
                let msg = Message::parse_from_bytes(bytes)
                    .map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))?;
                if msg.from != batch.from || msg.to != self.me {
                    return Err(Status::invalid_argument(
                        "raft message addressing does not match its batch",
                    ));
                }
                // Nodes here never forward proposals (only the leader takes them), so one
                // from the wire is forged or foreign: it could even carry a conf change.
                // Drop it. A follower's read is forwarded (`follower_reads`): let through
                // only in the shape the driver sends, one entry holding a short context
                // (raft-rs indexes `entries[0]` unchecked and keeps the context).
                let forged_read = msg.get_msg_type() == MessageType::MsgReadIndex
                    && !(msg.entries.len() == 1
                        && msg.entries[0].data.len() <= MAX_READ_CONTEXT_BYTES
                        && msg.entries[0].context.is_empty());
                if msg.get_msg_type() == MessageType::MsgPropose || forged_read {
                    tracing::warn!("dropped a {:?} from node {}", msg.get_msg_type(), msg.from);
                    continue;
                }
                match self.filter.incoming_numbered(&msg, msg_id) {
                    Verdict::Deliver => delays.pass(msg.from, None, msg),
                    Verdict::Delay(d) => delays.pass(msg.from, Some(d), msg),
                    Verdict::Drop => {}
                }
            }
        }
        Ok(Response::new(StreamDone {}))
    }
}
