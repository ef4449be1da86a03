//! Draws one frame from [`FrameData`] and the [`App`] state. Pure: no clocks, no I/O, so
//! render tests can snapshot it.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, PageSizes, Panel};
use super::view::{Direction, EntryKind, Fate, FrameData, MessageRecord, escape, escape_head};
use crate::membership::Role as MemberRole;
use crate::status::{NodeStatus, Role, human_size};
use crate::transport::fault::describe_links;
use crate::transport::tap::short_name;
use raft::eraftpb::MessageType;

const UNCOMMITTED: Color = Color::Yellow;
const COMMITTED: Color = Color::Cyan;
const APPLIED: Color = Color::Green;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    header: Rect,
    log: Rect,
    kv: Rect,
    /// The log's and the keys' place, when the messages panel takes it.
    messages: Rect,
    cluster: Rect,
    events: Rect,
    footer: Rect,
}

/// Splits the screen. Works down to 80x24 and below (panels just get smaller). The
/// cluster panel is as wide as its columns need; the events panel takes the rest. With
/// `show_messages` the messages panel takes the log's and the keys' place.
pub fn areas(area: Rect, cluster_width: u16, show_messages: bool) -> Areas {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
    let [log, kv] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(top);
    let (log, kv, messages) = if show_messages {
        (Rect::default(), Rect::default(), top)
    } else {
        (log, kv, Rect::default())
    };
    let cluster_width = cluster_width.min(bottom.width * 3 / 5);
    let [cluster, events] =
        Layout::horizontal([Constraint::Length(cluster_width), Constraint::Fill(1)]).areas(bottom);
    Areas {
        header,
        log,
        kv,
        messages,
        cluster,
        events,
        footer,
    }
}

/// Rows each scrollable panel shows in a screen of `area`.
pub fn page_sizes(area: Rect, show_messages: bool) -> PageSizes {
    // Page heights do not depend on the cluster panel's width.
    let a = areas(area, 0, show_messages);
    let inner = |r: Rect, header_rows: u16| usize::from(r.height.saturating_sub(2 + header_rows));
    PageSizes {
        log: inner(a.log, 1),
        kv: inner(a.kv, 1),
        events: inner(a.events, 0),
        messages: inner(a.messages, 1),
    }
}

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, app: &App, data: &FrameData, notice: Option<&str>) {
    let columns = cluster_columns(data.status.role == Role::Leader, frame.area().width);
    let a = areas(frame.area(), cluster_width(&columns), app.show_messages);
    header(frame, a.header, data);
    if app.show_messages {
        messages_panel(frame, a.messages, app, data);
    } else {
        log_panel(frame, a.log, app, data);
        kv_panel(frame, a.kv, app, data);
    }
    cluster_panel(frame, a.cluster, app, data, &columns);
    events_panel(frame, a.events, app, &data.status);
    footer(frame, a.footer, app, data, notice);
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
            role_badge(s),
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
            if s.data_bytes > 0 {
                format!("keys {} ({})", s.key_count, size(s.data_bytes)).into()
            } else {
                format!("keys {}", s.key_count).into()
            },
            sep(),
            match (s.snapshot_index, s.snapshot_in_progress) {
                (_, Some(writing)) => Span::styled(
                    format!("snapshot {}, writing {writing}…", s.snapshot_index),
                    Style::new().fg(Color::Yellow),
                ),
                (0, None) => "snapshot none".into(),
                (index, None) => format!("snapshot {index}").into(),
            },
        ]),
        Line::from(resources_spans(data, area.width < 100)).fg(Color::Gray),
        faults_line(data),
    ];
    let title = Line::from(format!(" raft-playground · node {} ", s.id)).bold();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(Color::DarkGray)),
        area,
    );
}

