//! Render tests of the dashboard: fixed status data drawn into ratatui's `TestBackend`,
//! compared with committed `insta` snapshots. No clocks, no node.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use raft::eraftpb::MessageType;
use raft_server::dashboard::app::{Action, App};
use raft_server::dashboard::ui;
use raft_server::dashboard::view::{
    DataSource, Direction, EntryKind, Fate, KvPreview, LogRow, MessageRecord, NodeInfo, Resources,
    VALUE_PREVIEW_BYTES,
};
use raft_server::status::{Event, NodeStatus, PeerView, Progress, Role};
use raft_server::transport::fault::NetFaults;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

/// A log of `n` entries and a sorted store, in memory; faults and messages to show.
struct Fake {
    log_len: u64,
    kv: BTreeMap<String, Vec<u8>>,
    faults: NetFaults,
    messages: Vec<MessageRecord>,
    resources: Resources,
    /// Indexes shown as applied duplicates (changed nothing).
    no_effect: Vec<u64>,
}

impl Fake {
    fn new(log_len: u64, keys: usize) -> Self {
        let mut kv: BTreeMap<String, Vec<u8>> = (0..keys)
            .map(|i| (format!("user:{i:04}"), format!("name {i}").into_bytes()))
            .collect();
        if keys > 0 {
            kv.insert("bin".into(), vec![0x00, 0xff, b'o', b'k', b'\n']);
            kv.insert("long".into(), vec![b'x'; 5000]);
        }
        Self {
            log_len,
            kv,
            faults: NetFaults::default(),
            messages: Vec::new(),
            resources: Resources::default(),
            no_effect: Vec::new(),
        }
    }
}

impl DataSource for Fake {
    fn log_rows(&self, low: u64, high: u64) -> Vec<LogRow> {
        (low.max(1)..high.min(self.log_len + 1))
            .map(|i| LogRow {
                index: i,
                term: 1 + i / 1000,
                kind: if i % 1000 == 1 {
                    EntryKind::Empty
                } else {
                    EntryKind::Command
                },
                text: if i % 1000 == 1 {
                    "(new leader's no-op)".into()
                } else if i % 7 == 0 {
                    format!("DEL user:{:04}", i % 50)
                } else {
                    format!("PUT user:{:04} = name {i}", i % 50)
                },
                no_effect: self.no_effect.contains(&i),
            })
            .collect()
    }

    fn kv_from(&self, from: Option<&str>, n: usize) -> Vec<KvPreview> {
        let start = from.unwrap_or("");
        self.kv
            .range(start.to_string()..)
            .take(n)
            .map(|(k, v)| KvPreview {
                key: k.clone(),
                head: v[..v.len().min(VALUE_PREVIEW_BYTES)].to_vec(),
                len: v.len(),
            })
            .collect()
    }

    fn keys_before(&self, before: Option<&str>, n: usize) -> Vec<String> {
        let mut keys: Vec<String> = match before {
            Some(b) => self
                .kv
                .range(..b.to_string())
                .rev()
                .take(n)
                .map(|(k, _)| k.clone())
                .collect(),
            None => self.kv.keys().rev().take(n).cloned().collect(),
        };
        keys.reverse();
        keys
    }

    fn messages(&self, n: usize, up_to: Option<u64>) -> Vec<MessageRecord> {
        let shown: Vec<MessageRecord> = self
            .messages
            .iter()
            .filter(|m| up_to.is_none_or(|u| m.seq <= u))
            .copied()
            .collect();
        shown[shown.len().saturating_sub(n)..].to_vec()
    }

    fn message_seqs(&self) -> Option<(u64, u64)> {
        Some((self.messages.first()?.seq, self.messages.last()?.seq))
    }

    fn faults(&self) -> NetFaults {
        self.faults.clone()
    }

    fn resources(&self) -> Resources {
        self.resources
    }
}

