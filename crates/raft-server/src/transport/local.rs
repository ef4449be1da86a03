//! An in-process network in the style of raft-rs's test harness: messages go straight to
//! the receiving node's handle, and links can be cut, nodes isolated and all recovered.
//! For tests and fault injection; no sockets.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use raft::eraftpb::Message;

use super::{Transport, is_snapshot};
use crate::driver::NodeHandle;

#[derive(Default)]
struct Inner {
    nodes: HashMap<u64, NodeHandle>,
    /// Directed links (from, to) that drop everything.
    cut: HashSet<(u64, u64)>,
}

/// A shared in-process network; clone it to hand it to each node.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    inner: Arc<Mutex<Inner>>,
}

impl LocalNetwork {
    /// Connects node `id` to the network.
    pub fn register(&self, id: u64, node: NodeHandle) {
        self.lock().nodes.insert(id, node);
    }

    /// A transport that sends from any node over this network.
    pub fn transport(&self) -> LocalTransport {
        LocalTransport { net: self.clone() }
    }

    /// Drops everything between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        let mut inner = self.lock();
        inner.cut.insert((a, b));
        inner.cut.insert((b, a));
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&self, id: u64) {
        let ids: Vec<u64> = self.lock().nodes.keys().copied().collect();
        for other in ids.into_iter().filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    /// Restores every link.
    pub fn recover(&self) {
        self.lock().cut.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One node's sending side of a [`LocalNetwork`].
pub struct LocalTransport {
    net: LocalNetwork,
}

impl Transport for LocalTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        let inner = self.net.lock();
        for msg in msgs {
            if inner.cut.contains(&(msg.from, msg.to)) {
                // A lost snapshot must be reported, or raft-rs waits for it all term.
                if is_snapshot(&msg)
                    && let Some(sender) = inner.nodes.get(&msg.from)
                {
                    sender.report_snapshot(msg.to, false);
                }
                continue;
            }
            if let Some(node) = inner.nodes.get(&msg.to) {
                node.step(msg);
            }
        }
    }
}
