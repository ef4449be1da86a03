//! Drawing the cluster view: one line per node (role, term, indexes, its election timer as
//! a bar), the logs side by side (a row per node, a column per index, each cell the
//! entry's term, as in figure 7 of the Raft paper), and the messages as a space-time
//! diagram (a column per node, time going down, an arrow per message). Pure: it draws the
//! model and the view state, and costs what is on screen, not what is buffered.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction as LayoutDir, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::model::{ClusterModel, Dir, MsgEvent};
use super::state::{Layout as Panels, ViewState};
use crate::tui::ui::role_color;

/// Colours of terms, in turn: neighbouring terms always differ.
const TERM_COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
];

/// The colour of term `t`.
pub fn term_color(t: u64) -> Color {
    TERM_COLORS[(t % TERM_COLORS.len() as u64) as usize]
}

/// Draws the whole view into `frame`; `now_us` is the viewer's clock.
pub fn draw(frame: &mut Frame<'_>, model: &ClusterModel, st: &mut ViewState, now_us: u64) {
    draw_in(frame, frame.area(), model, st, now_us);
}

/// Draws the whole view into `area` of `frame` (a replay keeps rows below for its
/// timeline); `now_us` is the clock of what is shown.
pub fn draw_in(
    frame: &mut Frame<'_>,
    area: Rect,
    model: &ClusterModel,
    st: &mut ViewState,
    now_us: u64,
) {
    let members = model.members();
    let n = members.len().max(1) as u16;
    let logs_height = n + 3;
    let nodes_height = n + 2;
    let constraints: Vec<Constraint> = match st.layout {
        Panels::All => vec![
            Constraint::Length(1),
            Constraint::Length(nodes_height),
            Constraint::Length(logs_height),
            Constraint::Min(5),
            Constraint::Length(1),
        ],
        Panels::Diagram => vec![
            Constraint::Length(1),
            Constraint::Length(nodes_height),
            Constraint::Length(0),
            Constraint::Min(5),
            Constraint::Length(1),
        ],
        Panels::Logs => vec![
            Constraint::Length(1),
            Constraint::Length(nodes_height),
            Constraint::Min(logs_height),
            Constraint::Length(0),
            Constraint::Length(1),
        ],
    };
    let rows = Layout::default()
        .direction(LayoutDir::Vertical)
        .constraints(constraints)
        .split(area);
    title(frame, rows[0], model, st, now_us);
    nodes_panel(frame, rows[1], model, &members);
    if rows[2].height > 0 {
        logs_panel(frame, rows[2], model, &members, st);
    }
    let stepping = model.stepping();
    if rows[3].height > 0 {
        let mut area = rows[3];
        if stepping && area.height >= 8 {
            // The held messages, then the latest events (a refusal, a vote, a new
            // leader: what each delivery did).
            let shown = model.held().len().clamp(1, 8) as u16 + 2 + STEP_EVENTS as u16;
            let [top, bottom] =
                Layout::vertical([Constraint::Min(4), Constraint::Length(shown)]).areas(area);
            area = top;
            held_panel(frame, bottom, model, st);
        }
        diagram(frame, area, model, &members, st, now_us);
    }
    if stepping && st.replay.is_none() {
        let keys = " STEP MODE: Enter deliver · d drop · ↑↓ choose · 1-9 node, t tick it · \
                    s step off · q leave";
        frame.render_widget(Paragraph::new(Line::from(keys).fg(Color::Cyan)), rows[4]);
    } else {
        footer(frame, rows[4], st.replay.is_some());
    }
    if st.help {
        help(frame, area, st.replay.is_some());
    }
}