fn events(texts: &[&str]) -> Arc<VecDeque<Event>> {
    let base = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    Arc::new(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Event {
                at: base + Duration::from_millis(137 * i as u64),
                text: t.to_string(),
            })
            .collect(),
    )
}

fn peer(
    id: u64,
    me: u64,
    now: Instant,
    heard_ms: Option<u64>,
    progress: Option<Progress>,
) -> PeerView {
    PeerView {
        id,
        peer_addr: format!("127.0.0.1:{}", 6000 + id).parse().expect("addr"),
        api_addr: format!("127.0.0.1:{}", 7000 + id).parse().expect("addr"),
        is_self: id == me,
        role: Some(raft_server::membership::Role::Voter),
        last_heard: heard_ms.map(|ms| now - Duration::from_millis(ms)),
        link_up: (id != me).then_some(heard_ms.is_some()),
        progress,
    }
}

fn leader_status(now: Instant, log_len: u64, keys: u64) -> NodeStatus {
    NodeStatus {
        id: 1,
        role: Role::Leader,
        term: 5,
        vote: 1,
        leader_id: 1,
        commit_index: log_len - 2,
        applied_index: log_len - 3,
        last_index: log_len,
        persisted_index: log_len,
        first_index: 1,
        snapshot_index: 0,
        key_count: keys as usize,
        peers: vec![
            peer(1, 1, now, None, None),
            peer(
                2,
                1,
                now,
                Some(12),
                Some(Progress {
                    matched: log_len,
                    next: log_len + 1,
                    state: "Replicate",
                    inflight: 0,
                }),
            ),
            peer(
                3,
                1,
                now,
                None,
                Some(Progress {
                    matched: log_len - 9,
                    next: log_len - 8,
                    state: "Probe",
                    inflight: 1,
                }),
            ),
        ],
        events: events(&[
            "restarted: recovered log to index 17, term 4, commit 17",
            "link to node 2 up",
            "became PreCandidate",
            "node 2 granted us a pre-vote, term 5",
            "term 5 begins",
            "became Candidate",
            "node 2 granted us a vote, term 5",
            "became Leader",
            "leader is node 1 (term 5)",
            "link to node 3 down",
        ]),
        frozen: false,
        slow_factor: 1,
        joint: false,
        joining: false,
        removed_at: None,
        ..NodeStatus::default()
    }
}

fn follower_status(now: Instant) -> NodeStatus {
    NodeStatus {
        id: 2,
        role: Role::Follower,
        term: 5,
        vote: 1,
        leader_id: 1,
        commit_index: 18,
        applied_index: 18,
        last_index: 20,
        persisted_index: 20,
        // Compacted up to 2, snapshot at 12: the log panel says where the log starts.
        first_index: 3,
        snapshot_index: 12,
        key_count: 3,
        peers: vec![
            peer(1, 2, now, Some(40), None),
            peer(2, 2, now, None, None),
            peer(3, 2, now, None, None),
        ],
        events: events(&[
            "started fresh, voters [1, 2, 3]",
            "granted node 1 a vote, term 5",
            "leader is node 1 (term 5)",
        ]),
        frozen: false,
        slow_factor: 1,
        joint: false,
        joining: false,
        removed_at: None,
        ..NodeStatus::default()
    }
}

fn candidate_status(now: Instant) -> NodeStatus {
    NodeStatus {
        role: Role::Candidate,
        term: 7,
        vote: 2,
        leader_id: 0,
        events: events(&[
            "link to node 1 down",
            "became PreCandidate",
            "term 7 begins",
            "became Candidate",
            "asks node 3 for a vote, term 7",
            "no known leader",
        ]),
        ..follower_status(now)
    }
}

fn info(id: u64) -> NodeInfo {
    NodeInfo {
        data_dir: format!("data/node-{id}").into(),
        peer_addr: format!("127.0.0.1:{}", 6000 + id),
        api_addr: format!("127.0.0.1:{}", 7000 + id),
    }
}

