//! Render tests of the client TUI: fixed results drawn into ratatui's `TestBackend` and
//! compared with committed `insta` snapshots.

use std::time::{Duration, Instant};

use kv_proto::kv::{GetResponse, StatusResponse, WriteResponse};
use raft_client::client::{ClientError, NodeReport, Reply};
use raft_client::trace::{Hop, HopOutcome, Reason, Trace};
use raft_client::tui::app::{App, Outcome};
use raft_client::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const PEERS: [&str; 3] = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];

fn status(id: u64, role: &str, term: u64) -> NodeReport {
    NodeReport {
        api_addr: PEERS[id as usize - 1].to_string(),
        status: Ok(StatusResponse {
            id,
            role: role.into(),
            term,
            leader_id: 3,
            commit_index: 42,
            applied_index: 42,
            last_index: 42,
            ..StatusResponse::default()
        }),
    }
}

fn down(id: u64) -> NodeReport {
    NodeReport {
        api_addr: PEERS[id as usize - 1].to_string(),
        status: Err("Connection refused (os error 111)".into()),
    }
}

fn hop(addr: usize, reason: Reason, resent: bool, outcome: HopOutcome, ms: u64) -> Hop {
    Hop {
        addr: PEERS[addr - 1].to_string(),
        reason,
        resent,
        outcome,
        elapsed: Duration::from_micros(ms * 100),
    }
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

fn enter(app: &mut App, line: &str) {
    typed(app, line);
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
}

fn render(app: &App) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(110, 24)).expect("terminal");
    let now = app
        .in_flight
        .as_ref()
        .map_or_else(Instant::now, |f| f.started + Duration::from_millis(1200));
    terminal.draw(|f| ui::draw(f, app, now, 3)).expect("draw");
    terminal.backend().clone()
}

fn app_with_cluster(reports: Vec<NodeReport>) -> App {
    let peers: Vec<String> = PEERS.iter().map(|p| p.to_string()).collect();
    let mut app = App::new(&peers);
    // Ids are learned from an earlier round where every node answered.
    app.on_cluster(
        vec![
            status(1, "Follower", 4),
            status(2, "Follower", 4),
            status(3, "Leader", 4),
        ],
        Instant::now(),
    );
    app.on_cluster(reports, Instant::now());
    app
}

#[test]
fn a_put_that_follows_a_redirect() {
    let mut app = app_with_cluster(vec![
        status(1, "Follower", 5),
        status(2, "Follower", 5),
        status(3, "Leader", 5),
    ]);
    enter(&mut app, "put hello world");
    let trace = Trace {
        hops: vec![
            hop(
                2,
                Reason::NextPeer,
                false,
                HopOutcome::NotLeader {
                    leader: Some((3, PEERS[2].into())),
                },
                8,
            ),
            hop(3, Reason::Redirect, true, HopOutcome::Ok, 23),
        ],
        request_id: Some((0xc0ffee, 7)),
    };
    let reply = Reply {
        value: WriteResponse {
            index: 42,
            term: 5,
            existed: false,
            duplicate: false,
            node_id: 3,
        },
        trace,
    };
    app.on_outcome(
        Outcome::Write(Ok(reply)),
        Duration::from_micros(3100),
        Some(PEERS[2].into()),
    );
    enter(&mut app, "get hello");
    let trace = Trace {
        hops: vec![hop(3, Reason::KnownLeader, false, HopOutcome::Ok, 11)],
        request_id: None,
    };
    let reply = Reply {
        value: GetResponse {
            found: true,
            value: b"world".to_vec(),
            applied_index: 42,
            node_id: 3,
        },
        trace,
    };
    app.on_outcome(
        Outcome::Read(Ok(reply)),
        Duration::from_micros(1100),
        Some(PEERS[2].into()),
    );
    insta::assert_snapshot!(render(&app));
}

#[test]
fn an_error_and_a_node_down() {
    let mut app = app_with_cluster(vec![
        status(1, "Follower", 6),
        status(2, "Leader", 6),
        down(3),
    ]);
    enter(&mut app, "frobnicate x");
    enter(&mut app, "put k");
    enter(&mut app, "put k v");
    let trace = Trace {
        hops: vec![
            hop(
                3,
                Reason::KnownLeader,
                false,
                HopOutcome::Unreachable("Connection refused (os error 111)".into()),
                4,
            ),
            hop(
                1,
                Reason::NextPeer,
                true,
                HopOutcome::NotLeader { leader: None },
                12,
            ),
            hop(2, Reason::NextPeer, true, HopOutcome::Timeout, 15000),
        ],
        request_id: Some((0xc0ffee, 8)),
    };
    let err = ClientError::Unavailable {
        write: true,
        timeout: Duration::from_secs(2),
        last: format!("{}: no answer (timed out)", PEERS[1]),
        trace,
    };
    app.on_outcome(Outcome::Write(Err(err)), Duration::from_millis(2000), None);
    insta::assert_snapshot!(render(&app));
}

#[test]
fn a_request_in_flight_with_text_typed_meanwhile() {
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 9),
        down(2),
        status(3, "Follower", 9),
    ]);
    enter(&mut app, "get --stale 'a key'");
    typed(&mut app, "put next 🦀 ünïcode");
    insta::assert_snapshot!(render(&app));
}

#[test]
fn clearing_the_output_also_resets_the_scroll() {
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 2),
        status(2, "Follower", 2),
        status(3, "Follower", 2),
    ]);
    for _ in 0..30 {
        enter(&mut app, "help");
    }
    app.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    assert!(app.scroll_back > 0);
    app.on_key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL));
    assert_eq!((app.output.len(), app.scroll_back), (0, 0));
    enter(&mut app, "leader");
    let screen = render(&app).to_string();
    assert!(
        screen.contains("› leader"),
        "new output is visible after Ctrl+L:\n{screen}"
    );
}
