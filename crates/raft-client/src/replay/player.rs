//! The replay's controls over a [`Timeline`]: play and pause at a speed, a record on or
//! back, the notable moments, the start and the end; and the timeline bar under the view.
//! Keys and the clock go in, the timeline moves; drawing is a function of the state.

use std::time::Duration;

use kv_proto::watch::{self as pb, watch_record::Kind};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::moments::MomentKind;
use super::timeline::Timeline;
use crate::view::state::{Effect, ViewState};

/// Speeds, slowest first; `+` and `-` move along them.
const SPEEDS: [f64; 11] = [0.01, 0.03, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0];
/// The speed a replay starts at: an election takes milliseconds, so a tenth of real time.
const START_SPEED: usize = 2;

/// See the module doc.
pub struct Player {
    /// The recording and the position in it.
    pub timeline: Timeline,
    /// Playing since this much replay time had passed (µs of the recording) at this
    /// much wall time into the replay; `None`: paused.
    playing: Option<(u64, Duration)>,
    speed: usize,
    /// A line for the bar: what the last move found, or why it did not move.
    pub said: String,
}

impl Player {
    /// A paused player at the start of `timeline`.
    pub fn new(timeline: Timeline) -> Self {
        Self {
            timeline,
            playing: None,
            speed: START_SPEED,
            said: String::new(),
        }
    }

    /// True while playing.
    pub fn playing(&self) -> bool {
        self.playing.is_some()
    }

    /// The speed, as a factor of real time.
    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    /// Seconds from the recording's start to the current position.
    pub fn at_seconds(&self) -> f64 {
        (self.timeline.now_us() - self.timeline.start_us()) as f64 / 1e6
    }

    /// Moves to `seconds` after the recording's start.
    pub fn seek_seconds(&mut self, seconds: f64) {
        let t = self.timeline.start_us() + (seconds.max(0.0) * 1e6) as u64;
        self.timeline.seek_time(t);
    }

    /// Plays on to where `wall` (time since the replay opened) has brought it.
    pub fn advance(&mut self, wall: Duration) {
        let Some((from_us, since)) = self.playing else {
            return;
        };
        let played = wall.saturating_sub(since).as_secs_f64() * self.speed();
        self.timeline.seek_time(from_us + (played * 1e6) as u64);
        if self.timeline.pos() == self.timeline.len() {
            self.playing = None;
            self.said = "the end of the recording".to_string();
        }
    }

    /// Handles a key at wall time `wall`; a key the player does not take goes to the view.
    pub fn on_key(&mut self, key: KeyEvent, wall: Duration, st: &mut ViewState) -> Option<Effect> {
        if st.help {
            st.help = false;
            return None;
        }
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let moved = |p: &mut Self, st: &mut ViewState| {
            // The diagram follows the newest message of the model at the new position.
            st.paused_at = None;
            p.replant(wall);
        };
        match key.code {
            KeyCode::Char(' ') => {
                self.playing = match self.playing {
                    Some(_) => None,
                    None => {
                        if self.timeline.pos() == self.timeline.len() {
                            self.timeline.seek(0);
                        }
                        Some((self.timeline.now_us(), wall))
                    }
                };
                self.said.clear();
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
                self.replant(wall);
            }
            KeyCode::Char('-') => {
                self.speed = self.speed.saturating_sub(1);
                self.replant(wall);
            }
            KeyCode::Right | KeyCode::Left if shift => {
                self.jump_to_moment(key.code == KeyCode::Right, st, wall)
            }
            KeyCode::Char(']') => self.jump_to_moment(true, st, wall),
            KeyCode::Char('[') => self.jump_to_moment(false, st, wall),
            KeyCode::Right => {
                self.timeline.step(1);
                self.said.clear();
                moved(self, st);
            }
            KeyCode::Left => {
                self.timeline.step(-1);
                self.said.clear();
                moved(self, st);
            }
            KeyCode::Home => {
                self.timeline.seek(0);
                self.said = "the start of the recording".to_string();
                moved(self, st);
            }
            KeyCode::End => {
                self.timeline.seek(self.timeline.len());
                self.said = "the end of the recording".to_string();
                moved(self, st);
            }
            KeyCode::Char('<') | KeyCode::Char(',') => st.log_back += 1,
            KeyCode::Char('>') | KeyCode::Char('.') => st.log_back = st.log_back.saturating_sub(1),
            _ => return st.on_key(key, self.timeline.model()),
        }
        None
    }

    /// To the next (or previous) notable moment, or says there is none.
    fn jump_to_moment(&mut self, next: bool, st: &mut ViewState, wall: Duration) {
        let found = if next {
            self.timeline.next_moment().is_some()
        } else {
            self.timeline.prev_moment().is_some()
        };
        self.said = match (found, next) {
            (true, _) => String::new(),
            (false, true) => "no notable moment after this".into(),
            (false, false) => "no notable moment before this".into(),
        };
        st.paused_at = None;
        self.replant(wall);
    }

    /// While playing, plays on from the current position (after a move or a new speed).
    fn replant(&mut self, wall: Duration) {
        if self.playing.is_some() {
            self.playing = Some((self.timeline.now_us(), wall));
        }
    }

