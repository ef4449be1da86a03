//! Dashboard state and what each key does. No drawing and no I/O beyond the bounded
//! reads of a [`DataSource`]; the loop in `mod.rs` feeds it keys and status updates.
//!
//! Scrolling is anchored, never counted: the log view remembers its top index, the key
//! view its first key and the messages view its newest message's sequence number, so moving
//! a page costs a page, however long the log, the store or the message history.

use std::time::{Duration, Instant};

use protobuf::ProtobufEnum as _;
use raft::eraftpb::MessageType;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::view::{DataSource, FrameData, NodeInfo, TypeCounts};
use crate::status::NodeStatus;
use crate::transport::tap::MSG_TYPES;

/// The panels that take focus, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Panel {
    /// The Raft log.
    #[default]
    Log,
    /// The key-value pairs.
    Kv,
    /// Peers and replication progress.
    Cluster,
    /// The timeline.
    Events,
    /// Recent peer messages (shown instead of the log and the keys).
    Messages,
}

const PANELS: [Panel; 4] = [Panel::Log, Panel::Kv, Panel::Cluster, Panel::Events];
const PANELS_WITH_MESSAGES: [Panel; 3] = [Panel::Messages, Panel::Cluster, Panel::Events];

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the dashboard and stop the node (q; over the help, q only closes it).
    Quit,
    /// Ctrl+C: leave and stop the node, also over the help.
    Interrupt,
    /// Focus the next panel.
    FocusNext,
    /// Focus the previous panel.
    FocusPrev,
    /// Show or hide the help.
    Help,
    /// Scroll one row up.
    Up,
    /// Scroll one row down.
    Down,
    /// Scroll a page up.
    PageUp,
    /// Scroll a page down.
    PageDown,
    /// Jump to the start.
    Home,
    /// Jump to the end (the log follows new entries again).
    End,
    /// Start an election.
    Campaign,
    /// Transfer leadership.
    Transfer,
    /// Show or hide the messages panel.
    Messages,
    /// Isolate this node (a fault).
    Isolate,
    /// Freeze this node, or thaw it when frozen.
    Freeze,
    /// Clear this node's faults.
    Heal,
    /// Any other key (it closes the help).
    Other,
}

/// What a key asks the node to do; the loop carries it out and shows the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Start an election now.
    Campaign,
    /// On the leader: hand leadership to the most up-to-date follower.
    Transfer,
    /// Cut every link of this node.
    Isolate,
    /// Freeze this node.
    Freeze,
    /// Thaw this node.
    Thaw,
    /// Clear this node's faults (and thaw it).
    Heal,
}

/// Rows each scrollable panel shows, from the current layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageSizes {
    /// Log rows.
    pub log: usize,
    /// Key rows.
    pub kv: usize,
    /// Event rows.
    pub events: usize,
    /// Message rows (when the messages panel is shown).
    pub messages: usize,
}

/// The dashboard's state.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The focused panel.
    pub focus: Panel,
    /// The help overlay is open.
    pub show_help: bool,
    /// First log index shown; `None` follows the tail.
    pub log_top: Option<u64>,
    /// First key shown; `None` starts at the first key.
    pub kv_top: Option<String>,
    /// Events scrolled back from the newest (0 shows the newest).
    pub events_back: usize,
    /// The messages panel replaces the log and the keys.
    pub show_messages: bool,
    /// Newest message seq shown; `None` follows new messages.
    pub msgs_bottom: Option<u64>,
    /// Message rates over the last second.
    pub rates: RateMeter,
    /// The answer to the last operator command, and when it came.
    pub notice: Option<(String, Instant)>,
    /// The user asked to quit.
    pub quit: bool,
}

/// How long an operator notice stays in the footer.
const NOTICE_FOR: Duration = Duration::from_secs(8);

impl App {
    /// The action of a key press, if any.
    pub fn action_for(key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        Some(match key.code {
            KeyCode::Char('c') if ctrl => Action::Interrupt,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Tab => Action::FocusNext,
            KeyCode::BackTab => Action::FocusPrev,
            KeyCode::Char('?') | KeyCode::F(1) => Action::Help,
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Action::Home,
            KeyCode::End | KeyCode::Char('G') => Action::End,
            KeyCode::Char('c') => Action::Campaign,
            KeyCode::Char('t') => Action::Transfer,
            KeyCode::Char('m') => Action::Messages,
            KeyCode::Char('i') => Action::Isolate,
            KeyCode::Char('f') => Action::Freeze,
            KeyCode::Char('h') => Action::Heal,
            _ => Action::Other,
        })
    }