/// The role in the header: a learner says so (raft-rs calls it a follower: it follows the
/// log but does not vote).
fn role_badge(s: &NodeStatus) -> Span<'static> {
    let learner = s
        .peer(s.id)
        .is_some_and(|p| p.role == Some(MemberRole::Learner));
    if learner && s.role == Role::Follower {
        Span::styled(
            " LEARNER ",
            Style::new().fg(Color::Black).bg(Color::Cyan).bold(),
        )
    } else {
        Span::styled(
            format!(" {} ", s.role.as_str().to_uppercase()),
            role_style(s.role),
        )
    }
}

/// Addresses, the data dir, disk and memory use. Narrow (a playground pane), the ports
/// come first and the data dir last, so what is cut is the end of a path.
fn resources_spans(data: &FrameData, narrow: bool) -> Vec<Span<'static>> {
    let r = data.resources;
    let mut usage: Vec<Span<'static>> = Vec::new();
    if r.disk_bytes > 0 || r.rss_bytes > 0 {
        usage.push(format!("disk {}", size(r.disk_bytes)).into());
        usage.push(sep());
        usage.push(format!("rss {}", size(r.rss_bytes)).into());
    }
    if data.status.log_cache_bytes > 0 {
        if !usage.is_empty() {
            usage.push(sep());
        }
        usage.push(format!("cache {}", size(data.status.log_cache_bytes)).into());
    }
    let data_dir: Span<'static> = format!("data {}", data.info.data_dir.display()).into();
    if narrow {
        let mut spans: Vec<Span<'static>> = vec![
            format!(
                " ports {}/{}",
                port_of(&data.info.peer_addr),
                port_of(&data.info.api_addr)
            )
            .into(),
        ];
        for span in usage {
            if spans.len() == 1 {
                spans.push(sep());
            }
            spans.push(span);
        }
        spans.push(sep());
        spans.push(data_dir);
        return spans;
    }
    let mut spans = vec![
        format!(" peers {}", data.info.peer_addr).into(),
        sep(),
        format!("clients {}", data.info.api_addr).into(),
        sep(),
        data_dir,
    ];
    if !usage.is_empty() {
        spans.push(sep());
        spans.extend(usage);
    }
    spans
}

/// The port of a `host:port` address (the whole address if it has none).
fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(_, port)| port)
}