/// Draws `status` after applying `actions`, at `width` x `height`.
fn render(
    status: NodeStatus,
    source: &Fake,
    width: u16,
    height: u16,
    actions: &[Action],
) -> TestBackend {
    let pages = ui::page_sizes(Rect::new(0, 0, width, height), false);
    let mut app = App::default();
    for a in actions {
        app.update(*a, &status, pages, source);
    }
    draw(&app, status, source, width, height)
}

/// Draws one frame of `app` showing `status`. Every peer heard from is shown as heard
/// 12 ms before the frame's own `now`, so the text never depends on the clock.
fn draw(app: &App, status: NodeStatus, source: &Fake, width: u16, height: u16) -> TestBackend {
    let now = Instant::now();
    let status = NodeStatus {
        peers: status
            .peers
            .iter()
            .map(|p| PeerView {
                last_heard: p.last_heard.map(|_| now - Duration::from_millis(12)),
                ..p.clone()
            })
            .collect(),
        ..status
    };
    let pages = ui::page_sizes(Rect::new(0, 0, width, height), app.show_messages);
    let id = status.id;
    let data = app.frame(
        status,
        pages,
        source,
        &info(id),
        Duration::from_secs(3723),
        now,
    );
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|f| ui::draw(f, app, &data, None))
        .expect("draw");
    terminal.backend().clone()
}

#[test]
fn leader_with_three_peers() {
    let now = Instant::now();
    insta::assert_snapshot!(render(
        leader_status(now, 20, 12),
        &Fake::new(20, 10),
        120,
        32,
        &[]
    ));
}

#[test]
fn follower() {
    let now = Instant::now();
    insta::assert_snapshot!(render(
        follower_status(now),
        &Fake::new(20, 1),
        100,
        30,
        &[]
    ));
}

#[test]
fn candidate() {
    let now = Instant::now();
    insta::assert_snapshot!(render(
        candidate_status(now),
        &Fake::new(20, 1),
        100,
        30,
        &[]
    ));
}

#[test]
fn long_log_scrolled_to_the_middle() {
    let now = Instant::now();
    let source = Fake::new(1_000_000, 200);
    let status = leader_status(now, 1_000_000, 202);
    let pages = ui::page_sizes(Rect::new(0, 0, 120, 32), false);
    // As if the user had paged to the middle of a million-entry log: the view is anchored
    // at an index, so only the visible rows are ever read.
    let mut app = App {
        log_top: Some(500_000),
        ..App::default()
    };
    app.update(Action::PageDown, &status, pages, &source);
    app.update(Action::Up, &status, pages, &source);
    assert_eq!(app.log_top, Some(500_000 + pages.log as u64 - 1));
    insta::assert_snapshot!(draw(&app, status, &source, 120, 32));
}

#[test]
fn narrow_terminal() {
    let now = Instant::now();
    let status = leader_status(now, 20, 12);
    let screen = render(status.clone(), &Fake::new(20, 10), 80, 24, &[]);
    assert_events_whole(&screen, &status, 4);
    // Log rows keep their whole entry, value included.
    let text = screen.to_string();
    for i in 15..=20 {
        let entry = format!("PUT user:{i:04} = name {i} ");
        assert!(text.contains(&entry), "{entry:?} cut off:\n{text}");
    }
    insta::assert_snapshot!(screen);
}

/// The events as a playground pane shows them after a restart and an election.
fn playground_status(now: Instant, log_len: u64) -> NodeStatus {
    NodeStatus {
        events: events(&[
            "restarted: recovered log to index 17, term 4, commit 17",
            "link to node 2 up",
            "asks node 1 for a pre-vote, term 2",
            "node 2 granted us a pre-vote, term 5",
            "term 5 begins",
            "became Candidate",
            "node 2 granted us a vote, term 5",
            "became Leader",
            "leader is node 3 (term 2)",
            "link to node 3 down",
        ]),
        ..leader_status(now, log_len, 12)
    }
}