    /// Applies an action; returns what the node must do, if anything.
    pub fn update(
        &mut self,
        action: Action,
        status: &NodeStatus,
        pages: PageSizes,
        source: &dyn DataSource,
    ) -> Option<Operator> {
        if self.show_help && action != Action::Interrupt {
            // Any key closes the help, q included (it says so); Ctrl+C still quits.
            self.show_help = false;
            return None;
        }
        match action {
            Action::Quit | Action::Interrupt => self.quit = true,
            Action::Help => self.show_help = true,
            Action::Other => {}
            Action::FocusNext | Action::FocusPrev => {
                let panels: &[Panel] = if self.show_messages {
                    &PANELS_WITH_MESSAGES
                } else {
                    &PANELS
                };
                let i = panels.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if action == Action::FocusNext {
                    1
                } else {
                    panels.len() - 1
                };
                self.focus = panels[(i + step) % panels.len()];
            }
            Action::Messages => {
                self.show_messages = !self.show_messages;
                self.focus = if self.show_messages {
                    Panel::Messages
                } else {
                    Panel::Log
                };
            }
            Action::Campaign => return Some(Operator::Campaign),
            Action::Transfer => return Some(Operator::Transfer),
            Action::Isolate => return Some(Operator::Isolate),
            Action::Heal => return Some(Operator::Heal),
            Action::Freeze if status.frozen => return Some(Operator::Thaw),
            Action::Freeze => return Some(Operator::Freeze),
            scroll => match self.focus {
                Panel::Log => self.scroll_log(scroll, status, pages.log),
                Panel::Kv => self.scroll_kv(scroll, pages.kv, source),
                Panel::Events => self.scroll_events(scroll, status, pages.events),
                Panel::Messages => self.scroll_messages(scroll, pages.messages, source),
                Panel::Cluster => {}
            },
        }
        None
    }

    /// Messages are anchored by the newest seq shown: new messages do not move a view that
    /// was scrolled back, and scrolling costs a page.
    fn scroll_messages(&mut self, action: Action, rows: usize, source: &dyn DataSource) {
        let Some((oldest, newest)) = source.message_seqs() else {
            self.msgs_bottom = None;
            return;
        };
        let rows = rows.max(1) as u64;
        // The bottom of the first page: scrolling up stops there.
        let first_page = (oldest + rows - 1).min(newest);
        let bottom = self.msgs_bottom.unwrap_or(newest).clamp(first_page, newest);
        let new = match action {
            Action::Up => bottom.saturating_sub(1).max(first_page),
            Action::Down => bottom + 1,
            Action::PageUp => bottom.saturating_sub(rows).max(first_page),
            Action::PageDown => bottom + rows,
            Action::Home => first_page,
            _ => newest,
        };
        self.msgs_bottom = (new < newest).then_some(new);
    }

    /// Shows the answer to an operator command in the footer for a while.
    pub fn notify(&mut self, text: String, now: Instant) {
        self.notice = Some((text, now));
    }