fn size(bytes: u64) -> String {
    human_size(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// This node's faults at a glance: loud badges for what stops it, plain words for the rest.
fn faults_line(data: &FrameData) -> Line<'static> {
    let s = &data.status;
    let f = &data.faults;
    let badge = |text: &str| {
        Span::styled(
            format!(" {text} "),
            Style::new().fg(Color::White).bg(Color::Red).bold(),
        )
    };
    let mut spans: Vec<Span<'static>> = vec![" ".into()];
    if let Some(index) = s.removed_at {
        spans.push(badge("REMOVED"));
        spans.push(Span::styled(
            format!(" from the cluster at index {index}: it takes no part any more; stop it (q)"),
            Style::new().fg(Color::Red).bold(),
        ));
        return Line::from(spans);
    }
    if s.joining {
        spans.push(Span::styled(
            " WAITING TO BE ADDED ",
            Style::new().fg(Color::Black).bg(Color::Cyan).bold(),
        ));
        spans.push(Span::styled(
            format!(
                " run: raft-client member add {} {}",
                s.id, data.info.peer_addr
            ),
            Style::new().fg(Color::Cyan).bold(),
        ));
        return Line::from(spans);
    }
    if s.refused.is_some() {
        // Said until the node is stopped: it takes no part, and the reason would scroll
        // out of the events panel at once.
        spans.push(badge("REFUSED"));
        spans.push(Span::styled(
            format!(
                " its data dir is new to the cluster (wiped?): raft-client member remove {}, \
                 then empty it, --join, member add (events say more)",
                s.id
            ),
            Style::new().fg(Color::Red).bold(),
        ));
        return Line::from(spans);
    }
    // A lab's switched-off protections: said first, as long as the node runs.
    for off in s.protections.badges() {
        spans.push(badge(&off));
        spans.push(" ".into());
    }
    if s.step_mode {
        spans.push(Span::styled(
            format!(" STEP MODE: {} held ", s.held_count),
            Style::new().fg(Color::Black).bg(Color::Cyan).bold(),
        ));
        spans.push(" ".into());
    }
    if s.frozen {
        spans.push(badge("FROZEN"));
        spans.push(" ".into());
    }
    if f.isolated {
        spans.push(badge("ISOLATED"));
        spans.push(" ".into());
    }
    let mut words = describe_links(f);
    if s.slow_factor > 1 {
        words.push(format!("slow motion x{}", s.slow_factor));
    }
    let any = s.frozen || f.isolated || !words.is_empty() || s.step_mode;
    if !words.is_empty() {
        spans.push(Span::styled(
            words.join(" · "),
            Style::new().fg(Color::Yellow).bold(),
        ));
    }
    if any {
        spans.push(Span::styled(
            "  (faults clear when the node restarts)",
            Style::new().fg(Color::DarkGray),
        ));
    } else {
        spans.push(Span::styled("no faults", Style::new().fg(Color::DarkGray)));
    }
    Line::from(spans)
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
    let wide = area.width >= 60;
    let rows = data.log.iter().map(|r| {
        // Narrow, the state is a short word (the legend below spells it out), so that
        // the entry keeps its value.
        let (state, color) = if r.index <= s.applied_index && r.no_effect {
            // Applied, as a duplicate of a request applied before: it changed nothing.
            (if wide { "applied dup" } else { "dup" }, APPLIED)
        } else if r.index <= s.applied_index {
            ("applied", APPLIED)
        } else if r.index <= s.commit_index {
            (if wide { "committed" } else { "commit" }, COMMITTED)
        } else {
            (if wide { "uncommitted" } else { "uncomm" }, UNCOMMITTED)
        };
        let kind = match r.kind {
            EntryKind::Command => "cmd",
            EntryKind::Empty => "noop",
            EntryKind::ConfChange => "conf",
        };
        let mut cells = vec![
            Cell::from(r.index.to_string()),
            Cell::from(r.term.to_string()),
            Cell::from(kind),
            Cell::from(state),
            Cell::from(r.text.clone()),
        ];
        if !wide {
            cells.remove(2);
        }
        Row::new(cells).style(Style::new().fg(color))
    });
    // Narrow (a playground pane): the entry keeps the room, the kind column goes (the
    // entry's text says it: PUT, DEL, no-op) and the index column is as wide as the
    // indexes shown.
    let digits = |n: u64| n.to_string().len() as u16;
    let index_width = data.log.last().map_or(5, |r| digits(r.index)).max(5);
    let mut widths = vec![
        Constraint::Length(if wide { 7 } else { index_width }),
        Constraint::Length(if wide { 5 } else { digits(s.term).max(4) }),
        Constraint::Length(4),
        Constraint::Length(if wide { 11 } else { 7 }),
        Constraint::Fill(1),
    ];
    let mut names = vec!["index", "term", "kind", "state", "entry"];
    if !wide {
        widths.remove(2);
        names.remove(2);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(names).style(Style::new().bold()))
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
    Role,
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
            Col::Role => "role",
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
            Col::Node | Col::Inflight => 4,
            Col::Link => 6,
            Col::Role => 7,
            Col::Address => 15,
            Col::Heard => 5,
            Col::Match | Col::Next | Col::Behind => 7,
            Col::Progress => 9,
        }
    }
}

/// The cluster columns for a screen `width` wide: followers know only links and when they
/// last heard from a peer; the leader shows each follower's replication instead of the
/// addresses (which the header and `member list` show), all of it when there is room.
fn cluster_columns(is_leader: bool, width: u16) -> Vec<Col> {
    use Col::*;
    match (is_leader, width >= 120) {
        (false, _) => vec![Node, Role, Address, Link, Heard],
        (true, true) => vec![
            Node, Role, Link, Heard, Match, Next, Progress, Inflight, Behind,
        ],
        // Narrow: what a learner reads (its role, how far each follower has got and how
        // far behind it is) and room left for the events.
        (true, false) => vec![Node, Role, Link, Match, Progress, Behind],
    }
}

