//! Bad input and unreachable clusters at the client: clear messages and the contract's exit
//! codes (2 usage, 3 unavailable, 4 rejected), and the server refuses what the client would.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, assert_exit, block_on, client_bin, free_port_base};
use kv_proto::kv::kv_api_client::KvApiClient;
use kv_proto::kv::{PutRequest, RequestId};

#[test]
fn bad_keys_and_values_are_rejected_with_exit_4() {
    let cluster = Cluster::start(1);
    assert_exit(&cluster.client(&["put", "", "v"]), 4, "empty key");
    assert_exit(&cluster.client(&["get", ""]), 4, "empty key on get");
    let long_key = "k".repeat(4097);
    let out = cluster.client(&["put", &long_key, "v"]);
    assert_exit(&out, 4, "key over 4 KiB");
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 KiB"));
    let big = cluster.data_path().join("big");
    std::fs::write(&big, vec![b'x'; 1024 * 1024 + 1]).expect("write big value");
    let out = cluster.client(&["put", "k", "--value-file", &big.to_string_lossy()]);
    assert_exit(&out, 4, "value over 1 MiB");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 MiB"));
    // A key of exactly 4 KiB and a value of exactly 1 MiB are fine.
    let max_key = "k".repeat(4096);
    assert_exit(&cluster.client(&["put", &max_key, "v"]), 0, "key of 4 KiB");
    std::fs::write(&big, vec![b'x'; 1024 * 1024]).expect("write max value");
    let out = cluster.client(&["put", "k", "--value-file", &big.to_string_lossy()]);
    assert_exit(&out, 0, "value of 1 MiB");
}

#[test]
fn the_server_rejects_oversized_input_too() {
    let cluster = Cluster::start(1);
    block_on(async {
        let mut api = KvApiClient::connect(format!("http://{}", cluster.api_addr(1)))
            .await
            .expect("connect")
            .max_encoding_message_size(8 * 1024 * 1024);
        let put = |key: String, value: Vec<u8>| PutRequest {
            key,
            value,
            id: Some(RequestId {
                client_id: 1,
                seq: 1,
            }),
            timing: false,
        };
        for (what, req) in [
            ("empty key", put(String::new(), b"v".to_vec())),
            ("long key", put("k".repeat(4097), b"v".to_vec())),
            ("big value", put("k".into(), vec![0; 1024 * 1024 + 1])),
        ] {
            let err = api.put(req).await.expect_err(what);
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
        }
    });
    // The node is still healthy after refusing them.
    cluster.put("ok", "yes");
}

#[test]
fn a_cluster_that_is_not_running_gives_exit_3_and_says_nothing_was_written() {
    let base = free_port_base(3);
    let peers: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.1:{}", base + 1000 + i))
        .collect();
    let start = Instant::now();
    let out = Command::new(client_bin())
        .args([
            "--peers",
            &peers.join(","),
            "--timeout",
            "1",
            "-v",
            "put",
            "k",
            "v",
        ])
        .output()
        .expect("run client");
    let took = start.elapsed();
    assert_exit(&out, 3, "put to a cluster that is not running");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // No node ever accepted a connection, so the write was certainly not applied: not
    // "outcome unknown", and every attempt is a first send, never a resend.
    assert!(
        stderr.contains("nothing was written: no node accepted a connection"),
        "stderr should say nothing was written: {stderr}"
    );
    assert!(
        stderr.contains("./playground"),
        "stderr should say how to start the cluster: {stderr}"
    );
    assert!(!stderr.contains("outcome is unknown"), "{stderr}");
    assert!(!stderr.contains("same request id"), "{stderr}");
    assert!(took < Duration::from_secs(4), "--timeout 1 took {took:?}");
    let out = Command::new(client_bin())
        .args(["--peers", &peers.join(","), "--timeout", "1", "get", "k"])
        .output()
        .expect("run client");
    assert_exit(&out, 3, "get from a cluster that is not running");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no node accepted a connection"), "{stderr}");
}