fn title(frame: &mut Frame<'_>, area: Rect, model: &ClusterModel, st: &ViewState, now_us: u64) {
    let leader = match model
        .leader()
        .and_then(|l| Some((l, model.node(l)?.state.as_ref()?)))
    {
        Some((id, s)) => format!("leader node {id}, term {}", s.term),
        None => "no leader".to_string(),
    };
    let mode = match (&st.replay, st.paused_at) {
        (Some(replay), _) => Span::styled(replay.clone(), Style::new().fg(Color::Cyan).bold()),
        (None, _) if model.stepping() => Span::styled(
            format!("STEP MODE, {} held", model.held().len()),
            Style::new().fg(Color::Cyan).bold(),
        ),
        (None, None) => Span::styled("live", Style::new().fg(Color::Green).bold()),
        (None, Some(_)) => Span::styled(
            format!("paused, {} new records (f: follow)", st.behind(model)),
            Style::new().fg(Color::Yellow).bold(),
        ),
    };
    let mut spans = vec![
        Span::styled(" Cluster view ", Style::new().bold()),
        "· ".into(),
        leader.into(),
        " · ".into(),
        mode,
    ];
    // Liveness: churn in the last minute, and a cluster without a leader.
    let live = model.liveness(now_us);
    if live.leaderless_us >= 1_000_000 && model.records() > 0 {
        spans.push(Span::styled(
            format!(" · no leader for {:.1} s", live.leaderless_us as f64 / 1e6),
            Style::new().fg(Color::Red).bold(),
        ));
    }
    if live.elections + live.leader_changes > 0 {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        spans.push(Span::styled(
            format!(
                " · last minute: {}, {}",
                plural(live.elections, "election"),
                plural(live.leader_changes, "leader change")
            ),
            Style::new().fg(if live.elections > 3 {
                Color::Yellow
            } else {
                Color::DarkGray
            }),
        ));
    }
    spans.push(format!(" · {} records", model.records()).fg(Color::DarkGray));
    let line = Line::from(spans);
    frame.render_widget(Paragraph::new(line), area);
}

fn footer(frame: &mut Frame<'_>, area: Rect, replay: bool) {
    let keys = if replay {
        " Space play · ←→ a record · Shift+←→ moments · +- speed · h heartbeats · t types · \
         Tab panels · <> log · ? help · q leave"
    } else {
        " Space rewind · Shift+← last moment · ↑↓ scroll · f follow · h heartbeats · \
         t types · s step · Tab panels · ←→ log · ? help · q leave"
    };
    frame.render_widget(Paragraph::new(Line::from(keys).fg(Color::DarkGray)), area);
}

/// Events shown under the held messages in step mode.
const STEP_EVENTS: usize = 3;

/// Step mode's held messages, oldest first (the chosen one marked), the latest events
/// (what the last delivery or tick did: a vote granted, a request ignored in check-quorum's
/// lease, a new leader), and what the last step command said.
fn held_panel(frame: &mut Frame<'_>, area: Rect, model: &ClusterModel, st: &ViewState) {
    let held = model.held();
    let rows = usize::from(area.height.saturating_sub(2)).saturating_sub(STEP_EVENTS);
    let sel = st.held_sel.min(held.len().saturating_sub(1));
    let first = sel.saturating_sub(rows.saturating_sub(1));
    let mut lines: Vec<Line<'_>> = held
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, (node, h))| {
            let m = h.msg.clone().unwrap_or_default();
            let mut text = format!(
                "{} n{node} #{:<3} {} {}→{} t{}",
                if i == sel { "›" } else { " " },
                h.hold_id,
                m.msg_type,
                m.from,
                m.to,
                m.term
            );
            if m.msg_type == "MsgAppend" {
                text.push_str(&format!(
                    " after {}/{} +{} commit {}",
                    m.index, m.log_term, m.entries, m.commit
                ));
            } else if m.msg_type.ends_with("Response") {
                text.push_str(if m.reject { " rejected" } else { " granted" });
            }
            let style = if i == sel {
                Style::new().fg(Color::Cyan).bold()
            } else {
                Style::new()
            };
            Line::from(Span::styled(text, style))
        })
        .collect();
    if held.is_empty() {
        lines.push(
            Line::from(" nothing held: tick a node (1-9, then t) to fire its timer")
                .fg(Color::DarkGray),
        );
    }
    let events = model.events();
    let latest: Vec<&(u64, u64, String)> = events.iter().rev().take(STEP_EVENTS).collect();
    for (_, node, text) in latest.into_iter().rev() {
        lines.push(Line::from(format!("   n{node}: {text}")).fg(Color::Yellow));
    }
    let title = match &st.said {
        Some(said) => format!(" held {} · {said} ", held.len()),
        None => format!(" held messages: {} ", held.len()),
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).fg(Color::Cyan)),
        area,
    );
}

