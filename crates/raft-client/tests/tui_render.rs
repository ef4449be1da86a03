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
use ratatui::layout::Rect;

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

fn render(app: &mut App) -> TestBackend {
    render_at(app, 110, 24)
}

/// Draws a frame `width` x `height`, telling the app its output pane's size first, as the
/// TUI's loop does.
fn render_at(app: &mut App, width: u16, height: u16) -> TestBackend {
    app.set_view(ui::output_view(Rect::new(0, 0, width, height)));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
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
            timing: Vec::new(),
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
    insta::assert_snapshot!(render(&mut app));
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
    insta::assert_snapshot!(render(&mut app));
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
    insta::assert_snapshot!(render(&mut app));
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
    let screen = render(&mut app).to_string();
    assert!(
        screen.contains("› leader"),
        "new output is visible after Ctrl+L:\n{screen}"
    );
}

fn refused(addr: usize, resent: bool) -> Hop {
    hop(
        addr,
        Reason::NextPeer,
        resent,
        HopOutcome::Refused("Connection refused (os error 111)".into()),
        3,
    )
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn a_request_in_flight_shows_its_first_hops() {
    let mut app = app_with_cluster(vec![
        status(1, "Follower", 5),
        status(2, "Follower", 5),
        down(3),
    ]);
    enter(&mut app, "put hello world");
    // The leader it knew is gone; the next node does not know the new leader yet.
    app.on_hop(&hop(
        3,
        Reason::KnownLeader,
        false,
        HopOutcome::Unreachable("connection reset by peer".into()),
        4,
    ));
    app.on_hop(&hop(
        1,
        Reason::NextPeer,
        true,
        HopOutcome::NotLeader { leader: None },
        21,
    ));
    insta::assert_snapshot!(render(&mut app));
    // When it finishes, the hops are not shown again: only the summary line follows.
    let trace = Trace {
        hops: vec![
            hop(
                3,
                Reason::KnownLeader,
                false,
                HopOutcome::Unreachable("connection reset by peer".into()),
                4,
            ),
            hop(
                1,
                Reason::NextPeer,
                true,
                HopOutcome::NotLeader { leader: None },
                21,
            ),
            hop(2, Reason::NextPeer, true, HopOutcome::Ok, 30),
        ],
        request_id: Some((0xc0ffee, 9)),
    };
    let reply = Reply {
        value: WriteResponse {
            index: 43,
            term: 6,
            existed: false,
            duplicate: false,
            node_id: 2,
            timing: Vec::new(),
        },
        trace,
    };
    app.on_outcome(
        Outcome::Write(Ok(reply)),
        Duration::from_millis(300),
        Some(PEERS[1].into()),
    );
    let texts: Vec<&str> = app.output.iter().map(|l| l.text.as_str()).collect();
    let tail = &texts[texts.len() - 5..];
    assert_eq!(tail[0], "› put hello world", "{texts:#?}");
    assert!(tail[1].contains("node 3 (hint): unreachable"), "{tail:#?}");
    assert!(
        tail[2].contains("node 1 (next, resent): not leader"),
        "{tail:#?}"
    );
    assert!(tail[3].contains("node 2 (next, resent): OK"), "{tail:#?}");
    assert!(tail[4].starts_with("  ✓ OK (index 43"), "{tail:#?}");
}

#[test]
fn refused_connections_collapse_into_one_counting_line() {
    // No node is listening (and none ever was: their ids are unknown).
    let peers: Vec<String> = PEERS.iter().map(|p| p.to_string()).collect();
    let mut app = App::new(&peers);
    app.on_cluster(vec![down(1), down(2), down(3)], Instant::now());
    enter(&mut app, "put k v");
    let hops: Vec<Hop> = (0..20).map(|i| refused(i % 3 + 1, false)).collect();
    for h in &hops[..19] {
        app.on_hop(h);
    }
    let screen = render(&mut app).to_string();
    assert!(
        screen.contains("127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:7003 refused the connection, 19 times; retrying…"),
        "one line counts the refusals while it retries:\n{screen}"
    );
    let trace = Trace {
        hops,
        request_id: Some((0xc0ffee, 1)),
    };
    let err = ClientError::Unavailable {
        write: true,
        timeout: Duration::from_secs(5),
        last: format!(
            "{}: unreachable: Connection refused (os error 111)",
            PEERS[1]
        ),
        trace,
    };
    app.on_outcome(Outcome::Write(Err(err)), Duration::from_secs(5), None);
    insta::assert_snapshot!(render(&mut app));
    let screen = render(&mut app).to_string();
    assert!(
        !screen.contains("resent"),
        "nothing was ever sent:\n{screen}"
    );
    assert!(!screen.contains("outcome is unknown"), "{screen}");
}

#[test]
fn refusals_name_known_nodes_by_id() {
    let mut app = app_with_cluster(vec![down(1), down(2), down(3)]);
    enter(&mut app, "get k");
    for i in 0..7 {
        app.on_hop(&refused(i % 3 + 1, false));
    }
    let last = app
        .output
        .back()
        .map(|l| l.text.clone())
        .unwrap_or_default();
    assert_eq!(
        last,
        "  → nodes 1–3 refused the connection, 7 times; retrying…"
    );
    // Another answer ends the run; a refusal after it starts a new one.
    app.on_hop(&hop(2, Reason::NextPeer, false, HopOutcome::Timeout, 15000));
    app.on_hop(&refused(3, false));
    app.on_hop(&refused(3, false));
    let texts: Vec<&str> = app.output.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        &texts[texts.len() - 3..],
        [
            "  → nodes 1–3 refused the connection, 7 times",
            "  → node 2 (next): no answer (timed out) · 1500.0 ms",
            "  → node 3 refused the connection, 2 times; retrying…",
        ]
    );
}

