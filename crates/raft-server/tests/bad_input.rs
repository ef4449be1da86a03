//! Bad input to the real `raft-server` binary: each case must end the process with a
//! non-zero exit code and one `error:` line on stderr that names the problem, never a panic,
//! never a hang, and must leave nothing running (the node's ports are free again).
//!
//! Every test has its own ports and its own temp dir, so they run in parallel. Every wait
//! has a deadline: a server that does not exit is killed and the test fails saying what it
//! expected.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::Rng as _;

/// How long any one wait may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often to check whether the server has exited.
const POLL: Duration = Duration::from_millis(20);
/// How often to check for a condition the test is waiting on: short, so the test acts
/// (e.g. sends SIGTERM) as soon as the server reaches a state, not up to 20 ms later.
const READY_POLL: Duration = Duration::from_millis(1);
/// The client API listens on the peer port plus this offset (see the design doc).
const API_PORT_OFFSET: u16 = 1000;
/// Written by raft-server into every data dir it creates.
const MARKER_FILE: &str = "raft-playground.id";

// ---------------------------------------------------------------------------------------
// Ports

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A peer port `p` such that both `p` and its API port `p + 1000` can be bound right now.
/// Ports are never handed out twice in this process, so parallel tests cannot collide.
fn free_peer_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let p: u16 = rng.random_range(30000..39000);
        let api = p + API_PORT_OFFSET;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.contains(&p) || handed_out.contains(&api) {
            continue;
        }
        if bindable(p) && bindable(api) {
            handed_out.insert(p);
            handed_out.insert(api);
            return p;
        }
    }
    panic!("found no free pair of ports p, p + {API_PORT_OFFSET} with p in 30000..39000");
}

/// Holds `127.0.0.1:port` so the server cannot bind it.
fn occupy(port: u16) -> TcpListener {
    TcpListener::bind(("127.0.0.1", port)).expect("occupy a port picked as free")
}

