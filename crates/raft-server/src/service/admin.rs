//! The admin API (`Admin`), served beside the client API: this node's faults and slow
//! motion. A thin adapter over [`FaultControl`].
//!
//! Error mapping (the client's exit 4 relies on it): `--no-faults`, a bad percentage, delay
//! or factor, an unknown or own id: `INVALID_ARGUMENT` or `PERMISSION_DENIED` (refused,
//! nothing changed).

use kv_proto::admin::admin_server::Admin;
use kv_proto::admin::fault_request::Action;
use kv_proto::admin::{self as pb};
use tonic::{Request, Response, Status};

use crate::config::PeerMap;
use crate::driver::{MAX_SLOW_FACTOR, TimeControl};
use crate::fault_control::{ControlError, FaultControl};
use crate::transport::fault::{FaultChange, FaultError};

/// The `Admin` service of one node.
pub struct AdminService {
    me: u64,
    peers: PeerMap,
    control: FaultControl,
}

impl AdminService {
    /// Serves node `me`, whose members are `peers`.
    pub fn new(me: u64, peers: PeerMap, control: FaultControl) -> Self {
        Self { me, peers, control }
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

    fn require_member(&self, peer: u64) -> Result<(), Status> {
        if peer == self.me {
            return Err(status_of(FaultError::SelfLink(self.me).into()));
        }
        if self.peers.get(peer).is_none() {
            let known: Vec<String> = self.peers.ids().iter().map(u64::to_string).collect();
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
}