#[test]
fn page_up_moves_a_page_less_one_row_and_stops_at_the_top() {
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 2),
        status(2, "Follower", 2),
        status(3, "Follower", 2),
    ]);
    for i in 0..40 {
        enter(&mut app, &format!("put k{i}"));
    }
    // 110 x 24: the output pane shows 15 rows.
    let _ = render(&mut app);
    assert_eq!(app.view.rows, 15);
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.scroll_back, 14, "a page is the pane less one row");
    let screen = render(&mut app).to_string();
    assert!(!screen.contains("raft-client: 3 nodes"), "{screen}");
    for _ in 0..20 {
        key(&mut app, KeyCode::PageUp);
    }
    let top_back = app.scroll_back;
    key(&mut app, KeyCode::PageUp);
    assert_eq!(app.scroll_back, top_back, "no further than the top");
    let backend = render(&mut app);
    // Row 4 is the output pane's first row (below the cluster bar and the pane's border).
    let first_row: String = (0..110)
        .map(|x| backend.buffer()[(x, 4)].symbol().to_string())
        .collect();
    assert!(
        first_row.contains("raft-client: 3 nodes"),
        "the greeting, the first row, is at the top, not past it:\n{}",
        backend
    );
    key(&mut app, KeyCode::PageDown);
    assert_eq!(app.scroll_back, top_back - 14);
}

#[test]
fn help_reads_whole_in_the_playgrounds_client_pane() {
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 2),
        status(2, "Follower", 2),
        status(3, "Follower", 2),
    ]);
    enter(&mut app, "put a b");
    app.on_outcome(
        Outcome::Write(Err(ClientError::Rejected("example".into()))),
        Duration::from_millis(1),
        None,
    );
    // 18 rows, as the playground's client pane: an output pane of 9 rows.
    enter(&mut app, "help");
    insta::assert_snapshot!(render_at(&mut app, 120, 18));
    enter(&mut app, "help fault");
    let screen = render_at(&mut app, 120, 18).to_string();
    assert!(screen.contains("› help fault"), "{screen}");
    assert!(screen.contains("slow <factor>"), "{screen}");
}

#[test]
fn tab_on_an_ambiguous_prefix_shows_the_candidates() {
    let mut app = app_with_cluster(vec![status(1, "Leader", 2)]);
    typed(&mut app, "s");
    key(&mut app, KeyCode::Tab);
    let screen = render(&mut app).to_string();
    assert!(screen.contains("Tab: sget  status  slow  step"), "{screen}");
    // The next keys take the hint away.
    typed(&mut app, "ta");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input.text(), "status ");
    assert!(app.hint.is_none());
}