    /// The notice to show at `now`, if it is still fresh.
    pub fn current_notice(&self, now: Instant) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|(_, at)| now.saturating_duration_since(*at) < NOTICE_FOR)
            .map(|(t, _)| t.as_str())
    }

    /// The first log index the view shows, given the log's bounds.
    pub fn log_view_top(&self, status: &NodeStatus, rows: usize) -> u64 {
        let (first, follow) = log_bounds(status, rows);
        self.log_top.map_or(follow, |t| t.clamp(first, follow))
    }

    fn scroll_log(&mut self, action: Action, status: &NodeStatus, rows: usize) {
        let (first, follow) = log_bounds(status, rows);
        let top = self.log_view_top(status, rows);
        let page = rows.max(1) as u64;
        let new = match action {
            Action::Up => top.saturating_sub(1).max(first),
            Action::Down => top + 1,
            Action::PageUp => top.saturating_sub(page).max(first),
            Action::PageDown => top + page,
            Action::Home => first,
            _ => follow,
        };
        self.log_top = (new < follow).then_some(new);
    }

    fn scroll_kv(&mut self, action: Action, rows: usize, source: &dyn DataSource) {
        let rows = rows.max(1);
        let top = self.kv_top.as_deref();
        // The top of the last page: scrolling down stops there.
        let last_top = || source.keys_before(None, rows).into_iter().next();
        self.kv_top = match action {
            // At the first key (`None`) there is nothing above; `keys_before(None, ..)` would
            // mean the last keys.
            Action::Up | Action::PageUp => {
                let n = if action == Action::Up { 1 } else { rows };
                top.and_then(|t| source.keys_before(Some(t), n).into_iter().next())
                    .or(self.kv_top.clone())
            }
            Action::Home => None,
            Action::End => last_top(),
            Action::Down | Action::PageDown => {
                let step = if action == Action::Down { 1 } else { rows };
                let ahead = source.kv_from(top, step + rows);
                if ahead.len() >= step + rows {
                    Some(ahead[step].key.clone())
                } else {
                    last_top()
                }
            }
            _ => self.kv_top.clone(),
        };
    }

    fn scroll_events(&mut self, action: Action, status: &NodeStatus, rows: usize) {
        // Events wrap, so a page may hold fewer than `rows` of them: scrolling goes on until
        // the oldest is the newest shown (the panel then fills with those after it).
        let max_back = status.events.len().saturating_sub(1);
        let page = rows.max(1);
        self.events_back = match action {
            Action::Up => self.events_back + 1,
            Action::Down => self.events_back.saturating_sub(1),
            Action::PageUp => self.events_back + page,
            Action::PageDown => self.events_back.saturating_sub(page),
            Action::Home => max_back,
            _ => 0,
        }
        .min(max_back);
    }

    /// Gathers what the next frame shows: only the visible rows are read.
    pub fn frame(
        &self,
        status: NodeStatus,
        pages: PageSizes,
        source: &dyn DataSource,
        info: &NodeInfo,
        uptime: Duration,
        now: Instant,
    ) -> FrameData {
        let (log, kv, messages) = if self.show_messages {
            let messages = source.messages(pages.messages, self.msgs_bottom);
            (Vec::new(), Vec::new(), messages)
        } else {
            let top = self.log_view_top(&status, pages.log);
            let log = source.log_rows(top, top + pages.log as u64);
            let kv = source.kv_from(self.kv_top.as_deref(), pages.kv);
            (log, kv, Vec::new())
        };
        FrameData {
            status,
            log,
            kv,
            messages,
            faults: source.faults(),
            resources: source.resources(),
            rates: self.rates.rates.clone(),
            info: info.clone(),
            uptime,
            now,
        }
    }
}

/// Messages per second by type, from the tap's counters sampled about once a second.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    last: Option<(Instant, TypeCounts)>,
    /// `(type, out/s, in/s)` over the last sample, busiest first, idle types left out.
    pub rates: Vec<(MessageType, u64, u64)>,
}

impl RateMeter {
    /// Takes a sample; rates change at most once a second.
    pub fn sample(&mut self, counts: TypeCounts, now: Instant) {
        let Some((at, before)) = self.last else {
            self.last = Some((now, counts));
            return;
        };
        let secs = now.saturating_duration_since(at).as_secs_f64();
        if secs < 1.0 {
            return;
        }
        let per_sec = |a: u64, b: u64| (a.saturating_sub(b) as f64 / secs).round() as u64;
        let mut rates: Vec<(MessageType, u64, u64)> = (0..MSG_TYPES)
            .filter_map(|i| {
                let out = per_sec(counts.sent[i], before.sent[i]);
                let inn = per_sec(counts.received[i], before.received[i]);
                let t = MessageType::from_i32(i32::try_from(i).ok()?)?;
                (out + inn > 0).then_some((t, out, inn))
            })
            .collect();
        rates.sort_by_key(|(t, out, inn)| (std::cmp::Reverse(out + inn), *t as i32));
        self.rates = rates;
        self.last = Some((now, counts));
    }
}

/// The first index in the log and the top index that shows its tail.
fn log_bounds(status: &NodeStatus, rows: usize) -> (u64, u64) {
    let first = status.first_index.max(1);
    let last = status.persisted_index;
    let follow = (last + 1).saturating_sub(rows as u64).max(first);
    (first, follow)
}