/// Reads the events panel back from the screen, joining each event's wrapped rows, and
/// checks that at least `at_least` events are shown and each one whole.
fn assert_events_whole(screen: &TestBackend, status: &NodeStatus, at_least: usize) {
    let rows: Vec<String> = screen
        .buffer()
        .content()
        .chunks(usize::from(screen.buffer().area.width))
        .map(|row| row.iter().map(|c| c.symbol()).collect())
        .collect();
    let (top, left) = rows
        .iter()
        .enumerate()
        .find_map(|(y, r)| r.find("┌ Events").map(|x| (y, r[..x].chars().count())))
        .expect("an events panel");
    let mut shown: Vec<String> = Vec::new();
    for row in &rows[top + 1..] {
        let inner: String = row.chars().skip(left + 1).collect();
        if inner.is_empty() || row.chars().nth(left) == Some('└') {
            break;
        }
        let inner = inner.trim_end_matches('│').trim_end().to_string();
        // A row that starts with a time starts an event; an indented one continues it.
        match inner.split_once(' ') {
            Some((time, text)) if time.starts_with(|c: char| c.is_ascii_digit()) => {
                shown.push(text.trim().to_string());
            }
            _ => {
                if let Some(last) = shown.last_mut()
                    && !inner.trim().is_empty()
                {
                    last.push(' ');
                    last.push_str(inner.trim());
                }
            }
        }
    }
    let all: Vec<&str> = status.events.iter().map(|e| e.text.as_str()).collect();
    assert!(
        shown.len() >= at_least,
        "expected at least {at_least} events, saw {shown:#?} in:\n{screen}"
    );
    for text in &shown {
        assert!(
            all.contains(&text.as_str()),
            "{text:?} is not a whole event (cut off?); events: {all:#?}\nscreen:\n{screen}"
        );
    }
}

/// A dashboard pane of the playground's wide layout (250 columns / 3, 60 rows less the
/// client): events, log rows, footer and help are whole.
#[test]
fn a_playground_pane_of_82_by_41() {
    let now = Instant::now();
    let status = playground_status(now, 14);
    let screen = render(status.clone(), &Fake::new(14, 10), 82, 41, &[]);
    assert_events_whole(&screen, &status, 8);
    let text = screen.to_string();
    assert!(text.contains("(new leader's no-op)"), "{text}");
    assert!(text.contains("PUT user:0013 = name 13"), "{text}");
    assert!(text.contains("t transfer  ? help"), "{text}");
    insta::assert_snapshot!(screen);
}

#[test]
fn the_help_reads_whole_at_82_by_41_and_80_by_24() {
    let now = Instant::now();
    for (w, h) in [(82, 41), (80, 24)] {
        let screen = render(
            playground_status(now, 14),
            &Fake::new(14, 10),
            w,
            h,
            &[Action::Help],
        )
        .to_string();
        for line in [
            "│Keys ",
            "│  ↑↓ PgUp PgDn   scroll the focused panel; Home/End: start/end (End follows)│",
            "│  ?              this help; any key closes it (Ctrl+C still quits) ",
            "│  the request, no answer at all (its events say so): stop the leader first. ",
            "│Snapshots: every --snapshot-every entries; a follower far behind gets one. ",
        ] {
            assert!(
                screen.contains(line),
                "{w}x{h}: missing {line:?} in\n{screen}"
            );
        }
    }
}

#[test]
fn help_overlay() {
    let now = Instant::now();
    insta::assert_snapshot!(render(
        follower_status(now),
        &Fake::new(20, 1),
        100,
        30,
        &[Action::Help]
    ));
}

