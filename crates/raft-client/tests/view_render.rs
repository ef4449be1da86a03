//! Render tests of the cluster view, from constructed records (no cluster, no clock): an
//! election with a dropped and a delayed message, a partitioned leader's divergent entry,
//! a joint configuration, at 80x24 and 250x60, compared with committed `insta` snapshots.

use kv_proto::watch::{self as pb, watch_record::Kind};
use raft_client::view::model::ClusterModel;
use raft_client::view::state::ViewState;
use raft_client::view::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Times are microseconds into a minute, so the time column reads `12.345`.
const T0: u64 = 1_700_000_040_000_000;

fn rec(ms: u64, node: u64, kind: Kind) -> pb::WatchRecord {
    pb::WatchRecord {
        t_us: T0 + ms * 1000,
        seq: 0,
        node,
        kind: Some(kind),
    }
}

fn state(role: &str, term: u64, leader: u64, commit: u64, last: u64) -> pb::NodeState {
    pb::NodeState {
        role: role.into(),
        term,
        vote: leader,
        leader,
        commit,
        applied: commit,
        last_index: last,
        voters: vec![1, 2, 3],
        election_elapsed: 3,
        election_timeout: 12,
        heartbeat_timeout: 2,
        tick_ms: 50,
        slow_factor: 1,
        ..Default::default()
    }
}

fn entry(index: u64, term: u64) -> Kind {
    Kind::Entry(pb::LogEntry {
        index,
        term,
        kind: "cmd".into(),
        summary: format!("PUT k = v{index}"),
    })
}

fn msg(id: u64, t: &str, from: u64, to: u64, term: u64) -> pb::PeerMessage {
    pb::PeerMessage {
        msg_id: id,
        msg_type: t.into(),
        from,
        to,
        term,
        fate: "delivered".into(),
        ..Default::default()
    }
}

/// Sends `m` at `ms` from its sender and, unless it is lost, receives it `after` ms later.
fn exchange(records: &mut Vec<pb::WatchRecord>, ms: u64, m: pb::PeerMessage, after: Option<u64>) {
    records.push(rec(ms, m.from, Kind::Send(m.clone())));
    if let Some(after) = after {
        records.push(rec(ms + after, m.to, Kind::Recv(m)));
    }
}

/// Node 3 led in term 2 and took a write alone (index 6, term 2); node 1 won term 3 by
/// pre-vote and vote, with one pre-vote dropped on the way and one append delayed.
fn election_model() -> ClusterModel {
    let mut r = Vec::new();
    for id in 1..=3 {
        for i in 1..=5 {
            r.push(rec(0, id, entry(i, 2)));
        }
    }
    r.push(rec(1, 3, entry(6, 2)));
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    let mut pre = msg(next(), "MsgRequestPreVote", 1, 2, 3);
    pre.index = 5;
    pre.log_term = 2;
    exchange(&mut r, 10, pre.clone(), Some(1));
    let mut dropped = msg(next(), "MsgRequestPreVote", 1, 3, 3);
    dropped.fate = "dropped".into();
    exchange(&mut r, 10, dropped, None);
    exchange(
        &mut r,
        12,
        msg(next(), "MsgRequestPreVoteResponse", 2, 1, 3),
        Some(1),
    );
    exchange(&mut r, 14, msg(next(), "MsgRequestVote", 1, 2, 3), Some(1));
    exchange(&mut r, 14, msg(next(), "MsgRequestVote", 1, 3, 3), Some(1));
    exchange(
        &mut r,
        16,
        msg(next(), "MsgRequestVoteResponse", 2, 1, 3),
        Some(1),
    );
    let mut app = msg(next(), "MsgAppend", 1, 2, 3);
    app.index = 5;
    app.entries = 1;
    app.commit = 5;
    exchange(&mut r, 18, app.clone(), Some(1));
    let mut late = msg(next(), "MsgAppend", 1, 3, 3);
    late.index = 5;
    late.entries = 1;
    late.commit = 5;
    late.fate = "delayed".into();
    late.delay_ms = 300;
    exchange(&mut r, 18, late, Some(300));
    let mut ack = msg(next(), "MsgAppendResponse", 2, 1, 3);
    ack.index = 6;
    exchange(&mut r, 20, ack, Some(1));
    for k in 0..6 {
        let mut hb = msg(next(), "MsgHeartbeat", 1, 2, 3);
        hb.commit = 6;
        exchange(&mut r, 30 + k * 40, hb, Some(1));
    }
    r.push(rec(21, 1, entry(6, 3)));
    r.push(rec(21, 2, entry(6, 3)));
    r.push(rec(22, 1, Kind::State(state("Leader", 3, 1, 6, 6))));
    r.push(rec(22, 2, Kind::State(state("Follower", 3, 1, 6, 6))));
    r.push(rec(22, 3, Kind::State(state("Follower", 3, 1, 5, 6))));
    let mut model = ClusterModel::new();
    for record in &r {
        model.apply(record);
    }
    model
}

fn render(model: &ClusterModel, st: &mut ViewState, w: u16, h: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let now = T0 + 400_000;
    terminal
        .draw(|f| ui::draw(f, model, st, now))
        .expect("draw");
    terminal.backend().clone()
}

