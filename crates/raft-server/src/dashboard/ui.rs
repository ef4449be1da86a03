//! Draws one frame from [`FrameData`] and the [`App`] state. Pure: no clocks, no I/O, so
//! render tests can snapshot it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, PageSizes, Panel};
use super::view::{EntryKind, FrameData, escape, escape_head};
use crate::status::{NodeStatus, Role};

const UNCOMMITTED: Color = Color::Yellow;
const COMMITTED: Color = Color::Cyan;
const APPLIED: Color = Color::Green;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    header: Rect,
    log: Rect,
    kv: Rect,
    cluster: Rect,
    events: Rect,
    footer: Rect,
}

/// Splits the screen. Works down to 80x24 and below (panels just get smaller). The
/// cluster panel is as wide as its columns need; the events panel takes the rest.
pub fn areas(area: Rect, cluster_width: u16) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    let [log, kv] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(top);
    let cluster_width = cluster_width.min(bottom.width * 3 / 5);
    let [cluster, events] =
        Layout::horizontal([Constraint::Length(cluster_width), Constraint::Fill(1)]).areas(bottom);
    Areas {
        header,
        log,
        kv,
        cluster,
        events,
        footer,
    }
}

/// Rows each scrollable panel shows in a screen of `area`.
pub fn page_sizes(area: Rect) -> PageSizes {
    // Page heights do not depend on the cluster panel's width.
    let a = areas(area, 0);
    let inner = |r: Rect, header_rows: u16| usize::from(r.height.saturating_sub(2 + header_rows));
    PageSizes {
        log: inner(a.log, 1),
        kv: inner(a.kv, 1),
        events: inner(a.events, 0),
    }
}

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, app: &App, data: &FrameData, notice: Option<&str>) {
    let columns = cluster_columns(data.status.role == Role::Leader, frame.area().width);
    let a = areas(frame.area(), cluster_width(&columns));
    header(frame, a.header, data);
    log_panel(frame, a.log, app, data);
    kv_panel(frame, a.kv, app, data);
    cluster_panel(frame, a.cluster, app, data, &columns);
    events_panel(frame, a.events, app, &data.status);
    footer(frame, a.footer, notice);
    if app.show_help {
        help(frame, frame.area());
    }
}

fn role_style(role: Role) -> Style {
    let color = match role {
        Role::Leader => Color::Green,
        Role::Follower => Color::Blue,
        Role::Candidate => Color::Yellow,
        Role::PreCandidate => Color::Magenta,
    };
    Style::new()
        .fg(Color::Black)
        .bg(color)
        .add_modifier(Modifier::BOLD)
}

fn panel<'a>(title: Line<'a>, focused: bool) -> Block<'a> {
    let block = Block::bordered().title(title);
    if focused {
        block
            .border_type(BorderType::Thick)
            .border_style(Style::new().fg(Color::Cyan))
    } else {
        block.border_style(Style::new().fg(Color::DarkGray))
    }
}

fn sep() -> Span<'static> {
    Span::styled(" │ ", Style::new().fg(Color::DarkGray))
}

