//! How much one frame of the cluster view costs with a full buffer.
//!
//! ```text
//! cargo bench -p raft-client --bench view
//! ```
//! Five nodes, each with 4,096 log entries, and 100,000 buffered message records (sends and
//! receipts, heartbeats and appends), drawn at 250x60 and 80x24, live, paused in the middle
//! of the buffer, and with heartbeats folded. Frame times flat across the cases mean the
//! cost is bounded by the screen, not by what is buffered.

use std::time::{Duration, Instant};

use kv_proto::watch::{self as pb, watch_record::Kind};
use raft_client::view::model::ClusterModel;
use raft_client::view::state::ViewState;
use raft_client::view::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NODES: u64 = 5;
const MESSAGES: u64 = 100_000;
const FRAMES: u32 = 200;

fn rec(t_us: u64, node: u64, kind: Kind) -> pb::WatchRecord {
    pb::WatchRecord {
        t_us,
        seq: 0,
        node,
        kind: Some(kind),
    }
}

fn model() -> ClusterModel {
    let mut m = ClusterModel::new();
    let t0 = 1_700_000_000_000_000;
    for node in 1..=NODES {
        for index in 1..=4096 {
            m.apply(&rec(
                t0,
                node,
                Kind::Entry(pb::LogEntry {
                    index,
                    term: 1 + index / 1000,
                    kind: "cmd".into(),
                    summary: format!("PUT k{index} = v"),
                }),
            ));
        }
        m.apply(&rec(
            t0,
            node,
            Kind::State(pb::NodeState {
                role: if node == 1 { "Leader" } else { "Follower" }.into(),
                term: 5,
                leader: 1,
                commit: 4090,
                applied: 4090,
                last_index: 4096,
                voters: (1..=NODES).collect(),
                election_elapsed: 3,
                election_timeout: 12,
                ..Default::default()
            }),
        ));
    }
    // Half the records sends, half receipts: a message every 50 µs from the leader.
    for i in 0..MESSAGES / 2 {
        let to = 2 + i % (NODES - 1);
        let heartbeat = i % 3 != 0;
        let m_out = pb::PeerMessage {
            msg_id: i + 1,
            msg_type: if heartbeat {
                "MsgHeartbeat"
            } else {
                "MsgAppend"
            }
            .into(),
            from: 1,
            to,
            term: 5,
            index: 4000 + i % 90,
            entries: 1,
            commit: 4090,
            fate: "delivered".into(),
            ..Default::default()
        };
        let t = t0 + 1000 + i * 50;
        m.apply(&rec(t, 1, Kind::Send(m_out.clone())));
        m.apply(&rec(t + 20, to, Kind::Recv(m_out)));
    }
    m
}

fn time_frames(m: &ClusterModel, st: &mut ViewState, w: u16, h: u16) -> (Duration, Duration) {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let now = raft_client::view::now_us();
    let mut times = Vec::with_capacity(FRAMES as usize);
    for _ in 0..FRAMES {
        let started = Instant::now();
        terminal.draw(|f| ui::draw(f, m, st, now)).expect("draw");
        times.push(started.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / FRAMES;
    (mean, times[times.len() * 99 / 100])
}

fn main() {
    let built = Instant::now();
    let m = model();
    println!(
        "model: {NODES} nodes, {} message records kept, built in {:.0} ms",
        m.positions().end - m.positions().start,
        built.elapsed().as_secs_f64() * 1000.0
    );
    let middle = (m.positions().start + m.positions().end) / 2;
    for (w, h) in [(250, 60), (80, 24)] {
        for (case, mut st) in [
            ("live", ViewState::default()),
            (
                "paused mid-buffer",
                ViewState {
                    paused_at: Some(middle),
                    ..ViewState::default()
                },
            ),
            (
                "heartbeats folded",
                ViewState {
                    fold_heartbeats: true,
                    ..ViewState::default()
                },
            ),
        ] {
            let (mean, p99) = time_frames(&m, &mut st, w, h);
            println!(
                "{w}x{h} {case:<18} frame mean {:>6.2} ms  p99 {:>6.2} ms",
                mean.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0
            );
        }
    }
}
