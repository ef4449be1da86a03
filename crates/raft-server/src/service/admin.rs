//! The admin API (`Admin`), served beside the client API: this node's faults and slow
//! motion (a thin adapter over [`FaultControl`]), and on the leader membership changes and
//! leader transfers (over the node's handle).
//!
//! Error mapping (the client's exit 4 relies on it): `--no-faults`, a bad percentage, delay
//! or factor, an unknown or own id: `INVALID_ARGUMENT` or `PERMISSION_DENIED` (refused,
//! nothing changed).

use kv_proto::admin::admin_server::Admin;
use kv_proto::admin::fault_request::Action;
use kv_proto::admin::{self as pb};
use tonic::{Code, Request, Response, Status};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_proto::kv::LeaderHint;
use prost::Message as _;

use crate::addr::HostPort;
use crate::driver::{
    MAX_SLOW_FACTOR, MemberError, MemberRequest, NodeHandle, RequestError, StepControl, TimeControl,
};
use crate::fault_control::{ControlError, FaultControl};
use crate::service::new_member;
use crate::status::Role as RaftRole;
use crate::transport::fault::{FaultChange, FaultError};

/// How long `TransferLeader` waits for the new leader to take over.
const TRANSFER_WAIT: Duration = Duration::from_secs(3);

/// The `Admin` service of one node.
pub struct AdminService {
    me: u64,
    node: NodeHandle,
    control: FaultControl,
    cluster_id: Arc<AtomicU64>,
}

impl AdminService {
    /// Serves node `me`.
    pub fn new(
        me: u64,
        node: NodeHandle,
        control: FaultControl,
        cluster_id: Arc<AtomicU64>,
    ) -> Self {
        Self {
            me,
            node,
            control,
            cluster_id,
        }
    }

    /// On the leader: asks the node about to be added who it is (see `new_member`); its
    /// incarnation. A follower passes the request on (0), and the driver answers with the
    /// leader's address.
    async fn ask_new_member(&self, id: u64, peer_addr: &HostPort) -> Result<u64, Status> {
        if self.node.status().borrow().role != RaftRole::Leader {
            return Ok(0);
        }
        let (member, owner_of_addr, mut peers) = self.node.membership().with(|m| {
            let members = m.members();
            let owner = members
                .iter()
                .find(|(other, _, p)| *other != id && p.is_some_and(|p| &p.peer_addr == peer_addr))
                .map(|(other, _, _)| *other);
            let peers: Vec<String> = members
                .iter()
                .filter(|(other, _, _)| *other != id)
                .filter_map(|(other, _, p)| p.map(|p| format!("{other}={}", p.peer_addr)))
                .collect();
            (m.role(id).is_some(), owner, peers)
        });
        if member {
            // Already a member: the driver says so.
            return Ok(0);
        }
        peers.push(format!("{id}={peer_addr}"));
        peers.sort_by_key(|p| p.split('=').next().and_then(|id| id.parse::<u64>().ok()));
        let cluster = new_member::Cluster {
            id: self.cluster_id.load(Ordering::Relaxed),
            owner_of_addr,
            peers_hint: &peers.join(","),
        };
        new_member::check(id, peer_addr, &cluster).await
    }

    /// The members as this node knows them, with the leader's view of their progress.
    fn member_list(&self) -> pb::MemberList {
        let status = self.node.status().borrow().clone();
        let members = self.node.membership().with(|m| {
            m.members()
                .into_iter()
                .map(|(id, role, peer)| pb::Member {
                    id,
                    peer_addr: peer.map(|p| p.peer_addr.to_string()).unwrap_or_default(),
                    api_addr: peer.map(|p| p.api_addr.to_string()).unwrap_or_default(),
                    role: role.as_str().to_string(),
                    match_index: if id == self.me {
                        status.persisted_index
                    } else {
                        status
                            .peer(id)
                            .and_then(|p| p.progress.as_ref())
                            .map_or(0, |g| g.matched)
                    },
                })
                .collect()
        });
        pb::MemberList {
            id: self.me,
            leader_id: status.leader_id,
            members,
            joint: status.joint,
            last_index: status.last_index,
            commit_index: status.commit_index,
        }
    }

    /// A member change or transfer error as a status (see the module doc).
    fn member_status(&self, e: MemberError) -> Status {
        match e {
            MemberError::Refused(why) => Status::failed_precondition(why),
            MemberError::TransferFirst(why) => Status::aborted(why),
            // "Busy": the client asks again until its deadline, saying why it waits.
            MemberError::NotYet(why) => Status::resource_exhausted(why),
            MemberError::Request(RequestError::NotLeader { leader_id, term }) => {
                let leader = leader_id.and_then(|id| self.node.membership().addr(id));
                let hint = LeaderHint {
                    leader_id: leader_id.unwrap_or(0),
                    api_addr: leader
                        .as_ref()
                        .map(|p| p.api_addr.to_string())
                        .unwrap_or_default(),
                    term,
                };
                let msg = match leader {
                    Some(p) => format!("node {} is not the leader; node {} is", self.me, p.id),
                    None => format!("node {} is not the leader and knows of none", self.me),
                };
                Status::with_details(Code::Unavailable, msg, hint.encode_to_vec().into())
            }
            MemberError::Request(e) => Status::unavailable(e.to_string()),
        }
    }

