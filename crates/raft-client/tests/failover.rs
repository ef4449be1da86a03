//! `raft-client bench --op failover` end to end: a run on a cluster it spawns itself (one
//! range, a few trials), checked for a new leader after every kill and sane times; and the
//! bad ranges and flags it refuses with exit code 2 and one line.
//!
//! The bench picks its own free ports (30000-50000, probed; the other tests' ranges are
//! below 30000) and makes its cluster's directory under `TMPDIR`, which each run here points
//! at a temp dir of its own: whatever happens, [`Run`]'s drop kills the client and every
//! process whose command line names that directory (the servers it started), so a failing
//! or hanging run leaves nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::client_bin;
use serde_json::Value;

/// Longest a run may take before it is stopped and the test fails.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// A `raft-client` run with a `TMPDIR` of its own, its output in files there.
struct Run {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// What a finished run printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let child = Command::new(client_bin())
            .args(args)
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start raft-client");
        Self {
            dir,
            child: Some(child),
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Polls for the client's exit until [`RUN_DEADLINE`]; a run still going then is
    /// stopped (SIGTERM: the bench removes its cluster) and the test fails.
    fn finish(&mut self) -> Finished {
        let started = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("poll raft-client") {
                self.child = None;
                return Finished {
                    status,
                    stdout: self.read("stdout"),
                    stderr: self.read("stderr"),
                };
            }
            if started.elapsed() > RUN_DEADLINE {
                terminate(child);
                panic!(
                    "raft-client still running after {RUN_DEADLINE:?}\nstdout: {}\nstderr: {}",
                    self.read("stdout"),
                    self.read("stderr")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The processes still running that name this run's directory (its servers).
    fn leftovers(&self) -> Vec<i32> {
        processes_naming(self.dir.path())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.leftovers() {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// SIGTERM, then (after a grace period, polled) SIGKILL.
fn terminate(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        signal(pid, libc::SIGTERM);
    }
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[allow(unsafe_code)]
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions; the
    // pids are the client we started or servers whose command line names our temp dir.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Pids whose command line contains `dir` (Linux's /proc; elsewhere none are found).
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let path = PathBuf::from(format!("/proc/{pid}/cmdline"));
            std::fs::read(path)
                .map(|raw| String::from_utf8_lossy(&raw).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// One trial's line on stderr: (killed, killed term, new leader, new term, ms).
fn parse_trial(line: &str) -> Option<(u64, u64, u64, u64, f64)> {
    // "50-100 ms trial 2/5: node 3 killed in term 4, 7.1 ms into its heartbeat interval;
    //  node 1 leader in term 5 after 81.034 ms"
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str, k: usize| -> Option<&str> {
        let i = words.iter().position(|x| *x == w)?;
        words.get(i + k).copied()
    };
    let killed = after("node", 1)?.parse().ok()?;
    let killed_term = after("killed", 3)?.trim_end_matches(',').parse().ok()?;
    let (_, rest) = line.split_once("; node ")?;
    let rest: Vec<&str> = rest.split_whitespace().collect();
    let leader = rest.first()?.parse().ok()?;
    let term = rest.get(4)?.parse().ok()?;
    let ms = rest.get(6)?.parse().ok()?;
    Some((killed, killed_term, leader, term, ms))
}

#[test]
fn every_trial_elects_one_new_leader_and_the_cluster_is_gone_afterwards() {
    // The bench starts the raft-server beside raft-client.
    let _ = common::server_bin();
    let mut run = Run::start(&[
        "bench",
        "--op",
        "failover",
        "--spawn",
        "3",
        "--trials",
        "5",
        "--timeouts",
        "50-100",
        "--json",
    ]);
    let done = run.finish();
    let context = format!("stdout: {}\nstderr: {}", done.stdout, done.stderr);
    assert_eq!(done.status.code(), Some(0), "{context}");

    // The contract's object, one per range.
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{context}");
    let json: Value = serde_json::from_str(lines[0]).expect("a JSON object");
    assert_eq!(json["op"], "failover", "{json}");
    assert_eq!(json["timeouts"], "50-100", "{json}");
    assert_eq!(json["trials"], 5, "{json}");
    let field = |f: &str| {
        json[f]
            .as_f64()
            .unwrap_or_else(|| panic!("no {f} in {json}"))
    };
    let (min, p50, p90, max) = (
        field("min_ms"),
        field("p50_ms"),
        field("p90_ms"),
        field("max_ms"),
    );
    // Sanity only (a loaded machine, split votes): above zero, ordered, and below the
    // range's maximum plus a generous margin.
    assert!(
        0.0 < min && min <= p50 && p50 <= p90 && p90 <= max,
        "{json}"
    );
    assert!(max < 100.0 + 3000.0, "{json}");

    // Every trial on stderr: a new leader, in a higher term, other than the node killed;
    // the next trial kills that leader (the killed node came back as a follower).
    let trials: Vec<_> = done
        .stderr
        .lines()
        .filter(|l| l.contains(" killed in term "))
        .map(|l| parse_trial(l).unwrap_or_else(|| panic!("a trial line: {l:?}")))
        .collect();
    assert_eq!(trials.len(), 5, "{context}");
    for (i, &(killed, killed_term, leader, term, ms)) in trials.iter().enumerate() {
        assert_ne!(leader, killed, "trial {}: {context}", i + 1);
        assert!(term > killed_term, "trial {}: {context}", i + 1);
        assert!(ms > 0.0, "trial {}: {context}", i + 1);
        if let Some(&(next_killed, next_term, ..)) = trials.get(i + 1) {
            assert_eq!(next_killed, leader, "trial {}: {context}", i + 2);
            assert!(next_term >= term, "trial {}: {context}", i + 2);
        }
    }
    let slowest = trials.iter().map(|t| t.4).fold(0.0, f64::max);
    assert!((slowest - max).abs() < 0.01, "{json} vs {trials:?}");

    // Its cluster is gone: no process left, its directory removed.
    assert_eq!(run.leftovers(), Vec::<i32>::new(), "{context}");
    let left: Vec<_> = std::fs::read_dir(run.dir.path())
        .expect("read the run's TMPDIR")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "stdout" && name != "stderr")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn bad_ranges_and_flags_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["--timeouts", "300-150"], "less than the maximum"),
        (vec!["--timeouts", "150-150"], "less than the maximum"),
        (vec!["--timeouts", "0-10"], "0 ms"),
        (vec!["--timeouts", "1-5"], "heartbeat"),
        (vec!["--timeouts", "abc"], "not a range"),
        (vec!["--timeouts", "12-x"], "not a whole number"),
        (vec!["--timeouts", "12-24,"], "empty range"),
        (vec!["--timeouts", "150-300,2000-3000"], "at most 1000"),
        (vec!["--spawn", "2"], "--spawn 2"),
        (vec!["--trials", "0"], "--trials 0"),
    ] {
        let mut full = vec!["bench", "--op", "failover"];
        full.extend(&args);
        let mut run = Run::start(&full);
        let done = run.finish();
        let what = format!(
            "{args:?}: stdout {:?} stderr {:?}",
            done.stdout, done.stderr
        );
        assert_eq!(done.status.code(), Some(2), "{what}");
        assert_eq!(done.stderr.lines().count(), 1, "{what}");
        assert!(done.stderr.starts_with("error: "), "{what}");
        assert!(done.stderr.contains(needle), "{what}");
        assert!(done.stdout.is_empty(), "{what}");
    }
    // The failover flags mean nothing to the other benchmarks.
    let mut run = Run::start(&["bench", "--op", "put", "--trials", "5"]);
    let done = run.finish();
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("--op failover only"),
        "{}",
        done.stderr
    );
}
