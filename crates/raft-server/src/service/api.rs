//! The client API: validates requests, turns them into commands or reads for the node,
//! and maps the outcome to a response or a gRPC status.
//!
//! Error mapping (the client relies on it):
//! - not the leader: `FAILED_PRECONDITION`, details = `kv.LeaderHint` (encoded);
//! - leadership lost, busy, shutting down, a follower's read index not answered:
//!   `UNAVAILABLE` (retry; a write's outcome unknown);
//! - server deadline: `DEADLINE_EXCEEDED` (a write's outcome unknown);
//! - an older write of a client whose newer write was applied: `ABORTED` (not retryable);
//! - bad input: `INVALID_ARGUMENT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_proto::kv::kv_api_server::KvApi;
use kv_proto::kv::{self as pb};
use prost::Message as _;
use tonic::{Code, Request, Response, Status};

use crate::command::{Command, Op};
use crate::driver::{NodeHandle, RequestError};
use crate::status::NodeStatus;
use crate::transport::fault::{FaultFilter, describe};

/// The `KvApi` service of one node.
pub struct ApiService {
    me: u64,
    node: NodeHandle,
    faults: FaultFilter,
    cluster_id: Arc<AtomicU64>,
}

impl ApiService {
    /// Serves node `me` of cluster `cluster_id` (0 until a joining node learns it);
    /// `Status` also tells the faults in `faults`.
    pub fn new(me: u64, node: NodeHandle, faults: FaultFilter, cluster_id: Arc<AtomicU64>) -> Self {
        Self {
            me,
            node,
            faults,
            cluster_id,
        }
    }

    fn status_of(&self, err: RequestError) -> Status {
        match err {
            RequestError::NotLeader { leader_id, term } => {
                let leader = leader_id.and_then(|id| self.node.membership().addr(id));
                let msg = match &leader {
                    Some(p) => format!(
                        "node {} is not the leader; leader is node {} at {}",
                        self.me, p.id, p.api_addr
                    ),
                    None => format!(
                        "node {} is not the leader and knows of no leader (election in progress?)",
                        self.me
                    ),
                };
                let hint = pb::LeaderHint {
                    leader_id: leader_id.unwrap_or(0),
                    api_addr: leader.map(|p| p.api_addr.to_string()).unwrap_or_default(),
                    term,
                };
                Status::with_details(Code::FailedPrecondition, msg, hint.encode_to_vec().into())
            }
            RequestError::Timeout => Status::deadline_exceeded(err.to_string()),
            RequestError::Superseded => Status::aborted(err.to_string()),
            RequestError::LeadershipLost
            | RequestError::Busy
            | RequestError::ShuttingDown
            | RequestError::NoReadIndex { .. } => Status::unavailable(err.to_string()),
        }
    }

    async fn write(
        &self,
        key: String,
        op: Op,
        id: Option<pb::RequestId>,
        timed: bool,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let received = timed.then(|| self.stamp("received the request"));
        kv_proto::validate_key(&key).map_err(Status::invalid_argument)?;
        let id = id
            .filter(|id| id.client_id != 0 && id.seq != 0)
            .ok_or_else(|| {
                Status::invalid_argument(
                    "a write needs a request id with a non-zero client_id and seq \
                     (seq counts up from 1 per client)",
                )
            })?;
        let cmd = Command {
            client_id: id.client_id,
            seq: id.seq,
            // Stamped by the driver when (and if) it proposes the command as leader.
            timestamp_ms: 0,
            op,
        };
        let out = self
            .node
            .propose_timed(cmd, timed)
            .await
            .map_err(|e| self.status_of(e))?;
        // A timed write: what the driver stamped, between this handler's own two. It is
        // answered now, with the result; asking the driver for its stamps is extra, for a
        // timed write only.
        let timing = match received {
            Some(received) => {
                let answered = self.stamp("answered");
                let mut stamps = vec![received];
                if let Ok(steps) = self.node.stamps(out.index).await {
                    stamps.extend(steps.into_iter().map(|(step, unix_us)| pb::Stamp {
                        node: self.me,
                        step,
                        unix_us,
                    }));
                }
                stamps.push(answered);
                stamps
            }
            None => Vec::new(),
        };
        Ok(Response::new(pb::WriteResponse {
            index: out.index,
            term: out.term,
            existed: out.existed,
            duplicate: out.duplicate,
            node_id: self.me,
            timing,
        }))
    }

