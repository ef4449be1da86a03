//! An in-process network in the style of raft-rs's test harness: messages go straight to
//! the receiving node's handle, through the sender's and the receiver's [`FaultFilter`]s,
//! the same filter the gRPC transport uses. Links can be cut, nodes isolated and all
//! recovered. For tests; no sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use raft::eraftpb::Message;

use super::delay::DelayLines;
use super::fault::{FaultChange, FaultFilter, Verdict};
use super::{Transport, is_snapshot};
use crate::driver::NodeHandle;

#[derive(Default)]
struct Inner {
    nodes: HashMap<u64, NodeHandle>,
    filters: HashMap<u64, FaultFilter>,
    /// Each node's incoming delay lines, by sender.
    incoming: HashMap<u64, Arc<Mutex<DelayLines<Message>>>>,
}

/// A shared in-process network; clone it to hand it to each node.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    inner: Arc<Mutex<Inner>>,
}

impl LocalNetwork {
    /// Connects node `id` to the network.
    pub fn register(&self, id: u64, node: NodeHandle) {
        let step = node.clone();
        let lines = DelayLines::new(format!("local-{id}-in"), move |msg| step.step(msg));
        let mut inner = self.lock();
        inner.nodes.insert(id, node);
        inner.incoming.insert(id, Arc::new(Mutex::new(lines)));
    }

    /// The fault filter of node `id` (created on first use).
    pub fn filter(&self, id: u64) -> FaultFilter {
        self.lock()
            .filters
            .entry(id)
            .or_insert_with(|| FaultFilter::new(id, true))
            .clone()
    }

    /// The transport node `id` sends through.
    pub fn transport(&self, id: u64) -> LocalTransport {
        let net = self.clone();
        LocalTransport {
            filter: self.filter(id),
            net: self.clone(),
            delays: DelayLines::new(format!("local-{id}"), move |msg| net.deliver(msg)),
        }
    }

    /// Drops everything between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        self.change(a, FaultChange::Cut(b));
        self.change(b, FaultChange::Cut(a));
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&self, id: u64) {
        self.change(id, FaultChange::Isolate);
    }

    /// Heals every node.
    pub fn recover(&self) {
        let ids: Vec<u64> = self.lock().filters.keys().copied().collect();
        for id in ids {
            self.change(id, FaultChange::Heal);
        }
    }

    fn change(&self, id: u64, change: FaultChange) {
        if let Err(e) = self.filter(id).apply(change) {
            tracing::warn!("local network: {e}");
        }
    }

    /// Hands `msg` to its receiver through the receiver's filter and delay lines.
    fn deliver(&self, msg: Message) {
        let (lines, filter) = {
            let inner = self.lock();
            (
                inner.incoming.get(&msg.to).cloned(),
                inner.filters.get(&msg.to).cloned(),
            )
        };
        let Some(lines) = lines else { return };
        let delay = match filter.map_or(Verdict::Deliver, |f| f.incoming(&msg)) {
            Verdict::Deliver => None,
            Verdict::Delay(d) => Some(d),
            Verdict::Drop => return self.lost(&msg),
        };
        lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pass(msg.from, delay, msg);
    }

    /// A lost snapshot must be reported, or raft-rs waits for it all term.
    fn lost(&self, msg: &Message) {
        if is_snapshot(msg)
            && let Some(sender) = self.lock().nodes.get(&msg.from)
        {
            sender.report_snapshot(msg.to, false);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One node's sending side of a [`LocalNetwork`].
pub struct LocalTransport {
    filter: FaultFilter,
    net: LocalNetwork,
    delays: DelayLines<Message>,
}

impl Transport for LocalTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        for msg in msgs {
            match self.filter.outgoing(&msg) {
                Verdict::Deliver => self.delays.pass(msg.to, None, msg),
                Verdict::Delay(d) => self.delays.pass(msg.to, Some(d), msg),
                Verdict::Drop => self.net.lost(&msg),
            }
        }
    }
}
