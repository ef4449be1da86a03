//! `raft-client bench`: a real run against a real 3-node cluster, the same loop against an
//! in-process stand-in for etcd's gRPC API (so the etcd target is tested without etcd), and
//! the bench's argument errors (exit 2, one line).

mod common;

use std::collections::HashMap;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Cluster, assert_exit, assert_ok, client_bin, free_port_base};
use kv_proto::etcd::kv_server::{Kv, KvServer};
use kv_proto::etcd::maintenance_server::{Maintenance, MaintenanceServer};
use kv_proto::etcd::{
    KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader, StatusRequest,
    StatusResponse,
};
use serde_json::Value;
use tonic::{Request, Response, Status};

/// The `bench --json` object, checked against the contract: every field present, the run
/// did something and nothing failed.
fn parse_bench_json(out: &Output, target: &str, op: &str, clients: u64) -> Value {
    assert_ok(out, "bench");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("bench --json printed {text:?}: {e}"));
    for field in [
        "target",
        "op",
        "clients",
        "ops",
        "failed",
        "ops_per_sec",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
    ] {
        assert!(json.get(field).is_some(), "no {field} in {json}");
    }
    assert_eq!(json["target"], target, "{json}");
    assert_eq!(json["op"], op, "{json}");
    assert_eq!(json["clients"].as_u64(), Some(clients), "{json}");
    assert!(json["ops"].as_u64().is_some_and(|n| n > 0), "{json}");
    assert_eq!(json["failed"].as_u64(), Some(0), "{json}");
    assert!(
        json["ops_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{json}"
    );
    let p50 = json["p50_ms"].as_f64().unwrap_or(-1.0);
    let p99 = json["p99_ms"].as_f64().unwrap_or(-1.0);
    let max = json["max_ms"].as_f64().unwrap_or(-1.0);
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{json}");
    json
}

#[test]
fn bench_measures_a_real_cluster() {
    let cluster = Cluster::start(3);
    let out = cluster.client(&["bench", "--seconds", "1", "--clients", "4", "--json"]);
    parse_bench_json(&out, "playground", "put", 4);

    // Reads: the warm-up writes every key first, so every read finds its key.
    let out = cluster.client(&[
        "bench",
        "--op",
        "mixed",
        "--read-percent",
        "80",
        "--keys",
        "20",
        "--seconds",
        "1",
        "--clients",
        "2",
        "--json",
    ]);
    parse_bench_json(&out, "playground", "mixed", 2);
    assert_eq!(cluster.get("bench-00000019").len(), 100, "warm-up value");

    // Without --json: the human summary.
    let out = cluster.client(&["bench", "--op", "get", "--seconds", "1", "--clients", "1"]);
    assert_ok(&out, "bench get");
    let text = String::from_utf8_lossy(&out.stdout);
    for part in ["playground get: 1 client", "Requests/sec:", "99.9% in"] {
        assert!(text.contains(part), "no {part:?} in {text}");
    }
}

#[test]
fn snapshots_taken_under_load_stall_no_write() {
    // A snapshot every 300 entries of a state machine that grows to several MiB (4 KiB
    // values), while 16 clients write as fast as they can: the driver captures the state in
    // a moment and a thread of its own writes it, so no write waits for one. The bounds are
    // loose (a busy 2-core machine runs this), far below what encoding and writing every
    // snapshot on the driver cost.
    let cluster = Cluster::start_with(3, &["--snapshot-every", "300"]);
    // Rounds of 4 s until the leader has taken three snapshots: how many entries one round
    // writes depends on the machine (a slow disk day wrote fewer than 900), and every round
    // must keep its writes fast.
    let mut rounds = 0;
    let (leader, status) = loop {
        rounds += 1;
        let out = cluster.client(&[
            "--timeout",
            "10",
            "bench",
            "--seconds",
            "4",
            "--clients",
            "16",
            "--keys",
            "4000",
            "--value-size",
            "4096",
            "--json",
        ]);
        let json = parse_bench_json(&out, "playground", "put", 16);
        let max = json["max_ms"].as_f64().unwrap_or(f64::MAX);
        assert!(
            max < 2000.0,
            "a write took {max} ms while snapshots were taken (round {rounds}): {json}"
        );
        let leader = cluster.wait_leader();
        let log = cluster.log(leader);
        let taken = log.matches("snapshot at index").count();
        if taken >= 3 {
            break (leader, cluster.status());
        }
        assert!(
            rounds < 6,
            "{taken} snapshots in {rounds} rounds of 4 s:\n{log}"
        );
    };
    let s = &status[leader as usize - 1];
    let snapshot = s["snapshot_index"].as_u64().unwrap_or(0);
    assert!(
        snapshot > 0,
        "the leader took no snapshot: {s}\n{}",
        cluster.log(leader)
    );
    // What the driver itself spent on its latest snapshot (capture + record).
    for s in &status {
        let stall = s["snapshot_stall_us"].as_u64().unwrap_or(u64::MAX);
        assert!(
            stall < 500_000,
            "a snapshot stalled a driver {stall} us: {s}"
        );
    }
    assert!(
        s["data_bytes"].as_u64().unwrap_or(0) > 1_000_000,
        "the state should hold MiBs: {s}"
    );
    assert!(s["disk_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
    assert!(s["rss_bytes"].as_u64().unwrap_or(0) > 0, "{s}");
}

/// What the stand-in for etcd saw.
#[derive(Default)]
struct Seen {
    data: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    puts: AtomicU64,
    ranges: AtomicU64,
    serializable_ranges: AtomicU64,
    statuses: AtomicU64,
}

/// Just enough of etcd's KV and Maintenance services: one member, its own leader.
#[derive(Clone, Default)]
struct FakeEtcd(Arc<Seen>);

const MEMBER_ID: u64 = 0x8e9e05c52164694d;

fn header() -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: 1,
        member_id: MEMBER_ID,
        revision: 1,
        raft_term: 2,
    })
}

