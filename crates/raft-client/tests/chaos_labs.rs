//! `chaos` on clusters with a protection switched off (`--server-args`): it must find the
//! damage in at least 4 of 5 seeds, and with every protection on it must find none.
//!
//! - `--read-mode lease` with `--faults freeze`: a frozen leader, thawed, answers a read
//!   from its lease before it reads what the new leader sent (a read sent to it during the
//!   freeze, after the new leader's write): stale.
//! - `--unsafe ack-on-append` with `--faults isolate`: an isolated leader acknowledges
//!   writes its successor never has: lost.
//! - `--unsafe forget-vote` (with pre-vote and check-quorum off: plain Raft) with `--faults
//!   step`: the voter crashed between two candidates' requests of one term grants both, and
//!   two leaders commit different writes at the same indexes.

mod common;

use std::process::Output;

use serde_json::Value;

/// One `chaos --spawn 3` run of `seconds`, with `args` after.
fn run(seed: u64, seconds: u64, args: &[&str]) -> (Output, Value) {
    let (seconds, seed) = (seconds.to_string(), seed.to_string());
    let mut all = vec!["--spawn", "3", "--seconds", &seconds, "--seed", &seed];
    all.extend_from_slice(args);
    common::chaos_json(&all)
}

/// Runs seeds 1-5 until four found a violation (or two did not); fails unless four did.
fn caught_in_four_of_five(what: &str, args: &[&str]) {
    let _ = common::server_bin();
    let mut caught = Vec::new();
    let mut missed = Vec::new();
    for seed in 1..=5 {
        let (out, v) = run(seed, 15, args);
        if v["verdict"] == "violation" {
            assert_eq!(out.status.code(), Some(5), "a violation exits 5: {v}");
            assert!(
                !v["failing_keys"].as_array().is_none_or(Vec::is_empty),
                "a violation names its keys: {v}"
            );
            caught.push(seed);
        } else {
            missed.push(format!(
                "seed {seed}: {v}\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if caught.len() >= 4 || missed.len() >= 2 {
            break;
        }
    }
    assert!(
        caught.len() >= 4,
        "{what}: expected a violation in at least 4 of 5 seeds; caught in seeds {caught:?}, \
         not in:\n{}",
        missed.join("\n")
    );
}

#[test]
fn lease_reads_after_a_freeze_are_caught_in_four_of_five_seeds() {
    caught_in_four_of_five(
        "--read-mode lease, --faults freeze",
        &["--server-args", "--read-mode lease", "--faults", "freeze"],
    );
}

#[test]
fn early_acknowledgements_are_caught_in_four_of_five_seeds() {
    caught_in_four_of_five(
        "--unsafe ack-on-append, --faults isolate",
        &[
            "--server-args",
            "--unsafe ack-on-append",
            "--faults",
            "isolate",
        ],
    );
}

#[test]
fn a_forgetful_voter_crashed_mid_election_is_caught_in_four_of_five_seeds() {
    caught_in_four_of_five(
        "--unsafe forget-vote (plain Raft), --faults step",
        &[
            "--server-args",
            "--unsafe forget-vote --no-pre-vote --no-check-quorum",
            "--faults",
            "step",
        ],
    );
}

#[test]
fn with_the_vote_on_disk_the_same_crashes_find_nothing() {
    let _ = common::server_bin();
    for seed in 1..=2 {
        let (out, v) = run(
            seed,
            15,
            &[
                "--server-args",
                "--no-pre-vote --no-check-quorum",
                "--faults",
                "step",
            ],
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            v["verdict"], "linearizable",
            "seed {seed}: {v}
stderr: {said}"
        );
        assert!(
            said.contains("it refused"),
            "seed {seed}: expected a staged crash mid-election whose voter refused the \
             second candidate; stderr: {said}"
        );
    }
}

#[test]
fn with_every_protection_on_the_same_faults_find_nothing() {
    let _ = common::server_bin();
    for seed in 1..=2 {
        let (out, v) = run(seed, 15, &["--faults", "freeze,isolate"]);
        assert_eq!(
            v["verdict"],
            "linearizable",
            "seed {seed}: {v}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
