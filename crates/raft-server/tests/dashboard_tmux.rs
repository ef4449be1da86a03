//! End to end: three real servers with their dashboards inside tmux (on a tmux socket of
//! this test's own), a real write over gRPC, panes read with `capture-pane`, and Ctrl+C in
//! the leader's pane. Needs `tmux` (`.ci/run` installs it).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kv_proto::kv::kv_api_client::KvApiClient;
use kv_proto::kv::{PutRequest, RequestId};
use rand::Rng as _;

const DEADLINE: Duration = Duration::from_secs(20);

/// A tmux server of our own, killed on drop with everything in it.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is required for this test: apt-get install tmux (.ci/run does it)"
        );
        Self {
            socket: format!(
                "raft-dash-{}-{}",
                std::process::id(),
                rand::thread_rng().r#gen::<u32>()
            ),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// A 120x32 session running a plain shell.
    fn shell(&self, name: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "32",
            "env PS1='$ ' bash --norc --noprofile",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn type_line(&self, pane: &str, line: &str) {
        self.run(&["send-keys", "-t", pane, "-l", line]);
        self.run(&["send-keys", "-t", pane, "Enter"]);
    }

    fn key(&self, pane: &str, key: &str) {
        self.run(&["send-keys", "-t", pane, key]);
    }

    fn screen(&self, pane: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", pane]).stdout).into_owned()
    }

    /// Polls the pane until `check` accepts its screen.
    fn wait_screen(&self, pane: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(pane);
            if check(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "pane {pane}: timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Kills the shells and every server still running in them.
        let _ = self.run(&["kill-server"]);
    }
}

fn free_base() -> u16 {
    let mut rng = rand::thread_rng();
    for _ in 0..500 {
        let base: u16 = rng.gen_range(40000..47000);
        let free = (1..=3).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + 1000 + i)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free port range in 40000..47000");
}

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

/// Puts through whichever node accepts it (the leader).
fn put(base: u16, key: &str, value: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    rt.block_on(async {
        loop {
            for i in 1..=3 {
                let addr = format!("http://127.0.0.1:{}", base + 1000 + i);
                let Ok(mut client) = KvApiClient::connect(addr).await else {
                    continue;
                };
                let req = PutRequest {
                    key: key.into(),
                    value: value.as_bytes().to_vec(),
                    id: Some(RequestId {
                        client_id: 7,
                        seq: 1,
                    }),
                };
                if client.put(req).await.is_ok() {
                    return;
                }
            }
            assert!(start.elapsed() < DEADLINE, "no node accepted the put");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn three_dashboards_show_the_cluster_and_a_new_election() {
    let tmux = Tmux::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_base();
    let peers = (1..=3)
        .map(|i| format!("{i}=127.0.0.1:{}", base + i))
        .collect::<Vec<_>>()
        .join(",");
    let bin = env!("CARGO_BIN_EXE_raft-server");
    let panes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    for (i, pane) in panes.iter().enumerate() {
        tmux.shell(pane);
        let data = Path::new(dir.path()).join(format!("node-{}", i + 1));
        tmux.type_line(
            pane,
            &format!(
                "{bin} --id {} --peers {peers} --data-dir {}",
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

    put(base, "greeting", "hello dashboard");
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
}
