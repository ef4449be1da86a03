//! Test harness: starts real `raft-server` processes on free loopback ports in a temp dir,
//! runs the real `raft-client` binary, and polls for states with deadlines. Everything it
//! starts is killed when the [`Cluster`] is dropped, also when a test fails.

#![allow(dead_code)]

pub mod tmux;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a state may take to appear before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `raft-client chaos ARGS --json` (its own cluster with `--spawn`); its output and
/// the verdict it printed.
pub fn chaos_json(args: &[&str]) -> (Output, Value) {
    let out = Command::new(client_bin())
        .arg("chaos")
        .args(args)
        .arg("--json")
        .output()
        .expect("run raft-client chaos");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "chaos --json printed {text:?} ({e})\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, v)
}

/// The `raft-client` binary under test.
pub fn client_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raft-client"))
}

/// The `raft-server` binary: built by `cargo test --workspace` next to `raft-client`; built
/// here once if this crate's tests run alone.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = client_bin().with_file_name("raft-server");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "raft-server", "--bin", "raft-server"])
                .status()
                .expect("run cargo build for raft-server");
            assert!(status.success(), "building raft-server failed");
        }
        path
    })
    .clone()
}

/// A base port whose peer ports `base+1..=base+n` and API ports (+1000) are all free.
/// Tests in one process never share a range; other processes are avoided by probing.
pub fn free_port_base(n: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20000 + (std::process::id() % 200) as u16 * 40;
    for _ in 0..200 {
        let base = start + (NEXT.fetch_add(10, Ordering::SeqCst) % 8000);
        let ok = (1..=n).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + i + 1000)).is_ok()
        });
        if ok {
            return base;
        }
    }
    panic!("no free port range found");
}

/// Runs `fut` to completion on a fresh single-threaded runtime (for tests that talk gRPC
/// directly).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(fut)
}