#[test]
fn log_end_returns_to_follow_mode() {
    let now = Instant::now();
    let source = Fake::new(500, 0);
    let status = leader_status(now, 500, 0);
    let pages = ui::page_sizes(Rect::new(0, 0, 100, 30), false);
    let mut app = App::default();
    app.update(Action::PageUp, &status, pages, &source);
    assert!(app.log_top.is_some(), "PgUp leaves follow mode");
    app.update(Action::End, &status, pages, &source);
    assert_eq!(app.log_top, None, "End follows the tail again");
    // Scrolling down to the tail also returns to follow mode.
    app.update(Action::Up, &status, pages, &source);
    app.update(Action::Down, &status, pages, &source);
    assert_eq!(app.log_top, None);
}

#[test]
fn up_at_the_first_key_stays_at_the_first_key() {
    let now = Instant::now();
    let source = Fake::new(20, 200);
    let status = leader_status(now, 20, 202);
    let pages = ui::page_sizes(Rect::new(0, 0, 100, 30), false);
    let mut app = App::default();
    app.update(Action::FocusNext, &status, pages, &source);
    for action in [Action::Up, Action::PageUp] {
        app.update(action, &status, pages, &source);
        assert_eq!(
            app.kv_top, None,
            "{action:?} at the top must not jump to the end"
        );
    }
    // Down, then Up, comes back to the first key.
    app.update(Action::Down, &status, pages, &source);
    assert!(app.kv_top.is_some());
    app.update(Action::Up, &status, pages, &source);
    assert_eq!(
        app.kv_top.as_deref(),
        Some("bin"),
        "the first key of the fake store"
    );
}

#[test]
fn header_and_cluster_show_faults() {
    let now = Instant::now();
    let mut source = Fake::new(20, 10);
    source.faults = NetFaults {
        isolated: false,
        cut: [3].into_iter().collect(),
        drop_percent: 30,
        delay_ms: 200,
        ..NetFaults::default()
    };
    let status = NodeStatus {
        frozen: true,
        slow_factor: 10,
        ..leader_status(now, 20, 12)
    };
    insta::assert_snapshot!(render(status, &source, 120, 32, &[]));
}

#[test]
fn the_header_shows_a_snapshot_being_written_and_what_the_node_takes() {
    let now = Instant::now();
    let mut source = Fake::new(20, 10);
    source.resources = Resources {
        disk_bytes: 205 * 1024 * 1024,
        rss_bytes: 248 * 1024 * 1024,
    };
    let status = NodeStatus {
        snapshot_index: 12,
        snapshot_in_progress: Some(18),
        data_bytes: 114 * 1024 * 1024,
        log_cache_bytes: 2 * 1024 * 1024,
        ..follower_status(now)
    };
    insta::assert_snapshot!(render(status, &source, 120, 30, &[]));
}

#[test]
fn an_isolated_follower_marks_every_link_cut() {
    let now = Instant::now();
    let mut source = Fake::new(20, 1);
    source.faults.isolated = true;
    insta::assert_snapshot!(render(follower_status(now), &source, 100, 30, &[]));
}