fn header(frame: &mut Frame<'_>, area: Rect, data: &FrameData) {
    let s = &data.status;
    let leader = if s.leader_id == 0 {
        "none known".to_string()
    } else if s.leader_id == s.id {
        "me".to_string()
    } else {
        format!("node {}", s.leader_id)
    };
    let vote = if s.vote == 0 {
        "nobody".to_string()
    } else {
        format!("node {}", s.vote)
    };
    let lines = vec![
        Line::from(vec![
            Span::styled(
                format!(" {} ", s.role.as_str().to_uppercase()),
                role_style(s.role),
            ),
            sep(),
            "term ".into(),
            Span::styled(s.term.to_string(), Style::new().bold()),
            sep(),
            format!("leader {leader}").into(),
            sep(),
            format!("voted for {vote}").into(),
            sep(),
            format!("up {}", clock(data.uptime)).into(),
        ]),
        Line::from(vec![
            " ".into(),
            Span::styled(
                format!("commit {}", s.commit_index),
                Style::new().fg(COMMITTED),
            ),
            sep(),
            Span::styled(
                format!("applied {}", s.applied_index),
                Style::new().fg(APPLIED),
            ),
            sep(),
            Span::styled(
                format!("last {}", s.last_index),
                Style::new().fg(UNCOMMITTED),
            ),
            sep(),
            format!("keys {}", s.key_count).into(),
            sep(),
            if s.snapshot_index == 0 {
                "snapshot none".into()
            } else {
                format!("snapshot {}", s.snapshot_index).into()
            },
        ]),
        Line::from(vec![
            format!(" peers {}", data.info.peer_addr).into(),
            sep(),
            format!("clients {}", data.info.api_addr).into(),
            sep(),
            format!("data {}", data.info.data_dir.display()).into(),
        ])
        .fg(Color::Gray),
    ];
    let title = Line::from(format!(" raft-playground · node {} ", s.id)).bold();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(Color::DarkGray)),
        area,
    );
}

fn log_panel(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData) {
    let s = &data.status;
    let mode = if app.log_top.is_none() {
        "follow"
    } else {
        "scrolled · End follows"
    };
    let title = if s.first_index > 1 {
        // Entries before it were compacted into the snapshot (shown in the header).
        Line::from(format!(" Log ({mode}) · from index {} ", s.first_index))
    } else {
        Line::from(format!(" Log ({mode}) "))
    };
    let legend = Line::from(vec![
        " ".into(),
        Span::styled("■", Style::new().fg(UNCOMMITTED)),
        " uncommitted ".into(),
        Span::styled("■", Style::new().fg(COMMITTED)),
        " committed ".into(),
        Span::styled("■", Style::new().fg(APPLIED)),
        " applied ".into(),
    ]);
    let rows = data.log.iter().map(|r| {
        let (state, color) = if r.index <= s.applied_index {
            ("applied", APPLIED)
        } else if r.index <= s.commit_index {
            ("committed", COMMITTED)
        } else {
            ("uncommitted", UNCOMMITTED)
        };
        let kind = match r.kind {
            EntryKind::Command => "cmd",
            EntryKind::Empty => "noop",
            EntryKind::ConfChange => "conf",
        };
        Row::new(vec![
            Cell::from(r.index.to_string()),
            Cell::from(r.term.to_string()),
            Cell::from(kind),
            Cell::from(state),
            Cell::from(r.text.clone()),
        ])
        .style(Style::new().fg(color))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(11),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["index", "term", "kind", "state", "entry"]).style(Style::new().bold()))
    .block(panel(title, app.focus == Panel::Log).title_bottom(legend));
    frame.render_widget(table, area);
    if data.log.is_empty() {
        let hint = Paragraph::new("(the log is empty)").fg(Color::DarkGray);
        frame.render_widget(hint, inset(area, 2));
    }
}

fn kv_panel(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData) {
    let title = Line::from(format!(" State machine · {} keys ", data.status.key_count));
    let inner_width = usize::from(area.width.saturating_sub(2));
    let key_width = (inner_width * 2 / 5).max(4);
    let value_width = inner_width.saturating_sub(key_width + 1).max(4);
    let rows = data.kv.iter().map(|row| {
        Row::new(vec![
            Cell::from(escape(row.key.as_bytes(), key_width.saturating_sub(1))),
            Cell::from(escape_head(
                &row.head,
                row.len,
                value_width.saturating_sub(12),
            )),
        ])
    });
    let table = Table::new(
        rows,
        [Constraint::Length(key_width as u16), Constraint::Fill(1)],
    )
    .header(Row::new(["key", "value"]).style(Style::new().bold()))
    .block(panel(title, app.focus == Panel::Kv));
    frame.render_widget(table, area);
    if data.kv.is_empty() {
        let hint = Paragraph::new("(no keys yet: try raft-client put k v)").fg(Color::DarkGray);
        frame.render_widget(hint, inset(area, 2));
    }
}

