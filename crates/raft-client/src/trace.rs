//! The trace of one client request: every node tried, why, and what it said.
//!
//! Both the one-shot commands (`-v`) and the TUI show it, so a person can watch the client
//! follow leader hints and fail over.

use std::fmt;
use std::time::Duration;

/// Why the client chose a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The leader the client remembered from an earlier request.
    KnownLeader,
    /// A node's answer named this node as the leader.
    Redirect,
    /// No leader known: the next node in `--peers`.
    NextPeer,
    /// A linearizable read with `--read-from any`: a random member, which answers itself.
    AnyMember,
}

/// What one node answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopOutcome {
    /// The request succeeded here.
    Ok,
    /// Not the leader; `leader` is the hint (id and API address), if any.
    NotLeader {
        /// The leader the node knows of.
        leader: Option<(u64, String)>,
    },
    /// The node answered that it cannot serve now (leadership changed, busy, ...).
    Unavailable(String),
    /// No answer before the attempt's deadline.
    Timeout,
    /// The connection broke, or stopped answering pings, while the request was out: it may
    /// have reached the node.
    Unreachable(String),
    /// No connection could be made (refused, or none within the connect timeout): the
    /// request was not sent.
    Refused(String),
    /// The address's host name did not resolve ("cannot resolve node2: ..."): the request
    /// was not sent.
    Unresolved(String),
    /// The address answered, but does not serve the client API (likely a peer port).
    NotClientApi,
}

impl HopOutcome {
    /// Whether the request may have reached the node (everything but a failed connect).
    pub fn reached_node(&self) -> bool {
        !matches!(self, HopOutcome::Refused(_) | HopOutcome::Unresolved(_))
    }
}

/// One attempt at one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Client API address tried.
    pub addr: String,
    /// Why this node.
    pub reason: Reason,
    /// True when this attempt resent a write already sent to a node (same client id and
    /// seq); attempts that never connected do not count as sent.
    pub resent: bool,
    /// What happened.
    pub outcome: HopOutcome,
    /// How long the attempt took.
    pub elapsed: Duration,
}

/// Every attempt of one request, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The attempts.
    pub hops: Vec<Hop>,
    /// `(client_id, seq)` of a write.
    pub request_id: Option<(u64, u64)>,
}

impl Trace {
    /// Number of leader redirects followed.
    pub fn redirects(&self) -> usize {
        self.hops
            .iter()
            .filter(|h| h.reason == Reason::Redirect)
            .count()
    }

    /// Number of times a write was sent again with the same request id.
    pub fn resends(&self) -> usize {
        self.hops.iter().filter(|h| h.resent).count()
    }
}

impl fmt::Display for HopOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HopOutcome::Ok => f.write_str("OK"),
            HopOutcome::NotLeader {
                leader: Some((id, addr)),
            } => write!(f, "not leader, leader is {id} at {addr}"),
            HopOutcome::NotLeader { leader: None } => f.write_str("not leader, no leader known"),
            HopOutcome::Unavailable(m) => write!(f, "unavailable: {m}"),
            HopOutcome::Timeout => f.write_str("no answer (timed out)"),
            HopOutcome::Unreachable(m) | HopOutcome::Refused(m) => write!(f, "unreachable: {m}"),
            HopOutcome::Unresolved(m) => f.write_str(m),
            HopOutcome::NotClientApi => {
                f.write_str("not the client API (a peer port? clients use the peer port + 1000)")
            }
        }
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            Reason::KnownLeader => "known leader",
            Reason::Redirect => "redirect",
            Reason::NextPeer => "next peer",
            Reason::AnyMember => "any member",
        };
        let resent = if self.resent { ", same request id" } else { "" };
        write!(
            f,
            "{} [{why}{resent}]: {} ({:.1} ms)",
            self.addr,
            self.outcome,
            self.elapsed.as_secs_f64() * 1000.0
        )
    }
}