#[test]
fn a_busy_message_never_lands_between_a_command_and_its_result() {
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 2),
        status(2, "Follower", 2),
        status(3, "Follower", 2),
    ]);
    enter(&mut app, "put slow one");
    let before = app.output.len();
    enter(&mut app, "get x");
    assert_eq!(app.output.len(), before, "nothing added to the output");
    assert_eq!(app.input.text(), "get x", "the line waits in the input");
    assert!(
        app.hint.as_deref().is_some_and(|h| h.contains("busy")),
        "{:?}",
        app.hint
    );
    insta::assert_snapshot!(render(&mut app));
    let reply = Reply {
        value: WriteResponse {
            index: 7,
            term: 2,
            existed: false,
            duplicate: false,
            node_id: 1,
            timing: Vec::new(),
        },
        trace: Trace {
            hops: vec![hop(1, Reason::KnownLeader, false, HopOutcome::Ok, 9)],
            request_id: Some((0xc0ffee, 2)),
        },
    };
    app.on_outcome(
        Outcome::Write(Ok(reply)),
        Duration::from_millis(1),
        Some(PEERS[0].into()),
    );
    let texts: Vec<&str> = app.output.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts[before - 1], "› put slow one");
    assert!(texts[before + 1].starts_with("  ✓ OK"), "{texts:#?}");
    // Now Enter runs the waiting line.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.output.back().map(|l| l.text.as_str()), Some("› get x"));
}

#[test]
fn a_tour_step_waits_for_enter_and_takes_its_keys_on_an_empty_line() {
    use raft_client::tour::engine::{Key as TourKey, Line, Tone};
    use raft_client::tui::app::Effect;
    let mut app = app_with_cluster(vec![
        status(1, "Leader", 2),
        status(2, "Follower", 2),
        status(3, "Follower", 2),
    ]);
    typed(&mut app, "tour 2");
    let effect = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(effect, Some(Effect::Tour(1)), "tour 2 starts at chapter 2");
    let say = |app: &mut App, tone, text: &str| {
        app.on_tour_line(Line {
            tone,
            text: text.into(),
        })
    };
    say(
        &mut app,
        Tone::Title,
        "Chapter 2 of 8: The leader crashes and a new one is elected",
    );
    say(
        &mut app,
        Tone::Text,
        "[1/4] A write first: the leader appends it, a majority stores it, it is committed and applied everywhere.",
    );
    say(&mut app, Tone::Command, "› put color blue");
    say(&mut app, Tone::Output, "  ✓ OK (index 4, term 2, node 1)");
    say(&mut app, Tone::Passed, "✓ get color returns \"blue\"");
    say(
        &mut app,
        Tone::Text,
        "[2/4] Now the leader, node 1, crashes (frozen here). Within a second or two the others notice the silence and elect a new leader in a new term.",
    );
    say(
        &mut app,
        Tone::Prompt,
        "2.2/4 · b: back a chapter · q: leave the tour · Enter: type fault freeze 1",
    );
    insta::assert_snapshot!(render(&mut app));
    // Enter on the empty line goes to the tour, once: the next waits for the next prompt.
    let effect = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(effect, Some(Effect::TourKey(TourKey::Next)));
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        None
    );
    assert!(
        app.hint
            .as_deref()
            .is_some_and(|h| h.contains("wait for its check"))
    );
    // A command typed meanwhile runs as usual; q in it is a letter, not "leave".
    typed(&mut app, "get q");
    let effect = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(matches!(effect, Some(Effect::Run(_))), "{effect:?}");
    // q on an empty line leaves the tour (not the client), even mid-step.
    let effect = app.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE));
    assert_eq!(effect, Some(Effect::TourKey(TourKey::Leave)));
    assert!(!app.quit);
    app.on_tour_ended();
    assert!(!app.touring);
}

/// At 80 columns the cluster bar says every node's role whole (shorter, not cut), and a
/// removed node stands apart.
#[test]
fn the_cluster_bar_fits_80_columns_and_sets_a_removed_node_apart() {
    let mut removed = status(2, "Follower", 4);
    if let Ok(s) = &mut removed.status {
        s.removed_at = 17;
    }
    let mut app = app_with_cluster(vec![
        status(1, "Follower", 4),
        removed,
        status(3, "Leader", 4),
    ]);
    let screen = render_at(&mut app, 80, 24).to_string();
    let bar = screen
        .lines()
        .find(|l| l.contains("● 1"))
        .unwrap_or_default()
        .to_string();
    assert!(bar.contains("● 1 Follower"), "{bar}\n{screen}");
    assert!(bar.contains("● 3 Leader"), "{bar}\n{screen}");
    assert!(bar.contains("│ 2 removed"), "{bar}\n{screen}");
    assert!(!bar.contains("● 2"), "a removed node is no member: {bar}");
    // Wide, the full form.
    let wide = render_at(&mut app, 160, 24).to_string();
    assert!(wide.contains("● node 1 Follower t4 applied 42"), "{wide}");
    assert!(wide.contains("node 2 removed"), "{wide}");
}