/// One line per node: role, term, vote, leader, indexes, faults, and its election timer.
fn nodes_panel(frame: &mut Frame<'_>, area: Rect, model: &ClusterModel, members: &[u64]) {
    let wide = area.width >= 110;
    let lines: Vec<Line<'_>> = members
        .iter()
        .map(|id| {
            let Some(node) = model.node(*id) else {
                return Line::from(format!(" n{id}  (nothing heard yet)")).fg(Color::DarkGray);
            };
            let Some(s) = node.state.as_ref() else {
                return Line::from(format!(" n{id}  (no state yet)")).fg(Color::DarkGray);
            };
            let mut spans = vec![
                Span::styled(format!(" n{id} "), Style::new().bold()),
                Span::styled(
                    format!("{:<13}", s.role.to_uppercase()),
                    Style::new().fg(role_color(&s.role)).bold(),
                ),
                format!("t{:<3} ", s.term).into(),
                format!(
                    "vote {:<2} ",
                    if s.vote == 0 {
                        "-".into()
                    } else {
                        s.vote.to_string()
                    }
                )
                .into(),
                format!(
                    "lead {:<2} ",
                    if s.leader == 0 {
                        "-".into()
                    } else {
                        s.leader.to_string()
                    }
                )
                .into(),
                format!("c{} a{} l{} ", s.commit, s.applied, s.last_index).into(),
            ];
            spans.extend(timer_bar(s));
            if !node.connected {
                spans.push(Span::styled(
                    " no stream",
                    Style::new().fg(Color::Red).bold(),
                ));
            }
            if s.frozen {
                spans.push(Span::styled(" FROZEN", Style::new().fg(Color::Red).bold()));
            } else if !s.faults.is_empty() {
                spans.push(Span::styled(
                    format!(" {}", s.faults),
                    Style::new().fg(Color::Red),
                ));
            }
            if s.slow_factor > 1 {
                spans.push(format!(" slow x{}", s.slow_factor).fg(Color::Yellow));
            }
            for off in &s.protections_off {
                spans.push(Span::styled(
                    format!(" {off}"),
                    Style::new().fg(Color::Red).bold(),
                ));
            }
            if wide {
                if s.voters_outgoing.is_empty() {
                    spans.push(format!("  voters {}", set(&s.voters)).fg(Color::DarkGray));
                } else {
                    spans.push(Span::styled(
                        format!("  JOINT {} + {}", set(&s.voters_outgoing), set(&s.voters)),
                        Style::new().fg(Color::Magenta).bold(),
                    ));
                }
                if !s.learners.is_empty() {
                    spans.push(format!(" learners {}", set(&s.learners)).fg(Color::Cyan));
                }
            }
            Line::from(spans)
        })
        .collect();
    let joint = members.iter().any(|id| {
        model
            .node(*id)
            .and_then(|n| n.state.as_ref())
            .is_some_and(|s| !s.voters_outgoing.is_empty())
    });
    let title = if joint {
        Line::from(" Nodes · JOINT configuration in force ")
            .fg(Color::Magenta)
            .bold()
    } else {
        Line::from(" Nodes ")
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(Color::DarkGray)),
        area,
    );
}

/// `{1,2,3}`.
fn set(ids: &[u64]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("{{{}}}", ids.join(","))
}

/// The election timer (a leader's: its check-quorum timer) as a bar that fills up and
/// empties on every heartbeat.
fn timer_bar(s: &kv_proto::watch::NodeState) -> Vec<Span<'static>> {
    const WIDTH: u64 = 10;
    let timeout = s.election_timeout.max(1);
    let filled = (s.election_elapsed.min(timeout) * WIDTH / timeout) as usize;
    let color = if s.role == "Leader" {
        Color::Green
    } else if s.election_elapsed * 10 >= timeout * 8 {
        Color::Red
    } else {
        Color::Yellow
    };
    vec![
        "▕".fg(Color::DarkGray),
        Span::styled("█".repeat(filled), Style::new().fg(color)),
        Span::styled(
            "░".repeat(WIDTH as usize - filled),
            Style::new().fg(Color::DarkGray),
        ),
        "▏".fg(Color::DarkGray),
        format!("{:>2}/{}", s.election_elapsed, timeout).into(),
    ]
}

