//! The one-command playground: `./playground` opens three dashboards and the client in tmux.
//! Run on a tmux socket, ports and data dir of the test's own, without attaching.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tmux::Tmux;
use common::{client_bin, free_port_base, wait_for};

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../playground")
}

/// Runs `./playground` with the test's ports, data dir and tmux socket, not attaching.
fn run_playground(tmux: &Tmux, base: u16, data: &Path, envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .env("PLAYGROUND_BASE_PORT", base.to_string())
        .env("PLAYGROUND_DATA", data)
        .env("PLAYGROUND_TMUX_SOCKET", tmux.socket())
        .env("PLAYGROUND_NO_ATTACH", "1")
        .env_remove("TMUX");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run ./playground")
}

/// Where this test's own build keeps its intermediate artifacts: a fresh target directory
/// can reuse them (cargo's build-dir), so pointing CARGO_TARGET_DIR elsewhere does not mean
/// a full rebuild. An older cargo ignores the setting and builds everything once.
fn build_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_BUILD_BUILD_DIR") {
        return dir.into();
    }
    // <target>/<profile>/raft-client
    let bin = client_bin();
    bin.parent()
        .and_then(Path::parent)
        .expect("the client binary lives in <target>/<profile>/")
        .to_path_buf()
}

#[test]
fn playground_opens_three_dashboards_and_the_client() {
    let base = free_port_base(3);
    let dir = tempfile::tempdir().expect("temp dir");
    // Binaries are where cargo puts them: a CARGO_TARGET_DIR of its own, not ./target.
    let target = tempfile::tempdir().expect("target dir");
    let tmux = Tmux::new();
    let out = run_playground(
        &tmux,
        base,
        dir.path(),
        &[
            ("CARGO_TARGET_DIR", target.path()),
            ("CARGO_BUILD_BUILD_DIR", &build_dir()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "./playground failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin_dir = target.path().join("debug");
    assert!(
        stdout.contains(&format!("(binaries: {})", bin_dir.display())),
        "expected the binaries cargo built in {}; ./playground said: {stdout}",
        bin_dir.display()
    );
    // Not a terminal here, so the script chose one window per node plus the client.
    wait_for("three dashboards agreeing on a leader", || {
        let screens: Vec<String> = (1..=3)
            .map(|i| tmux.screen(&format!("raft-playground:node-{i}")))
            .collect();
        let leaders = screens.iter().filter(|s| s.contains(" LEADER ")).count();
        let followers = screens.iter().filter(|s| s.contains(" FOLLOWER ")).count();
        if leaders == 1 && followers == 2 {
            Ok(())
        } else {
            Err(screens.join("\n----\n"))
        }
    });
    tmux.wait_screen(
        "raft-playground:client",
        "the client's cluster bar to show the leader",
        |s| s.contains("Cluster · leader node"),
    );
    tmux.wait_screen(
        "raft-playground:view",
        "the cluster view in its window, naming the leader",
        |s| s.contains("Cluster view · leader node") && s.contains("n3 "),
    );

    // Ctrl+C stops a node; its pane says so and how to bring it back, which works.
    let pane = "raft-playground:node-2";
    tmux.key(pane, "C-c");
    tmux.wait_screen(pane, "the stopped node to say how to restart it", |s| {
        s.contains("node 2 stopped (exit 0); ↑ Enter restarts it with the same data")
    });
    let screen = tmux.screen_joined(pane);
    assert!(
        screen.contains(&format!("{} --id 2", bin_dir.join("raft-server").display())),
        "the pane should have run the raft-server cargo built in {}:\n{screen}",
        bin_dir.display()
    );
    tmux.key(pane, "Up");
    tmux.key(pane, "Enter");
    tmux.wait_screen(pane, "node 2's dashboard back as a follower", |s| {
        s.contains(" FOLLOWER ") && s.contains("node 2")
    });

    // A second ./playground does no harm: it says one runs and what to do, and changes
    // nothing (the session and every node's data stay).
    let again = run_playground(
        &tmux,
        base,
        dir.path(),
        &[
            ("CARGO_TARGET_DIR", target.path()),
            ("CARGO_BUILD_BUILD_DIR", &build_dir()),
        ],
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a second ./playground: {again:?}"
    );
    assert!(err.contains("a playground is already running"), "{err}");
    assert!(err.contains("tmux attach -t raft-playground"), "{err}");
    assert!(
        err.contains("./playground --stop") && err.contains("--keep"),
        "{err}"
    );
    assert!(
        dir.path().join("node-1").is_dir(),
        "node 1's data is still there"
    );
    tmux.wait_screen(pane, "node 2's dashboard still up", |s| {
        s.contains(" FOLLOWER ") && s.contains("node 2")
    });

    // Detaching leaves everything running; --stop ends it.
    let stop = Command::new("bash")
        .arg(script())
        .arg("--stop")
        .env("PLAYGROUND_TMUX_SOCKET", tmux.socket())
        .env("PLAYGROUND_DATA", dir.path())
        .output()
        .expect("run ./playground --stop");
    let said = String::from_utf8_lossy(&stop.stdout);
    assert!(
        stop.status.success() && said.contains("playground stopped"),
        "{stop:?}"
    );
    let gone = Command::new("tmux")
        .args(["-L", tmux.socket(), "has-session", "-t", "raft-playground"])
        .output()
        .expect("tmux has-session");
    assert!(!gone.status.success(), "the session should be gone");
}

#[test]
fn without_tmux_the_playground_prints_the_four_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(script())
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

#[test]
fn a_test_tmux_server_leaves_no_socket_behind() {
    let tmux = Tmux::new();
    tmux.shell("s", 40, 10);
    let path = tmux.socket_path();
    assert!(path.exists(), "tmux's socket at {}", path.display());
    drop(tmux);
    assert!(
        !path.exists(),
        "{} is left behind after the test's tmux server was killed",
        path.display()
    );
}

#[test]
fn the_readme_names_only_files_of_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(
        !readme.contains("../"),
        "a user's clone has nothing outside the repository"
    );
    for path in [
        "docs/contract.md",
        "scripts/measure-failover.sh",
        "resources/make-screenshots.sh",
        "resources/client-failover.png",
        "resources/dashboards-election.png",
        "resources/tour-partitioned-leader.png",
        ".ci/run",
    ] {
        assert!(readme.contains(path), "the README mentions {path}");
        assert!(root.join(path).exists(), "{path} exists");
    }
    for needle in [
        "./playground --stop",
        "Ctrl+b d",
        "completions bash",
        "./playground --tour",
        "## Take the tour",
    ] {
        assert!(readme.contains(needle), "the README tells {needle:?}");
    }
    // The tour is the first thing after the two commands.
    let sections: Vec<&str> = readme.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        sections[..2],
        ["## Two commands", "## Take the tour"],
        "{sections:?}"
    );
}

/// Runs `./playground` with extra arguments, on the test's socket, ports and data dir.
fn run_playground_args(tmux: &Tmux, base: u16, data: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("PLAYGROUND_BASE_PORT", base.to_string())
        .env("PLAYGROUND_DATA", data)
        .env("PLAYGROUND_TMUX_SOCKET", tmux.socket())
        .env("PLAYGROUND_NO_ATTACH", "1")
        .env_remove("TMUX")
        .output()
        .expect("run ./playground")
}

#[test]
fn a_fourth_node_joins_a_running_playground_as_the_readme_says() {
    let base = free_port_base(6);
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new();
    let out = run_playground_args(&tmux, base, dir.path(), &[]);
    assert!(out.status.success(), "./playground: {out:?}");
    // With cargo's own settings (no CARGO_TARGET_DIR of the test's), the playground runs the
    // binaries this very test build made.
    let said = String::from_utf8_lossy(&out.stdout);
    let bins = client_bin().parent().expect("a bin dir").to_path_buf();
    assert!(
        said.contains(&format!("(binaries: {})", bins.display())),
        "expected the binaries in {}; ./playground said: {said}",
        bins.display()
    );
    tmux.wait_screen(
        "raft-playground:client",
        "the client's cluster bar to show the leader",
        |s| s.contains("Cluster · leader node"),
    );
    // The README: `./playground --add 4`, then `member add 4 127.0.0.1:6004` in the client.
    let out = run_playground_args(&tmux, base, dir.path(), &["--add", "4"]);
    let said = String::from_utf8_lossy(&out.stdout);
    let add = format!("member add 4 127.0.0.1:{}", base + 4);
    assert!(out.status.success() && said.contains(&add), "{out:?}");
    tmux.wait_screen(
        "raft-playground:node-4",
        "node 4 waiting to be added",
        |s| s.contains("WAITING TO BE ADDED"),
    );
    tmux.type_line("raft-playground:client", &add);
    tmux.wait_screen("raft-playground:client", "node 4 promoted", |s| {
        s.contains("promote 4 to voter")
    });
    tmux.wait_screen("raft-playground:node-4", "node 4 following", |s| {
        s.contains(" FOLLOWER ") && s.contains("voter")
    });

    // The README's way back for a node whose data dir is lost: remove it, `./playground
    // --add 3` (which stops the old node 3 if it still runs and empties its data dir),
    // add it again. It takes full part: a voter again.
    tmux.type_line("raft-playground:client", "member remove 3");
    tmux.wait_screen("raft-playground:client", "node 3 removed", |s| {
        s.contains("node 3: remove 3")
    });
    let out = run_playground_args(&tmux, base, dir.path(), &["--add", "3"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("node 3 started"),
        "{out:?}"
    );
    tmux.wait_screen(
        "raft-playground:node-3",
        "the new node 3 waiting to be added",
        |s| s.contains("WAITING TO BE ADDED"),
    );
    let add = format!("member add 3 127.0.0.1:{}", base + 3);
    tmux.type_line("raft-playground:client", &add);
    tmux.wait_screen("raft-playground:client", "node 3 promoted again", |s| {
        s.contains("promote 3 to voter")
    });
    tmux.wait_screen("raft-playground:node-3", "node 3 a voter again", |s| {
        s.contains(" FOLLOWER ") && s.contains("voter")
    });

    // A start that fails says so (exit 1), with what the node's window showed.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", base + 5)).expect("take port");
    let out = run_playground_args(&tmux, base, dir.path(), &["--add", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(err.contains("node 5 did not start"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("node 5 started"));
}

#[test]
fn the_playground_starts_any_number_of_nodes_from_3_to_7() {
    let base = free_port_base(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new();
    let out = run_playground_args(&tmux, base, dir.path(), &["--nodes", "5"]);
    assert!(out.status.success(), "./playground --nodes 5: {out:?}");
    wait_for("five dashboards agreeing on a leader", || {
        let screens: Vec<String> = (1..=5)
            .map(|i| tmux.screen(&format!("raft-playground:node-{i}")))
            .collect();
        let leaders = screens.iter().filter(|s| s.contains(" LEADER ")).count();
        let followers = screens.iter().filter(|s| s.contains(" FOLLOWER ")).count();
        if leaders == 1 && followers == 4 {
            Ok(())
        } else {
            Err(screens.join("\n----\n"))
        }
    });
    let out = run_playground_args(&tmux, base, dir.path(), &["--nodes", "8"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("give 3 to 7"));
}

#[test]
fn a_lab_playground_runs_every_node_without_the_protection_and_says_so() {
    let base = free_port_base(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new();
    let out = run_playground_args(&tmux, base, dir.path(), &["--no-pre-vote"]);
    assert!(out.status.success(), "./playground --no-pre-vote: {out:?}");
    // Every dashboard says it in red, at a glance.
    wait_for("three dashboards saying NO PRE-VOTE", || {
        let screens: Vec<String> = (1..=3)
            .map(|i| tmux.screen(&format!("raft-playground:node-{i}")))
            .collect();
        if screens.iter().all(|s| s.contains("NO PRE-VOTE")) {
            Ok(())
        } else {
            Err(screens.join("\n----\n"))
        }
    });
    let out = run_playground_args(
        &tmux,
        base,
        dir.path(),
        &["--read-mode", "lease", "--no-check-quorum"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs check-quorum"));
    let out = run_playground_args(&tmux, base, dir.path(), &["--unsafe", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_wide_screen_shows_the_cluster_view_beside_the_dashboards() {
    let base = free_port_base(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new();
    let (cols, rows) = (Path::new("344"), Path::new("60"));
    let out = run_playground(
        &tmux,
        base,
        dir.path(),
        &[("PLAYGROUND_COLS", cols), ("PLAYGROUND_ROWS", rows)],
    );
    assert!(out.status.success(), "./playground at 344x60: {out:?}");
    // Three dashboards, the client below them, the view on the right, full height.
    tmux.wait_screen(
        "raft-playground:cluster.4",
        "the cluster view beside the dashboards, naming the leader",
        |s| s.contains("Cluster view · leader node") && s.contains("n3 "),
    );
    let panes = Command::new("tmux")
        .args([
            "-L",
            tmux.socket(),
            "list-panes",
            "-t",
            "raft-playground:cluster",
        ])
        .args(["-F", "#{pane_width}x#{pane_height}"])
        .output()
        .expect("tmux list-panes");
    let panes = String::from_utf8_lossy(&panes.stdout);
    let sizes: Vec<&str> = panes.lines().collect();
    assert_eq!(
        sizes.len(),
        5,
        "3 dashboards, the client, the view: {sizes:?}"
    );
    assert_eq!(sizes[4], "100x60", "the view's pane: {sizes:?}");
    for dashboard in &sizes[..3] {
        let width: u32 = dashboard
            .split('x')
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        assert!(width >= 80, "a dashboard of {dashboard}: {sizes:?}");
    }
}

/// The guided tour end to end, as a reader takes it: `./playground --tour`, then Enter
/// whenever the tour waits for a key, after `pause(step)` (a person reads the step first).
/// Every step's check must pass however long the wait; how long the whole tour took is
/// printed (not asserted).
fn play_the_tour(
    label: &str,
    size: (u16, u16),
    mut pause: impl FnMut(usize) -> std::time::Duration,
) {
    let base = free_port_base(6);
    let dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new();
    // The terminal's size decides the layout: a window per dashboard, or (250x60) the
    // dashboards side by side with the client below them.
    let out = Command::new("bash")
        .arg(script())
        .arg("--tour")
        .env("PLAYGROUND_BASE_PORT", base.to_string())
        .env("PLAYGROUND_DATA", dir.path())
        .env("PLAYGROUND_TMUX_SOCKET", tmux.socket())
        .env("PLAYGROUND_NO_ATTACH", "1")
        .env("PLAYGROUND_COLS", size.0.to_string())
        .env("PLAYGROUND_ROWS", size.1.to_string())
        .env_remove("TMUX")
        .output()
        .expect("run ./playground --tour");
    assert!(out.status.success(), "./playground --tour: {out:?}");
    let pane = if size.0 >= 240 && size.1 >= 50 {
        "raft-playground:cluster.3"
    } else {
        "raft-playground:client"
    };
    let steps: usize = raft_client::tour::chapters::chapters()
        .iter()
        .map(|c| c.steps.len())
        .sum();
    let started = std::time::Instant::now();
    // Generous: the tour waits out slow-motion elections, runs chaos for 6 s, and the
    // reader pauses before every step.
    let deadline = started + std::time::Duration::from_secs(900);
    let mut pressed = 0;
    let mut answered = String::new();
    // The lab's steps that need a node restarted by hand (two): each done once, as the
    // reader would, named by its chapter and step ("12.2/5").
    let mut restarted: Vec<String> = Vec::new();
    // The prompt being read, and since when.
    let mut reading: Option<(String, std::time::Instant, std::time::Duration)> = None;
    loop {
        let screen = tmux.screen(pane);
        let footer = screen.lines().last().unwrap_or_default().trim().to_string();
        assert!(
            !screen.contains("✗ expected")
                && !screen.contains("✗ could not tell")
                && !footer.contains("try the step again"),
            "{label}: a step of the tour failed its check after {pressed} Enter presses:\n{screen}"
        );
        if screen.contains("The end of the tour") {
            break;
        }
        // "... the tour waits for node N to stop and start again": once its step runs,
        // Ctrl+C in node N's pane, then ↑ Enter there. Only the running step's own text
        // counts (an earlier step's may still be on the screen).
        let running = step_of(&answered);
        if footer.contains("running the step")
            && let Some(step) = running.filter(|s| !restarted.contains(s))
            && let Some(n) = restart_asked(&screen, &step)
        {
            let node_pane = if size.0 >= 240 && size.1 >= 50 {
                format!("raft-playground:cluster.{}", n - 1)
            } else {
                format!("raft-playground:node-{n}")
            };
            // The pane may say so already, from an earlier restart: one more time.
            let said = format!("node {n} stopped");
            let before = tmux.history(&node_pane).matches(&said).count();
            tmux.key(&node_pane, "C-c");
            let start = std::time::Instant::now();
            while tmux.history(&node_pane).matches(&said).count() == before {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(20),
                    "{label}: expected node {n}'s pane to say {said:?} after Ctrl+C; it shows:\n{}",
                    tmux.screen(&node_pane)
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            tmux.key(&node_pane, "Up");
            tmux.key(&node_pane, "Enter");
            eprintln!("{label}: step {step}: restarted node {n}");
            restarted.push(step);
        }
        // A prompt not answered yet (each names its chapter and step, so each differs).
        if footer.starts_with("tour · ")
            && (footer.contains(" · Enter: ") || footer.contains(": your prediction"))
            && footer != answered
        {
            let (prompt, since, wait) = reading
                .take()
                .filter(|(p, _, _)| *p == footer)
                .unwrap_or_else(|| (footer.clone(), std::time::Instant::now(), pause(pressed)));
            if since.elapsed() >= wait {
                // A question is answered as a reader would: a guess, by its number (the
                // step runs either way; the tour then says whether it held).
                match prediction_keys(&footer) {
                    Some(n) => tmux.key(pane, &(1 + pressed % n).to_string()),
                    None => tmux.key(pane, "Enter"),
                }
                pressed += 1;
                answered = prompt;
            } else {
                reading = Some((prompt, since, wait));
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{label}: expected the tour to end within 15 min; after {pressed} of {steps} steps the client shows:\n{screen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!(
        "{label}: the whole tour took {:.1} s over {pressed} steps",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(pressed, steps, "one Enter per step");
    assert_eq!(
        restarted.len(),
        2,
        "{label}: the forgetful voter's lab restarts a node twice: {restarted:?}"
    );
    // Every chapter ends healed: no fault is left on any node.
    let peers: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.1:{}", base + 1000 + i))
        .collect();
    let out = Command::new(client_bin())
        .args(["--peers", &peers.join(","), "fault", "list", "--json"])
        .output()
        .expect("raft-client fault list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fault list after the tour: {out:?}");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&list).expect("fault list --json");
    assert_eq!(nodes.len(), 3, "{list}");
    for n in &nodes {
        let healthy = n["isolated"] == false
            && n["cut"].as_array().is_some_and(Vec::is_empty)
            && n["drop_percent"] == 0
            && n["delay_ms"] == 0
            && n["frozen"] == false
            && n["slow_factor"] == 1;
        assert!(healthy, "a fault outlived the tour: {n}");
    }
}

/// The chapter and step a tour prompt is for ("12.2/5"), from its footer
/// ("tour · 12.2/5 · b: back a chapter ...").
fn step_of(footer: &str) -> Option<String> {
    let step = footer.strip_prefix("tour · ")?.split(' ').next()?;
    step.contains('/').then(|| step.to_string())
}

/// The node the running step `step` ("12.2/5") waits for to be restarted by hand, if its
/// text asks for one: the text from the last step marker on the screen ("[2/5] ..."), the
/// output pane's borders and line breaks taken out, and only while that marker is this
/// step's (the next step's text may be drawn before its prompt).
fn restart_asked(screen: &str, step: &str) -> Option<u64> {
    let text = screen.replace('│', " ");
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, of_chapter) = step.split_once('.')?;
    let marker = |word: &str| {
        word.strip_prefix('[')
            .and_then(|w| w.strip_suffix(']'))
            .and_then(|w| w.split_once('/'))
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
            })
    };
    let words: Vec<&str> = joined.split(' ').collect();
    let last = words.iter().rposition(|w| marker(w))?;
    if words[last] != format!("[{of_chapter}]") {
        return None;
    }
    let own = words[last..].join(" ");
    let waits = "the tour waits for node ";
    let at = own.find(waits)?;
    own[at + waits.len()..].split(' ').next()?.parse().ok()
}

/// How many answers the footer's question has (`1-3: your prediction ...`), if it asks one.
fn prediction_keys(footer: &str) -> Option<usize> {
    let (before, _) = footer.split_once(": your prediction")?;
    before.rsplit("1-").next()?.trim().parse().ok()
}

/// A reader who reads each step for a few seconds before pressing Enter, at 80x24.
#[test]
fn the_whole_tour_passes_at_a_readers_pace() {
    play_the_tour("3 s before each Enter, 80x24", (80, 24), |_| {
        std::time::Duration::from_secs(3)
    });
}

/// A reader who sometimes presses Enter at once and sometimes reads for a while: 0-10 s
/// before each Enter, from a seed printed so a failure can be replayed
/// (`TOUR_PAUSE_SEED=N`), on a 250x60 screen.
#[test]
fn the_whole_tour_passes_with_random_pauses() {
    use rand::{Rng as _, SeedableRng as _};
    let seed: u64 = std::env::var("TOUR_PAUSE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("tour pauses: seed {seed} (TOUR_PAUSE_SEED={seed} repeats them)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    play_the_tour(
        &format!("random pauses, seed {seed}, 250x60"),
        (250, 60),
        move |_| std::time::Duration::from_millis(rng.random_range(0..=10_000)),
    );
}

/// The screenshot helper explains itself without needing Pillow.
#[test]
fn the_screenshot_helper_prints_its_usage() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../resources/ansi2png.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--help")
        .output()
        .expect("run python3 resources/ansi2png.py --help");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("ansi2png.py OUT.png PANE.ans"), "{said}");
}