fn cluster_width(columns: &[Col]) -> u16 {
    let gaps = columns.len().saturating_sub(1) as u16;
    columns.iter().map(|c| c.width()).sum::<u16>() + gaps + 2
}

/// A link is up but nothing came over it for this long (times the slow-motion factor):
/// ten heartbeats of a leader that should be talking.
const SILENT_AFTER: Duration = Duration::from_secs(1);

/// True when `p` should be talking to this node and has not for [`SILENT_AFTER`]: the
/// leader hears every follower at each heartbeat, a follower hears the leader. Two
/// followers never talk, so their link is only up or down.
fn silent(s: &NodeStatus, p: &crate::status::PeerView, now: std::time::Instant) -> bool {
    let talks = s.role == Role::Leader || p.id == s.leader_id;
    let limit = SILENT_AFTER * s.slow_factor.max(1);
    talks
        && !p.is_self
        && p.last_heard
            .is_none_or(|t| now.saturating_duration_since(t) >= limit)
}

/// How long the dashboard keeps saying that a joint configuration happened.
const JOINT_SHOWN_FOR: Duration = Duration::from_secs(10);

/// The last joint configuration, if it ended within [`JOINT_SHOWN_FOR`].
fn recent_joint(s: &NodeStatus, now: std::time::Instant) -> Option<&crate::status::JointSpan> {
    s.last_joint
        .as_ref()
        .filter(|j| now.saturating_duration_since(j.ended) < JOINT_SHOWN_FOR)
}

