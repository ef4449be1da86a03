//! Draws the client TUI: the cluster bar, the output pane, the input line and the keys.
//! Pure, so render tests can snapshot it; `now` comes in as an argument.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use unicode_width::UnicodeWidthChar as _;

use super::app::{App, Tone, View};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn layout(area: Rect) -> [Rect; 4] {
    Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// The output pane's size (inside its border) on a screen of `area`.
pub fn output_view(area: Rect) -> View {
    let [_, output, _, _] = layout(area);
    View {
        width: usize::from(output.width.saturating_sub(2)).max(8),
        rows: usize::from(output.height.saturating_sub(2)),
    }
}

/// Draws everything. `spin` advances the spinner.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: Instant, spin: usize) {
    let [bar, output, input, keys] = layout(frame.area());
    cluster_bar(frame, bar, app);
    output_pane(frame, output, app);
    input_line(frame, input, app, now, spin);
    if let Some(hint) = &app.hint {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(" {hint}"),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )),
            keys,
        );
        return;
    }
    if app.touring {
        let text = match &app.tour_prompt {
            Some(prompt) => format!(" tour · {prompt}"),
            None => " tour · running the step, then checking it… · q: leave the tour".into(),
        };
        frame.render_widget(
            Paragraph::new(Line::styled(
                text,
                Style::new().fg(Color::Black).bg(Color::Yellow),
            )),
            keys,
        );
        return;
    }
    let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Black).bg(Color::Gray));
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            key(" Enter "),
            " run ".into(),
            key(" ↑↓ "),
            " history ".into(),
            key(" Tab "),
            " complete ".into(),
            key(" PgUp PgDn "),
            " scroll ".into(),
            key(" Esc "),
            " cancel ".into(),
            key(" q "),
            " quit (empty line) ".into(),
        ])),
        keys,
    );
}

pub(crate) fn role_color(role: &str) -> Color {
    match role {
        "Leader" => Color::Green,
        "Follower" => Color::Blue,
        "Candidate" => Color::Yellow,
        _ => Color::Magenta,
    }
}

/// How much the cluster bar says of each node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// `● node 1 Follower t2 applied 12`
    Full,
    /// `● 1 Follower t2 a12`
    Compact,
    /// `● 1 F t2`
    Letter,
}

/// The cluster bar's text: the members first, then (apart, greyed) nodes that are not
/// members: removed ones, ones waiting to be added.
fn cluster_spans(app: &App, detail: Detail) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut apart = Vec::new();
    for r in &app.cluster {
        match &r.status {
            Ok(s) if s.removed_at != 0 || s.joining => {
                let what = if s.removed_at != 0 {
                    "removed"
                } else {
                    "waiting to be added"
                };
                let name = match detail {
                    Detail::Full => format!(" node {} {what} ", s.id),
                    _ => format!(" {} {what} ", s.id),
                };
                apart.push(Span::styled(name, Style::new().fg(Color::DarkGray)));
            }
            Ok(s) => {
                let role = if !s.refused.is_empty() {
                    "refused".to_string()
                } else if detail == Detail::Letter {
                    s.role.chars().take(1).collect()
                } else {
                    s.role.clone()
                };
                let color = if s.refused.is_empty() {
                    role_color(&s.role)
                } else {
                    Color::Red
                };
                spans.push(Span::styled(" ● ", Style::new().fg(color)));
                let name = match detail {
                    Detail::Full => format!("node {} ", s.id),
                    _ => format!("{} ", s.id),
                };
                spans.push(Span::styled(name, Style::new().bold()));
                spans.push(Span::styled(role, Style::new().fg(color)));
                let numbers = match detail {
                    Detail::Full => format!(" t{} applied {}", s.term, s.applied_index),
                    Detail::Compact => format!(" t{} a{}", s.term, s.applied_index),
                    Detail::Letter => format!(" t{}", s.term),
                };
                spans.push(Span::styled(numbers, Style::new().fg(Color::Gray)));
                if !s.faults.is_empty() && detail != Detail::Letter {
                    spans.push(Span::styled(
                        format!(" ⚡{}", s.faults),
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    ));
                }
            }
            Err(_) => {
                spans.push(Span::styled(" ✗ ", Style::new().fg(Color::Red)));
                let name = app.name_of(&r.api_addr);
                let name = match detail {
                    Detail::Full => format!("{name} "),
                    _ => format!("{} ", name.trim_start_matches("node ")),
                };
                spans.push(Span::styled(name, Style::new().bold()));
                spans.push(Span::styled("down", Style::new().fg(Color::Red)));
            }
        }
        spans.push(if detail == Detail::Full { "  " } else { " " }.into());
    }
    if !apart.is_empty() {
        spans.push(Span::styled("│", Style::new().fg(Color::DarkGray)));
        spans.extend(apart);
    }
    spans
}