/// The logs side by side: a row per node, a column per index (3 wide), the entry's term
/// in the term's colour: bold applied, underlined committed, on grey uncommitted, white on
/// red where it differs from the leader's entry; ▓ the compacted prefix.
fn logs_panel(
    frame: &mut Frame<'_>,
    area: Rect,
    model: &ClusterModel,
    members: &[u64],
    st: &mut ViewState,
) {
    const CELL: u16 = 3;
    const LABEL: u16 = 4;
    let inner = area.width.saturating_sub(2);
    let cols = u64::from(inner.saturating_sub(LABEL) / CELL).max(1);
    let newest = model.last_index();
    st.log_back = st.log_back.min(newest.saturating_sub(cols));
    let last = newest.saturating_sub(st.log_back).max(cols);
    let first = last + 1 - cols;
    let mut lines = Vec::with_capacity(members.len() + 1);
    // Index numbers above every fifth column.
    let mut header = String::from(&"    "[..LABEL as usize]);
    let mut i = first;
    while i <= last {
        if i % 5 == 0 {
            let label = i.to_string();
            header.push_str(&format!("{label:<width$}", width = (CELL * 5) as usize));
            i += 5;
        } else {
            header.push_str("   ");
            i += 1;
        }
    }
    header.truncate(inner as usize);
    lines.push(Line::from(header).fg(Color::DarkGray));
    for id in members {
        let mut spans = vec![Span::styled(format!("n{id:<2} "), Style::new().bold())];
        let node = model.node(*id);
        let (commit, applied) = node
            .and_then(|n| n.state.as_ref())
            .map_or((0, 0), |s| (s.commit, s.applied));
        for index in first..=last {
            let cell = node.and_then(|n| n.log.get(&index));
            let compacted = node.is_some_and(|n| index <= n.compacted_to);
            spans.push(match cell {
                Some(c) => {
                    let mut style = Style::new().fg(term_color(c.term));
                    style = if model.differs(*id, index) {
                        Style::new().fg(Color::White).bg(Color::Red).bold()
                    } else if index <= applied {
                        style.add_modifier(Modifier::BOLD)
                    } else if index <= commit {
                        style.add_modifier(Modifier::UNDERLINED)
                    } else {
                        style.bg(Color::DarkGray)
                    };
                    Span::styled(format!("{:>2} ", c.term % 100), style)
                }
                None if compacted => Span::styled("▓▓ ", Style::new().fg(Color::DarkGray)),
                None => {
                    let inside = node
                        .and_then(|n| n.state.as_ref())
                        .is_some_and(|s| index <= s.last_index);
                    Span::styled(
                        if inside { " · " } else { "   " },
                        Style::new().fg(Color::DarkGray),
                    )
                }
            });
        }
        lines.push(Line::from(spans));
    }
    let title = if st.log_back > 0 {
        format!(" Logs · indexes {first}-{last} (→ newer) ")
    } else {
        format!(" Logs · indexes {first}-{last} ")
    };
    let legend = Line::from(vec![
        " ".into(),
        Span::styled("3", Style::new().bold()),
        " applied ".into(),
        Span::styled("3", Style::new().add_modifier(Modifier::UNDERLINED)),
        " committed ".into(),
        Span::styled("3", Style::new().bg(Color::DarkGray)),
        " uncommitted ".into(),
        Span::styled("3", Style::new().fg(Color::White).bg(Color::Red)),
        " not the leader's ".into(),
        "▓".fg(Color::DarkGray),
        " snapshot ".into(),
    ]);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(title)
                .title_bottom(legend)
                .border_style(Color::DarkGray),
        ),
        area,
    );
}

