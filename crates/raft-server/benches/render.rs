//! How much one dashboard frame costs as the log and the store grow.
//!
//! ```text
//! cargo bench -p raft-server --bench render
//! ```
//! For 10^3, 10^5 and 10^6 entries and keys it builds a real raft-engine log and a real
//! state machine, then times gathering the visible rows and drawing a 120x40 frame of the
//! whole dashboard into ratatui's `TestBackend`, following the tail and scrolled to the
//! middle. Flat numbers across sizes mean the cost is bounded by the screen, not the data.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, HardState};
use raft_server::command::{Command, Op};
use raft_server::dashboard::app::App;
use raft_server::dashboard::ui;
use raft_server::dashboard::view::{NodeData, NodeInfo};
use raft_server::state_machine::KvStateMachine;
use raft_server::status::{NodeStatus, Role};
use raft_server::storage::EngineStorage;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
const FRAMES: u32 = 300;

fn command(i: u64) -> Command {
    Command {
        client_id: 1,
        seq: i,
        timestamp_ms: 0,
        op: Op::Put {
            key: format!("key-{i:08}"),
            value: format!("value number {i}").into_bytes(),
        },
    }
}

/// A real log and state machine with `n` entries and keys.
fn build(n: u64, dir: &std::path::Path) -> (NodeData, NodeStatus) {
    let (storage, _) = EngineStorage::open(dir, 1, 1, &[1]).expect("open storage");
    let mut sm = KvStateMachine::new();
    let batch = 10_000;
    let mut next = 1;
    while next <= n {
        let end = (next + batch).min(n + 1);
        let entries: Vec<Entry> = (next..end)
            .map(|i| Entry {
                index: i,
                term: 1,
                data: command(i).encode().into(),
                ..Entry::default()
            })
            .collect();
        storage.persist(&entries, None).expect("persist");
        next = end;
    }
    for i in 1..=n {
        sm.apply(i, 1, &command(i));
    }
    let hs = HardState {
        term: 1,
        commit: n,
        ..HardState::default()
    };
    storage.persist(&[], Some(&hs)).expect("hard state");
    let status = NodeStatus {
        id: 1,
        role: Role::Leader,
        term: 1,
        leader_id: 1,
        commit_index: n,
        applied_index: n,
        last_index: n,
        persisted_index: n,
        first_index: 1,
        key_count: sm.len(),
        ..NodeStatus::default()
    };
    let data = NodeData::new(
        storage,
        Arc::new(RwLock::new(sm)),
        raft_server::transport::fault::FaultFilter::new(1, true),
    );
    (data, status)
}

/// Mean time to gather and draw one frame with `app`.
fn time_frames(app: &App, data: &NodeData, status: &NodeStatus) -> Duration {
    let info = NodeInfo {
        data_dir: "bench".into(),
        peer_addr: "127.0.0.1:6001".into(),
        api_addr: "127.0.0.1:7001".into(),
    };
    let pages = ui::page_sizes(Rect::new(0, 0, WIDTH, HEIGHT), false);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("terminal");
    let start = Instant::now();
    for _ in 0..FRAMES {
        let frame = app.frame(
            status.clone(),
            pages,
            data,
            &info,
            Duration::ZERO,
            Instant::now(),
        );
        terminal
            .draw(|f| ui::draw(f, app, &frame, None))
            .expect("draw");
    }
    start.elapsed() / FRAMES
}

fn main() {
    println!(
        "dashboard frame ({WIDTH}x{HEIGHT}, gather visible rows + draw), mean of {FRAMES} frames"
    );
    println!(
        "{:>10} {:>14} {:>14} {:>12}",
        "entries", "follow tail", "mid scroll", "build (s)"
    );
    for n in [1_000u64, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let built = Instant::now();
        let (data, status) = build(n, dir.path());
        let build_time = built.elapsed();
        let follow = time_frames(&App::default(), &data, &status);
        let middle_key = format!("key-{:08}", n / 2);
        let scrolled = App {
            log_top: Some(n / 2),
            kv_top: Some(middle_key),
            ..App::default()
        };
        let middle = time_frames(&scrolled, &data, &status);
        println!(
            "{n:>10} {:>11.1} µs {:>11.1} µs {:>12.1}",
            follow.as_secs_f64() * 1e6,
            middle.as_secs_f64() * 1e6,
            build_time.as_secs_f64()
        );
    }
}