/// An election as node 2's tap saw it, in slow motion: pre-votes, votes, the first appends.
fn election_messages() -> Vec<MessageRecord> {
    let base = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let m = |seq: u64, dir, t, from, to, term, index, log_term, entries, commit, reject, fate| {
        MessageRecord {
            seq,
            at: base + Duration::from_millis(250 * seq),
            dir,
            msg_type: t,
            from,
            to,
            term,
            index,
            log_term,
            entries,
            commit,
            reject,
            snapshot_index: 0,
            fate,
        }
    };
    use Direction::{In, Out};
    use MessageType::*;
    let mut v = vec![
        m(
            1,
            Out,
            MsgRequestPreVote,
            2,
            1,
            6,
            20,
            5,
            0,
            18,
            false,
            Fate::Delivered,
        ),
        m(
            2,
            Out,
            MsgRequestPreVote,
            2,
            3,
            6,
            20,
            5,
            0,
            18,
            false,
            Fate::Dropped,
        ),
        m(
            3,
            In,
            MsgRequestPreVoteResponse,
            1,
            2,
            6,
            0,
            0,
            0,
            0,
            false,
            Fate::Delivered,
        ),
        m(
            4,
            Out,
            MsgRequestVote,
            2,
            1,
            6,
            20,
            5,
            0,
            18,
            false,
            Fate::Delivered,
        ),
        m(
            5,
            Out,
            MsgRequestVote,
            2,
            3,
            6,
            20,
            5,
            0,
            18,
            false,
            Fate::Delayed(213),
        ),
        m(
            6,
            In,
            MsgRequestVoteResponse,
            1,
            2,
            6,
            0,
            0,
            0,
            0,
            false,
            Fate::Delivered,
        ),
        m(
            7,
            Out,
            MsgAppend,
            2,
            1,
            6,
            20,
            5,
            1,
            18,
            false,
            Fate::Delivered,
        ),
        m(
            8,
            In,
            MsgAppendResponse,
            1,
            2,
            6,
            21,
            0,
            0,
            0,
            false,
            Fate::Delivered,
        ),
        m(
            9,
            In,
            MsgRequestVoteResponse,
            3,
            2,
            6,
            0,
            0,
            0,
            0,
            true,
            Fate::Delivered,
        ),
        m(
            10,
            Out,
            MsgHeartbeat,
            2,
            3,
            6,
            0,
            0,
            0,
            21,
            false,
            Fate::Delivered,
        ),
        m(
            11,
            In,
            MsgHeartbeatResponse,
            3,
            2,
            6,
            0,
            0,
            0,
            0,
            false,
            Fate::Delivered,
        ),
        m(
            12,
            Out,
            MsgAppend,
            2,
            3,
            6,
            15,
            4,
            6,
            21,
            false,
            Fate::Delivered,
        ),
        m(
            13,
            In,
            MsgAppendResponse,
            3,
            2,
            6,
            15,
            0,
            0,
            0,
            true,
            Fate::Delivered,
        ),
    ];
    v.push(MessageRecord {
        snapshot_index: 12,
        ..m(
            14,
            Out,
            MsgSnapshot,
            2,
            3,
            6,
            0,
            0,
            0,
            21,
            false,
            Fate::Delivered,
        )
    });
    v
}

#[test]
fn messages_panel_follows_an_election() {
    let now = Instant::now();
    let mut source = Fake::new(20, 1);
    source.messages = election_messages();
    let status = NodeStatus {
        id: 2,
        slow_factor: 10,
        ..leader_status(now, 21, 3)
    };
    let pages = ui::page_sizes(Rect::new(0, 0, 100, 36), true);
    let mut app = App::default();
    app.update(Action::Messages, &status, pages, &source);
    app.rates.rates = vec![
        (MessageType::MsgHeartbeat, 2, 0),
        (MessageType::MsgHeartbeatResponse, 0, 2),
        (MessageType::MsgAppend, 1, 0),
    ];
    insta::assert_snapshot!(draw(&app, status, &source, 100, 36));
}

#[test]
fn messages_scroll_is_anchored_and_stops_at_both_ends() {
    let now = Instant::now();
    let mut source = Fake::new(20, 1);
    source.messages = election_messages();
    let status = leader_status(now, 21, 3);
    let pages = ui::page_sizes(Rect::new(0, 0, 100, 30), true);
    let mut app = App::default();
    app.update(Action::Messages, &status, pages, &source);
    assert_eq!(app.focus, raft_server::dashboard::app::Panel::Messages);
    app.update(Action::Up, &status, pages, &source);
    assert_eq!(
        app.msgs_bottom,
        Some(13),
        "one message back from the newest (14)"
    );
    for _ in 0..5 {
        app.update(Action::PageUp, &status, pages, &source);
    }
    let first_page_bottom = (pages.messages as u64).min(14);
    assert_eq!(
        app.msgs_bottom.unwrap_or(14),
        first_page_bottom,
        "stops at the first page"
    );
    app.update(Action::End, &status, pages, &source);
    assert_eq!(app.msgs_bottom, None, "End follows again");
    // m again brings the log back.
    app.update(Action::Messages, &status, pages, &source);
    assert!(!app.show_messages);
}

