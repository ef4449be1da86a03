//! A node whose disk fills up, for real: its data dir is a 3 MiB tmpfs. It must stop with
//! one clear line and exit code 1 while the other two keep serving, and once given room it
//! must come back with every acknowledged write.
//!
//! Mounting needs privileges (root, as in CI); where `mount` is refused the test says so and
//! passes without running. `raft-server/tests/driver_failures.rs` covers the same path in
//! process with a storage that fails on demand, everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Cluster, assert_ok, stdout_line, wait_for};

/// The node whose data dir is the small tmpfs.
const FULL: u64 = 3;
const VALUE_BYTES: usize = 200_000;

/// A tmpfs mounted for the test, unmounted when dropped (lazily, so a process still
/// holding files in it cannot keep it mounted).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(path.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Gives the file system `size` of room, keeping what is on it.
    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert_ok(&out, "remounting the tmpfs larger");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// A value of [`VALUE_BYTES`] random hex digits: raft-engine compresses its writes (LZ4),
/// and only data that does not compress fills a disk as fast as its size says.
fn random_value() -> String {
    (0..VALUE_BYTES / 2)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Writes `k<i>` = a fresh random value through the client (the value goes by file: it is
/// large) and expects it acknowledged; returns the value.
fn put_random(cluster: &Cluster, i: usize, while_: &str) -> String {
    let file = cluster.data_path().join("value");
    let value = random_value();
    std::fs::write(&file, &value).expect("write the value file");
    let out = cluster.client(&[
        "put",
        &format!("k{i}"),
        "--value-file",
        &file.to_string_lossy(),
    ]);
    assert_ok(&out, &format!("put k{i} {while_}"));
    value
}

#[test]
fn a_full_disk_stops_one_node_cleanly_and_it_returns_with_every_acknowledged_write() {
    let mut cluster = Cluster::unstarted(3, &[]);
    let tmpfs = match Tmpfs::mount(&cluster.data_dir(FULL), "3m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({why}); driver_failures.rs in raft-server \
                 covers a full disk with a storage that fails on demand"
            );
            return;
        }
    };
    for id in 1..=3 {
        cluster.spawn(id);
    }
    cluster.wait_leader();

    // 200 KB writes until node 3's 3 MiB are full. Every one is acknowledged: two nodes
    // are a majority, and if node 3 was leading, the client retries on the next leader.
    let mut acknowledged: Vec<String> = Vec::new();
    while cluster.is_running(FULL) {
        let i = acknowledged.len();
        assert!(
            i < 100,
            "expected node {FULL} to stop once 3 MiB were full, but it took {i} writes of \
             {VALUE_BYTES} bytes; its log:\n{}",
            cluster.log(FULL)
        );
        acknowledged.push(put_random(
            &cluster,
            i,
            &format!("while node {FULL} fills up"),
        ));
    }
    let code = cluster.wait_exit(FULL);
    let log = cluster.log(FULL);
    let last_line = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let expected = format!(
        "error: storage failed: no space left on device in {}",
        cluster.data_dir(FULL).display()
    );
    assert_eq!(
        (code, last_line),
        (Some(1), expected.as_str()),
        "expected exit code 1 and that last line; the node's log:\n{log}"
    );
    assert!(!log.contains("panicked"), "a panic on the way out:\n{log}");

    // The other two keep serving.
    cluster.wait_leader();
    for i in acknowledged.len()..acknowledged.len() + 3 {
        acknowledged.push(put_random(&cluster, i, &format!("with node {FULL} down")));
    }

    // Given room, the node restarts on what it had and catches up: every acknowledged
    // write is there, read from node 3 itself.
    tmpfs.resize("64m");
    cluster.spawn(FULL);
    let last = acknowledged.len() - 1;
    let node = cluster.api_addr(FULL);
    wait_for(&format!("node {FULL} to catch up to k{last}"), || {
        let out = cluster.client_at(
            &node,
            &["--timeout", "1", "get", "--stale", &format!("k{last}")],
        );
        if out.status.success() && stdout_line(&out) == acknowledged[last] {
            Ok(())
        } else {
            Err(format!(
                "exit {:?}, stderr {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    for (i, value) in acknowledged.iter().enumerate() {
        let out = cluster.client_at(&node, &["get", "--stale", &format!("k{i}")]);
        assert_ok(&out, &format!("stale get k{i} on node {FULL}"));
        assert!(
            stdout_line(&out) == *value,
            "node {FULL} lost or changed acknowledged write k{i}: got {} bytes starting {:?}",
            out.stdout.len(),
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(20)])
        );
    }
    assert!(
        cluster.is_running(FULL),
        "node {FULL}:\n{}",
        cluster.log(FULL)
    );
}

/// The same failure with the node's dashboard on, in a terminal: the dashboard goes, the
/// terminal is given back in order (it echoes and runs the next command), and the error is
/// the line the user reads, with exit code 1.
#[test]
fn with_its_dashboard_on_a_full_node_gives_the_terminal_back_and_says_why() {
    let mut cluster = Cluster::unstarted(3, &[]);
    let _tmpfs = match Tmpfs::mount(&cluster.data_dir(FULL), "3m") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    cluster.spawn(1);
    cluster.spawn(2);
    let tmux = common::tmux::Tmux::new();
    tmux.shell("n3", 100, 30);
    let dir = cluster.data_dir(FULL);
    tmux.type_line(
        "n3",
        &format!(
            "{} --id {FULL} --peers {} --data-dir {}; echo \"exit=$?\"",
            common::server_bin().display(),
            cluster.peers_arg(),
            dir.display()
        ),
    );
    tmux.wait_screen("n3", "node 3's dashboard", |s| {
        s.contains(&format!("node {FULL}")) && s.contains("term")
    });
    cluster.wait_leader();
    let mut i = 0;
    while !tmux.screen("n3").contains("exit=") {
        assert!(
            i < 100,
            "expected node {FULL} to stop once 3 MiB were full; its pane:\n{}",
            tmux.screen("n3")
        );
        put_random(&cluster, i, &format!("while node {FULL} fills up"));
        i += 1;
    }
    let screen = tmux.wait_screen("n3", "the exit code", |s| s.contains("exit=1"));
    let expected = format!(
        "error: storage failed: no space left on device in {}",
        dir.display()
    );
    let joined = tmux.screen_joined("n3");
    assert!(
        joined.contains(&expected) && !joined.contains("panicked"),
        "expected {expected:?} and no panic in the pane:\n{screen}"
    );
    // The dashboard is gone and the shell works as before: what is typed is echoed and run.
    tmux.type_line("n3", "echo restored-$((40 + 2))");
    tmux.wait_screen("n3", "the shell to echo and run a command", |s| {
        s.contains("echo restored-$((40 + 2))") && s.contains("\nrestored-42")
    });
}
