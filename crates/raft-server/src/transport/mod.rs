//! How Raft messages leave this node: the [`Transport`] trait the driver sends through.
//!
//! - [`grpc`]: the real one, a long-lived gRPC stream per peer fed by a bounded queue.
//! - [`local`]: an in-process network for tests (cut, isolate, recover through the same
//!   filter as the real transport).
//! - [`fault`]: the fault filter every peer message passes, out and in, with its counters.
//! - [`delay`]: delivery after a delay, in order per link (the delay fault's mechanism).
//! - [`tap`]: a bounded ring of recent messages and per-type counts (the messages panel).

pub mod delay;
pub mod fault;
pub mod grpc;
pub mod local;
pub mod tap;

use raft::eraftpb::Message;

/// True for a message carrying a snapshot (the whole state machine): transports report
/// its delivery to raft-rs, which holds the peer until it hears.
pub(crate) fn is_snapshot(msg: &Message) -> bool {
    msg.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot
}

/// Sends Raft messages to peers. Implementations never block the driver: a message that
/// cannot be queued is dropped (Raft retransmits) and the peer reported unreachable.
pub trait Transport: Send + 'static {
    /// Queues each message for its `to` peer.
    fn send(&mut self, msgs: Vec<Message>);

    /// Queues each message for its `to` peer under the watch id it was given when step
    /// mode held it (0: a new one), so its records pair with the held one.
    fn send_numbered(&mut self, msgs: Vec<(Message, u64)>) {
        self.send(msgs.into_iter().map(|(m, _)| m).collect());
    }

    /// Whether the link to `peer` is up right now, if the transport knows.
    fn link_up(&self, _peer: u64) -> Option<bool> {
        None
    }

    /// The nodes to keep links to changed (a membership change): links to new ones are
    /// opened, links to ones no longer listed closed.
    fn set_members(&mut self, _peers: &[crate::config::Peer]) {}
}
