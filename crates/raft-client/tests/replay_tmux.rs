//! The real TUIs in tmux, at a reader's pace: `watch --record FILE` records while viewing
//! (step mode switched on and off from the view with `s`, what just happened rewound with
//! Space and `[`, then `f` live again), then `replay FILE` opens that
//! recording, jumps to a notable moment, goes to the end and leaves.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::{Cluster, client_bin};

/// How many commands have printed their `exit=N` (the command lines say `exit=$?`).
fn exits(screen: &str) -> usize {
    screen
        .match_indices("exit=")
        .filter(|(i, _)| {
            screen[i + "exit=".len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count()
}

/// A reader's pause before a key.
fn pause() {
    std::thread::sleep(Duration::from_millis(800));
}

#[test]
fn watch_records_while_viewing_and_replay_opens_the_recording() {
    let c = Cluster::start(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("viewed.jsonl");
    let tmux = Tmux::new();
    tmux.shell("w", 160, 45);
    tmux.type_line(
        "w",
        &format!(
            "{} --peers {} watch --record {}; echo exit=$?",
            client_bin().display(),
            c.api_addrs(),
            file.display()
        ),
    );
    tmux.wait_screen("w", "the cluster view with a leader", |s| {
        s.contains("Cluster view") && s.contains("leader node")
    });
    c.put("seen", "1");
    pause();
    tmux.key("w", "s");
    tmux.wait_screen("w", "step mode in the view", |s| s.contains("STEP MODE"));
    pause();
    tmux.key("w", "s");
    tmux.wait_screen("w", "step mode off again", |s| {
        !s.contains("STEP MODE") && s.contains("live")
    });
    // Rewind what just happened: the view stands, the replay's keys move through it.
    pause();
    tmux.key("w", "Space");
    tmux.wait_screen("w", "the view rewound", |s| {
        s.contains("rewound: replay") && s.contains("(f: live)")
    });
    pause();
    tmux.key("w", "[");
    tmux.wait_screen("w", "back to the last notable moment", |s| {
        s.contains("last moment") && s.contains("step mode")
    });
    pause();
    tmux.key("w", "f");
    tmux.wait_screen("w", "live again", |s| {
        !s.contains("rewound") && s.contains("live")
    });
    pause();
    tmux.key("w", "q");
    let screen = tmux.wait_screen("w", "the view closed, the recording said", |s| {
        exits(s) >= 1
    });
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(screen.contains("recorded "), "{screen}");

    let rec = raft_client::record::file::read(&file).expect("a recording");
    assert_eq!(rec.header.nodes.len(), 3, "{:?}", rec.header);
    let nodes: std::collections::BTreeSet<u64> = rec.records.iter().map(|r| r.node).collect();
    assert_eq!(nodes.len(), 3, "records of every node");
    let step_on = rec.records.iter().any(|r| {
        matches!(&r.kind, Some(kv_proto::watch::watch_record::Kind::Fault(f)) if f.text.contains("step mode on"))
    });
    assert!(step_on, "the recording has step mode going on");

    tmux.type_line(
        "w",
        &format!(
            "{} replay {}; echo exit=$?",
            client_bin().display(),
            file.display()
        ),
    );
    tmux.wait_screen("w", "the replay at its start", |s| {
        s.contains("replay 0.000 s of") && s.contains("paused")
    });
    pause();
    tmux.key("w", "]");
    tmux.wait_screen("w", "a jump to the first notable moment", |s| {
        s.contains("fault") || s.contains("step mode")
    });
    pause();
    tmux.key("w", "End");
    tmux.wait_screen("w", "the end of the recording", |s| {
        s.contains("the end of the recording")
    });
    pause();
    tmux.key("w", "q");
    let screen = tmux.wait_screen("w", "the replay closed", |s| exits(s) >= 2);
    assert!(screen.contains("exit=0"), "{screen}");
}