/// A column of the cluster panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Node,
    Address,
    Link,
    Heard,
    Match,
    Next,
    Progress,
    Inflight,
    Behind,
}

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::Node => "node",
            Col::Address => "address",
            Col::Link => "link",
            Col::Heard => "heard",
            Col::Match => "match",
            Col::Next => "next",
            Col::Progress => "progress",
            Col::Inflight => "infl",
            Col::Behind => "behind",
        }
    }

    fn width(self) -> u16 {
        match self {
            Col::Node | Col::Link | Col::Inflight => 4,
            Col::Address => 15,
            Col::Heard => 5,
            Col::Match | Col::Next | Col::Behind => 7,
            Col::Progress => 9,
        }
    }
}

/// The cluster columns for a screen `width` wide: followers know only links and when they
/// last heard from a peer; the leader also shows each follower's replication, all of it
/// when there is room.
fn cluster_columns(is_leader: bool, width: u16) -> Vec<Col> {
    use Col::*;
    match (is_leader, width >= 120) {
        (false, _) => vec![Node, Address, Link, Heard],
        (true, true) => vec![
            Node, Address, Link, Heard, Match, Next, Progress, Inflight, Behind,
        ],
        (true, false) => vec![Node, Link, Match, Next, Progress, Behind],
    }
}

fn cluster_width(columns: &[Col]) -> u16 {
    let gaps = columns.len().saturating_sub(1) as u16;
    columns.iter().map(|c| c.width()).sum::<u16>() + gaps + 2
}

fn cluster_panel(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData, columns: &[Col]) {
    let s = &data.status;
    let title = if s.role == Role::Leader {
        " Cluster "
    } else {
        " Cluster (follower view) "
    };
    let rows = s.peers.iter().map(|p| {
        let cells = columns.iter().map(|col| {
            let progress = p.progress.as_ref();
            let text = match col {
                Col::Node if p.is_self => format!("{} me", p.id),
                Col::Node => p.id.to_string(),
                Col::Address => p.peer_addr.to_string(),
                Col::Link => match p.link_up {
                    Some(true) => "up".to_string(),
                    Some(false) => "down".to_string(),
                    None => "-".to_string(),
                },
                Col::Heard => match (p.is_self, p.last_heard) {
                    (true, _) => "-".to_string(),
                    (false, None) => "never".to_string(),
                    (false, Some(t)) => short(data.now.saturating_duration_since(t)),
                },
                Col::Match if p.is_self => s.persisted_index.to_string(),
                Col::Match => progress.map_or(String::new(), |g| g.matched.to_string()),
                Col::Next => progress.map_or(String::new(), |g| g.next.to_string()),
                Col::Progress if p.is_self => "leader".to_string(),
                Col::Progress => progress.map_or(String::new(), |g| g.state.to_string()),
                Col::Inflight => progress.map_or(String::new(), |g| g.inflight.to_string()),
                Col::Behind => progress.map_or(String::new(), |g| {
                    s.last_index.saturating_sub(g.matched).to_string()
                }),
            };
            let color = match (col, text.as_str()) {
                (Col::Link, "up") | (Col::Behind, "0") => Color::Green,
                (Col::Link, "down") => Color::Red,
                (Col::Behind, _) => Color::Yellow,
                _ => Color::Reset,
            };
            Cell::from(text).style(Style::new().fg(color))
        });
        Row::new(cells.collect::<Vec<_>>())
    });
    let widths = columns.iter().map(|c| Constraint::Length(c.width()));
    let header = Row::new(columns.iter().map(|c| c.name())).style(Style::new().bold());
    let table = Table::new(rows, widths)
        .header(header)
        .block(panel(Line::from(title), app.focus == Panel::Cluster));
    frame.render_widget(table, area);
}

