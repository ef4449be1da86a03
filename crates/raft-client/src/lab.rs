//! The `lab` command: Raft's protections switched on the running cluster, from now on, as
//! if every node (or one, with `--node`) had been started with the server's lab flags
//! (`--no-pre-vote`, `--no-check-quorum`, `--read-mode lease`, `--unsafe ...`). `lab` alone
//! shows each node's protections; `lab none` turns every protection back on. Shared by the
//! one-shot CLI, the interactive client and the tour.

use kv_proto::kv::Protections;

use crate::admin::{ClusterMap, Ending, Report, call_failed, call_timed_out};
use crate::client::SmartClient;

/// A lab command, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabCommand {
    /// Each node's protections.
    Show,
    /// Run with exactly these from now on (what is not named is on); on one node or all.
    Set {
        /// Only this node.
        node: Option<u64>,
        /// The protections.
        set: Protections,
    },
}

/// How to type it.
pub const USAGE: &str = "usage: lab [none | [--node <id>] [--no-pre-vote] [--no-check-quorum] \
                         [--read-mode safe|lease] [--unsafe forget-vote|ack-on-append]...]";

/// Every protection on: a server started without lab flags.
pub fn all_on() -> Protections {
    Protections {
        pre_vote: true,
        check_quorum: true,
        read_mode: "safe".to_string(),
        r#unsafe: Vec::new(),
    }
}

/// Parses the words after `lab`.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<LabCommand, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    if args.is_empty() {
        return Ok(LabCommand::Show);
    }
    if args == ["none"] {
        return Ok(LabCommand::Set {
            node: None,
            set: all_on(),
        });
    }
    let mut set = all_on();
    let mut node = None;
    let mut rest = args.iter().copied();
    while let Some(word) = rest.next() {
        match word {
            "--no-pre-vote" => set.pre_vote = false,
            "--no-check-quorum" => set.check_quorum = false,
            "--read-mode" => match rest.next() {
                Some(m @ ("safe" | "lease")) => set.read_mode = m.to_string(),
                Some(other) => return Err(format!("read mode {other:?}: give safe or lease")),
                None => return Err("--read-mode needs a value: safe or lease".to_string()),
            },
            "--unsafe" => match rest.next() {
                Some(m @ ("forget-vote" | "ack-on-append")) => {
                    if !set.r#unsafe.iter().any(|u| u == m) {
                        set.r#unsafe.push(m.to_string());
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "unsafe mode {other:?}: give forget-vote or ack-on-append"
                    ));
                }
                None => {
                    return Err("--unsafe needs a value: forget-vote or ack-on-append".to_string());
                }
            },
            "--node" => match rest.next().map(|id| id.parse::<u64>()) {
                Some(Ok(id)) => node = Some(id),
                _ => return Err(format!("--node needs a node id: {USAGE}")),
            },
            "none" => return Err(format!("none stands alone: {USAGE}")),
            other => return Err(format!("unknown lab flag {other:?}: {USAGE}")),
        }
    }
    if set.read_mode == "lease" && !set.check_quorum {
        return Err(
            "--read-mode lease needs check-quorum (a lease holds only while a leader that loses \
             its majority steps down): drop --no-check-quorum or use --read-mode safe"
                .to_string(),
        );
    }
    Ok(LabCommand::Set { node, set })
}

/// `set` in words: what is off, or that every protection is on.
pub fn describe(set: &Protections) -> String {
    let off = set.off();
    if off.is_empty() {
        "every protection on".to_string()
    } else {
        off.join(", ")
    }
}

/// Runs a lab command against the cluster.
pub async fn run(client: &SmartClient, cmd: &LabCommand) -> Report {
    let map = match ClusterMap::discover_some(client).await {
        Ok(map) => map,
        Err(report) => return report,
    };
    let mut report = Report::new();
    match cmd {
        LabCommand::Show => {
            for r in client.status_all().await {
                match r.status {
                    Ok(s) => {
                        let p = s.protections.unwrap_or_else(all_on);
                        report.say(format!("node {}: {}", s.id, describe(&p)));
                    }
                    Err(e) => report.say(format!("{}: {e}", r.api_addr)),
                }
            }
        }
        LabCommand::Set { node, set } => {
            let ids = match node {
                Some(id) => match map.require(*id) {
                    Ok(_) => vec![*id],
                    Err(e) => return Report::refused(e),
                },
                None => map.ids(),
            };
            for id in ids {
                match call(client, &map, id, set.clone()).await {
                    Ok(said) => report.say(format!("node {id}: {said}")),
                    Err((ending, text)) => report.fail(ending, text),
                }
            }
        }
    }
    report
}

async fn call(
    client: &SmartClient,
    map: &ClusterMap,
    id: u64,
    set: Protections,
) -> Result<String, (Ending, String)> {
    let addr = map.addr(id).unwrap_or_default().to_string();
    let mut admin = client
        .admin_at(&addr)
        .map_err(|e| (Ending::Refused, e.to_string()))?;
    // The node's driver answers within 2 s.
    let bound = client.timeout().min(std::time::Duration::from_secs(4));
    match tokio::time::timeout(bound, admin.set_protections(set)).await {
        Ok(Ok(resp)) => Ok(resp.into_inner().said),
        Ok(Err(status)) => Err(call_failed(id, &addr, &status, "lab switch")),
        Err(_) => Err(call_timed_out(id, &addr, bound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_the_servers_do() {
        assert_eq!(parse::<&str>(&[]), Ok(LabCommand::Show));
        assert_eq!(
            parse(&["none"]),
            Ok(LabCommand::Set {
                node: None,
                set: all_on()
            })
        );
        let Ok(LabCommand::Set { node, set }) = parse(&[
            "--node",
            "2",
            "--no-pre-vote",
            "--unsafe",
            "forget-vote",
            "--unsafe",
            "ack-on-append",
        ]) else {
            panic!("parses")
        };
        assert_eq!(node, Some(2));
        assert!(!set.pre_vote && set.check_quorum);
        assert_eq!(set.r#unsafe, ["forget-vote", "ack-on-append"]);
        assert!(
            parse(&["--read-mode", "lease", "--no-check-quorum"])
                .unwrap_err()
                .contains("needs check-quorum")
        );
        assert!(parse(&["--read-mode"]).is_err());
        assert!(parse(&["--unsafe", "forget"]).is_err());
        assert!(
            parse(&["--pre-vote"])
                .unwrap_err()
                .contains("unknown lab flag")
        );
        assert!(parse(&["none", "--no-pre-vote"]).is_err());
    }
}
