//! Draws the client TUI: the cluster bar, the output pane, the input line and the keys.
//! Pure, so render tests can snapshot it; `now` comes in as an argument.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use unicode_width::UnicodeWidthChar as _;

use super::app::{App, Tone};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Draws everything. `spin` advances the spinner.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: Instant, spin: usize) {
    let [bar, output, input, keys] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    cluster_bar(frame, bar, app);
    output_pane(frame, output, app);
    input_line(frame, input, app, now, spin);
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

fn role_color(role: &str) -> Color {
    match role {
        "Leader" => Color::Green,
        "Follower" => Color::Blue,
        "Candidate" => Color::Yellow,
        _ => Color::Magenta,
    }
}

fn cluster_bar(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let leader = app.cluster.iter().find_map(|r| {
        r.status
            .as_ref()
            .ok()
            .filter(|s| s.role == "Leader")
            .map(|s| (s.id, s.term))
    });
    let title = match leader {
        Some((id, term)) => format!(" Cluster · leader node {id}, term {term} "),
        None if app.cluster.is_empty() => " Cluster · asking the nodes… ".to_string(),
        None => " Cluster · no leader ".to_string(),
    };
    let mut spans = Vec::new();
    for r in &app.cluster {
        match &r.status {
            Ok(s) => {
                spans.push(Span::styled(" ● ", Style::new().fg(role_color(&s.role))));
                spans.push(Span::styled(format!("node {} ", s.id), Style::new().bold()));
                spans.push(Span::styled(
                    s.role.clone(),
                    Style::new().fg(role_color(&s.role)),
                ));
                spans.push(Span::styled(
                    format!(" t{} applied {}", s.term, s.applied_index),
                    Style::new().fg(Color::Gray),
                ));
                if !s.faults.is_empty() {
                    spans.push(Span::styled(
                        format!(" ⚡{}", s.faults),
                        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                    ));
                }
            }
            Err(_) => {
                spans.push(Span::styled(" ✗ ", Style::new().fg(Color::Red)));
                spans.push(Span::styled(
                    format!("{} ", app.name_of(&r.api_addr)),
                    Style::new().bold(),
                ));
                spans.push(Span::styled("down", Style::new().fg(Color::Red)));
            }
        }
        spans.push("  ".into());
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
    let end = app.output.len().saturating_sub(app.scroll_back);
    // Wrap from the newest line backwards until the pane is full: the cost is bounded by
    // what is on screen, not by the length of the history.
    let mut lines: Vec<Line<'_>> = Vec::with_capacity(rows);
    for l in app.output.range(..end).rev() {
        let style = match l.tone {
            Tone::Command => Style::new().bold(),
            Tone::Trace => Style::new().fg(Color::Gray),
            Tone::Ok => Style::new().fg(Color::Green),
            Tone::Error => Style::new().fg(Color::Red),
            Tone::Info => Style::new().fg(Color::Cyan),
        };
        for piece in wrap(&l.text, width).into_iter().rev() {
            lines.push(Line::styled(piece, style));
        }
        if lines.len() >= rows {
            break;
        }
    }
    lines.truncate(rows);
    lines.reverse();
    let title = if app.scroll_back > 0 {
        format!(" Output · scrolled back {} lines (PgDn) ", app.scroll_back)
    } else {
        " Output ".to_string()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(Color::DarkGray)),
        area,
    );
}

/// Cuts `text` into rows of at most `width` columns; continuation rows are indented.
fn wrap(text: &str, width: usize) -> Vec<String> {
    const INDENT: &str = "      ";
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            rows.push(std::mem::take(&mut row));
            row.push_str(INDENT);
            used = INDENT.len();
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
                    "{} · {:.1} s · Esc cancels ",
                    f.label,
                    now.saturating_duration_since(f.started).as_secs_f64()
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