#[test]
fn an_election_with_a_dropped_and_a_delayed_message_at_250_by_60() {
    let model = election_model();
    let mut st = ViewState::default();
    let screen = render(&model, &mut st, 250, 60);
    let text = screen.to_string();
    for needle in [
        "leader node 1, term 3",
        "PreVote t3",
        "✗",
        "Vote✓ t3",
        "App t3 i5+1 c5 +300ms",
        "AppResp t3 i6",
        "voters {1,2,3}",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn the_same_at_80_by_24_with_heartbeats_folded() {
    let model = election_model();
    let mut st = ViewState {
        fold_heartbeats: true,
        ..ViewState::default()
    };
    let screen = render(&model, &mut st, 80, 24);
    let text = screen.to_string();
    assert!(!text.contains("HB t3"), "heartbeats folded:\n{text}");
    assert!(text.contains("PreVote t3"), "{text}");
    insta::assert_snapshot!(screen);
}

#[test]
fn a_divergent_entry_stands_out_in_the_logs() {
    let model = election_model();
    // Node 3's entry 6 (term 2) is not the leader's (term 3).
    assert!(model.differs(3, 6));
    assert!(!model.differs(2, 6));
    let mut st = ViewState {
        layout: raft_client::view::state::Layout::Logs,
        ..ViewState::default()
    };
    let screen = render(&model, &mut st, 80, 24);
    // The cell is drawn white on red: find it by its style.
    let buffer = screen.buffer();
    let red: Vec<(u16, u16, String)> = buffer
        .content()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.bg == ratatui::style::Color::Red && c.symbol().trim() != "")
        .map(|(i, c)| {
            let (x, y) = buffer.pos_of(i);
            (x, y, c.symbol().to_string())
        })
        .collect();
    assert!(
        red.iter().any(|(_, _, s)| s == "2"),
        "node 3's term-2 entry on red: {red:?}\n{}",
        screen
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn a_joint_configuration_is_said_on_every_node_line() {
    let mut model = election_model();
    let mut joint = state("Leader", 3, 1, 6, 6);
    joint.voters = vec![1, 2, 3, 4];
    joint.voters_outgoing = vec![1, 2, 3];
    model.apply(&rec(30, 1, Kind::State(joint)));
    let mut st = ViewState::default();
    let wide = render(&model, &mut st, 250, 60).to_string();
    assert!(wide.contains("JOINT {1,2,3} + {1,2,3,4}"), "{wide}");
    assert!(wide.contains("JOINT configuration in force"), "{wide}");
    let narrow = render(&model, &mut st, 80, 24).to_string();
    assert!(narrow.contains("JOINT configuration in force"), "{narrow}");
}

/// Step mode: node 2's pre-vote requests are held; the view lists them oldest first with
/// the chosen one marked, says STEP MODE, and Enter asks to deliver the chosen one.
#[test]
fn step_mode_lists_the_held_messages_and_enter_delivers_the_chosen_one() {
    use raft_client::step::StepCommand;
    use raft_client::view::state::Effect;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let held = |hold_id: u64, to: u64, ms: u64| pb::HeldMessage {
        hold_id,
        held_us: T0 + ms * 1000,
        msg: Some(pb::PeerMessage {
            msg_id: 100 + hold_id,
            msg_type: "MsgRequestPreVote".into(),
            from: 2,
            to,
            term: 3,
            index: 5,
            log_term: 2,
            fate: "held".into(),
            ..Default::default()
        }),
    };
    let mut model = ClusterModel::new();
    for id in [1, 3] {
        let mut s = state("Follower", 2, 0, 5, 5);
        s.step_mode = true;
        model.apply(&rec(10, id, Kind::State(s)));
    }
    let mut s = state("PreCandidate", 2, 0, 5, 5);
    s.step_mode = true;
    s.held = vec![held(1, 1, 20), held(2, 3, 21)];
    s.held_count = 2;
    model.apply(&rec(20, 2, Kind::State(s)));
    model.apply(&rec(
        22,
        3,
        Kind::Event(pb::Event {
            text: "node 2 asks for a pre-vote, term 3: no answer, it heard from leader 1 2 \
                   ticks ago, within the election timeout (check-quorum's lease)"
                .into(),
        }),
    ));
    assert!(model.stepping());
    let mut st = ViewState::default();
    let text = render(&model, &mut st, 120, 40).to_string();
    for needle in [
        "STEP MODE, 2 held",
        "› n2 #1   MsgRequestPreVote 2→1 t3",
        "n2 #2   MsgRequestPreVote 2→3 t3",
        "Enter deliver",
        "n3: node 2 asks for a pre-vote, term 3: no answer",
    ] {
        assert!(text.contains(needle), "{needle:?} not on screen:\n{text}");
    }
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    assert_eq!(st.on_key(key(KeyCode::Down), &model), None);
    assert_eq!(
        st.on_key(key(KeyCode::Enter), &model),
        Some(Effect::Step(StepCommand::Next(Some((2, 2))))),
        "Enter delivers the chosen message"
    );
    assert_eq!(
        st.on_key(key(KeyCode::Char('t')), &model),
        None,
        "no node chosen yet"
    );
    assert_eq!(st.on_key(key(KeyCode::Char('3')), &model), None);
    assert_eq!(
        st.on_key(key(KeyCode::Char('t')), &model),
        Some(Effect::Step(StepCommand::Tick(3)))
    );
    assert_eq!(
        st.on_key(key(KeyCode::Char('s')), &model),
        Some(Effect::Step(StepCommand::Off))
    );
}
