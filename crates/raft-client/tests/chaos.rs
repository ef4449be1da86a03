//! `raft-client chaos` end to end: its own cluster of real server processes, every fault
//! (SIGKILLs and membership changes included), the history it writes, and a caught stale
//! read.

mod common;

use std::process::{Command, Output};

use common::{assert_exit, client_bin};
use serde_json::Value;

fn chaos(args: &[&str]) -> Output {
    Command::new(client_bin())
        .arg("chaos")
        .args(args)
        .output()
        .expect("run raft-client chaos")
}

fn verdict(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "chaos --json printed {text:?} ({e})\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn every_fault_on_a_real_cluster_leaves_a_linearizable_history() {
    // The binaries the tests use: chaos --spawn starts the raft-server beside raft-client.
    let _ = common::server_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let history = dir.path().join("history.jsonl");
    let out = chaos(&[
        "--spawn",
        "3",
        "--seconds",
        "12",
        "--json",
        "--history",
        &history.to_string_lossy(),
    ]);
    let v = verdict(&out);
    assert_eq!(
        v["verdict"],
        "linearizable",
        "{v}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exit(&out, 0, "chaos with every fault");
    assert!(v["ops"].as_u64().unwrap_or(0) > 100, "{v}");
    assert!(v["faults"].as_u64().unwrap_or(0) > 0, "{v}");
    assert_eq!(v["keys"], 5, "{v}");
    assert_eq!(v["failing_keys"], serde_json::json!([]), "{v}");
    // The history: one JSON object per operation, as the contract says.
    let text = std::fs::read_to_string(&history).expect("history written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, v["ops"].as_u64().unwrap_or(0));
    for line in lines.iter().take(50) {
        let op: Value = serde_json::from_str(line).expect("a JSON object per line");
        for field in [
            "process",
            "op",
            "key",
            "value",
            "invoke_us",
            "complete_us",
            "outcome",
        ] {
            assert!(op.get(field).is_some(), "{field} missing in {line}");
        }
        assert!(
            op["complete_us"].as_u64() >= op["invoke_us"].as_u64(),
            "{line}"
        );
    }
    let faults = String::from_utf8_lossy(&out.stderr);
    assert!(faults.contains("started 3 nodes of its own"), "{faults}");
}

#[test]
fn membership_changes_under_faults_leave_a_linearizable_history_and_no_member_behind() {
    let _ = common::server_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = dir.path().join("chaos.jsonl");
    // Seed 2 brings a removed id back early (its third membership step).
    let out = chaos(&[
        "--spawn",
        "3",
        "--faults",
        "membership,isolate,kill",
        "--seconds",
        "25",
        "--seed",
        "2",
        "--record",
        &recording.to_string_lossy(),
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    let progress = String::from_utf8_lossy(&out.stderr);
    let said = format!("{report}\nprogress:\n{progress}");
    assert!(report.contains("verdict: LINEARIZABLE"), "{said}");
    assert_exit(&out, 0, "chaos with membership changes");
    // At least one removed id came back, the README's way.
    let readds = report
        .lines()
        .find_map(|l| l.strip_prefix("membership: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(readds >= 1, "no removed id was added back: {said}");
    assert!(progress.contains("re-add node"), "{said}");
    // Every member converged on the leader's applied index (none left inert).
    assert!(!report.contains("did not converge"), "{said}");
    // The recording followed the membership through it all, in time order.
    assert!(progress.contains("recorded "), "{said}");
    let text = std::fs::read_to_string(&recording).expect("the recording");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header")).expect("JSON");
    assert_eq!(header["format"], "raft-playground-record", "{header}");
    // Each node's records in the order it made them; across nodes in time order unless a
    // stream fell seconds behind (allowed here for a few: the tests share two cores).
    let mut last_of = std::collections::BTreeMap::new();
    let (mut last_t, mut late, mut records, mut faults) = (0, 0, 0, 0);
    for line in lines {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let t = r["t_us"].as_u64().expect("t_us");
        let before = last_of.insert(r["node"].as_u64().expect("node"), t);
        assert!(before <= Some(t), "back in its node's time at {line}");
        late += usize::from(t < last_t);
        last_t = last_t.max(t);
        records += 1;
        faults += usize::from(r["kind"] == "fault");
    }
    assert!(
        late * 100 <= records,
        "{late} of {records} records out of time order"
    );
    let nodes: Vec<_> = last_of.keys().collect();
    assert!(
        nodes.len() >= 4,
        "records of the spare that was added too: {nodes:?}"
    );
    assert!(faults >= 1, "the isolations as fault records");
}

#[test]
fn stale_reads_from_an_isolated_leader_are_caught() {
    let _ = common::server_bin();
    let out = chaos(&[
        "--spawn",
        "3",
        "--seconds",
        "8",
        "--stale-reads",
        "--faults",
        "isolate",
        "--seed",
        "3",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    // A run that happens to read nothing stale must say so, not pass as a catch.
    if out.status.code() == Some(0) {
        assert!(said.contains("no stale read was caught"), "{said}");
        panic!("this run read nothing stale, and said so:\n{said}");
    }
    assert_exit(&out, 5, "chaos --stale-reads with the leader isolated");
    assert!(said.contains("verdict: NOT LINEARIZABLE"), "{said}");
    assert!(
        said.contains("stale get→"),
        "a timeline of the stale read:\n{said}"
    );
    assert!(said.contains("why: stale get"), "{said}");
}

#[test]
fn stale_reads_caught_with_a_recording_name_the_node_that_answered() {
    let _ = common::server_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = dir.path().join("run.jsonl");
    let out = chaos(&[
        "--spawn",
        "3",
        "--seconds",
        "8",
        "--stale-reads",
        "--faults",
        "isolate",
        "--seed",
        "3",
        "--record",
        &recording.to_string_lossy(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    let all = format!(
        "{said}\nprogress:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(0) {
        assert!(said.contains("no stale read was caught"), "{all}");
        panic!("this run read nothing stale, and said so:\n{all}");
    }
    assert_exit(
        &out,
        5,
        "chaos --stale-reads --record with the leader isolated",
    );
    assert!(said.contains("verdict: NOT LINEARIZABLE"), "{all}");
    // Who answered each operation of the window, in what role and term.
    assert!(said.contains("who answered, from the recording"), "{all}");
    // Each operation's sentence, its wrapped lines (indented 6) joined again.
    let mut sentences: Vec<String> = Vec::new();
    for line in said.lines() {
        match (line.strip_prefix("      "), sentences.last_mut()) {
            (Some(more), Some(last)) => {
                last.push(' ');
                last.push_str(more);
            }
            _ => sentences.push(line.to_string()),
        }
    }
    let answered = sentences
        .iter()
        .find(|l| l.contains("stale get→") && l.contains("was answered by node"))
        .unwrap_or_else(|| panic!("the stale read's answering node:\n{all}"));
    assert!(answered.contains(" in term "), "{answered}");
    assert!(
        [
            "the leader",
            "an old leader",
            "a leader",
            "a follower",
            "candidate"
        ]
        .iter()
        .any(|r| answered.contains(r)),
        "a role: {answered}"
    );
    assert!(!said.contains("could not be read"), "{all}");
    // The replay command, at a moment within the recording.
    let text = std::fs::read_to_string(&recording).expect("the recording");
    let times: Vec<u64> = text
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["t_us"].as_u64())
        .collect();
    let (first, last) = (times[0], times.iter().copied().max().unwrap_or(0));
    let span = (last - first) as f64 / 1e6;
    let command = format!("replay {} --at ", recording.display());
    let ats: Vec<f64> = said
        .lines()
        .filter_map(|l| l.split_once(&command))
        .map(|(_, at)| {
            at.trim()
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("--at {at:?}: {e}"))
        })
        .collect();
    assert!(!ats.is_empty(), "a replay command:\n{all}");
    for at in ats {
        assert!(
            (0.0..=span).contains(&at),
            "--at {at} outside 0..={span}:\n{all}"
        );
    }
}

#[test]
fn chaos_refuses_what_it_cannot_do() {
    for (args, needle) in [
        (vec!["--faults", "kill"], "needs --spawn"),
        (vec!["--faults", "membership,wipe"], "needs --spawn"),
        (vec!["--faults", "bogus"], "unknown fault"),
        (vec!["--seconds", "0"], "out of range"),
        (vec!["--clients", "0"], "out of range"),
    ] {
        let out = chaos(&args);
        assert_exit(&out, 2, &format!("{args:?}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // No cluster at --peers: unavailable, said in one line.
    let base = common::free_port_base(3);
    let out = Command::new(client_bin())
        .args([
            "--peers",
            &format!("127.0.0.1:{}", base + 1001),
            "chaos",
            "--seconds",
            "1",
        ])
        .output()
        .expect("run chaos");
    assert_exit(&out, 3, "chaos with no cluster");
}