    /// This node's stamp of `step`, now.
    fn stamp(&self, step: &str) -> pb::Stamp {
        let unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        pb::Stamp {
            node: self.me,
            step: step.to_string(),
            unix_us,
        }
    }
}

#[tonic::async_trait]
impl KvApi for ApiService {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let req = request.into_inner();
        kv_proto::validate_value(&req.value).map_err(Status::invalid_argument)?;
        let op = Op::Put {
            key: req.key.clone(),
            value: req.value,
        };
        self.write(req.key, op, req.id, req.timing).await
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let req = request.into_inner();
        let op = Op::Delete {
            key: req.key.clone(),
        };
        self.write(req.key, op, req.id, false).await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let req = request.into_inner();
        kv_proto::validate_key(&req.key).map_err(Status::invalid_argument)?;
        let out = if req.stale {
            self.node
                .stale_read(&req.key)
                .await
                .map_err(|e| self.status_of(e))?
        } else {
            self.node
                .read(req.key, req.any_member)
                .await
                .map_err(|e| self.status_of(e))?
        };
        Ok(Response::new(pb::GetResponse {
            found: out.value.is_some(),
            value: out.value.unwrap_or_default(),
            applied_index: out.applied_index,
            node_id: self.me,
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self.node.status().borrow().clone();
        let mut faults = describe(&self.faults.faults());
        if status.frozen {
            faults.insert(0, "FROZEN".to_string());
        }
        if status.slow_factor > 1 {
            faults.push(format!("slow x{}", status.slow_factor));
        }
        Ok(Response::new(pb::StatusResponse {
            faults: faults.join(", "),
            frozen: status.frozen,
            // Measured here, on a gRPC thread: a few dozen files and one /proc read.
            disk_bytes: self.node.storage().disk_bytes(),
            rss_bytes: crate::status::process_rss_bytes().unwrap_or(0),
            cluster_id: self.cluster_id.load(Ordering::Relaxed),
            ..status_to_pb(&status)
        }))
    }
}

/// The `Status` RPC's view of a node.
pub fn status_to_pb(s: &NodeStatus) -> pb::StatusResponse {
    // Every member is in the view; an unknown id (0: no leader) has no address.
    let addr_of = |id: u64| {
        s.peer(id)
            .map(|p| p.api_addr.to_string())
            .unwrap_or_default()
    };
    pb::StatusResponse {
        id: s.id,
        role: s.role.as_str().to_string(),
        term: s.term,
        leader_id: s.leader_id,
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        last_index: s.last_index,
        first_index: s.first_index,
        vote: s.vote,
        api_addr: addr_of(s.id),
        leader_api_addr: addr_of(s.leader_id),
        key_count: s.key_count as u64,
        faults: String::new(),
        frozen: s.frozen,
        snapshot_index: s.snapshot_index,
        snapshot_in_progress: s.snapshot_in_progress.unwrap_or(0),
        data_bytes: s.data_bytes,
        disk_bytes: 0,
        rss_bytes: 0,
        log_cache_bytes: s.log_cache_bytes,
        snapshot_stall_us: s.snapshot_stall_us,
        joining: s.joining,
        removed_at: s.removed_at.unwrap_or(0),
        incarnation: s.incarnation,
        cluster_id: 0,
        refused: s.refused.clone().unwrap_or_default(),
        step_mode: s.step_mode,
        held_messages: u32::try_from(s.held_count).unwrap_or(u32::MAX),
        elections_last_minute: s.liveness.elections,
        leader_changes_last_minute: s.liveness.leader_changes,
        leaderless_ms: s
            .liveness
            .leaderless_ms
            .map_or(-1, |ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        protections: Some(s.protections.to_pb()),
        peers: s
            .peers
            .iter()
            .map(|p| pb::PeerStatus {
                id: p.id,
                peer_addr: p.peer_addr.to_string(),
                api_addr: p.api_addr.to_string(),
                match_index: p.progress.as_ref().map_or(0, |g| g.matched),
                next_index: p.progress.as_ref().map_or(0, |g| g.next),
                progress_state: p.progress.as_ref().map_or("", |g| g.state).to_string(),
                last_heard_ms: p.last_heard.map_or(-1, |t| {
                    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
                }),
                role: p.role.map_or("", |r| r.as_str()).to_string(),
                link_up: p.link_up.unwrap_or(true),
            })
            .collect(),
    }
}