#[tonic::async_trait]
impl Kv for FakeEtcd {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        let req = req.into_inner();
        self.0.ranges.fetch_add(1, Ordering::Relaxed);
        if req.serializable || !req.range_end.is_empty() {
            self.0.serializable_ranges.fetch_add(1, Ordering::Relaxed);
        }
        let data = self.0.data.lock().expect("lock");
        let kvs: Vec<KeyValue> = data
            .get(&req.key)
            .map(|v| KeyValue {
                key: req.key.clone(),
                value: v.clone(),
                ..KeyValue::default()
            })
            .into_iter()
            .collect();
        Ok(Response::new(RangeResponse {
            header: header(),
            count: kvs.len() as i64,
            kvs,
            more: false,
        }))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let req = req.into_inner();
        self.0.puts.fetch_add(1, Ordering::Relaxed);
        self.0.data.lock().expect("lock").insert(req.key, req.value);
        Ok(Response::new(PutResponse { header: header() }))
    }
}

#[tonic::async_trait]
impl Maintenance for FakeEtcd {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        self.0.statuses.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(StatusResponse {
            header: header(),
            version: "3.4.23".into(),
            leader: MEMBER_ID,
            ..StatusResponse::default()
        }))
    }
}

/// Serves `fake` on a free loopback port from a background thread; returns the address.
fn serve(fake: FakeEtcd) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        common::block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("local addr"))
                .expect("send addr");
            tonic::transport::Server::builder()
                .add_service(KvServer::new(fake.clone()))
                .add_service(MaintenanceServer::new(fake))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .expect("serve");
        })
    });
    rx.recv().expect("fake etcd address").to_string()
}

#[test]
fn bench_drives_etcds_api_with_the_same_loop() {
    let fake = FakeEtcd::default();
    let addr = serve(fake.clone());
    let out = std::process::Command::new(client_bin())
        .args([
            "--peers", &addr, "bench", "--target", "etcd", "--op", "mixed",
        ])
        .args(["--keys", "20", "--seconds", "1", "--clients", "3", "--json"])
        .output()
        .expect("run raft-client");
    let json = parse_bench_json(&out, "etcd", "mixed", 3);
    let seen = &fake.0;
    assert!(seen.statuses.load(Ordering::Relaxed) >= 1, "leader lookup");
    // The warm-up wrote all 20 keys, and the measured loop both wrote and read.
    assert_eq!(seen.data.lock().expect("lock").len(), 20);
    let ops = json["ops"].as_u64().unwrap_or(0);
    let puts = seen.puts.load(Ordering::Relaxed);
    let ranges = seen.ranges.load(Ordering::Relaxed);
    assert!(puts > 20 && ranges > 0, "puts {puts}, ranges {ranges}");
    assert_eq!(puts - 20 + ranges, ops, "every op is one RPC");
    assert_eq!(
        seen.serializable_ranges.load(Ordering::Relaxed),
        0,
        "reads are linearizable single-key ranges"
    );
}

#[test]
fn bench_argument_errors_exit_2_with_one_line() {
    // Nothing listens here: flags are checked before anything is sent.
    let base = free_port_base(1);
    let peers = format!("127.0.0.1:{}", base + 1001);
    for args in [
        &["--clients", "0"][..],
        &["--clients", "-3"],
        &["--seconds", "0"],
        &["--seconds", "-1"],
        &["--seconds", "nan"],
        &["--op", "scan"],
        &["--op", "mixed", "--read-percent", "101"],
        &["--target", "redis"],
        &["--value-size", "1048577"],
        &["--keys", "0"],
    ] {
        let out = std::process::Command::new(client_bin())
            .args(["--peers", &peers, "bench"])
            .args(args)
            .output()
            .expect("run raft-client");
        let what = format!("bench {}", args.join(" "));
        assert_exit(&out, 2, &what);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr:?}");
        assert!(stderr.starts_with("error: --"), "{what}: {stderr:?}");
        assert!(out.stdout.is_empty(), "{what}");
    }
}

#[test]
fn bench_against_nothing_exits_3() {
    // Ports held by listeners that never answer: nobody else (another test process on this
    // machine) can start a server there meanwhile, and the client sees silent nodes.
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let peers: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect();
    for target in ["playground", "etcd"] {
        let out = std::process::Command::new(client_bin())
            .args(["--peers", &peers.join(","), "--timeout", "1", "bench"])
            .args(["--target", target, "--seconds", "1", "--json"])
            .output()
            .expect("run raft-client");
        assert_exit(&out, 3, target);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{target}: {stderr:?}");
        assert!(out.stdout.is_empty(), "{target}");
    }
    drop(listeners);
}
