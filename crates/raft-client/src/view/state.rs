//! What the person looking at the cluster view chose: paused or live, where in the
//! buffered messages, which messages, which panels. Keys come in, the view state changes;
//! nothing here draws or talks to the cluster.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::{ClusterModel, MsgEvent};

/// Which messages the diagram shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// Every type.
    #[default]
    All,
    /// Elections: (pre-)votes, their answers, leadership transfers.
    Votes,
    /// Replication: appends, their answers, snapshots.
    Appends,
}

impl Filter {
    fn next(self) -> Self {
        match self {
            Filter::All => Filter::Votes,
            Filter::Votes => Filter::Appends,
            Filter::Appends => Filter::All,
        }
    }

    /// Its name in the diagram's title.
    pub fn name(self) -> &'static str {
        match self {
            Filter::All => "all messages",
            Filter::Votes => "votes only",
            Filter::Appends => "appends only",
        }
    }

    fn keeps(self, t: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Votes => t.contains("Vote") || t == "MsgTimeoutNow",
            Filter::Appends => t.starts_with("MsgAppend") || t == "MsgSnapshot",
        }
    }
}

/// Which panels fill the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Nodes, logs and the diagram, stacked.
    #[default]
    All,
    /// The diagram alone (with the nodes line).
    Diagram,
    /// The nodes and their logs alone.
    Logs,
}

/// What a key asked of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Leave the view.
    Quit,
    /// Run a step-mode command on the cluster.
    Step(crate::step::StepCommand),
}

/// The view's state; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// Paused at this many message positions (the end of what is shown): the view stays
    /// while the cluster goes on. `None`: live, following the newest.
    pub paused_at: Option<u64>,
    /// Heartbeats and their answers left out of the diagram.
    pub fold_heartbeats: bool,
    /// Which message types the diagram shows.
    pub filter: Filter,
    /// Which panels fill the screen.
    pub layout: Layout,
    /// The help is open.
    pub help: bool,
    /// Log columns scrolled back from the newest index.
    pub log_back: u64,
    /// How many diagram rows there are (set by the drawing, for paging).
    pub page: u64,
    /// A replay's state in words (`replay 12.3 s of 60.0 s · paused · x1`), shown where
    /// the live view says live or paused; `None` for the live view.
    pub replay: Option<String>,
    /// Step mode: the held message chosen (an index in the model's held list, oldest
    /// first), the node chosen for `t`, and what the last step command said.
    pub held_sel: usize,
    pub node_sel: Option<u64>,
    pub said: Option<String>,
}

impl ViewState {
    /// True for a message the diagram shows.
    pub fn shows(&self, e: &MsgEvent) -> bool {
        let t = e.msg.msg_type.as_str();
        if self.fold_heartbeats && t.starts_with("MsgHeartbeat") {
            return false;
        }
        self.filter.keeps(t)
    }

    /// The end (exclusive) of the message positions shown: the newest when live.
    pub fn end(&self, model: &ClusterModel) -> u64 {
        let all = model.positions();
        self.paused_at
            .map_or(all.end, |at| at.clamp(all.start, all.end))
    }

    /// Handles a key; `Some` when the loop must act.
    pub fn on_key(&mut self, key: KeyEvent, model: &ClusterModel) -> Option<Effect> {
        if self.help {
            self.help = false;
            return None;
        }
        let page = self.page.max(1);
        if self.replay.is_none()
            && let Some(effect) = self.on_step_key(key, model)
        {
            return effect;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Some(Effect::Quit),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Some(Effect::Quit);
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(' ') => {
                self.paused_at = match self.paused_at {
                    Some(_) => None,
                    None => Some(model.positions().end),
                }
            }
            KeyCode::Char('f') | KeyCode::End => self.paused_at = None,
            KeyCode::Char('h') => self.fold_heartbeats = !self.fold_heartbeats,
            KeyCode::Char('t') => self.filter = self.filter.next(),
            KeyCode::Tab => {
                self.layout = match self.layout {
                    Layout::All => Layout::Diagram,
                    Layout::Diagram => Layout::Logs,
                    Layout::Logs => Layout::All,
                }
            }
            KeyCode::Up => self.back(model, 1),
            KeyCode::PageUp => self.back(model, page),
            KeyCode::Down => self.forward(model, 1),
            KeyCode::PageDown => self.forward(model, page),
            KeyCode::Home => self.paused_at = Some(model.positions().start),
            KeyCode::Left => self.log_back += 1,
            KeyCode::Right => self.log_back = self.log_back.saturating_sub(1),
            _ => {}
        }
        None
    }

    /// The keys of step mode (live only): `Some` when the key was one of them.
    fn on_step_key(&mut self, key: KeyEvent, model: &ClusterModel) -> Option<Option<Effect>> {
        use crate::step::StepCommand;
        if key.code == KeyCode::Char('s') {
            self.said = None;
            return Some(Some(Effect::Step(if model.stepping() {
                StepCommand::Off
            } else {
                StepCommand::On
            })));
        }
        if !model.stepping() {
            return None;
        }
        let held = model.held();
        self.held_sel = self.held_sel.min(held.len().saturating_sub(1));
        let chosen = held.get(self.held_sel).map(|(node, h)| (*node, h.hold_id));
        Some(match key.code {
            KeyCode::Enter => Some(Effect::Step(StepCommand::Next(chosen))),
            KeyCode::Char('d') => Some(Effect::Step(StepCommand::Drop(chosen))),
            KeyCode::Char('t') => match self.node_sel {
                Some(id) => Some(Effect::Step(StepCommand::Tick(id))),
                None => {
                    self.said =
                        Some("press a node's number (1-9) to choose the node to tick".into());
                    None
                }
            },
            KeyCode::Char(c @ '1'..='9') => {
                let id = u64::from(c.to_digit(10).unwrap_or(1));
                self.node_sel = Some(id);
                self.said = Some(format!("node {id} chosen: t ticks it"));
                None
            }
            KeyCode::Up => {
                self.held_sel = self.held_sel.saturating_sub(1);
                None
            }
            KeyCode::Down => {
                self.held_sel = (self.held_sel + 1).min(held.len().saturating_sub(1));
                None
            }
            _ => return None,
        })
    }

    /// Scrolls back `n` shown messages (pausing the view there).
    fn back(&mut self, model: &ClusterModel, n: u64) {
        let all = model.positions();
        let mut at = self.end(model);
        let mut moved = 0;
        while at > all.start && moved < n {
            at -= 1;
            if model.at(at).is_some_and(|e| self.shows(e)) {
                moved += 1;
            }
        }
        self.paused_at = Some(at);
    }

    /// Scrolls forward `n` shown messages; at the newest the view is live again.
    fn forward(&mut self, model: &ClusterModel, n: u64) {
        let Some(mut at) = self.paused_at else { return };
        let end = model.positions().end;
        let mut moved = 0;
        while at < end && moved < n {
            if model.at(at).is_some_and(|e| self.shows(e)) {
                moved += 1;
            }
            at += 1;
        }
        self.paused_at = (at < end).then_some(at);
    }

    /// Records that came since the view was paused (for "paused, N new").
    pub fn behind(&self, model: &ClusterModel) -> u64 {
        self.paused_at
            .map_or(0, |at| model.positions().end.saturating_sub(at))
    }
}