fn cluster_panel(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData, columns: &[Col]) {
    let s = &data.status;
    let view = if s.role == Role::Leader {
        ""
    } else {
        " (follower view)"
    };
    // A playground pane: the title has about 40 columns.
    let narrow = area.width < 60;
    let title = if s.joint {
        // Old and new voters: both majorities decide until the leader leaves the joint state.
        let set = |keep: &dyn Fn(MemberRole) -> bool| {
            let ids: Vec<String> = s
                .peers
                .iter()
                .filter(|p| p.role.is_some_and(keep))
                .map(|p| p.id.to_string())
                .collect();
            ids.join(",")
        };
        let old = set(&|r| matches!(r, MemberRole::Voter | MemberRole::VoterOutgoing));
        let new = set(&|r| matches!(r, MemberRole::Voter | MemberRole::VoterIncoming));
        if narrow {
            format!(" JOINT {{{old}}}+{{{new}}} ")
        } else {
            format!(" Cluster{view} · JOINT: old {{{old}}} + new {{{new}}} ")
        }
    } else if let Some(j) = recent_joint(s, data.now) {
        // It lasts milliseconds: said for a while after, so a person can see it happened.
        let (a, b, lasted) = (j.entered_at, j.left_at, short(j.lasted));
        if narrow {
            format!(" was JOINT {{{}}}+{{{}}}: {a}-{b}, {lasted} ", j.old, j.new)
        } else {
            format!(
                " Cluster{view} · was JOINT {{{}}} + {{{}}}: index {a}-{b}, {lasted} ",
                j.old, j.new
            )
        }
    } else {
        format!(" Cluster{view} ")
    };
    let magenta = s.joint || recent_joint(s, data.now).is_some();
    let rows = s.peers.iter().map(|p| {
        let cells = columns.iter().map(|col| {
            let progress = p.progress.as_ref();
            let text = match col {
                Col::Node if p.is_self => format!("{} me", p.id),
                Col::Node => p.id.to_string(),
                Col::Role => match p.role {
                    Some(MemberRole::Voter) => "voter",
                    Some(MemberRole::VoterIncoming) => "voter+",
                    Some(MemberRole::VoterOutgoing) => "voter-",
                    Some(MemberRole::Learner) => "learner",
                    None => "-",
                }
                .to_string(),
                Col::Address => p.peer_addr.to_string(),
                Col::Link if !p.is_self && data.faults.link_cut(p.id) => "cut".to_string(),
                Col::Link => match p.link_up {
                    Some(true) if silent(s, p, data.now) => "silent".to_string(),
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
                (Col::Link, "down" | "cut") => Color::Red,
                (Col::Link, "silent") => Color::Yellow,
                (Col::Role, "voter+" | "voter-") => Color::Magenta,
                (Col::Role, "learner") => Color::Cyan,
                (Col::Behind, _) => Color::Yellow,
                _ => Color::Reset,
            };
            Cell::from(text).style(Style::new().fg(color))
        });
        Row::new(cells.collect::<Vec<_>>())
    });
    let widths = columns.iter().map(|c| Constraint::Length(c.width()));
    let header = Row::new(columns.iter().map(|c| c.name())).style(Style::new().bold());
    let table = Table::new(rows, widths).header(header).block(panel(
        Line::from(title).style(if magenta {
            Style::new().fg(Color::Magenta).bold()
        } else {
            Style::new()
        }),
        app.focus == Panel::Cluster,
    ));
    frame.render_widget(table, area);
}

fn events_panel(frame: &mut Frame<'_>, area: Rect, app: &App, status: &NodeStatus) {
    let rows = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2));
    let end = status.events.len().saturating_sub(app.events_back);
    // A narrow panel (a playground pane) leaves the hour out: its room goes to the text.
    let short_time = width < 60;
    let time_width = if short_time { 9 } else { TIME_WIDTH };
    // Each event whole, wrapped under its text: the newest shown at the bottom, as many
    // before it as fit; when the oldest is reached with room left, the ones after `end`
    // fill it (so scrolling to the start shows a full panel).
    let event_rows = |i: usize| -> Vec<Line<'static>> {
        let e = &status.events[i];
        let text_width = width.saturating_sub(time_width + 1).max(8);
        let style = event_style(&e.text);
        wrap_words(&e.text, text_width)
            .into_iter()
            .enumerate()
            .map(|(n, piece)| {
                let time = match (n, short_time) {
                    (0, false) => format!("{} ", time_of_day(e.at)),
                    // `MM:SS.mmm` of `HH:MM:SS.mmm`.
                    (0, true) => format!("{} ", &time_of_day(e.at)[3..]),
                    _ => " ".repeat(time_width + 1),
                };
                Line::from(vec![
                    Span::styled(time, Style::new().fg(Color::DarkGray)),
                    Span::styled(piece, style),
                ])
            })
            .collect()
    };
    let mut shown: VecDeque<Line<'static>> = VecDeque::new();
    let mut first = end;
    while first > 0 {
        let lines = event_rows(first - 1);
        if shown.len() + lines.len() > rows && !shown.is_empty() {
            break;
        }
        first -= 1;
        for line in lines.into_iter().rev() {
            shown.push_front(line);
        }
    }
    let mut next = end;
    while next < status.events.len() {
        let lines = event_rows(next);
        if shown.len() + lines.len() > rows {
            break;
        }
        shown.extend(lines);
        next += 1;
    }
    let lines: Vec<Line<'static>> = shown.into_iter().take(rows).collect();
    let clock = if short_time { "UTC min:s" } else { "UTC" };
    let title = if app.events_back == 0 {
        format!(" Events ({clock}) ")
    } else {
        format!(" Events ({clock}) · scrolled ")
    };
    frame.render_widget(
        Paragraph::new(lines).block(panel(Line::from(title), app.focus == Panel::Events)),
        area,
    );
}

/// Columns of `HH:MM:SS.mmm`.
const TIME_WIDTH: usize = 12;