fn events_panel(frame: &mut Frame<'_>, area: Rect, app: &App, status: &NodeStatus) {
    let rows = usize::from(area.height.saturating_sub(2));
    let end = status.events.len().saturating_sub(app.events_back);
    let start = end.saturating_sub(rows);
    let lines: Vec<Line<'_>> = status
        .events
        .range(start..end)
        .map(|e| {
            Line::from(vec![
                Span::styled(
                    format!("{} ", time_of_day(e.at)),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::styled(e.text.clone(), event_style(&e.text)),
            ])
        })
        .collect();
    let title = if app.events_back == 0 {
        " Events (UTC) "
    } else {
        " Events (UTC) · scrolled "
    };
    frame.render_widget(
        Paragraph::new(lines).block(panel(Line::from(title), app.focus == Panel::Events)),
        area,
    );
}

fn event_style(text: &str) -> Style {
    if text.starts_with("became Leader") || text.starts_with("leader is") {
        Style::new().fg(Color::Green)
    } else if text.starts_with("became") || text.starts_with("term ") {
        Style::new().fg(Color::Yellow)
    } else if text.contains("down") || text.contains("refused") || text.contains("no known") {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    }
}

fn footer(frame: &mut Frame<'_>, area: Rect, notice: Option<&str>) {
    let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Black).bg(Color::Gray));
    let mut spans = vec![
        key(" q "),
        " quit ".into(),
        key(" Tab "),
        " focus ".into(),
        key(" ↑↓ PgUp PgDn Home End "),
        " scroll ".into(),
        key(" c "),
        " campaign ".into(),
        key(" t "),
        " transfer ".into(),
        key(" ? "),
        " help ".into(),
    ];
    if let Some(n) = notice {
        spans.push(Span::styled(
            format!(" {n}"),
            Style::new().fg(Color::Yellow).bold(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

const HELP: &str = "\
Keys
  q, Ctrl+C        stop this node and quit (the terminal is restored)
  Tab, Shift+Tab   move focus between Log, State machine, Cluster, Events
  ↑ ↓ PgUp PgDn    scroll the focused panel
  Home / End       jump to the start / end (End makes the log follow again)
  c                campaign: start an election now
  t                on the leader: transfer leadership to the most up-to-date follower
  ?                this help; any key closes it

Why a campaign may not win
  With pre-vote on, this node first asks for pre-votes. A peer grants one only if it
  has not heard from a leader within its election timeout and our log is at least as
  up to date as its own. While a healthy leader is sending heartbeats the others
  refuse, so the campaign fails and this node stays a follower: Raft protects a
  working cluster from a disruptive node. Stop the leader first, and it can win.

Log colours
  yellow uncommitted (not yet on a majority) · cyan committed · green applied

Snapshots
  Every --snapshot-every entries a node saves its state machine and drops the log
  behind it; a follower too far behind gets the leader's snapshot instead.";

fn help(frame: &mut Frame<'_>, area: Rect) {
    let width = area.width.min(90);
    let height = area.height.min(24);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(HELP)
            .wrap(Wrap { trim: false })
            .alignment(Alignment::Left)
            .block(Block::bordered().title(" Help ").border_style(Color::Cyan)),
        popup,
    );
}

fn inset(area: Rect, top: u16) -> Rect {
    Rect {
        x: area.x + 2,
        y: area.y + top.min(area.height.saturating_sub(1)),
        width: area.width.saturating_sub(4),
        height: 1.min(area.height),
    }
}

/// `00:03:12` (or `2d 04:00:00`).
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let hms = format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60);
    if s >= 86400 {
        format!("{}d {hms}", s / 86400)
    } else {
        hms
    }
}

/// `45ms`, `1.2s`, `3m`.
fn short(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => format!("{}m", d.as_secs() / 60),
    }
}

/// `HH:MM:SS.mmm` in UTC.
fn time_of_day(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}
