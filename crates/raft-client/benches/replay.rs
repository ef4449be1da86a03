//! How long a replay takes to open a recording and to move across it.
//!
//! ```text
//! cargo bench -p raft-client --bench replay                       # a made-up 60 s recording
//! RECORDING=run.jsonl.zst cargo bench -p raft-client --bench replay  # a real one
//! ```
//! The made-up recording is what `record` writes of 3 nodes under 1,000 writes/s for 60 s:
//! per write the leader's entry and two appends, their receipts, answers and the followers'
//! entries, and state records; heartbeats and a tick's state ten times a second; an
//! election every 10 s. It is written to a temp file and read back, so the figures include
//! parsing. Printed: the open (read, parse, index), then jumps: to the end, to the middle,
//! a record back from there (the worst case: from a checkpoint), and every notable moment.

use std::io::Write as _;
use std::time::Instant;

use kv_proto::watch::{self as pb, watch_record::Kind};
use raft_client::record::file::Writer;
use raft_client::record::format::{Header, NodeAddr, RecordLine};
use raft_client::replay;

fn rec(t_us: u64, node: u64, kind: Kind) -> pb::WatchRecord {
    pb::WatchRecord {
        t_us,
        seq: 0,
        node,
        kind: Some(kind),
    }
}

fn msg(t: &str, from: u64, to: u64, term: u64, index: u64, id: u64) -> pb::PeerMessage {
    pb::PeerMessage {
        msg_id: id,
        msg_type: t.into(),
        from,
        to,
        term,
        index,
        entries: u32::from(t == "MsgAppend"),
        commit: index.saturating_sub(1),
        fate: "delivered".into(),
        ..Default::default()
    }
}

fn state(node: u64, role: &str, term: u64, index: u64, elapsed: u64) -> Kind {
    Kind::State(pb::NodeState {
        role: role.into(),
        term,
        leader: 1 + term % 3,
        commit: index,
        applied: index,
        last_index: index,
        voters: vec![1, 2, 3],
        election_elapsed: elapsed,
        election_timeout: 12,
        heartbeat_timeout: 2,
        tick_ms: 100,
        vote: node,
        ..Default::default()
    })
}

/// A made-up 60 s recording, written to `path`.
fn make(path: &std::path::Path) -> u64 {
    let mut out = Writer::create(path).expect("create");
    let header = Header::new(
        (1..=3)
            .map(|id| NodeAddr {
                id,
                api_addr: format!("127.0.0.1:{}", 7000 + id),
            })
            .collect(),
    );
    serde_json::to_writer(&mut out, &header).expect("header");
    out.write_all(b"\n").expect("newline");
    let mut n = 0u64;
    let mut put = |r: pb::WatchRecord| {
        if let Some(line) = RecordLine::of(&r) {
            serde_json::to_writer(&mut out, &line).expect("line");
            out.write_all(b"\n").expect("newline");
            n += 1;
        }
    };
    let t0 = 1_800_000_000_000_000u64;
    let mut id = 1u64;
    let mut index = 1u64;
    for ms in 0..60_000u64 {
        let t = t0 + ms * 1000;
        let term = 2 + ms / 10_000;
        let leader = 1 + term % 3;
        let followers: Vec<u64> = (1..=3).filter(|f| *f != leader).collect();
        if ms % 10_000 == 0 {
            let c = followers[0];
            put(rec(t, c, state(c, "PreCandidate", term - 1, index, 12)));
            put(rec(t + 1, c, state(c, "Candidate", term, index, 0)));
            put(rec(t + 2, leader, state(leader, "Leader", term, index, 0)));
        }
        // A write a millisecond.
        index += 1;
        put(rec(
            t,
            leader,
            Kind::Entry(pb::LogEntry {
                index,
                term,
                kind: "cmd".into(),
                summary: format!("PUT k{} = v{index}", index % 1000),
            }),
        ));
        for (k, f) in followers.iter().enumerate() {
            let dt = 100 + k as u64 * 30;
            put(rec(
                t + dt,
                leader,
                Kind::Send(msg("MsgAppend", leader, *f, term, index - 1, id)),
            ));
            put(rec(
                t + dt + 150,
                *f,
                Kind::Recv(msg("MsgAppend", leader, *f, term, index - 1, id)),
            ));
            put(rec(
                t + dt + 160,
                *f,
                Kind::Entry(pb::LogEntry {
                    index,
                    term,
                    kind: "cmd".into(),
                    summary: format!("PUT k{} = v{index}", index % 1000),
                }),
            ));
            put(rec(
                t + dt + 300,
                *f,
                Kind::Send(msg("MsgAppendResponse", *f, leader, term, index, id + 1)),
            ));
            put(rec(
                t + dt + 450,
                leader,
                Kind::Recv(msg("MsgAppendResponse", *f, leader, term, index, id + 1)),
            ));
            id += 2;
        }
        put(rec(
            t + 600,
            leader,
            state(leader, "Leader", term, index, 0),
        ));
        if ms % 100 == 0 {
            for f in &followers {
                put(rec(
                    t + 700,
                    *f,
                    state(*f, "Follower", term, index, (ms / 100) % 10),
                ));
            }
        }
    }
    out.finish().expect("finish");
    n
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = match std::env::var_os("RECORDING") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let path = dir.path().join("made-up.jsonl");
            let started = Instant::now();
            let n = make(&path);
            println!(
                "made up a 60 s recording: {n} records, {:.1} MB, in {:.1} s",
                std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            path
        }
    };
    let opened = replay::open(&path, None).expect("open the recording");
    let mut player = opened.player;
    let t = &mut player.timeline;
    println!(
        "open {}: {} records, {} notable moments, in {:.2} s",
        path.display(),
        t.len(),
        t.moments().len(),
        opened.took.as_secs_f64()
    );
    let time = |what: &str,
                t: &mut replay::timeline::Timeline,
                f: &dyn Fn(&mut replay::timeline::Timeline)| {
        let started = Instant::now();
        f(t);
        println!("{what}: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    };
    time("jump to the end", t, &|t| t.seek(t.len()));
    time("jump to the middle", t, &|t| t.seek(t.len() / 2 + 77));
    time("one record back from there", t, &|t| t.step(-1));
    time("jump to the start", t, &|t| t.seek(0));
    let started = Instant::now();
    let mut visited = 0;
    while t.next_moment().is_some() {
        visited += 1;
    }
    let each = started.elapsed().as_secs_f64() * 1e3 / f64::from(visited.max(1));
    println!("every notable moment in turn: {visited} jumps, {each:.1} ms each");
}
