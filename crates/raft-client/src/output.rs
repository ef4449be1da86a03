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
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
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
                out.push_str(&format!(
                    "{:<4} {:<22} {:<13} {:>5} {:>6} {:>8} {:>8} {:>8}\n",
                    s.id,
                    r.api_addr,
                    s.role,
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
    out
}