#[test]
fn any_key_closes_the_help() {
    let now = Instant::now();
    let status = follower_status(now);
    let source = Fake::new(20, 1);
    let pages = ui::page_sizes(Rect::new(0, 0, 100, 30), false);
    let mut app = App::default();
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    for code in [
        KeyCode::Char('x'),
        KeyCode::Char(' '),
        KeyCode::Esc,
        KeyCode::Enter,
        KeyCode::Char('q'),
    ] {
        app.update(Action::Help, &status, pages, &source);
        assert!(app.show_help);
        let action = App::action_for(KeyEvent::new(code, KeyModifiers::NONE)).expect("an action");
        app.update(action, &status, pages, &source);
        assert!(!app.show_help, "{code:?} should close the help");
        assert!(!app.quit, "{code:?} over the help only closes it");
    }
    // Ctrl+C quits, help or not.
    app.update(Action::Help, &status, pages, &source);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let action = App::action_for(ctrl_c).expect("an action");
    app.update(action, &status, pages, &source);
    assert!(app.quit);
}

/// Node 4 being promoted: a joint configuration, and the conf changes in the log.
struct MembershipLog;

impl DataSource for MembershipLog {
    fn log_rows(&self, low: u64, high: u64) -> Vec<LogRow> {
        use protobuf::Message as _;
        use raft::eraftpb::{ConfChangeType, Entry, EntryType};
        use raft_server::membership::{encode_context, single_change};
        let conf = |index: u64, cc: raft::eraftpb::ConfChangeV2, context: Vec<u8>| {
            let mut e = Entry::default();
            e.set_entry_type(EntryType::EntryConfChangeV2);
            e.index = index;
            e.term = 5;
            e.data = cc.write_to_bytes().expect("encode").into();
            e.context = context.into();
            LogRow::from_entry(&e, 48)
        };
        let add = conf(
            18,
            {
                let mut cc = single_change(ConfChangeType::AddLearnerNode, 4);
                cc.set_transition(raft::eraftpb::ConfChangeTransition::Auto);
                cc
            },
            encode_context(4, &"127.0.0.1:6004".parse().expect("addr"), 0),
        );
        let promote = conf(19, single_change(ConfChangeType::AddNode, 4), Vec::new());
        let leave = conf(20, raft::eraftpb::ConfChangeV2::default(), Vec::new());
        let mut rows: Vec<LogRow> = Fake::new(17, 0).log_rows(low, high.min(18));
        rows.extend(
            [add, promote, leave]
                .into_iter()
                .filter(|r| r.index >= low && r.index < high),
        );
        rows
    }

    fn kv_from(&self, _from: Option<&str>, _n: usize) -> Vec<KvPreview> {
        Vec::new()
    }

    fn keys_before(&self, _before: Option<&str>, _n: usize) -> Vec<String> {
        Vec::new()
    }
}