/// A message's label on the diagram: `Vote t3`, `App t3 i5+1 c4`, `AppResp t3 i6`.
pub fn label(e: &MsgEvent) -> String {
    let m = &e.msg;
    let t = m.term;
    let yes = |ok: bool| if ok { "✓" } else { "✗" };
    let mut text = match m.msg_type.as_str() {
        "MsgAppend" => format!("App t{t} i{}+{} c{}", m.index, m.entries, m.commit),
        "MsgAppendResponse" if m.reject => format!("AppResp t{t} rej hint {}", m.reject_hint),
        "MsgAppendResponse" => format!("AppResp t{t} i{}", m.index),
        "MsgRequestVote" => format!("Vote t{t}"),
        "MsgRequestVoteResponse" => format!("Vote{} t{t}", yes(!m.reject)),
        "MsgRequestPreVote" => format!("PreVote t{t}"),
        "MsgRequestPreVoteResponse" => format!("PreVote{} t{t}", yes(!m.reject)),
        "MsgHeartbeat" => format!("HB t{t} c{}", m.commit),
        "MsgHeartbeatResponse" => format!("HBResp t{t}"),
        "MsgSnapshot" => format!("Snap t{t} i{}", m.index),
        other => format!("{} t{t}", other.trim_start_matches("Msg")),
    };
    match m.fate.as_str() {
        "dropped" => text.push_str(" ✗dropped"),
        "delayed" => text.push_str(&format!(" +{}ms", m.delay_ms)),
        "held" => text.push_str(" held"),
        _ => {}
    }
    text
}

/// The colour of a message's arrow.
fn arrow_color(e: &MsgEvent) -> Color {
    let t = e.msg.msg_type.as_str();
    if e.msg.fate == "dropped" {
        Color::Red
    } else if t.contains("Vote") {
        Color::Magenta
    } else if t.starts_with("MsgHeartbeat") {
        Color::DarkGray
    } else if t == "MsgSnapshot" {
        Color::LightBlue
    } else {
        Color::Cyan
    }
}