/// Cuts `text` into rows of at most `width` columns between words (a longer word is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let used = row.chars().count();
            let need = word.chars().count() + usize::from(used > 0);
            if used + need <= width {
                if used > 0 {
                    row.push(' ');
                }
                row.push_str(&word);
                break;
            }
            if used > 0 {
                rows.push(std::mem::take(&mut row));
                continue;
            }
            // A word longer than a row: cut it.
            let cut: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            rows.push(cut);
            if word.is_empty() {
                break;
            }
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    // Keep a short last word with the one before ("term 5", not "term" then "5").
    let n = rows.len();
    if n >= 2
        && rows[n - 1].chars().count() <= 2
        && !rows[n - 1].contains(' ')
        && let Some(i) = rows[n - 2].rfind(' ')
    {
        let moved = rows[n - 2].split_off(i + 1);
        rows[n - 2].pop();
        if moved.chars().count() + 1 + rows[n - 1].chars().count() <= width {
            rows[n - 1] = format!("{moved} {}", rows[n - 1]);
        } else {
            rows[n - 2] = format!("{} {moved}", rows[n - 2]);
        }
    }
    rows
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

fn footer(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData, notice: Option<&str>) {
    let key = |k: &str| {
        Span::styled(
            format!(" {k} "),
            Style::new().fg(Color::Black).bg(Color::Gray),
        )
    };
    let messages = if app.show_messages { "log" } else { "msgs" };
    let freeze = if data.status.frozen { "thaw" } else { "freeze" };
    // By priority: what does not fit the width is left out (all of it is in the help).
    let mut items = vec![
        ("q", "quit"),
        ("?", "help"),
        ("m", messages),
        ("i", "isolate"),
        ("f", freeze),
        ("h", "heal"),
        ("c", "campaign"),
        ("t", "transfer"),
        ("Tab", "focus"),
    ];
    let width = usize::from(area.width);
    let mut spans: Vec<Span<'static>> = Vec::new();
    if let Some(n) = notice {
        // An answer to a key is news: it gets the room, with quit and help kept.
        items.truncate(2);
        push_keys(&mut spans, &items, &key);
        spans.push(Span::styled(
            format!(" {n}"),
            Style::new().fg(Color::Yellow).bold(),
        ));
    } else {
        let cost = |items: &[(&str, &str)]| -> usize {
            items
                .iter()
                .map(|(k, l)| k.chars().count() + 3 + l.len())
                .sum()
        };
        while items.len() > 2 && cost(&items) > width {
            items.pop();
        }
        // Help goes last, where the eye looks for it.
        let help = items.remove(1);
        items.push(help);
        push_keys(&mut spans, &items, &key);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn push_keys(
    spans: &mut Vec<Span<'static>>,
    items: &[(&str, &str)],
    key: &dyn Fn(&str) -> Span<'static>,
) {
    for (k, label) in items {
        spans.push(key(k));
        spans.push(format!("{label} ").into());
    }
}

const HELP: &str = "\
Keys
  q, Ctrl+C      stop this node and quit (the terminal is restored)
  Tab            move focus between panels
  ↑↓ PgUp PgDn   scroll the focused panel; Home/End: start/end (End follows)
  m              messages panel, in place of the log and the keys
  c              campaign: start an election now (pre-vote first)
  t              on the leader: hand leadership to the best follower
  i / f / h      isolate / freeze (f again thaws) / heal this node
  ?              this help; any key closes it (Ctrl+C still quits)
Faults live in memory: a restart clears the node's own. raft-client fault
... sets them on any node.
Why a campaign may not win: a peer grants a (pre-)vote only if our log is
  as up to date as its own (last term, then last index); and one that heard
  from a leader within its election timeout (check-quorum's lease) ignores
  the request, no answer at all (its events say so): stop the leader first.
Log: yellow uncommitted · cyan committed · green applied. An entry is
  applied in the step that learns it is committed, so it goes from yellow
  straight to green. dup: a resent request applied again as a duplicate,
  which changed nothing.
Snapshots: every --snapshot-every entries; a follower far behind gets one.";

fn help(frame: &mut Frame<'_>, area: Rect) {
    let lines = HELP.lines().count() as u16;
    let width = area.width.min(78);
    let height = area.height.min(lines + 2);
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

/// The messages panel: recent peer messages, newest at the bottom, and the rates by type.
fn messages_panel(frame: &mut Frame<'_>, area: Rect, app: &App, data: &FrameData) {
    let mode = if app.msgs_bottom.is_none() {
        "follow"
    } else {
        "scrolled · End follows"
    };
    let title = Line::from(format!(" Messages ({mode}) · → sent ← received "));
    let rates: Vec<String> = data
        .rates
        .iter()
        .take(4)
        .map(|(t, out, inn)| format!("{} {out}/{inn}", short_name(*t)))
        .collect();
    let rate_line = if rates.is_empty() {
        " no messages in the last second ".to_string()
    } else {
        format!(" per second (out/in): {} ", rates.join(" · "))
    };
    let me = data.status.id;
    let rows = data.messages.iter().map(|m| message_row(m, me));
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(6),
            Constraint::Length(13),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new([
            "time", "link", "type", "term", "index", "lterm", "ents", "commit", "",
        ])
        .style(Style::new().bold()),
    )
    .block(
        panel(title, app.focus == Panel::Messages)
            .title_bottom(Line::from(rate_line).fg(Color::Gray)),
    );
    frame.render_widget(table, area);
    if data.messages.is_empty() {
        let hint = Paragraph::new("(no peer messages yet)").fg(Color::DarkGray);
        frame.render_widget(hint, inset(area, 2));
    }
}

fn message_row(m: &MessageRecord, me: u64) -> Row<'static> {
    let link = match m.dir {
        Direction::Out => format!("→ {}", m.to),
        Direction::In => format!("← {}", m.from),
    };
    let _ = me;
    let mut note = Vec::new();
    let vote_answer = matches!(
        m.msg_type,
        MessageType::MsgRequestVoteResponse | MessageType::MsgRequestPreVoteResponse
    );
    match (vote_answer, m.reject) {
        (true, false) => note.push("granted".to_string()),
        (true, true) => note.push("refused".to_string()),
        (false, true) => note.push("rejected".to_string()),
        (false, false) => {}
    }
    if m.snapshot_index > 0 {
        note.push(format!("snapshot @{}", m.snapshot_index));
    }
    let color = match m.fate {
        Fate::Delivered => Color::Reset,
        Fate::Dropped => {
            note.push("✗ dropped".to_string());
            Color::Red
        }
        Fate::Delayed(ms) => {
            note.push(format!("⏱ +{ms} ms"));
            Color::Yellow
        }
        Fate::Held => {
            note.push("held (step mode)".to_string());
            Color::Cyan
        }
    };
    let dash = |n: u64| {
        if n == 0 {
            "-".to_string()
        } else {
            n.to_string()
        }
    };
    let type_style = match m.msg_type {
        t if short_name(t).contains("Vote") => Style::new().fg(Color::Magenta),
        _ => Style::new(),
    };
    Row::new(vec![
        Cell::from(time_of_day(m.at)),
        Cell::from(link).style(Style::new().fg(match m.dir {
            Direction::Out => Color::Cyan,
            Direction::In => Color::Green,
        })),
        Cell::from(short_name(m.msg_type)).style(type_style),
        Cell::from(m.term.to_string()),
        Cell::from(dash(m.index)),
        Cell::from(dash(m.log_term)),
        Cell::from(if m.entries == 0 {
            String::new()
        } else {
            m.entries.to_string()
        }),
        Cell::from(dash(m.commit)),
        Cell::from(note.join(" ")),
    ])
    .style(Style::new().fg(color))
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