/// Polls `probe` until it returns `Ok`, failing after [`DEADLINE`] with what was expected
/// and the last thing seen.
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::from("nothing yet");
    while Instant::now() < deadline {
        match probe() {
            Ok(v) => return v,
            Err(seen) => last = seen,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {DEADLINE:?} waiting for {what}; last seen: {last}");
}

/// A running test cluster of real server processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub base: u16,
    pub n: u16,
    /// Extra `raft-server` arguments for every node.
    pub server_args: Vec<String>,
    /// The host every address is written with: `127.0.0.1`, or a name such as `localhost`.
    pub host: String,
    /// `--peers` entries after the cluster's own (`9=some-host:port`).
    pub extra_peers: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    /// Starts `n` nodes and waits until they agree on a leader.
    pub fn start(n: u16) -> Self {
        Self::start_with(n, &[])
    }

    /// Starts `n` nodes with extra server arguments and waits for a leader.
    pub fn start_with(n: u16, server_args: &[&str]) -> Self {
        let mut cluster = Self::unstarted(n, server_args);
        for id in 1..=n as u64 {
            cluster.spawn(id);
        }
        cluster.wait_leader();
        cluster
    }

    /// Ports and a temp dir for `n` nodes, none started yet (to prepare a data dir first).
    pub fn unstarted(n: u16, server_args: &[&str]) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            // Room for three nodes added later (ranges are ten ports apart).
            base: free_port_base(n + 3),
            n,
            server_args: server_args.iter().map(|a| a.to_string()).collect(),
            host: "127.0.0.1".to_string(),
            extra_peers: Vec::new(),
            children: (0..n).map(|_| None).collect(),
        }
    }

    pub fn peers_arg(&self) -> String {
        (1..=self.n)
            .map(|i| format!("{i}={}:{}", self.host, self.base + i))
            .chain(self.extra_peers.iter().cloned())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn api_addr(&self, id: u64) -> String {
        format!("{}:{}", self.host, self.base + id as u16 + 1000)
    }

    pub fn api_addrs(&self) -> String {
        (1..=self.n as u64)
            .map(|i| self.api_addr(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// Adds node `n + 1` to the address list and starts it with `--join`: a new node waiting
    /// to be added. Returns its id.
    pub fn add_node(&mut self) -> u64 {
        self.n += 1;
        self.children.push(None);
        let id = u64::from(self.n);
        self.spawn_with(id, &["--join"]);
        id
    }

    /// The peer address of node `id`.
    pub fn peer_addr(&self, id: u64) -> String {
        format!("{}:{}", self.host, self.base + id as u16)
    }

    /// Starts node `id` (again), appending its log to `node-<id>.log`.
    pub fn spawn(&mut self, id: u64) {
        self.spawn_with(id, &[]);
    }

    /// Starts node `id` with extra arguments.
    pub fn spawn_with(&mut self, id: u64, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("open node log");
        let child = Command::new(server_bin())
            .arg("--id")
            .arg(id.to_string())
            .arg("--peers")
            .arg(self.peers_arg())
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--headless")
            .args(&self.server_args)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn raft-server");
        self.children[id as usize - 1] = Some(child);
    }

    fn pid(&self, id: u64) -> i32 {
        let child = self.children[id as usize - 1]
            .as_ref()
            .expect("node is running");
        i32::try_from(child.id()).expect("pid fits i32")
    }

    fn signal(&self, id: u64, sig: i32) {
        let rc = kill(self.pid(id), sig);
        assert_eq!(rc, 0, "signal {sig} to node {id} failed");
    }

    /// True while node `id`'s process has not exited.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.children[id as usize - 1]
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children[id as usize - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs node `id` and waits (with a deadline) for it to exit; returns its exit code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        self.signal(id, libc::SIGTERM);
        let mut child = self.children[id as usize - 1]
            .take()
            .expect("node is running");
        wait_for(
            &format!("node {id} to exit after SIGTERM"),
            || match child.try_wait() {
                Ok(Some(status)) => Ok(status.code()),
                Ok(None) => Err("still running".to_string()),
                Err(e) => Err(e.to_string()),
            },
        )
    }

    /// Waits (with a deadline) for node `id` to exit by itself; returns its exit code. A
    /// node still running at the deadline stays in the cluster, to be killed with it.
    pub fn wait_exit(&mut self, id: u64) -> Option<i32> {
        let slot = id as usize - 1;
        let code = wait_for(&format!("node {id} to exit"), || {
            let child = self.children[slot].as_mut().expect("node is running");
            match child.try_wait() {
                Ok(Some(status)) => Ok(status.code()),
                Ok(None) => Err("still running".to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        self.children[slot] = None;
        code
    }

    /// SIGSTOPs node `id`: it stays alive but does nothing.
    pub fn freeze(&self, id: u64) {
        self.signal(id, libc::SIGSTOP);
    }

    /// SIGCONTs node `id`.
    pub fn thaw(&self, id: u64) {
        self.signal(id, libc::SIGCONT);
    }

    /// Runs `raft-client` against the given addresses.
    pub fn client_at(&self, addrs: &str, args: &[&str]) -> Output {
        Command::new(client_bin())
            .arg("--peers")
            .arg(addrs)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run raft-client")
    }

    /// Runs `raft-client` against every node.
    pub fn client(&self, args: &[&str]) -> Output {
        self.client_at(&self.api_addrs(), args)
    }

    /// `put`, asserting success.
    pub fn put(&self, key: &str, value: &str) {
        let out = self.client(&["put", key, value]);
        assert_ok(&out, &format!("put {key}={value}"));
    }

    /// `get` (linearizable) through any node, asserting success.
    pub fn get(&self, key: &str) -> String {
        let out = self.client(&["get", key]);
        assert_ok(&out, &format!("get {key}"));
        stdout_line(&out)
    }

    /// `status --json` of every node.
    pub fn status(&self) -> Vec<Value> {
        let out = self.client(&["--timeout", "2", "status", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            _ => panic!("status --json printed {text:?}"),
        }
    }

    /// Waits until every running node agrees on one leader; returns its id.
    pub fn wait_leader(&self) -> u64 {
        wait_for("all running nodes to agree on a leader", || {
            let running: Vec<u64> = (1..=self.n as u64)
                .filter(|i| self.children[*i as usize - 1].is_some())
                .collect();
            let status = self.status();
            let mut leaders = Vec::new();
            for id in &running {
                let s = &status[*id as usize - 1];
                if s["reachable"] != true {
                    return Err(format!("node {id} unreachable: {s}"));
                }
                leaders.push(s["leader_id"].as_u64().unwrap_or(0));
            }
            let Some(&leader) = leaders.first() else {
                return Err("no node is running".to_string());
            };
            let leader_is_leading = status
                .get(leader.saturating_sub(1) as usize)
                .is_some_and(|s| s["role"] == "Leader");
            if leader != 0 && leader_is_leading && leaders.iter().all(|l| *l == leader) {
                Ok(leader)
            } else {
                Err(format!("{status:?}"))
            }
        })
    }

    /// Node `id`'s term, polled until it answers (a status call can miss its bound on a
    /// loaded machine).
    pub fn term_of(&self, id: u64) -> u64 {
        wait_for(&format!("node {id} to report its term"), || {
            let s = &self.status()[id as usize - 1];
            s["term"].as_u64().ok_or_else(|| s.to_string())
        })
    }

    /// Node `id`'s applied index, polled until it answers.
    pub fn applied_of(&self, id: u64) -> u64 {
        wait_for(&format!("node {id} to report its applied index"), || {
            let s = &self.status()[id as usize - 1];
            s["applied_index"].as_u64().ok_or_else(|| s.to_string())
        })
    }

    /// Waits until node `id` has applied at least `index`.
    pub fn wait_applied(&self, id: u64, index: u64) {
        wait_for(&format!("node {id} to apply index {index}"), || {
            let s = &self.status()[id as usize - 1];
            match s["applied_index"].as_u64() {
                Some(a) if a >= index => Ok(()),
                _ => Err(s.to_string()),
            }
        });
    }

    /// `status --json` of node `id` alone.
    pub fn node_status(&self, id: u64) -> Value {
        let out = self.client_at(&self.api_addr(id), &["--timeout", "2", "status", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(mut items)) if !items.is_empty() => items.remove(0),
            _ => panic!("status --json of node {id} printed {text:?}"),
        }
    }

    /// The README's way back for a node: stop it, wipe its data dir, start it with
    /// `--join`; returns once it says it waits to be added.
    pub fn wipe_and_join(&mut self, id: u64) {
        self.kill(id);
        let dir = self.data_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("wipe the data dir");
        }
        self.spawn_with(id, &["--join"]);
        self.wait_joining(id);
    }

    /// [`Cluster::add_node`], returning once the new node says it waits to be added.
    pub fn add_joining_node(&mut self) -> u64 {
        let id = self.add_node();
        self.wait_joining(id);
        id
    }

    /// Waits until node `id` answers as a node waiting to be added.
    pub fn wait_joining(&self, id: u64) {
        wait_for(&format!("node {id} to wait to be added"), || {
            let s = self.node_status(id);
            if s["joining"] == true {
                Ok(())
            } else {
                Err(s.to_string())
            }
        });
    }

    /// Starts `raft-client <args>` against every node, in the background, its output to
    /// `stdout` (stderr piped).
    pub fn background(&self, args: &[&str], stdout: Stdio) -> Child {
        Command::new(client_bin())
            .arg("--peers")
            .arg(self.api_addrs())
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start raft-client in the background")
    }

    /// The log of node `id`, for failure messages.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn data_path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=self.n as u64 {
            self.kill(id);
        }
    }
}

/// Interrupts a child of ours as Ctrl+C would (SIGINT).
pub fn interrupt(child: &Child) {
    let pid = i32::try_from(child.id()).expect("a pid fits an i32");
    assert_eq!(kill(pid, libc::SIGINT), 0, "SIGINT to {pid}");
}

/// Sends `sig` to `pid`, a child we spawned and have not reaped yet.
#[allow(unsafe_code)]
fn kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) }
}

/// The first line of stdout.
pub fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Asserts a client command exited 0, showing its output otherwise.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: expected exit 0, got {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a client command exited with `code`.
pub fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
