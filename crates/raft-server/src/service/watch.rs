//! The watch stream (`Watch`), a thin adapter over the node's [`WatchHub`]: a new watcher
//! gets the node's state, its compacted prefix and the tail of its log first, then every
//! change as the driver and the fault filter record it.

use std::pin::Pin;

use kv_proto::watch::watch_server::Watch;
use kv_proto::watch::{self as pb, watch_record::Kind};
use tokio_stream::{Stream, StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::driver::NodeHandle;
use crate::watch::{WATCHER_CAPACITY, entry_of};

/// Log entries a new watcher gets when it asks for none in particular.
const DEFAULT_TAIL: u64 = 64;
/// Most log entries a watcher may ask for first.
const MAX_TAIL: u64 = 2048;

/// The `Watch` service of one node.
pub struct WatchService {
    node: NodeHandle,
}

impl WatchService {
    /// Serves `node`'s watch stream.
    pub fn new(node: NodeHandle) -> Self {
        Self { node }
    }

    /// What a new watcher gets first: the state, the compacted prefix, the log's tail.
    fn first_records(&self, tail: u64) -> Vec<Kind> {
        let status = self.node.status().borrow().clone();
        let hub = self.node.watch();
        let mut first = vec![Kind::State(hub.state_of(&status))];
        if status.first_index > 1 {
            first.push(Kind::Compact(pb::Compact {
                up_to: status.first_index - 1,
                term: 0,
            }));
        }
        // The stored log, not the status (published at the end of the driver's loop): an
        // entry stored and told to the watchers already is in this tail.
        let last = self
            .node
            .storage()
            .last_index_stored()
            .max(status.last_index);
        let low = last.saturating_sub(tail).max(status.first_index).max(1);
        if last >= low {
            match self.node.storage().read_entries(low, last + 1) {
                Ok(entries) => first.extend(entries.iter().map(|e| Kind::Entry(entry_of(e)))),
                Err(e) => tracing::debug!("watch: cannot read the log's tail: {e}"),
            }
        }
        first
    }
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<pb::WatchBatch, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = RecordStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let tail = match u64::from(request.into_inner().log_tail) {
            0 => DEFAULT_TAIL,
            n => n.min(MAX_TAIL),
        };
        let rx = self
            .node
            .watch()
            .subscribe(|| self.first_records(tail), WATCHER_CAPACITY)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}
