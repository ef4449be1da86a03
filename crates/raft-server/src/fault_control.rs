//! The one place that changes this node's faults. The admin API and the dashboard's keys
//! both come here: network faults go to the transport's [`FaultFilter`], time faults (freeze,
//! thaw, slow motion) to the driver, and every change that changed something is told to the
//! events timeline.

use crate::driver::{NodeHandle, RequestError, TimeControl};
use crate::transport::fault::{FaultChange, FaultError, FaultFilter};

/// Why a fault change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Refused: nothing was changed.
    #[error(transparent)]
    Refused(#[from] FaultError),
    /// The driver did not take the time control (busy, stopping, or no answer).
    #[error("the node driver did not answer: {0}")]
    Driver(#[from] RequestError),
}

/// Changes the faults of one node; cheap to clone.
#[derive(Clone)]
pub struct FaultControl {
    node: NodeHandle,
    filter: FaultFilter,
}

impl FaultControl {
    /// Controls the node behind `node`, whose transport filters with `filter`.
    pub fn new(node: NodeHandle, filter: FaultFilter) -> Self {
        Self { node, filter }
    }

    /// The node's filter.
    pub fn filter(&self) -> &FaultFilter {
        &self.filter
    }

    /// Changes a network fault; returns what changed (empty: nothing).
    pub fn network(&self, change: FaultChange) -> Result<String, ControlError> {
        let said = self.filter.apply(change)?;
        if !said.is_empty() {
            self.node.note_fault(format!("fault: {said}"));
        }
        Ok(said)
    }

    /// Freezes, thaws or slows the node; returns what changed.
    pub async fn time(&self, ctl: TimeControl) -> Result<String, ControlError> {
        if !self.filter.enabled() {
            return Err(FaultError::Disabled(self.filter.node_id()).into());
        }
        Ok(self.node.time_control(ctl).await?)
    }

    /// Clears every fault of this node (network faults and a freeze; slow motion stays);
    /// returns what changed (empty: nothing).
    pub async fn heal(&self) -> Result<String, ControlError> {
        let net = self.network(FaultChange::Heal)?;
        let (frozen, _) = self.node.time_faults();
        if !frozen {
            return Ok(net);
        }
        let thawed = self.time(TimeControl::Thaw).await?;
        Ok(if net.is_empty() {
            thawed
        } else {
            format!("{net}; {thawed}")
        })
    }

    /// `(frozen, slow factor)` as the driver last applied them.
    pub fn time_faults(&self) -> (bool, u32) {
        self.node.time_faults()
    }
}
