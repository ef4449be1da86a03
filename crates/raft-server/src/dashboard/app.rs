//! Dashboard state and what each key does. No drawing and no I/O beyond the bounded
//! reads of a [`DataSource`]; the loop in `mod.rs` feeds it keys and status updates.
//!
//! Scrolling is anchored, never counted: the log view remembers its top index and the key
//! view its first key, so moving a page costs a page, however long the log or the store.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::view::{DataSource, FrameData, NodeInfo};
use crate::driver::AdminCommand;
use crate::status::NodeStatus;

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
}

const PANELS: [Panel; 4] = [Panel::Log, Panel::Kv, Panel::Cluster, Panel::Events];

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the dashboard and stop the node.
    Quit,
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
            KeyCode::Char('c') if ctrl => Action::Quit,
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
            KeyCode::Esc => Action::Help,
            _ => return None,
        })
    }

    /// Applies an action; returns an operator command for the node, if one was asked for.
    pub fn update(
        &mut self,
        action: Action,
        status: &NodeStatus,
        pages: PageSizes,
        source: &dyn DataSource,
    ) -> Option<AdminCommand> {
        if self.show_help && action != Action::Quit {
            // Any key closes the help.
            self.show_help = false;
            return None;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.show_help = true,
            Action::FocusNext | Action::FocusPrev => {
                let i = PANELS.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if action == Action::FocusNext {
                    1
                } else {
                    PANELS.len() - 1
                };
                self.focus = PANELS[(i + step) % PANELS.len()];
            }
            Action::Campaign => return Some(AdminCommand::Campaign),
            Action::Transfer => return Some(AdminCommand::TransferLeader),
            scroll => match self.focus {
                Panel::Log => self.scroll_log(scroll, status, pages.log),
                Panel::Kv => self.scroll_kv(scroll, pages.kv, source),
                Panel::Events => self.scroll_events(scroll, status, pages.events),
                Panel::Cluster => {}
            },
        }
        None
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
        let max_back = status.events.len().saturating_sub(rows.max(1));
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
        let top = self.log_view_top(&status, pages.log);
        let log = source.log_rows(top, top + pages.log as u64);
        let kv = source.kv_from(self.kv_top.as_deref(), pages.kv);
        FrameData {
            status,
            log,
            kv,
            info: info.clone(),
            uptime,
            now,
        }
    }
}

/// The first index in the log and the top index that shows its tail.
fn log_bounds(status: &NodeStatus, rows: usize) -> (u64, u64) {
    let first = status.first_index.max(1);
    let last = status.persisted_index;
    let follow = (last + 1).saturating_sub(rows as u64).max(first);
    (first, follow)
}