/// The space-time diagram: a column per node, a row per message sent (time going down),
/// an arrow from the sender's column to the receiver's, reaching the row of the moment it
/// was received; a dropped one ends in ✗ before its receiver, a delayed one is long.
fn diagram(
    frame: &mut Frame<'_>,
    area: Rect,
    model: &ClusterModel,
    members: &[u64],
    st: &mut ViewState,
    now_us: u64,
) {
    let block = Block::bordered()
        .title(format!(
            " Messages · {}{} ",
            st.filter.name(),
            if st.fold_heartbeats {
                ", heartbeats folded"
            } else {
                ""
            }
        ))
        .border_style(Color::DarkGray);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 || inner.width < 10 || members.is_empty() {
        return;
    }
    let rows = u64::from(inner.height - 1);
    st.page = rows;
    let time_col: u16 = if inner.width >= 60 { 8 } else { 0 };
    // The shown sends, newest last, as many as there are rows (looking back at most a
    // bounded number of positions, so folding cannot make a frame scan the whole buffer).
    let end = st.end(model);
    let start = model.positions().start;
    let mut sends: Vec<(u64, &MsgEvent)> = Vec::with_capacity(rows as usize);
    let mut pos = end;
    let mut looked = 0u64;
    while pos > start && (sends.len() as u64) < rows && looked < rows * 200 {
        pos -= 1;
        looked += 1;
        if let Some(e) = model.at(pos)
            && e.dir == Dir::Send
            && st.shows(e)
        {
            sends.push((pos, e));
        }
    }
    sends.reverse();
    let width = f64::from(inner.width - time_col);
    let height = f64::from(inner.height);
    let column = |id: u64| -> Option<f64> {
        let k = members.iter().position(|m| *m == id)?;
        Some((k as f64 + 0.5) * width / members.len() as f64)
    };
    // The row (from the top, 1 below the header) at which time `t` falls.
    let times: Vec<u64> = sends.iter().map(|(_, e)| e.t_us).collect();
    let row_of = |t: u64| -> f64 {
        let after = times.partition_point(|s| *s <= t);
        after.saturating_sub(1) as f64
    };
    let y = |row: f64| height - 1.5 - row;
    let header: Vec<(f64, String, Color)> = members
        .iter()
        .filter_map(|id| {
            let x = column(*id)?;
            let role = model
                .node(*id)
                .and_then(|n| n.state.as_ref())
                .map_or("", |s| s.role.as_str());
            Some((x, format!("n{id}"), role_color(role)))
        })
        .collect();
    // Every arrow's geometry first; the canvas draws the lines (Braille dots), the labels
    // and marks go straight into the cells (canvas text would drift by a row).
    struct Arrow {
        x1: f64,
        x_end: f64,
        row: f64,
        row_end: f64,
        color: Color,
        /// ►/◄ at the receiver, ✗ dropped, ? never received.
        mark: (&'static str, Color),
        label: String,
    }
    let arrows: Vec<Arrow> = sends
        .iter()
        .enumerate()
        .filter_map(|(row, (_, e))| {
            let (x1, x2) = (column(e.msg.from)?, column(e.msg.to)?);
            let row = row as f64;
            let receipt = e.partner.and_then(|p| model.at(p));
            // Dropped by the sender's fault layer, or by the receiver's (isolated, cut).
            let dropped =
                e.msg.fate == "dropped" || receipt.is_some_and(|r| r.msg.fate == "dropped");
            let received = receipt.map(|r| r.t_us);
            let color = if dropped { Color::Red } else { arrow_color(e) };
            let mut text = label(e);
            if dropped && e.msg.fate != "dropped" {
                text.push_str(" ✗at receiver");
            }
            let (x_end, row_end, mark) = if dropped {
                (x1 + (x2 - x1) * 0.6, row, ("✗", Color::Red))
            } else {
                let head = if x2 >= x1 { "►" } else { "◄" };
                match received {
                    // Received before the next message or two were sent: drawn level, so
                    // the usual case reads as a row; a later receipt is drawn long.
                    Some(t) => {
                        let at = row_of(t).max(row);
                        (x2, if at - row < 2.0 { row } else { at }, (head, color))
                    }
                    // In flight: it reaches the bottom while it is not received.
                    None if st.paused_at.is_none() && now_us < e.t_us + 5_000_000 => {
                        (x2, rows as f64 - 1.0, (head, color))
                    }
                    // Never received (the receiver down, the link broken).
                    None => (x1 + (x2 - x1) * 0.5, row, ("?", Color::DarkGray)),
                }
            };
            Some(Arrow {
                x1,
                x_end,
                row,
                row_end,
                color,
                mark,
                label: text,
            })
        })
        .collect();
    let canvas = Canvas::default()
        .marker(Marker::Braille)
        .x_bounds([0.0, width])
        .y_bounds([0.0, height])
        .paint(|ctx| {
            for (x, _, _) in &header {
                ctx.draw(&CanvasLine {
                    x1: *x,
                    y1: 0.0,
                    x2: *x,
                    y2: height - 1.0,
                    color: Color::DarkGray,
                });
            }
            ctx.layer();
            for a in &arrows {
                ctx.draw(&CanvasLine {
                    x1: a.x1,
                    y1: y(a.row),
                    x2: a.x_end,
                    y2: y(a.row_end),
                    color: a.color,
                });
            }
        });
    let canvas_area = Rect {
        x: inner.x + time_col,
        width: inner.width - time_col,
        ..inner
    };
    frame.render_widget(canvas, canvas_area);
    let buf = frame.buffer_mut();
    let right_edge = canvas_area.x + canvas_area.width;
    let mut put = |x: f64, row: u16, text: &str, style: Style| {
        let col = canvas_area.x + (x.max(0.0) as u16).min(canvas_area.width.saturating_sub(1));
        let y = canvas_area.y + row;
        if y < canvas_area.y + canvas_area.height && col < right_edge {
            buf.set_stringn(col, y, text, usize::from(right_edge - col), style);
        }
    };
    for (x, name, color) in &header {
        put(x - 1.0, 0, name, Style::new().fg(*color).bold());
    }
    for a in &arrows {
        let row = 1 + a.row as u16;
        let right = a.x_end >= a.x1;
        // Along the line, from the sender, never over the mark where a level line ends.
        let room = if a.row_end == a.row {
            ((a.x_end - a.x1).abs() - 2.0).max(8.0) as usize
        } else {
            usize::MAX
        };
        let text: String = a.label.chars().take(room).collect();
        let len = text.chars().count() as f64;
        let x_text = if right {
            a.x1 + 1.0
        } else {
            (a.x1 - len - 1.0).max(0.0)
        };
        put(x_text, row, &text, Style::new().fg(a.color));
        let x_mark = if a.mark.0 == "►" {
            a.x_end - 1.0
        } else {
            a.x_end
        };
        put(
            x_mark,
            1 + a.row_end as u16,
            a.mark.0,
            Style::new().fg(a.mark.1),
        );
    }
    if time_col > 0 {
        // The time of each row, seconds and milliseconds of the minute.
        let mut lines = vec![Line::from("")];
        for (_, e) in &sends {
            let ms = (e.t_us / 1000) % 60_000;
            lines
                .push(Line::from(format!("{:>2}.{:03}", ms / 1000, ms % 1000)).fg(Color::DarkGray));
        }
        frame.render_widget(
            Paragraph::new(lines),
            Rect {
                width: time_col,
                ..inner
            },
        );
    }
    if sends.is_empty() {
        frame.render_widget(
            Paragraph::new("(no messages yet: waiting for the nodes to talk)").fg(Color::DarkGray),
            Rect {
                y: inner.y + 1,
                height: 1,
                ..canvas_area
            },
        );
    }
}

const HELP: &str = "\
The cluster view: every node of the cluster, from the watch streams of all of them.

Keys
  Space          rewind: the whole view stands at this moment (the cluster goes
                 on), with a replay's keys over what just happened (← → a record,
                 Shift+← → or [ ] notable moments, Space plays); f: live again
  Shift+←, [     rewind to the last notable moment (election, leader, fault, ...)
  ↑ ↓            one message back / forward in what is buffered (pauses)
  PgUp PgDn      a page back / forward; Home: the oldest buffered
  f, End         follow live again
  h              fold heartbeats (and their answers) out of the diagram
  t              message types: all, votes only, appends only
  Tab            panels: all, the diagram, the logs
  ← →            the logs' window: older / newer indexes
  s              step mode on / off: every clock stopped, every message held
  In step mode   Enter deliver the chosen held message (↑ ↓ choose), d drop it,
                 1-9 choose a node and t tick it (fire its timer tick by tick)
  ?              this help (any key closes it)
  q, Esc         leave the view
";

const HELP_REPLAY: &str = "\
A replay: the cluster view over a recording, at one moment of it.

Keys
  Space          play / pause (at the speed shown; +/- change it)
  ← →            one record back / on
  Shift+← →, [ ]  the previous / next notable moment (marked on the timeline:
                 e election, L leader, c first commit, f fault, m membership)
  Home End       the start / the end of the recording
  ↑ ↓ PgUp PgDn  through the messages shown (f: back to the newest)
  h t Tab        heartbeats folded; message types; panels
  < >            the logs' window: older / newer indexes
  ?              this help (any key closes it)
  q, Esc         leave
";

const LEGEND: &str = "\
Nodes: role, term, vote, leader, commit/applied/last, and the election timer:
  it fills up tick by tick and empties when the leader is heard (on the leader,
  its check-quorum timer). Full: the node campaigns.
Logs: one column per index, the entry's term in the term's colour; bold
  applied, underlined committed, on grey uncommitted, white on red where it is
  not the leader's entry; ▓ compacted into a snapshot.
Messages: a row per message sent, time going down; the arrow goes from the
  sender to the receiver and ends at the row of its receipt (a delayed one is
  long); ✗ dropped by a fault. App t3 i5+1 c4: an append in term 3 after index
  5 with 1 entry, commit 4.";

fn help(frame: &mut Frame<'_>, area: Rect, replay: bool) {
    let text = format!("{}\n{LEGEND}", if replay { HELP_REPLAY } else { HELP });
    let lines = text.lines().count() as u16;
    let width = area.width.min(82);
    let height = area.height.min(lines + 2);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Help ").border_style(Color::Cyan)),
        popup,
    );
}
