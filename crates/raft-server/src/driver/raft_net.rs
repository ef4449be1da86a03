//! Three raft-rs nodes in memory with this node's raft-rs configuration, their messages
//! delivered by hand: for tests that step raft-rs through an exact sequence.

use std::collections::BTreeMap;

use raft::RawNode;
use raft::eraftpb::{ConfState, Message};
use raft::storage::MemStorage;

use super::raft_config::raft_config;
use crate::config::Timing;

/// Three raft-rs nodes in memory, with our configuration; messages are delivered by hand.
pub(super) struct Net {
    nodes: BTreeMap<u64, RawNode<MemStorage>>,
    /// Runs on every message a node receives, before raft-rs steps it (as the driver's
    /// own checks do); a peer it returns is sent an append after the step.
    pub(super) before_step: Option<BeforeStep>,
}

/// See [`Net::before_step`].
pub(super) type BeforeStep = fn(&mut raft::Raft<MemStorage>, &Message) -> Option<u64>;

impl Net {
    pub(super) fn new(batch_append: bool) -> Self {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let nodes = (1..=3)
            .map(|id| {
                let mut cfg = raft_config(
                    id,
                    &Timing::default(),
                    0,
                    &crate::config::Protections::default(),
                );
                cfg.batch_append = batch_append;
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
                let node = RawNode::new(&cfg, storage, &logger).expect("raw node");
                (id, node)
            })
            .collect();
        Self {
            nodes,
            before_step: None,
        }
    }

    /// Node `id` loses every entry after `keep` (a damaged disk), keeping its term and
    /// vote: it starts again from what is left.
    pub(super) fn lose_entries_after(&mut self, id: u64, keep: u64) {
        let old = self.node(id).raft.raft_log.store.clone();
        let entries = raft::Storage::entries(
            &old,
            1,
            keep + 1,
            None,
            raft::GetEntriesContext::empty(false),
        )
        .expect("entries");
        let mut hs = old.rl().hard_state().clone();
        hs.commit = hs.commit.min(keep);
        let storage = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
        storage.wl().append(&entries).expect("append");
        storage.wl().set_hardstate(hs);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let cfg = raft_config(
            id,
            &Timing::default(),
            0,
            &crate::config::Protections::default(),
        );
        let node = RawNode::new(&cfg, storage, &logger).expect("raw node");
        self.nodes.insert(id, node);
    }

    /// Delivers `m` to its receiver, through [`Net::before_step`].
    pub(super) fn deliver(&mut self, m: Message) {
        let hook = self.before_step;
        let node = self.node(m.to);
        let again = hook.and_then(|h| h(&mut node.raft, &m));
        let _ = node.step(m);
        if let Some(peer) = again {
            node.raft.send_append(peer);
        }
    }

    pub(super) fn node(&mut self, id: u64) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).expect("node")
    }

    /// Handles node `id`'s Ready as the driver does (storage before the persisted
    /// messages) and returns every message it sends.
    pub(super) fn ready(&mut self, id: u64) -> Vec<Message> {
        let node = self.node(id);
        if !node.has_ready() {
            return Vec::new();
        }
        let mut rd = node.ready();
        let mut out = rd.take_messages();
        let store = node.raft.raft_log.store.clone();
        if !rd.entries().is_empty() {
            store.wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            store.wl().set_hardstate(hs.clone());
        }
        out.extend(rd.take_persisted_messages());
        let mut light = node.advance(rd);
        if let Some(commit) = light.commit_index() {
            store.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        node.advance_apply();
        out
    }

    /// Delivers messages until none are left; `keep` says which ones arrive.
    pub(super) fn settle(&mut self, mut pending: Vec<Message>, keep: &dyn Fn(&Message) -> bool) {
        for _ in 0..1000 {
            for id in 1..=3 {
                pending.extend(self.ready(id));
            }
            if pending.is_empty() {
                return;
            }
            for m in std::mem::take(&mut pending) {
                if keep(&m) {
                    self.deliver(m);
                }
            }
        }
        panic!("messages never settled");
    }

    pub(super) fn propose(&mut self, id: u64, data: &[u8]) {
        self.node(id)
            .propose(Vec::new(), data.to_vec())
            .expect("propose");
    }

    pub(super) fn last_index(&mut self, id: u64) -> u64 {
        self.node(id).raft.raft_log.last_index()
    }
}
