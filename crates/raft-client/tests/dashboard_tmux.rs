//! End to end: three real servers with their dashboards inside tmux, a real write through
//! the real client, panes read with `capture-pane`, and Ctrl+C in the leader's pane.

mod common;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{DEADLINE, assert_ok, free_port_base, server_bin};

/// The node's role word in its dashboard header, if the dashboard is up.
fn role(screen: &str) -> Option<&'static str> {
    ["LEADER", "FOLLOWER", "PRECANDIDATE", "CANDIDATE"]
        .into_iter()
        .find(|r| screen.contains(&format!(" {r} ")))
}

/// The term in the dashboard header.
fn term(screen: &str) -> Option<u64> {
    let rest = &screen[screen.find("│ term ")? + "│ term ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn three_dashboards_show_the_cluster_and_a_new_election() {
    let tmux = Tmux::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_base(3);
    let peers = (1..=3)
        .map(|i| format!("{i}=127.0.0.1:{}", base + i))
        .collect::<Vec<_>>()
        .join(",");
    let api = (1..=3)
        .map(|i| format!("127.0.0.1:{}", base + 1000 + i))
        .collect::<Vec<_>>()
        .join(",");
    let bin = server_bin();
    let panes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    for (i, pane) in panes.iter().enumerate() {
        tmux.shell(pane, 120, 32);
        let data = dir.path().join(format!("node-{}", i + 1));
        tmux.type_line(
            pane,
            &format!(
                "{} --id {} --peers {peers} --data-dir {}",
                bin.display(),
                i + 1,
                data.display()
            ),
        );
    }

    // One leader and two followers, as each dashboard shows it.
    let leader = {
        let start = Instant::now();
        loop {
            let roles: Vec<Option<&str>> = panes.iter().map(|p| role(&tmux.screen(p))).collect();
            let leaders: Vec<usize> = (0..3).filter(|i| roles[*i] == Some("LEADER")).collect();
            let followers = roles.iter().filter(|r| **r == Some("FOLLOWER")).count();
            if leaders.len() == 1 && followers == 2 {
                break leaders[0];
            }
            assert!(
                start.elapsed() < DEADLINE,
                "expected one LEADER and two FOLLOWER dashboards, saw {roles:?}; pane n1:\n{}",
                tmux.screen("n1")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let out = std::process::Command::new(common::client_bin())
        .args(["--peers", &api, "put", "greeting", "hello dashboard"])
        .output()
        .expect("run raft-client");
    assert_ok(&out, "put greeting");
    for pane in &panes {
        tmux.wait_screen(
            pane,
            "the key in the state machine and its entry applied",
            |s| {
                let kv = s.lines().any(|l| {
                    l.contains("greeting") && l.contains("hello dashboard") && !l.contains("PUT")
                });
                let log = s
                    .lines()
                    .any(|l| l.contains("PUT greeting = hello dashboard") && l.contains("applied"));
                kv && log
            },
        );
    }

    // Ctrl+C in the leader's pane: clean exit, terminal restored, back at the shell.
    let leader_pane = &panes[leader];
    let old_term = term(&tmux.screen(leader_pane)).expect("term in the leader's header");
    tmux.key(leader_pane, "C-c");
    tmux.wait_screen(leader_pane, "the dashboard to close", |s| role(s).is_none());
    tmux.wait_prompt(leader_pane);
    tmux.type_line(leader_pane, "echo EXIT=$?");
    tmux.wait_screen(leader_pane, "the shell to report exit status 0", |s| {
        s.lines().any(|l| l.trim() == "EXIT=0")
    });

    // Another dashboard shows a new leader with a higher term.
    let start = Instant::now();
    loop {
        let seen: Vec<(Option<&str>, Option<u64>)> = (0..3)
            .filter(|i| *i != leader)
            .map(|i| {
                let s = tmux.screen(&panes[i]);
                (role(&s), term(&s))
            })
            .collect();
        if seen
            .iter()
            .any(|(r, t)| *r == Some("LEADER") && t.is_some_and(|t| t > old_term))
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "expected a new LEADER with term > {old_term} in another pane, saw {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The other dashboards are stopped by dropping the tmux server.
}