    /// This node's faults as the API shows them.
    fn state(&self, changed: String) -> pb::FaultState {
        let filter = self.control.filter();
        let f = filter.faults();
        let (frozen, slow_factor) = self.control.time_faults();
        pb::FaultState {
            id: self.me,
            isolated: f.isolated,
            cut: f.cut.iter().copied().collect(),
            cut_out: f.cut_out.iter().copied().collect(),
            cut_in: f.cut_in.iter().copied().collect(),
            drop_percent: f.drop_percent,
            delay_ms: f.delay_ms,
            frozen,
            slow_factor,
            faults_disabled: !filter.enabled(),
            counts: filter
                .counts()
                .into_iter()
                .map(|c| pb::TypeCount {
                    msg_type: c.msg_type.to_string(),
                    dropped: c.dropped,
                    delayed: c.delayed,
                })
                .collect(),
            changed,
        }
    }

    /// On the leader, refuses to add a node whose name does not resolve: far more often a
    /// typo than a machine not up yet (the new node is started, with --join, before it is
    /// added), and a member nobody can reach is a learner stuck at nothing until removed.
    /// Only the leader checks, as it is the one that connects to the new node first (other
    /// machines may see other names); a follower passes the request on, and the driver
    /// answers with the leader's address.
    async fn check_resolves(&self, id: u64, peer_addr: &HostPort) -> Result<(), Status> {
        if self.node.status().borrow().role != RaftRole::Leader {
            return Ok(());
        }
        peer_addr.resolve().await.map(drop).map_err(|e| {
            Status::invalid_argument(format!(
                "{e}: node {id} would be unreachable at {peer_addr}; check the name, or start \
                 the machine or container first (with --join) so that its name resolves"
            ))
        })
    }

    fn require_member(&self, peer: u64) -> Result<(), Status> {
        if peer == self.me {
            return Err(status_of(FaultError::SelfLink(self.me).into()));
        }
        let ids = self.node.membership().with(|m| m.ids());
        if !ids.contains(&peer) {
            let known: Vec<String> = ids.iter().map(u64::to_string).collect();
            return Err(Status::invalid_argument(format!(
                "node {peer} is not a member (members: {})",
                known.join(",")
            )));
        }
        Ok(())
    }
}

