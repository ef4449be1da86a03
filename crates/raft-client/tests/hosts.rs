//! Nodes known by host names, as on real machines or in a container network: `--peers`
//! with names (looked up when connecting), a node that binds another address than the one
//! it is known by (`--listen 0.0.0.0:PORT`), a member added by name, and names that do not
//! resolve: a peer link that says so while the rest works, a member add refused, a client
//! that says so at once.
//!
//! `localhost` stands in for the machines' names: it resolves everywhere, to loopback.
//! Names under `.invalid` never resolve (RFC 6761).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, assert_exit, assert_ok, client_bin, stdout_line, wait_for};

const NOWHERE: &str = "no-such-node.invalid";

#[test]
fn a_cluster_known_by_host_names_serves_writes_and_adds_a_node_by_name() {
    let mut cluster = Cluster::unstarted(3, &[]);
    cluster.host = "localhost".to_string();
    // A fourth voter whose name never resolves: every link to it fails, and the three
    // others are still a quorum (3 of 4).
    cluster.extra_peers = vec![format!("9={NOWHERE}:{}", cluster.base + 9)];
    cluster.spawn(1);
    cluster.spawn(2);
    // Node 3 binds every interface and is known as localhost:PORT all the same.
    let listen = format!("0.0.0.0:{}", cluster.base + 3);
    cluster.spawn_with(3, &["--listen", &listen]);
    cluster.wait_leader();

    // The client is given names too, and the nodes report theirs.
    cluster.put("greeting", "hello");
    assert_eq!(cluster.get("greeting"), "hello");
    let status = cluster.status();
    assert_eq!(
        status[0]["api_addr"],
        format!("localhost:{}", cluster.base + 1001)
    );
    assert!(
        cluster
            .log(3)
            .contains(&format!("listening on 0.0.0.0:{}", cluster.base + 3)),
        "node 3 should say where it listens:\n{}",
        cluster.log(3)
    );

    // The link to node 9 says why it is down, once, in the events and the log.
    for id in 1..=3 {
        wait_for(&format!("node {id} to say node 9 does not resolve"), || {
            let log = cluster.log(id);
            let said = format!("link to node 9 down: cannot resolve {NOWHERE}");
            if log.contains(&said) {
                Ok(())
            } else {
                Err(log)
            }
        });
    }

    // Node 3, behind its --listen address, leads and takes writes.
    if cluster.wait_leader() != 3 {
        let out = cluster.client(&["transfer", "3"]);
        // It may have been elected meanwhile: then transfer refuses, saying so.
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("node 3 already leads") {
            assert_ok(&out, "transfer 3");
        }
    }
    assert_eq!(cluster.wait_leader(), 3);
    cluster.put("via", "node 3");
    let out = cluster.client_at(&cluster.api_addr(3), &["get", "via"]);
    assert_ok(&out, "get at node 3");
    assert_eq!(stdout_line(&out), "node 3");

    // A member whose name does not resolve is refused at the leader (exit 4)...
    let nowhere = format!("{NOWHERE}:{}", cluster.base + 5);
    let out = cluster.client(&["member", "add", "5", &nowhere]);
    assert_exit(&out, 4, "member add with a name that does not resolve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot resolve {NOWHERE}")), "{err}");

    // ...and one that does joins under its name, which every node learns from the log.
    let new = cluster.add_node();
    wait_for("the new node to wait to be added", || {
        let log = cluster.log(new);
        if log.contains("waiting to be added") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let at = cluster.peer_addr(new);
    assert!(at.starts_with("localhost:"), "{at}");
    let out = cluster.client(&["member", "add", &new.to_string(), &at, "--learner"]);
    assert_ok(&out, "member add by name");
    let list = cluster.client(&["member", "list"]);
    assert_ok(&list, "member list");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&at), "member list should show {at}:\n{text}");
    cluster.put("after", "join");
    let leader_applied = cluster.applied_of(3);
    cluster.wait_applied(new, leader_applied);
}

/// `raft-client --peers <peers> <args>`.
fn client(peers: &str, args: &[&str]) -> Output {
    Command::new(client_bin())
        .args(["--peers", peers])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run raft-client")
}

#[test]
fn a_client_given_names_that_do_not_resolve_says_so_at_once() {
    let nowhere = format!("{NOWHERE}:7001");
    let started = Instant::now();
    let out = client(&nowhere, &["--timeout", "30", "put", "k", "v"]);
    assert_exit(&out, 3, "put through a name that does not resolve");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the client should not wait for its 30 s deadline on a name that does not resolve"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: nothing was written: cannot resolve {NOWHERE}: "
        )),
        "{err}"
    );
    assert!(err.contains("check the host names in --peers"), "{err}");

    let out = client(&nowhere, &["status"]);
    assert_exit(&out, 3, "status of a name that does not resolve");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("unreachable: cannot resolve {NOWHERE}")),
        "{text}"
    );
}
