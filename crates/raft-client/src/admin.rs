//! What the cluster's admin commands share: finding every node's id and address, and the
//! report a command produces (lines for a person, an exit code for scripts).
//!
//! Admin commands name nodes by id, while `--peers` lists addresses. Every reachable node's
//! `Status` names itself and every member with its API address, so one round of `Status`
//! calls maps ids to addresses, including nodes that are down right now.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::SmartClient;

/// How the command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything was applied (exit 0).
    Done,
    /// A node involved was unreachable; what could be applied was (exit 3).
    Unreachable,
    /// Refused: bad id, bad number, `--no-faults`, ... Nothing was changed (exit 4).
    Refused,
}

impl Ending {
    /// The contract's exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Ending::Done => 0,
            Ending::Unreachable => 3,
            Ending::Refused => 4,
        }
    }

    /// The worse of two endings.
    pub fn and(self, other: Ending) -> Ending {
        use Ending::*;
        match (self, other) {
            (Refused, _) | (_, Refused) => Refused,
            (Unreachable, _) | (_, Unreachable) => Unreachable,
            _ => Done,
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// True for what went wrong.
    pub error: bool,
    /// The text.
    pub text: String,
}

/// What an admin command did: lines for a person (stdout, or stderr for errors), an
/// optional JSON document, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lines, in order.
    pub lines: Vec<Line>,
    /// The `--json` document, for commands that have one.
    pub json: Option<String>,
    /// How it ended.
    pub ending: Ending,
}

impl Report {
    /// An empty report of a command that has done nothing yet.
    pub fn new() -> Self {
        Self {
            lines: Vec::new(),
            json: None,
            ending: Ending::Done,
        }
    }

    /// A report of a command refused before anything was sent.
    pub fn refused(text: impl Into<String>) -> Self {
        let mut r = Self::new();
        r.fail(Ending::Refused, text);
        r
    }

    /// Adds a line.
    pub fn say(&mut self, text: impl Into<String>) {
        self.lines.push(Line {
            error: false,
            text: text.into(),
        });
    }

    /// Adds an error line and worsens the ending.
    pub fn fail(&mut self, ending: Ending, text: impl Into<String>) {
        self.ending = self.ending.and(ending);
        self.lines.push(Line {
            error: true,
            text: text.into(),
        });
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

/// Every node the cluster knows of: id -> client API address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMap {
    /// API address by node id.
    pub nodes: BTreeMap<u64, String>,
    /// Ids that answered `Status` in this round.
    pub reachable: Vec<u64>,
    /// When nobody answered because no name in `--peers` resolved: the line to print.
    pub unresolved: Option<String>,
}

impl ClusterMap {
    /// Asks every node in `--peers` for its status (each within a short bound) and merges
    /// what they say about themselves and their members.
    pub async fn discover(client: &SmartClient) -> Self {
        let per_node = client.timeout().min(Duration::from_secs(2));
        let reports = client.status_all_within(per_node).await;
        let mut map = Self {
            unresolved: crate::client::all_unresolved(&reports),
            ..Self::default()
        };
        for r in &reports {
            let Ok(s) = &r.status else { continue };
            map.reachable.push(s.id);
            map.nodes.insert(s.id, r.api_addr.clone());
            for p in &s.peers {
                if !p.api_addr.is_empty() {
                    map.nodes.entry(p.id).or_insert_with(|| p.api_addr.clone());
                }
            }
        }
        map.reachable.sort_unstable();
        map
    }

    /// [`Self::discover`], or (no node answered) the report that says so: for the admin
    /// commands, which need a node to talk to.
    pub async fn discover_some(client: &SmartClient) -> Result<Self, Report> {
        let map = Self::discover(client).await;
        if !map.nodes.is_empty() {
            return Ok(map);
        }
        let why = map.unresolved.clone().unwrap_or_else(|| {
            format!(
                "no node answered at {}: is the cluster running? (the client API is on peer port + 1000)",
                client.peers().join(", ")
            )
        });
        let mut r = Report::new();
        r.fail(Ending::Unreachable, why);
        Err(r)
    }

    /// The address of node `id`.
    pub fn addr(&self, id: u64) -> Option<&str> {
        self.nodes.get(&id).map(String::as_str)
    }

    /// Every known id, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// `1, 2, 3`.
    pub fn ids_text(&self) -> String {
        let ids: Vec<String> = self.ids().iter().map(u64::to_string).collect();
        ids.join(", ")
    }

    /// Checks that `id` is a known node; the error is the line to print.
    pub fn require(&self, id: u64) -> Result<&str, String> {
        self.addr(id).ok_or_else(|| {
            if self.nodes.is_empty() {
                format!("cannot tell whether node {id} exists: no node answered")
            } else {
                format!(
                    "unknown node {id}: the cluster's nodes are {}",
                    self.ids_text()
                )
            }
        })
    }
}

/// The ending and the line for an admin call to node `id` at `addr` that failed with
/// `status`; `missing` names what an older server lacks (`admin API`, `step mode`).
pub fn call_failed(id: u64, addr: &str, status: &tonic::Status, missing: &str) -> (Ending, String) {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument | Code::PermissionDenied | Code::FailedPrecondition => (
            Ending::Refused,
            format!("node {id} refused: {}", status.message()),
        ),
        Code::Unimplemented => (
            Ending::Refused,
            format!("node {id} at {addr} has no {missing}: is it an older raft-server?"),
        ),
        _ => (
            Ending::Unreachable,
            format!(
                "node {id} ({addr}) is unreachable: {}; not applied there",
                crate::client::describe_at(addr, status)
            ),
        ),
    }
}

/// The ending and the line for an admin call to node `id` that got no answer in `bound`.
pub fn call_timed_out(id: u64, addr: &str, bound: Duration) -> (Ending, String) {
    (
        Ending::Unreachable,
        format!(
            "node {id} ({addr}) did not answer within {:.1}s; not applied there",
            bound.as_secs_f64()
        ),
    )
}