#[test]
fn a_joint_configuration_and_decoded_conf_changes() {
    use raft_server::membership::Role as M;
    let now = Instant::now();
    let mut status = leader_status(now, 20, 3);
    status.joint = true;
    status.commit_index = 19;
    status.applied_index = 19;
    status.peers[1].role = Some(M::Voter);
    let mut learner = status.peers[2].clone();
    learner.id = 4;
    learner.role = Some(M::VoterIncoming);
    learner.peer_addr = "127.0.0.1:6004".parse().expect("addr");
    status.peers.push(learner);
    status.events = events(&[
        "membership: add learner 4 @127.0.0.1:6004 (index 18): voters [1, 2, 3]",
        "membership: promote 4 (index 19): joint configuration",
    ]);
    let pages = ui::page_sizes(Rect::new(0, 0, 120, 32), false);
    let app = App::default();
    let _ = pages;
    let backend = {
        let data = app.frame(
            status,
            ui::page_sizes(Rect::new(0, 0, 120, 32), false),
            &MembershipLog,
            &info(1),
            Duration::from_secs(60),
            now,
        );
        let mut terminal = Terminal::new(TestBackend::new(120, 32)).expect("terminal");
        terminal
            .draw(|f| ui::draw(f, &app, &data, None))
            .expect("draw");
        terminal.backend().clone()
    };
    insta::assert_snapshot!(backend);
}

#[test]
fn a_node_waiting_to_be_added_and_a_removed_node_say_so() {
    let now = Instant::now();
    let waiting = NodeStatus {
        id: 4,
        joining: true,
        leader_id: 0,
        role: Role::Follower,
        ..follower_status(now)
    };
    let screen = format!("{}", render(waiting, &Fake::new(0, 0), 100, 30, &[]));
    assert!(
        screen.contains("WAITING TO BE ADDED") && screen.contains("member add 4 127.0.0.1:6004"),
        "{screen}"
    );
    let removed = NodeStatus {
        removed_at: Some(29),
        ..follower_status(now)
    };
    let screen = format!("{}", render(removed, &Fake::new(20, 1), 100, 30, &[]));
    assert!(
        screen.contains("REMOVED") && screen.contains("from the cluster at index 29"),
        "{screen}"
    );
}

#[test]
fn a_duplicate_entry_and_a_joint_configuration_that_just_ended_stay_visible() {
    let now = Instant::now();
    let mut source = Fake::new(20, 3);
    // Entry 15 (applied) was a resent request applied again as a duplicate.
    source.no_effect = vec![15];
    let status = NodeStatus {
        last_joint: Some(raft_server::status::JointSpan {
            old: "1,2,3".into(),
            new: "1,2,3,4".into(),
            entered_at: 40,
            left_at: 41,
            lasted: Duration::from_millis(90),
            ended: now,
        }),
        ..leader_status(now, 20, 3)
    };
    for (w, h) in [(120, 40), (82, 41)] {
        let screen = render(status.clone(), &source, w, h, &[]).to_string();
        let said = if w > 100 {
            "was JOINT {1,2,3} + {1,2,3,4}: index 40-41, 90ms"
        } else {
            "was JOINT {1,2,3}+{1,2,3,4}: 40-41, 90ms"
        };
        assert!(screen.contains(said), "{w}x{h}:\n{screen}");
        let dup_row = screen
            .lines()
            .find(|l| l.contains("name 15"))
            .unwrap_or_default();
        assert!(dup_row.contains("dup"), "{w}x{h}: {dup_row:?}\n{screen}");
        let other = screen
            .lines()
            .find(|l| l.contains("name 16"))
            .unwrap_or_default();
        assert!(!other.contains("dup"), "{w}x{h}: {other:?}");
    }
}

#[test]
fn a_follower_the_leader_has_not_heard_from_shows_a_silent_link() {
    let now = Instant::now();
    let mut status = leader_status(now, 20, 3);
    // Node 3's connection is up (an isolated node still accepts it) but nothing comes back.
    status.peers[2].link_up = Some(true);
    status.peers[2].last_heard = None;
    for (w, h) in [(120, 40), (82, 41)] {
        let screen = render(status.clone(), &Fake::new(20, 3), w, h, &[]).to_string();
        let row = |id: &str| {
            screen
                .lines()
                .find(|l| l.starts_with(&format!("\"│{id} ")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            row("3").contains("silent"),
            "{w}x{h}: {:?}\n{screen}",
            row("3")
        );
        assert!(row("2").contains(" up "), "{w}x{h}: {:?}", row("2"));
    }
}
