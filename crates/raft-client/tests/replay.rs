//! Replays of real recordings: a recording of a cluster (the leader killed, a write, a
//! partition and its heal) replays to the same model the live view built at every
//! notable moment, and the same again after stepping back from the end to the start and
//! forward; its notable moments land on the election, the new leader, the fault and the
//! heal; a recording whose recorder was killed replays up to its last whole record and
//! says so; a file of another format or version is refused with exit 2 and one line.

mod common;

use std::process::Stdio;
use std::sync::Arc;

use common::{Cluster, assert_ok, interrupt, wait_for};
use raft_client::SmartClient;
use raft_client::replay::moments::MomentKind;
use raft_client::replay::timeline::Timeline;
use raft_client::view::model::ClusterModel;
use raft_client::view::source::{self, Feed};

/// What a model says of each node that a replay must reproduce: role, term, leader,
/// commit, applied, last index, voters, and its log's (index, term) pairs.
type Projection = Vec<(
    u64,
    String,
    u64,
    u64,
    u64,
    u64,
    u64,
    Vec<u64>,
    Vec<(u64, u64)>,
)>;

fn project(m: &ClusterModel, skip: Option<u64>) -> Projection {
    m.nodes()
        .iter()
        .filter(|(id, _)| Some(**id) != skip)
        .filter_map(|(id, n)| {
            let s = n.state.as_ref()?;
            Some((
                *id,
                s.role.clone(),
                s.term,
                s.leader,
                s.commit,
                s.applied,
                s.last_index,
                s.voters.clone(),
                n.log.iter().map(|(i, c)| (*i, c.term)).collect(),
            ))
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_recording_replays_to_the_live_views_model_and_its_moments_are_the_runs() {
    let mut c = Cluster::start(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.jsonl.zst");
    let path_arg = path.to_string_lossy().to_string();

    // The live view's records, as its source hands them over.
    let rt = runtime();
    let addrs: Vec<String> = c.api_addrs().split(',').map(str::to_string).collect();
    let client =
        Arc::new(SmartClient::new(addrs, std::time::Duration::from_secs(2)).expect("client"));
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let live = rt.spawn(async move {
        let (mut feed, supervisor) = source::spawn(client);
        let mut records = Vec::new();
        loop {
            tokio::select! {
                f = feed.recv() => match f {
                    Some(Feed::Record(r)) => records.push(*r),
                    Some(Feed::Down(..)) => {}
                    None => break,
                },
                _ = &mut stop_rx => break,
            }
        }
        supervisor.abort();
        records
    });
    let mut recorder = c.background(&["record", &path_arg], Stdio::null());
    wait_for("the recording to start", || {
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > 0 => Ok(()),
            _ => Err("no file yet".to_string()),
        }
    });

    let old = c.wait_leader();
    c.put("a", "1");
    c.kill(old);
    wait_for("a new leader", || {
        let s = c.status();
        s.iter()
            .find(|n| n["reachable"] == true && n["role"] == "Leader")
            .and_then(|n| n["id"].as_u64())
            .ok_or_else(|| format!("{s:?}"))
    });
    c.put("b", "2");
    c.spawn(old);
    // What a node sends just before a SIGKILL is lost to each watcher differently (the
    // batch under way dies with it), and a restarted node is watched again within half a
    // second: that node is compared once it has been back a while.
    let back_us = raft_client::view::now_us() + 2_000_000;
    let leader = c.wait_leader();
    // A node that was never killed: the fault is on every stream.
    let follower = (1..=3)
        .find(|i| *i != leader && *i != old)
        .or_else(|| (1..=3).find(|i| *i != leader))
        .unwrap_or(1);
    assert_ok(
        &c.client(&["fault", "isolate", &follower.to_string()]),
        "isolate",
    );
    c.put("c", "3");
    assert_ok(&c.client(&["fault", "heal"]), "heal");
    let leader = c.wait_leader();
    c.put("d", "4");
    let applied = c.applied_of(leader);
    for id in 1..=3 {
        c.wait_applied(id, applied);
    }

    interrupt(&recorder);
    let done = recorder.wait().expect("the recorder ends");
    assert!(done.success(), "record ended with {done:?}");
    let _ = stop_tx.send(());
    let live_records = rt.block_on(live).expect("the live source");

    let opened = raft_client::replay::open(&path, None).expect("open the recording");
    assert!(opened.cut_off.is_none(), "{:?}", opened.cut_off);
    let mut replay = opened.player.timeline;
    let mut live = Timeline::new(live_records);
    let moments = replay.moments().to_vec();

    // The moments are the run's: the election after the kill, the new leader, the fault
    // and the heal.
    let said: Vec<String> = moments.iter().map(|m| m.what.clone()).collect();
    let has = |kind: MomentKind, words: &[&str]| {
        moments
            .iter()
            .any(|m| m.kind == kind && words.iter().all(|w| m.what.contains(w)))
    };
    assert!(has(MomentKind::Election, &["asks for"]), "{said:#?}");
    assert!(has(MomentKind::Leader, &["is leader of term"]), "{said:#?}");
    assert!(
        has(
            MomentKind::Fault,
            &[&format!("node {follower}"), "isolated"]
        ),
        "{said:#?}"
    );
    assert!(has(MomentKind::Fault, &["healed"]), "{said:#?}");
    // A jump lands on its moment: just after the record that makes it.
    replay.seek(0);
    while let Some(m) = replay.next_moment().cloned() {
        assert_eq!(replay.pos(), m.index + 1, "{m:?}");
        if m.kind == MomentKind::Leader {
            let who: u64 = m.what["node ".len()..]
                .split(' ')
                .next()
                .and_then(|w| w.parse().ok())
                .expect("a node id");
            let role = replay
                .model()
                .node(who)
                .and_then(|n| n.state.as_ref())
                .map(|s| s.role.clone());
            assert_eq!(role.as_deref(), Some("Leader"), "at {m:?}");
        }
    }

    // At every moment both started to see, the replay's model is the live view's.
    let start = replay.start_us().max(live.start_us()) + 500_000;
    let end = replay.end_us().min(live.end_us());
    let mut compared = 0;
    let mut at_moments = Vec::new();
    for m in moments.iter().filter(|m| m.t_us > start && m.t_us < end) {
        replay.seek_time(m.t_us);
        live.seek_time(m.t_us);
        let skip = (m.t_us < back_us).then_some(old);
        assert_eq!(
            project(replay.model(), skip),
            project(live.model(), skip),
            "the models differ at {m:?}"
        );
        at_moments.push((m.t_us, project(replay.model(), None)));
        compared += 1;
    }
    assert!(
        compared >= 3,
        "only {compared} moments to compare: {said:#?}"
    );

    // Back from the end to the start, then forward: the same models.
    replay.seek(replay.len());
    let at_end = project(replay.model(), None);
    let len = replay.len();
    for k in (0..=20).rev() {
        replay.seek(len * k / 20);
    }
    assert_eq!(replay.pos(), 0);
    for (t, expected) in at_moments.iter().rev() {
        replay.seek_time(*t);
        assert_eq!(
            &project(replay.model(), None),
            expected,
            "stepping back to {t}"
        );
    }
    for (t, expected) in &at_moments {
        replay.seek_time(*t);
        assert_eq!(
            &project(replay.model(), None),
            expected,
            "forward again to {t}"
        );
    }
    replay.seek(len);
    assert_eq!(project(replay.model(), None), at_end, "the end again");

    // `replay FILE --at T` (what chaos prints for a violation) opens at T: at the last
    // record at or before it.
    let span = (replay.end_us() - replay.start_us()) as f64 / 1e6;
    let at = (span / 2.0 * 10.0).floor() / 10.0;
    let opened = raft_client::replay::open(&path, Some(at)).expect("open at a time");
    let t = &opened.player.timeline;
    let shown = opened.player.at_seconds();
    assert!(
        shown <= at + 1e-6 && shown > at - 0.5,
        "--at {at} opened at {shown}"
    );
    assert!(
        t.pos() == t.len()
            || (t.current().map_or(0, |r| r.t_us) <= t.start_us() + (at * 1e6) as u64),
        "--at {at}: the records shown are those up to it"
    );
}

#[test]
fn a_killed_recorders_file_replays_to_its_last_whole_record_and_others_are_refused() {
    let c = Cluster::start(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("killed.jsonl");
    let mut recorder = c.background(&["record", &path.to_string_lossy()], Stdio::null());
    // Writes until the file has been flushed at least once past its header.
    let mut n = 0;
    wait_for("the recording to reach the disk", || {
        n += 1;
        c.put(&format!("k{n}"), "v");
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > 4096 => Ok(()),
            Ok(m) => Err(format!("{} bytes", m.len())),
            Err(e) => Err(e.to_string()),
        }
    });
    recorder.kill().expect("SIGKILL the recorder");
    let _ = recorder.wait();
    // Cut mid-line for sure: the last line loses its end.
    let mut bytes = std::fs::read(&path).expect("read");
    while bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&path, &bytes).expect("write");
    let whole = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    let opened = raft_client::replay::open(&path, None).expect("a cut-off file opens");
    assert_eq!(opened.player.timeline.len(), whole, "every whole record");
    let why = opened.cut_off.expect("it says it was cut off");
    assert!(why.contains("cut off"), "{why}");
    assert!(
        opened.player.said.contains("cut off"),
        "{}",
        opened.player.said
    );

    // Another format, another version: exit 2, one line.
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"hello\":1}\n").expect("write");
    let newer = dir.path().join("newer.jsonl");
    std::fs::write(
        &newer,
        "{\"format\":\"raft-playground-record\",\"version\":99,\"nodes\":[]}\n",
    )
    .expect("write");
    for (file, word) in [(&other, "not a"), (&newer, "version")] {
        let out = c.client(&["replay", &file.to_string_lossy()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(word), "{file:?}: {err}");
    }
}