fn status_of(e: ControlError) -> Status {
    match e {
        ControlError::Refused(FaultError::Disabled(_)) => Status::permission_denied(e.to_string()),
        ControlError::Refused(_) => Status::invalid_argument(e.to_string()),
        ControlError::Driver(_) => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn set_fault(
        &self,
        request: Request<pb::FaultRequest>,
    ) -> Result<Response<pb::FaultState>, Status> {
        let action = request
            .into_inner()
            .action
            .ok_or_else(|| Status::invalid_argument("a fault request needs an action"))?;
        if !self.control.filter().enabled() {
            return Err(status_of(FaultError::Disabled(self.me).into()));
        }
        let c = &self.control;
        let changed = match action {
            Action::Isolate(_) => c.network(FaultChange::Isolate),
            Action::Cut(peer) => {
                self.require_member(peer)?;
                c.network(FaultChange::Cut(peer))
            }
            Action::Uncut(peer) => c.network(FaultChange::Uncut(peer)),
            Action::CutOut(peer) => {
                self.require_member(peer)?;
                c.network(FaultChange::CutOut(peer))
            }
            Action::CutIn(peer) => {
                self.require_member(peer)?;
                c.network(FaultChange::CutIn(peer))
            }
            Action::DropPercent(p) => c.network(FaultChange::Drop(p)),
            Action::DelayMs(ms) => c.network(FaultChange::Delay(ms)),
            Action::Freeze(_) => c.time(TimeControl::Freeze).await,
            Action::Thaw(_) => c.time(TimeControl::Thaw).await,
            Action::Heal(_) => c.heal().await,
            Action::SlowFactor(f) if f == 0 || f > MAX_SLOW_FACTOR => {
                return Err(Status::invalid_argument(format!(
                    "slow-motion factor {f} is out of range: give 1 (normal speed) to {MAX_SLOW_FACTOR}"
                )));
            }
            Action::SlowFactor(f) => c.time(TimeControl::Slow(f)).await,
        }
        .map_err(status_of)?;
        Ok(Response::new(self.state(changed)))
    }

    async fn list_faults(
        &self,
        _request: Request<pb::ListFaultsRequest>,
    ) -> Result<Response<pb::FaultState>, Status> {
        Ok(Response::new(self.state(String::new())))
    }

    async fn list_members(
        &self,
        _request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::MemberList>, Status> {
        Ok(Response::new(self.member_list()))
    }

    async fn change_members(
        &self,
        request: Request<pb::MemberChange>,
    ) -> Result<Response<pb::MemberChangeReply>, Status> {
        use pb::member_change::Change;
        let change = request
            .into_inner()
            .change
            .ok_or_else(|| Status::invalid_argument("a member change needs a change"))?;
        let req = match change {
            Change::AddLearner(add) => {
                if add.id == 0 {
                    return Err(Status::invalid_argument("node ids are positive integers"));
                }
                let peer_addr: HostPort = add
                    .peer_addr
                    .parse()
                    .map_err(|e| Status::invalid_argument(format!("bad peer address: {e}")))?;
                if crate::config::api_addr_of(&peer_addr).is_none() {
                    return Err(Status::invalid_argument(format!(
                        "peer port {} is too high: the client API needs port + 1000 <= 65535",
                        peer_addr.port()
                    )));
                }
                self.check_resolves(add.id, &peer_addr).await?;
                let incarnation = self.ask_new_member(add.id, &peer_addr).await?;
                MemberRequest::AddLearner {
                    id: add.id,
                    peer_addr,
                    incarnation,
                }
            }
            Change::Promote(id) => MemberRequest::Promote(id),
            Change::Remove(id) => MemberRequest::Remove(id),
        };
        let outcome = self
            .node
            .change_members(req)
            .await
            .map_err(|e| self.member_status(e))?;
        Ok(Response::new(pb::MemberChangeReply {
            changed: outcome.changed,
            index: outcome.index,
            members: Some(self.member_list()),
        }))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::TransferReply>, Status> {
        let to = Some(request.into_inner().to).filter(|id| *id != 0);
        let target = self
            .node
            .transfer_leader(to)
            .await
            .map_err(|e| self.member_status(e))?;
        // Done when this node follows the target (a transfer that stalls, e.g. because the
        // target is far behind or frozen, is abandoned by raft-rs after an election timeout).
        let mut status = self.node.status();
        let taken = status.wait_for(|s| s.leader_id == target && s.role != RaftRole::Leader);
        match tokio::time::timeout(TRANSFER_WAIT, taken).await {
            Ok(Ok(s)) => Ok(Response::new(pb::TransferReply {
                to: target,
                changed: format!(
                    "node {target} leads now (term {}); node {} follows",
                    s.term, self.me
                ),
            })),
            _ => Err(Status::unavailable(format!(
                "node {target} did not take over within {TRANSFER_WAIT:?} (behind, down or \
                 frozen?); node {} keeps leading",
                self.me
            ))),
        }
    }

    async fn set_protections(
        &self,
        request: Request<kv_proto::kv::Protections>,
    ) -> Result<Response<pb::ProtectionsReply>, Status> {
        let set = crate::config::Protections::from_pb(&request.into_inner())
            .map_err(Status::invalid_argument)?;
        if !self.control.filter().enabled() {
            return Err(Status::permission_denied(
                FaultError::Disabled(self.me).to_string(),
            ));
        }
        let said = self
            .node
            .set_protections(set)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::ProtectionsReply {
            said,
            protections: Some(set.to_pb()),
        }))
    }

    async fn stamps(
        &self,
        request: Request<pb::StampsRequest>,
    ) -> Result<Response<pb::StampsReply>, Status> {
        let index = request.into_inner().index;
        let steps = self
            .node
            .stamps(index)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::StampsReply {
            stamps: steps
                .into_iter()
                .map(|(step, unix_us)| kv_proto::kv::Stamp {
                    node: self.me,
                    step,
                    unix_us,
                })
                .collect(),
        }))
    }

    async fn step(
        &self,
        request: Request<pb::StepRequest>,
    ) -> Result<Response<pb::StepReply>, Status> {
        let req = request.into_inner();
        let id = Some(req.hold_id).filter(|id| *id != 0);
        let ctl = match req.action.as_str() {
            "on" => StepControl::On,
            "off" => StepControl::Off,
            "next" => StepControl::Next(id),
            "drop" => StepControl::Drop(id),
            "tick" => StepControl::Tick,
            "list" => StepControl::List,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown step action {other:?}: give on, off, next, drop, tick or list"
                )));
            }
        };
        if ctl != StepControl::List && !self.control.filter().enabled() {
            return Err(Status::permission_denied(
                FaultError::Disabled(self.me).to_string(),
            ));
        }
        let a = self
            .node
            .step_control(ctl)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::StepReply {
            said: a.said,
            step_mode: a.step_mode,
            held: a.held,
            held_count: u32::try_from(a.held_count).unwrap_or(u32::MAX),
            election_elapsed: a.election_elapsed,
            election_timeout: a.election_timeout,
            role: a.role.to_string(),
            term: a.term,
        }))
    }
}
