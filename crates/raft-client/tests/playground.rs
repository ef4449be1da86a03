//! The one-command playground: `./playground` opens three dashboards and the client in tmux.
//! Run on a tmux socket, ports and data dir of the test's own, without attaching.

mod common;

use std::process::Command;

use common::{free_port_base, wait_for};

struct Session {
    socket: String,
}

impl Session {
    fn capture(&self, target: &str) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", target])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn playground_opens_three_dashboards_and_the_client() {
    let base = free_port_base(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let session = Session {
        socket: format!("raft-playground-test-{}", std::process::id()),
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../playground");
    let out = Command::new("bash")
        .arg(script)
        .env("PLAYGROUND_BASE_PORT", base.to_string())
        .env("PLAYGROUND_DATA", dir.path())
        .env("PLAYGROUND_TMUX_SOCKET", &session.socket)
        .env("PLAYGROUND_NO_ATTACH", "1")
        .env_remove("TMUX")
        .output()
        .expect("run ./playground");
    assert!(
        out.status.success(),
        "./playground failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a terminal here, so the script chose one window per node plus the client.
    wait_for("three dashboards agreeing on a leader", || {
        let screens: Vec<String> = (1..=3)
            .map(|i| session.capture(&format!("raft-playground:node-{i}")))
            .collect();
        let leaders = screens.iter().filter(|s| s.contains(" LEADER ")).count();
        let followers = screens.iter().filter(|s| s.contains(" FOLLOWER ")).count();
        if leaders == 1 && followers == 2 {
            Ok(())
        } else {
            Err(screens.join("\n----\n"))
        }
    });
    wait_for("the client's cluster bar to show the leader", || {
        let s = session.capture("raft-playground:client");
        if s.contains("Cluster · leader node") {
            Ok(())
        } else {
            Err(s)
        }
    });
}

#[test]
fn without_tmux_the_playground_prints_the_four_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../playground");
    let out = Command::new("bash")
        .arg(script)
        .env("PLAYGROUND_NO_TMUX", "1")
        .env("PLAYGROUND_DATA", dir.path())
        .output()
        .expect("run ./playground");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tmux is not installed"), "{text}");
    for i in 1..=3 {
        assert!(
            text.contains(&format!("raft-server --id {i} --peers")),
            "{text}"
        );
    }
    assert!(
        text.contains("raft-client --peers 127.0.0.1:7001"),
        "{text}"
    );
}
