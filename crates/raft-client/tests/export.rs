//! `raft-client replay FILE --export svg|shiviz -o OUT` on a real recording: three real
//! nodes recorded for 3 s with a few writes, then the recording as an SVG diagram (XML that
//! parses, an arrow per message) and as a ShiViz log (every event parsed by the regex the
//! file declares, vector clocks that only grow); and the one-line refusals.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Output, Stdio};

use common::{Cluster, assert_exit, assert_ok, wait_for};

/// A child killed if the test ends before it is taken out.
struct Stopped(Option<Child>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_string()
}

/// Records `cluster` for 3 s into `file` while writing a few keys.
fn record(cluster: &Cluster, file: &Path) {
    let file_arg = file.to_string_lossy().to_string();
    let mut recorder = Stopped(Some(
        cluster.background(&["record", &file_arg, "--seconds", "3"], Stdio::null()),
    ));
    wait_for("the recording's header", || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.lines().next().is_some() {
            Ok(())
        } else {
            Err(format!("{} bytes", text.len()))
        }
    });
    for i in 0..3 {
        cluster.put(&format!("k{i}"), "recorded");
    }
    let child = recorder.0.as_mut().expect("the recorder");
    wait_for("the recorder to stop after 3 s", || {
        match child.try_wait() {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("still recording".into()),
            Err(e) => Err(e.to_string()),
        }
    });
    let out = recorder
        .0
        .take()
        .expect("the recorder")
        .wait_with_output()
        .expect("record");
    assert_ok(&out, "record --seconds 3");
}

/// Checks a ShiViz file: the regex of its first line parses every event, each host's own
/// clock goes 1, 2, 3..., and no entry of a host's clock ever goes down. Returns the
/// events' texts.
fn check_shiviz(text: &str) -> Vec<String> {
    let mut lines = text.splitn(3, '\n');
    let regex = lines.next().expect("a regex line");
    assert!(
        regex.contains("(?<host>") && regex.contains("(?<clock>") && regex.contains("(?<event>")
    );
    assert_eq!(lines.next(), Some(""), "an empty delimiter line");
    let log = lines.next().unwrap_or("");
    let re = regex::Regex::new(&format!("(?m)^{regex}$")).expect("the file's regex");
    let mut covered = 0;
    let mut last: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    let mut texts = Vec::new();
    for c in re.captures_iter(log) {
        let whole = c.get(0).expect("a match");
        assert_eq!(whole.start(), covered, "nothing between two events");
        covered = whole.end() + 1;
        let host = c["host"].to_string();
        let clock: BTreeMap<String, u64> = serde_json::from_str(&c["clock"]).expect("JSON clock");
        let own = clock.get(&host).copied().unwrap_or(0);
        let before = last
            .get(&host)
            .and_then(|c| c.get(&host))
            .copied()
            .unwrap_or(0);
        assert_eq!(own, before + 1, "{host}'s own clock at {}", &c["event"]);
        if let Some(prev) = last.get(&host) {
            for (h, n) in prev {
                assert!(
                    clock.get(h).is_some_and(|m| m >= n),
                    "{host}'s clock grows: {:?}",
                    &c["event"]
                );
            }
        }
        texts.push(c["event"].to_string());
        last.insert(host, clock);
    }
    assert_eq!(covered, log.len(), "every line belongs to an event");
    texts
}

#[test]
fn a_real_recording_exports_as_a_diagram_and_as_a_shiviz_log() {
    let cluster = Cluster::start(3);
    cluster.wait_leader();
    let file = cluster.dir.path().join("run.jsonl");
    record(&cluster, &file);
    let file_arg = file.to_string_lossy().to_string();

    let svg = cluster.dir.path().join("run.svg");
    let svg_arg = svg.to_string_lossy().to_string();
    let out = cluster.client(&["replay", &file_arg, "--export", "svg", "-o", &svg_arg]);
    assert_ok(&out, "replay --export svg");
    let said = stderr(&out);
    assert!(
        said.starts_with("exported ") && said.contains(" of 3 nodes, 0.0–") && !said.contains('\n'),
        "one line: {said}"
    );
    let text = std::fs::read_to_string(&svg).expect("the SVG");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let arrows: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("msg"))
        .collect();
    assert!(!arrows.is_empty(), "at least one message arrow");
    assert!(
        arrows.iter().all(|a| a
            .attribute("data-msg-id")
            .is_some_and(|id| id.parse::<u64>().is_ok())),
        "each arrow names its message"
    );
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        texts.iter().any(|t| t.contains("Append t")),
        "an append is labelled"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("leader t")),
        "the leader's bar"
    );

    let log = cluster.dir.path().join("run.shiviz");
    let log_arg = log.to_string_lossy().to_string();
    let out = cluster.client(&["replay", &file_arg, "--export", "shiviz", "-o", &log_arg]);
    assert_ok(&out, "replay --export shiviz");
    let events = check_shiviz(&std::fs::read_to_string(&log).expect("the ShiViz log"));
    assert!(
        events.iter().any(|e| e.starts_with("send MsgAppend to ")),
        "appends sent"
    );
    assert!(
        events.iter().any(|e| e.starts_with("recv MsgAppend from ")),
        "and received"
    );

    // A window: only its part.
    let out = cluster.client(&[
        "replay", &file_arg, "--export", "svg", "-o", &svg_arg, "--from", "1", "--to", "2",
    ]);
    assert_ok(&out, "replay --export svg --from 1 --to 2");
    assert!(
        stderr(&out).contains(", 1.0–2.0 s, to "),
        "{}",
        stderr(&out)
    );
    roxmltree::Document::parse(&std::fs::read_to_string(&svg).expect("svg")).expect("XML");

    // Refusals: one line each.
    let out = cluster.client(&[
        "replay", &file_arg, "--export", "svg", "-o", &svg_arg, "--from", "2", "--to", "1",
    ]);
    assert_exit(&out, 2, "--from 2 --to 1");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("--from 2 is not before --to 1"));
    let out = cluster.client(&["replay", &file_arg, "--export", "svg"]);
    assert_exit(&out, 2, "--export without -o");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let notes = cluster.dir.path().join("notes.txt");
    std::fs::write(&notes, "not a recording\n").expect("write notes");
    let out = cluster.client(&[
        "replay",
        &notes.to_string_lossy(),
        "--export",
        "svg",
        "-o",
        &svg_arg,
    ]);
    assert_exit(&out, 2, "--export of a file that is not a recording");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a raft-playground recording"));
    let nowhere = cluster.dir.path().join("no-such-dir").join("x.svg");
    let out = cluster.client(&[
        "replay",
        &file_arg,
        "--export",
        "svg",
        "-o",
        &nowhere.to_string_lossy(),
    ]);
    assert_exit(&out, 1, "an OUT that cannot be written");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}
