//! How the one-shot commands print: the `status` table and the `status --json` contract.

use serde::Serialize;

use crate::client::NodeReport;

/// One element of the `status --json` array (see docs/contract.md).
#[derive(Debug, Default, Serialize)]
pub struct StatusJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    api_addr: &'a str,
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    term: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vote: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_count: Option<u64>,
    /// Bytes of keys and values in the state machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    data_bytes: Option<u64>,
    /// Bytes of the node's data dir on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_bytes: Option<u64>,
    /// Resident memory of the node's process (0: not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_bytes: Option<u64>,
    /// Bytes of log entries and snapshot data its storage keeps in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    log_cache_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_index: Option<u64>,
    /// The snapshot being written (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_in_progress: Option<u64>,
    /// Microseconds the node driver spent on its latest snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_stall_us: Option<u64>,
    /// Started with --join and not added yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    joining: Option<bool>,
    /// Removed from the cluster by the change at this index (0: not removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    removed_at: Option<u64>,
    /// Why the members refuse this node (e.g. its data dir was replaced), when they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<&'a str>,
    /// Step mode: the clock stopped, Raft messages held (this many).
    #[serde(skip_serializing_if = "Option::is_none")]
    step_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_messages: Option<u32>,
    /// Raft's protections as the node runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    protections: Option<ProtectionsJson<'a>>,
    /// Liveness: elections it started and leader changes in the last minute, ms without
    /// a known leader (0: it knows one; -1: never knew one).
    #[serde(skip_serializing_if = "Option::is_none")]
    elections_last_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leader_changes_last_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaderless_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `"protections":{"pre_vote":true,"check_quorum":true,"read_mode":"safe","unsafe":[]}`.
#[derive(Debug, Serialize)]
struct ProtectionsJson<'a> {
    pre_vote: bool,
    check_quorum: bool,
    read_mode: &'a str,
    #[serde(rename = "unsafe")]
    unsafe_modes: Vec<&'a str>,
}

impl Default for ProtectionsJson<'_> {
    fn default() -> Self {
        Self {
            pre_vote: true,
            check_quorum: true,
            read_mode: "safe",
            unsafe_modes: Vec::new(),
        }
    }
}

/// The `status --json` document.
pub fn status_json(reports: &[NodeReport]) -> String {
    let rows: Vec<StatusJson<'_>> = reports
        .iter()
        .map(|r| match &r.status {
            Ok(s) => StatusJson {
                id: Some(s.id),
                api_addr: &r.api_addr,
                reachable: true,
                role: Some(&s.role),
                term: Some(s.term),
                leader_id: Some(s.leader_id),
                commit_index: Some(s.commit_index),
                applied_index: Some(s.applied_index),
                last_index: Some(s.last_index),
                vote: Some(s.vote),
                key_count: Some(s.key_count),
                data_bytes: Some(s.data_bytes),
                disk_bytes: Some(s.disk_bytes),
                rss_bytes: Some(s.rss_bytes),
                log_cache_bytes: Some(s.log_cache_bytes),
                snapshot_index: Some(s.snapshot_index),
                snapshot_in_progress: Some(s.snapshot_in_progress),
                snapshot_stall_us: Some(s.snapshot_stall_us),
                joining: Some(s.joining),
                removed_at: Some(s.removed_at),
                refused: Some(s.refused.as_str()).filter(|r| !r.is_empty()),
                step_mode: Some(s.step_mode),
                held_messages: Some(s.held_messages),
                elections_last_minute: Some(s.elections_last_minute),
                leader_changes_last_minute: Some(s.leader_changes_last_minute),
                leaderless_ms: Some(s.leaderless_ms),
                protections: Some(match &s.protections {
                    Some(p) => ProtectionsJson {
                        pre_vote: p.pre_vote,
                        check_quorum: p.check_quorum,
                        read_mode: p.read_mode.as_str(),
                        unsafe_modes: p.r#unsafe.iter().map(String::as_str).collect(),
                    },
                    // An older server: it has them all.
                    None => ProtectionsJson::default(),
                }),
                error: None,
            },
            Err(e) => StatusJson {
                api_addr: &r.api_addr,
                reachable: false,
                error: Some(e),
                ..StatusJson::default()
            },
        })
        .collect();
    // Serialising plain strings and integers cannot fail.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_string())
}

/// The readable `status` table.
pub fn status_table(reports: &[NodeReport]) -> String {
    let mut out = format!(
        "{:<4} {:<22} {:<13} {:>5} {:>6} {:>8} {:>8} {:>8}\n",
        "ID", "API ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST"
    );
    for r in reports {
        match &r.status {
            Ok(s) => {
                let leader = if s.leader_id == 0 {
                    "-".to_string()
                } else {
                    s.leader_id.to_string()
                };
                // Not a member: said instead of a role it takes no part as.
                let role = if s.removed_at != 0 {
                    "removed".to_string()
                } else if s.joining {
                    "joining".to_string()
                } else if !s.refused.is_empty() {
                    "refused".to_string()
                } else {
                    s.role.clone()
                };
                out.push_str(&format!(
                    "{:<4} {:<22} {:<13} {:>5} {:>6} {:>8} {:>8} {:>8}\n",
                    s.id,
                    r.api_addr,
                    role,
                    s.term,
                    leader,
                    s.commit_index,
                    s.applied_index,
                    s.last_index
                ));
            }
            Err(e) => out.push_str(&format!("{:<4} {:<22} unreachable: {e}\n", "-", r.api_addr)),
        }
    }
    if let Some(line) = liveness_line(reports) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `liveness: 2 elections, 1 leader change in the last minute; leader known` (or
/// `no leader known for 3.2 s`): the busiest node's counts, the longest wait.
pub fn liveness_line(reports: &[NodeReport]) -> Option<String> {
    let up: Vec<&kv_proto::kv::StatusResponse> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok())
        .filter(|s| s.removed_at == 0 && !s.joining)
        .collect();
    if up.is_empty() {
        return None;
    }
    let elections: u32 = up.iter().map(|s| s.elections_last_minute).sum();
    let changes = up
        .iter()
        .map(|s| s.leader_changes_last_minute)
        .max()
        .unwrap_or(0);
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let leader = match up.iter().map(|s| s.leaderless_ms).max().unwrap_or(0) {
        0 => "every node knows a leader".to_string(),
        ms if ms < 0 => "no leader known yet".to_string(),
        ms => format!("a node has known no leader for {:.1} s", ms as f64 / 1000.0),
    };
    Some(format!(
        "liveness: {} and {} in the last minute; {leader}",
        plural(elections, "election started", "elections started"),
        plural(changes, "leader change", "leader changes"),
    ))
}