fn cluster_bar(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let leader = app.cluster.iter().find_map(|r| {
        r.status
            .as_ref()
            .ok()
            .filter(|s| s.role == "Leader" && s.removed_at == 0)
            .map(|s| (s.id, s.term))
    });
    let title = match leader {
        Some((id, term)) => format!(" Cluster · leader node {id}, term {term} "),
        None if app.cluster.is_empty() => " Cluster · asking the nodes… ".to_string(),
        None => " Cluster · no leader ".to_string(),
    };
    // As wide as there is room for: full, then compact, then the role's first letter.
    let width = usize::from(area.width.saturating_sub(2));
    let mut spans = Vec::new();
    for detail in [Detail::Full, Detail::Compact, Detail::Letter] {
        spans = cluster_spans(app, detail);
        let len: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        if len <= width {
            break;
        }
    }
    let title_style = if leader.is_some() {
        Color::Green
    } else {
        Color::Yellow
    };
    frame.render_widget(
        Paragraph::new(Line::from(spans)).block(
            Block::bordered()
                .title(
                    Line::from(title)
                        .style(Style::new().fg(title_style).add_modifier(Modifier::BOLD)),
                )
                .border_style(Color::DarkGray),
        ),
        area,
    );
}

fn output_pane(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = usize::from(area.height.saturating_sub(2));
    let width = usize::from(area.width.saturating_sub(2)).max(8);
    // Wrap from the newest line backwards until the rows scrolled back and the pane are
    // covered: the cost is bounded by the scroll position, not the length of the history.
    let wanted = app.scroll_back + rows;
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(wanted);
    for l in app.output.iter().rev() {
        let style = match l.tone {
            Tone::Command => Style::new().bold(),
            Tone::Trace => Style::new().fg(Color::Gray),
            Tone::Ok => Style::new().fg(Color::Green),
            Tone::Error => Style::new().fg(Color::Red),
            Tone::Info => Style::new().fg(Color::Cyan),
            Tone::Heading => Style::new().fg(Color::Yellow).bold(),
            Tone::Tour => Style::new().fg(Color::White),
        };
        for piece in wrap(&l.text, width).into_iter().rev() {
            lines.push(Line::styled(piece, style));
        }
        if lines.len() >= wanted {
            break;
        }
    }
    let lines: Vec<Line<'_>> = lines
        .into_iter()
        .skip(app.scroll_back)
        .take(rows)
        .rev()
        .collect();
    let title = if app.scroll_back > 0 {
        format!(" Output · scrolled back {} rows (PgDn) ", app.scroll_back)
    } else {
        " Output ".to_string()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(Color::DarkGray)),
        area,
    );
}

/// Cuts `text` into rows of at most `width` columns, between words where it can (a word
/// longer than a row is cut where the row ends); continuation rows are indented.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    const INDENT: &str = "      ";
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            // Carry the word being cut over to the next row, if the row has room before it.
            let start = if rows.is_empty() { 0 } else { INDENT.len() };
            let carry = match row.rfind(' ') {
                Some(i) if i > start && !c.is_whitespace() => row.split_off(i + 1),
                _ => String::new(),
            };
            rows.push(row.trim_end().to_string());
            row = format!("{INDENT}{carry}");
            used = INDENT.len() + carry.chars().map(|c| c.width().unwrap_or(0)).sum::<usize>();
            if c == ' ' && carry.is_empty() {
                continue;
            }
        }
        row.push(c);
        used += w;
    }
    rows.push(row);
    rows
}

fn input_line(frame: &mut Frame<'_>, area: Rect, app: &App, now: Instant, spin: usize) {
    let title = match &app.in_flight {
        Some(f) => Line::from(vec![
            Span::styled(
                format!(" {} ", SPINNER[spin % SPINNER.len()]),
                Style::new().fg(Color::Yellow),
            ),
            Span::styled(
                format!(
                    "{} · {:.1} s · Esc {} ",
                    f.label,
                    now.saturating_duration_since(f.started).as_secs_f64(),
                    if app.chaos_stop.is_some() {
                        "stops it (heals, then checks)"
                    } else {
                        "cancels"
                    }
                ),
                Style::new().fg(Color::Yellow),
            ),
        ]),
        None => Line::from(" Command "),
    };
    let block = Block::bordered().title(title).border_style(Color::Cyan);
    let inner = block.inner(area);
    let prompt = "› ";
    // Keep the cursor visible on long lines by scrolling the text horizontally.
    let cursor_col = app.input.cursor_column() as u16;
    let room = inner.width.saturating_sub(prompt.len() as u16 + 1);
    let scroll = cursor_col.saturating_sub(room);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, Style::new().fg(Color::Cyan).bold()),
            Span::raw(app.input.text()),
        ]))
        .scroll((0, scroll))
        .block(block),
        area,
    );
    frame.set_cursor_position(Position::new(inner.x + 2 + cursor_col - scroll, inner.y));
}