#[test]
fn pointed_at_the_peer_ports_the_client_names_the_mistake() {
    let cluster = Cluster::start(1);
    let peer_port = cluster.base + 1;
    let out = cluster.client_at(
        &format!("127.0.0.1:{peer_port}"),
        &["--timeout", "30", "put", "k", "v"],
    );
    assert_exit(&out, 3, "put to a peer port");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not serve the client API")
            && stderr.contains(&format!("--peers 127.0.0.1:{}", peer_port + 1000)),
        "stderr should name the likely mistake and the address to use: {stderr}"
    );
    assert!(!stderr.contains(": )"), "no empty reason: {stderr}");
}

#[test]
fn server_syntax_in_client_peers_is_refused_at_once() {
    let out = Command::new(client_bin())
        .args(["--peers", "1=127.0.0.1:7001", "--timeout", "30", "get", "k"])
        .output()
        .expect("run client");
    assert_exit(&out, 2, "--peers in raft-server's syntax");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without ids") && stderr.contains("raft-server's --peers"),
        "stderr should explain the two syntaxes: {stderr}"
    );
}

#[test]
fn usage_errors_give_exit_2() {
    let run = |args: &[&str]| {
        Command::new(client_bin())
            .args(args)
            .output()
            .expect("run client")
    };
    assert_exit(&run(&["put", "only-key"]), 2, "put without a value");
    assert_exit(&run(&["frobnicate"]), 2, "unknown command");
    assert_exit(
        &run(&["--timeout", "-1", "get", "k"]),
        2,
        "negative timeout",
    );
    assert_exit(
        &run(&["--peers", "not an address", "get", "k"]),
        2,
        "bad address",
    );
}

#[test]
fn the_server_applies_each_request_id_once_and_refuses_bad_ones() {
    let cluster = Cluster::start(1);
    block_on(async {
        let mut api = KvApiClient::connect(format!("http://{}", cluster.api_addr(1)))
            .await
            .expect("connect");
        let put = |seq: u64, value: &str| PutRequest {
            key: "k".into(),
            value: value.as_bytes().to_vec(),
            id: Some(RequestId { client_id: 99, seq }),
            timing: false,
        };
        let first = api.put(put(2, "two")).await.expect("seq 2").into_inner();
        assert!(!first.duplicate);
        // The same request again (a retry): not applied twice, same answer.
        let again = api
            .put(put(2, "two"))
            .await
            .expect("seq 2 again")
            .into_inner();
        assert!(again.duplicate);
        assert_eq!(again.index, first.index);
        // An older request of the same client: not applied, and not reported as a success.
        let err = api.put(put(1, "one")).await.expect_err("seq 1 after seq 2");
        assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
        // Unset or zero request ids are refused: they would make dedup meaningless.
        for id in [
            None,
            Some(RequestId {
                client_id: 0,
                seq: 1,
            }),
            Some(RequestId {
                client_id: 5,
                seq: 0,
            }),
        ] {
            let req = PutRequest {
                key: "k".into(),
                value: b"x".to_vec(),
                id,
                timing: false,
            };
            let err = api.put(req).await.expect_err("bad request id");
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        }
    });
    let out = cluster.client(&["get", "k"]);
    assert_exit(&out, 0, "get k");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "two");
}

#[test]
fn help_shows_examples_every_default_and_the_interactive_client() {
    for flag in ["-h", "--help"] {
        let out = Command::new(client_bin())
            .arg(flag)
            .output()
            .expect("run client");
        assert_exit(&out, 0, flag);
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "Without a subcommand it opens the interactive client",
            "Examples:",
            "raft-client put greeting",
            "[default: 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003]",
            "[default: 5;",
            "completions",
        ] {
            assert!(
                help.contains(needle),
                "{flag}: missing {needle:?} in:\n{help}"
            );
        }
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(client_bin())
            .args(["completions", shell])
            .output()
            .expect("run client");
        assert_exit(&out, 0, shell);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("raft-client") && script.contains("status"),
            "{shell}: {script}"
        );
    }
    let out = Command::new(client_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run client");
    assert_exit(&out, 2, "an unknown shell");
}