fn assert_ports_released(ports: &[u16]) {
    for &port in ports {
        assert!(
            bindable(port),
            "expected port {port} to be free after raft-server exited, but it is still bound"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Running the binary

/// A `raft-server` child process whose stderr is collected as it arrives. Dropping it kills
/// the process if it is still running, so a failed assertion leaves nothing behind.
struct Server {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `raft-server --headless <args>`.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft-server"))
            .args(args)
            .arg("--headless")
            // A fixed log level and no colours: stderr must not depend on the caller's env.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn raft-server");
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        // Read continuously so a chatty server never blocks on a full pipe.
        let sink = Arc::clone(&stderr);
        let reader = thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap_or_else(PoisonError::into_inner);
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Everything the server has written to stderr so far.
    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Polls `ready` until it holds; fails with `expected` if the deadline passes first or
    /// the server exits.
    fn wait_until(&mut self, expected: &str, mut ready: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "expected {expected}, but raft-server exited ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "expected {expected} within {DEADLINE:?}, but it did not happen; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(READY_POLL);
        }
    }

    /// Waits for the process to exit. If it is still running at the deadline it is killed
    /// and the test fails with `expected`.
    fn wait_exit(&mut self, expected: &str) -> Exit {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The pipe reaches EOF once the process is gone, so this join is quick.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Exit {
                    status,
                    stderr: self.stderr(),
                };
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "expected {expected} within {DEADLINE:?}, but raft-server was still running \
                     (killed it); stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Asks the server to shut down cleanly, as `kill -TERM` would.
    #[allow(unsafe_code)] // std cannot send a signal other than SIGKILL.
    fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions. `pid` is our own child, which
        // has not been reaped yet, so the id cannot have been reused by another process.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(
            rc,
            0,
            "kill(SIGTERM) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a server ended.
struct Exit {
    status: ExitStatus,
    stderr: String,
}

impl Exit {
    /// The exit code was `code` (any non-zero code when `None`), and stderr is exactly one
    /// line, `error: ...`, containing each of `mentions`.
    fn assert_one_line_error(&self, code: Option<i32>, mentions: &[&str]) {
        let expected = format!(
            "exit code {}, and stderr one line \"error: ...\" mentioning {mentions:?}",
            code.map_or("non-zero".to_string(), |c| c.to_string())
        );
        let seen = format!("{} with stderr:\n{}", self.status, self.stderr);
        match (code, self.status.code()) {
            (Some(want), Some(got)) => assert_eq!(got, want, "expected {expected}; got {seen}"),
            (None, Some(got)) => assert_ne!(got, 0, "expected {expected}; got {seen}"),
            (_, None) => panic!("expected {expected}; got killed by a signal: {seen}"),
        }
        assert!(
            !self.stderr.contains("panicked"),
            "expected {expected}; got a panic: {seen}"
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("error: "),
            "expected {expected}; got {seen}"
        );
        assert!(
            lines[0].matches("(os error").count() <= 1,
            "expected {expected}; got the cause repeated in {seen}"
        );
        for needle in mentions {
            assert!(
                lines[0].contains(needle),
                "expected {expected}; {needle:?} is missing from {seen}"
            );
        }
    }
}

/// `--peers` for a one-node cluster of node `id` on `port`.
fn single(id: u64, port: u16) -> String {
    format!("{id}=127.0.0.1:{port}")
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

/// Runs `raft-server --id <id> --peers <peers> --data-dir <tmp>/data <extra>` to its end.
fn run_to_exit(id: &str, peers: &str, extra: &[&str], expected: &str) -> (Exit, tempfile::TempDir) {
    let tmp = data_dir();
    let dir = tmp.path().join("data");
    let mut args = vec!["--id", id, "--peers", peers, "--data-dir", path_arg(&dir)];
    args.extend_from_slice(extra);
    let exit = Server::start(&args).wait_exit(expected);
    (exit, tmp)
}

// ---------------------------------------------------------------------------------------
// 1. Bad command lines: exit 2 before anything is bound or written.

#[test]
fn duplicate_id_in_peers() {
    let (a, b) = (free_peer_port(), free_peer_port());
    let peers = format!("1=127.0.0.1:{a},1=127.0.0.1:{b}");
    let (exit, tmp) = run_to_exit("1", &peers, &[], "a usage error for a duplicate id");
    exit.assert_one_line_error(Some(2), &["--peers", "id 1 more than once"]);
    assert!(
        !tmp.path().join("data").exists(),
        "no data dir on a usage error"
    );
}

#[test]
fn malformed_peers_entry() {
    let a = free_peer_port();
    let peers = format!("1=127.0.0.1:{a},2@127.0.0.1");
    let (exit, _tmp) = run_to_exit("1", &peers, &[], "a usage error for a malformed entry");
    exit.assert_one_line_error(Some(2), &["\"2@127.0.0.1\"", "id=host:port"]);
}

#[test]
fn id_not_in_peers() {
    let (a, b) = (free_peer_port(), free_peer_port());
    let peers = format!("1=127.0.0.1:{a},2=127.0.0.1:{b}");
    let (exit, _tmp) = run_to_exit("7", &peers, &[], "a usage error for an unknown --id");
    exit.assert_one_line_error(Some(2), &["--id 7", "known ids: 1,2"]);
}

#[test]
fn heartbeat_not_shorter_than_election() {
    let a = free_peer_port();
    let extra = ["--heartbeat-ticks", "5", "--election-ticks", "5"];
    let (exit, _tmp) = run_to_exit("1", &single(1, a), &extra, "a usage error for the ticks");
    exit.assert_one_line_error(Some(2), &["--heartbeat-ticks (5)", "--election-ticks (5)"]);
}

#[test]
fn unknown_flag() {
    let a = free_peer_port();
    let (exit, _tmp) = run_to_exit("1", &single(1, a), &["--bogus"], "clap's usage error");
    // clap's own usage error: the first line names the flag, the rest is usage help.
    assert_eq!(exit.status.code(), Some(2), "stderr:\n{}", exit.stderr);
    let first = exit.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error:") && first.contains("--bogus"),
        "expected a first line \"error: ...\" naming --bogus; got:\n{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("panicked"),
        "stderr:\n{}",
        exit.stderr
    );
}

// ---------------------------------------------------------------------------------------
// 2. Busy ports: exit 1, naming the address, before the data dir is touched.

#[test]
fn peer_port_in_use() {
    let port = free_peer_port();
    let _held = occupy(port);
    let (exit, tmp) = run_to_exit("1", &single(1, port), &[], "exit 1 for a busy peer port");
    exit.assert_one_line_error(Some(1), &[&format!("127.0.0.1:{port}"), "already in use"]);
    assert!(
        !tmp.path().join("data").exists(),
        "data dir created despite the busy port"
    );
    assert_ports_released(&[port + API_PORT_OFFSET]);
}

#[test]
fn api_port_in_use() {
    let port = free_peer_port();
    let api = port + API_PORT_OFFSET;
    let _held = occupy(api);
    let (exit, tmp) = run_to_exit("1", &single(1, port), &[], "exit 1 for a busy API port");
    exit.assert_one_line_error(Some(1), &[&format!("127.0.0.1:{api}"), "already in use"]);
    assert!(
        !tmp.path().join("data").exists(),
        "data dir created despite the busy port"
    );
    assert_ports_released(&[port]);
}

// ---------------------------------------------------------------------------------------
// 2b. Addresses: names that do not resolve, a bad --listen, an address not this machine's.

/// A name that never resolves (RFC 6761).
const NOWHERE: &str = "no-such-node.invalid";

#[test]
fn own_address_does_not_resolve() {
    let port = free_peer_port();
    let peers = format!("1={NOWHERE}:{port},2=127.0.0.1:{}", free_peer_port());
    let (exit, tmp) = run_to_exit("1", &peers, &[], "exit 1 for a name that does not resolve");
    exit.assert_one_line_error(
        Some(1),
        &[
            &format!("cannot resolve {NOWHERE}"),
            &format!("this node's address {NOWHERE}:{port} in --peers"),
            &format!("--listen 0.0.0.0:{port}"),
        ],
    );
    assert!(!tmp.path().join("data").exists(), "no data dir");
}

#[test]
fn malformed_listen() {
    let port = free_peer_port();
    for (listen, says) in [
        ("0.0.0.0", "has no port"),
        ("0.0.0.0:http", "is not a number"),
        ("not a host:6001", "is not a host name or IP address"),
        ("0.0.0.0:65000", "too high"),
    ] {
        let (exit, tmp) = run_to_exit(
            "1",
            &single(1, port),
            &["--listen", listen],
            "a usage error for a malformed --listen",
        );
        exit.assert_one_line_error(Some(2), &["--listen", says]);
        assert!(!tmp.path().join("data").exists(), "no data dir");
    }
}

#[test]
fn listen_does_not_resolve() {
    let port = free_peer_port();
    let listen = format!("{NOWHERE}:{port}");
    let extra = ["--listen", listen.as_str()];
    let (exit, _tmp) = run_to_exit("1", &single(1, port), &extra, "exit 1 for --listen");
    exit.assert_one_line_error(
        Some(1),
        &[
            &format!("cannot resolve {NOWHERE}"),
            &format!("--listen {listen}"),
        ],
    );
}

#[test]
fn listen_port_in_use() {
    let (known, port) = (free_peer_port(), free_peer_port());
    let _held = occupy(port);
    let listen = format!("127.0.0.1:{port}");
    let extra = ["--listen", listen.as_str()];
    let (exit, _tmp) = run_to_exit("1", &single(1, known), &extra, "exit 1 for a busy port");
    exit.assert_one_line_error(Some(1), &[&listen, "already in use"]);
}

#[test]
fn address_of_another_machine() {
    // 192.0.2.0/24 is for documentation (RFC 5737): never an address of this machine.
    let port = free_peer_port();
    let peers = format!("1=192.0.2.1:{port}");
    let (exit, _tmp) = run_to_exit("1", &peers, &[], "exit 1 for a foreign address");
    exit.assert_one_line_error(
        Some(1),
        &[
            &format!("192.0.2.1:{port}"),
            "not an address of this machine",
            &format!("--listen 0.0.0.0:{port}"),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// 3-5. Data dirs that are not this node's.

#[test]
fn data_dir_is_a_regular_file() {
    let port = free_peer_port();
    let tmp = data_dir();
    let file = tmp.path().join("data");
    std::fs::write(&file, "not a dir").expect("write file");
    let args = [
        "--id",
        "1",
        "--peers",
        &single(1, port),
        "--data-dir",
        path_arg(&file),
    ];
    let exit = Server::start(&args).wait_exit("an error for a data dir that is a file");
    exit.assert_one_line_error(None, &["data dir", path_arg(&file)]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read file"),
        "not a dir"
    );
    assert_ports_released(&[port, port + API_PORT_OFFSET]);
}

#[test]
fn data_dir_not_created_by_raft_server() {
    let port = free_peer_port();
    let tmp = data_dir();
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "my notes").expect("write notes");
    let args = [
        "--id",
        "1",
        "--peers",
        &single(1, port),
        "--data-dir",
        path_arg(tmp.path()),
    ];
    let exit = Server::start(&args).wait_exit("an error for a foreign data dir");
    exit.assert_one_line_error(None, &["is not a raft-playground data dir"]);
    assert_eq!(
        std::fs::read_to_string(&notes).expect("read notes"),
        "my notes"
    );
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("list dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "raft-server wrote into a foreign dir");
    assert_ports_released(&[port, port + API_PORT_OFFSET]);
}

#[test]
fn data_dir_of_another_node() {
    let port = free_peer_port();
    let tmp = data_dir();
    let dir = tmp.path().join("data");

    let node1_peers = single(1, port);
    // SIGTERM as soon as the marker exists, while node 1 is still starting: the handler
    // must already be in place, so this is a clean shutdown too.
    let mut node1 = Server::start(&[
        "--id",
        "1",
        "--peers",
        &node1_peers,
        "--data-dir",
        path_arg(&dir),
    ]);
    node1.wait_until("node 1 to create its data dir marker", |_| {
        dir.join(MARKER_FILE).is_file()
    });
    node1.sigterm();
    let exit = node1.wait_exit("node 1 to exit 0 after SIGTERM");
    assert_eq!(
        exit.status.code(),
        Some(0),
        "node 1 after SIGTERM; stderr:\n{}",
        exit.stderr
    );

    let node2_peers = single(2, port);
    let exit = Server::start(&[
        "--id",
        "2",
        "--peers",
        &node2_peers,
        "--data-dir",
        path_arg(&dir),
    ])
    .wait_exit("node 2 to refuse node 1's data dir");
    exit.assert_one_line_error(None, &["belongs to node 1"]);
    assert_ports_released(&[port, port + API_PORT_OFFSET]);
}

#[test]
fn data_dir_in_use_by_a_running_node() {
    let (port, other_port) = (free_peer_port(), free_peer_port());
    let tmp = data_dir();
    let dir = tmp.path().join("data");
    let peers = single(1, port);
    let mut first = Server::start(&["--id", "1", "--peers", &peers, "--data-dir", path_arg(&dir)]);
    first.wait_until("the first node to become leader", |s| {
        s.stderr().contains("became leader")
    });
    // The same node and data dir again, on other ports (so it gets as far as the data dir).
    let second_peers = single(1, other_port);
    let exit = Server::start(&[
        "--id",
        "1",
        "--peers",
        &second_peers,
        "--data-dir",
        path_arg(&dir),
    ])
    .wait_exit("the second node to refuse the data dir in use");
    exit.assert_one_line_error(
        Some(1),
        &[
            path_arg(&dir),
            "in use by another process",
            &format!("(raft-server, pid {})", first.child.id()),
        ],
    );
    for internal in ["raft-engine", "pipe_builder", ".cargo", "Other Error"] {
        assert!(
            !exit.stderr.contains(internal),
            "no internal detail ({internal}) in: {}",
            exit.stderr
        );
    }
    assert_ports_released(&[other_port, other_port + API_PORT_OFFSET]);
    first.sigterm();
    let exit = first.wait_exit("the first node to exit 0 after SIGTERM");
    assert_eq!(exit.status.code(), Some(0), "stderr:\n{}", exit.stderr);
    // Its log went to a pipe, not a terminal: plain text, no colour codes.
    assert!(
        exit.stderr.contains(" INFO ") && !exit.stderr.contains('\x1b'),
        "expected a plain-text log on a redirected stderr, got:\n{:?}",
        exit.stderr
    );
}

#[test]
fn help_shows_an_example_and_every_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_raft-server"))
        .arg("--help")
        .output()
        .expect("run raft-server --help");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Examples:",
        "raft-server --id 1 ",
        "[default: 1=127.0.0.1:6001,2=127.0.0.1:6002,3=127.0.0.1:6003]",
        "[default: data/node-<ID>]",
        "--listen <HOST:PORT>",
        "[default: 50]",
        "[default: 10]",
        "[default: 2]",
        "[default: 10000]",
        "[default: 5000]",
        "--completions <SHELL>",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
    }
}

#[test]
fn completions_need_no_id() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_raft-server"))
            .args(["--completions", shell])
            .output()
            .expect("run raft-server --completions");
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("raft-server") && script.contains("data-dir"),
            "{shell}: {script}"
        );
    }
    // Without --completions, --id is still required.
    let out = Command::new(env!("CARGO_BIN_EXE_raft-server"))
        .arg("--headless")
        .output()
        .expect("run raft-server");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id <ID>"));
}

// ---------------------------------------------------------------------------------------
// 6. The clean-shutdown contract.

#[test]
fn sigterm_stops_a_healthy_node_with_exit_0() {
    let port = free_peer_port();
    let tmp = data_dir();
    let dir = tmp.path().join("data");
    let peers = single(1, port);
    let mut node = Server::start(&["--id", "1", "--peers", &peers, "--data-dir", path_arg(&dir)]);
    node.wait_until("the single node to become leader", |s| {
        s.stderr().contains("became leader")
    });
    node.sigterm();
    let exit = node.wait_exit("exit 0 after SIGTERM");
    assert_eq!(
        exit.status.code(),
        Some(0),
        "after SIGTERM; stderr:\n{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("panicked"),
        "stderr:\n{}",
        exit.stderr
    );
    assert_ports_released(&[port, port + API_PORT_OFFSET]);
}