    /// The replay's state in words, for the view's title.
    pub fn title(&self) -> String {
        format!(
            "replay {:.3} s of {:.3} s · {} · x{}",
            self.at_seconds(),
            (self.timeline.end_us() - self.timeline.start_us()) as f64 / 1e6,
            if self.playing() { "playing" } else { "paused" },
            self.speed()
        )
    }

    /// Draws the timeline bar (first row) and what is at the position (second row).
    pub fn draw(&self, frame: &mut Frame<'_>, area: Rect) {
        if area.height == 0 || area.width < 20 {
            return;
        }
        let t = &self.timeline;
        let width = usize::from(area.width.saturating_sub(2));
        let span = t.end_us().saturating_sub(t.start_us()).max(1) as f64;
        let col = |t_us: u64| {
            let x = (t_us.saturating_sub(t.start_us())) as f64 / span * (width - 1) as f64;
            (x.round() as usize).min(width - 1)
        };
        // The most telling moment of each column.
        let rank = |k: MomentKind| match k {
            MomentKind::Violation => 5,
            MomentKind::Leader => 4,
            MomentKind::Election => 3,
            MomentKind::Fault => 2,
            MomentKind::Membership => 1,
            MomentKind::Commit => 0,
        };
        let mut marks: Vec<Option<MomentKind>> = vec![None; width];
        for m in t.moments() {
            let c = &mut marks[col(m.t_us)];
            if c.is_none_or(|k| rank(m.kind) > rank(k)) {
                *c = Some(m.kind);
            }
        }
        let here = col(t.now_us());
        let mut spans = vec![Span::raw("▕")];
        for (i, mark) in marks.iter().enumerate() {
            let (text, style) = match (i == here, mark) {
                (true, _) => ("●".to_string(), Style::new().fg(Color::White).bold()),
                (false, Some(k)) => (k.mark().to_string(), mark_style(*k)),
                (false, None) if i < here => ("━".to_string(), Style::new().fg(Color::Cyan)),
                (false, None) => ("─".to_string(), Style::new().fg(Color::DarkGray)),
            };
            spans.push(Span::styled(text, style));
        }
        spans.push(Span::raw("▏"));
        let mut lines = vec![Line::from(spans)];
        if area.height > 1 {
            let moment = t
                .last_moment()
                .map(|m| format!("{:.3} s: {}", (m.t_us - t.start_us()) as f64 / 1e6, m.what));
            // What the last key did first: it is the answer to the reader.
            let mut second = Vec::new();
            if !self.said.is_empty() {
                second.push(Span::styled(
                    format!(" {} ·", self.said),
                    Style::new().fg(Color::Yellow),
                ));
            }
            second.push(Span::styled(
                format!(" record {}/{} ", t.pos(), t.len(),),
                Style::new().fg(Color::DarkGray),
            ));
            if let Some(r) = t.current() {
                second.push(Span::raw(describe(r)));
            }
            if let Some(m) = moment {
                second.push(Span::styled(
                    format!(" · last moment {m}"),
                    Style::new().fg(Color::Cyan),
                ));
            }
            lines.push(Line::from(second));
        }
        frame.render_widget(Paragraph::new(lines), area);
    }
}

fn mark_style(k: MomentKind) -> Style {
    let color = match k {
        MomentKind::Violation => Color::Red,
        MomentKind::Leader => Color::Green,
        MomentKind::Election => Color::Yellow,
        MomentKind::Fault => Color::Magenta,
        MomentKind::Membership => Color::LightBlue,
        MomentKind::Commit => Color::Cyan,
    };
    Style::new().fg(color).bold()
}

/// One record in a few words: `n2 sent Vote t3 to n3`, `n1 Leader t3 c7`, ...
pub fn describe(r: &pb::WatchRecord) -> String {
    let n = r.node;
    match &r.kind {
        Some(Kind::State(s)) => format!(
            "n{n} {} t{} commit {} applied {} last {}",
            s.role, s.term, s.commit, s.applied, s.last_index
        ),
        Some(Kind::Entry(e)) => format!("n{n} appended {} t{}: {}", e.index, e.term, e.summary),
        Some(Kind::Truncate(t)) => format!("n{n} replaced its entries from {}", t.from_index),
        Some(Kind::Compact(c)) => format!("n{n} compacted up to {}", c.up_to),
        Some(Kind::Send(m)) => format!("n{n} sent {} to n{} ({})", short(m), m.to, m.fate),
        Some(Kind::Recv(m)) => format!("n{n} received {} from n{}", short(m), m.from),
        Some(Kind::Event(e)) => format!("n{n}: {}", e.text),
        Some(Kind::Fault(f)) => format!("n{n}: {}", f.text),
        Some(Kind::Missed(m)) => format!("n{n}'s stream missed {} records", m.count),
        None => format!("n{n}: (empty record)"),
    }
}

fn short(m: &pb::PeerMessage) -> String {
    crate::view::ui::label(&crate::view::model::MsgEvent {
        t_us: 0,
        dir: crate::view::model::Dir::Send,
        msg: pb::PeerMessage {
            fate: String::new(),
            ..m.clone()
        },
        partner: None,
    })
}
