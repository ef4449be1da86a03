//! The client TUI's state: the input line, the output pane, the cluster bar and the
//! request in flight. Keys come in, effects (run a request, cancel it) go out; nothing here
//! does I/O, so it can be tested and snapshotted.
//!
//! A request's attempts arrive one by one while it runs ([`App::on_hop`]) and are shown at
//! once; attempts that could not connect, one after another, share one line that counts
//! them. The output pane scrolls by screen rows, a page at a time, and stops at the top.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kv_proto::kv::{GetResponse, WriteResponse};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::command::{self, Command, HELP, HELP_FAULTS, HELP_MEMBERS};
use super::input::LineEditor;
use crate::admin::{Ending, Report};
use crate::client::{ClientError, NodeReport, Reply};
use crate::faults::FaultCommand;
use crate::output::status_table;
use crate::tour::engine::{Key as TourKey, Line as TourLine, Tone as TourTone};
use crate::trace::{Hop, HopOutcome, Reason, Trace};

/// Most output lines kept.
const OUTPUT_LINES: usize = 5000;

/// How a line of output looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The command as typed.
    Command,
    /// One step of a request's trace.
    Trace,
    /// A success.
    Ok,
    /// A failure.
    Error,
    /// Anything else.
    Info,
    /// A tour chapter's title.
    Heading,
    /// What a tour step says.
    Tour,
}

/// One line of the output pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutLine {
    /// Its look.
    pub tone: Tone,
    /// Its text.
    pub text: String,
}

/// A request to run in the background.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Write a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Only this node's API address (no leader search), if given.
        at: Option<String>,
        /// Stamp its journey and print it (`timing on`).
        timed: bool,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
        /// From any node's own state machine.
        stale: bool,
        /// Only this node's API address, if given.
        at: Option<String>,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: String,
        /// Only this node's API address, if given.
        at: Option<String>,
    },
    /// Every node's status.
    Status,
    /// A fault command.
    Fault(FaultCommand),
    /// A step-mode command.
    Step(crate::step::StepCommand),
    Lab(crate::lab::LabCommand),
    /// A membership command or a leader transfer.
    Member(crate::members::MemberCommand),
    /// A chaos run; setting the flag stops its workload early (it still heals and checks).
    Chaos(crate::chaos::ChaosOptions, StopFlag),
}

/// The flag that stops a chaos run early; equal only to itself.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl PartialEq for StopFlag {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Request {
    fn is_write(&self) -> bool {
        matches!(self, Request::Put { .. } | Request::Delete { .. })
    }
}

/// What the loop should do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start this request in the background.
    Run(Request),
    /// Cancel the request in flight.
    Cancel,
    /// Start the tour at this chapter (from 0).
    Tour(usize),
    /// Pass a key to the tour.
    TourKey(TourKey),
    /// Switch to the cluster view (and back when it is left).
    View,
}

/// A finished request.
#[derive(Debug)]
pub enum Outcome {
    /// A put or delete.
    Write(Result<Reply<WriteResponse>, ClientError>),
    /// A timed put, and its journey's lines.
    TimedWrite(Result<Reply<WriteResponse>, ClientError>, Vec<String>),
    /// A get.
    Read(Result<Reply<GetResponse>, ClientError>),
    /// A status round.
    Status(Vec<NodeReport>),
    /// An admin command's report.
    Admin(Report),
    /// A chaos run's result.
    Chaos(Result<crate::chaos::ChaosResult, String>),
}

/// The request in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The command line that started it.
    pub label: String,
    /// A write (so a cancel leaves its outcome unknown).
    pub write: bool,
    /// When it started.
    pub started: Instant,
    /// Attempts already shown (as they happened).
    pub hops_shown: usize,
}

/// Attempts in a row that could not connect, shown as one line that counts them.
#[derive(Debug, Clone)]
struct RefusedRun {
    /// The addresses that refused, in order of first refusal.
    addrs: Vec<String>,
    /// How many attempts.
    count: usize,
    /// What the connection failure said.
    reason: String,
    /// The text of its line (the last line of the output while the run goes on).
    shown: String,
}

/// The output pane's size in the last frame drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Columns a row holds.
    pub width: usize,
    /// Rows the pane shows.
    pub rows: usize,
}

impl Default for View {
    /// Before the first frame: a typical pane.
    fn default() -> Self {
        Self {
            width: 78,
            rows: 10,
        }
    }
}

/// The client TUI's state.
#[derive(Debug, Default)]
pub struct App {
    /// The input line.
    pub input: LineEditor,
    /// The output pane, oldest first.
    pub output: VecDeque<OutLine>,
    /// Screen rows scrolled back from the newest (0 follows the newest).
    pub scroll_back: usize,
    /// The output pane's size, from the last frame.
    pub view: View,
    /// A one-line note in place of the key hints until the next key (Tab's candidates,
    /// why Enter did not run the line).
    pub hint: Option<String>,
    /// Stops the chaos run in flight (Esc), which then heals and checks what ran.
    pub chaos_stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The latest status of every node, for the cluster bar.
    pub cluster: Vec<NodeReport>,
    /// When the cluster bar was last refreshed.
    pub cluster_at: Option<Instant>,
    /// The request running in the background.
    pub in_flight: Option<InFlight>,
    /// The leader the client knows of (its API address).
    pub leader_hint: Option<String>,
    /// The user asked to quit.
    pub quit: bool,
    /// A tour is running (Enter, b and q on an empty line go to it).
    pub touring: bool,
    /// What the tour's keys do now, while it waits for one (None: it is busy with a step).
    pub tour_prompt: Option<String>,
    /// Node ids by API address, remembered from status answers (also once a node is down).
    pub known_ids: std::collections::BTreeMap<String, u64>,
    /// The run of refused attempts being counted, if the last attempt shown was one.
    run: Option<RefusedRun>,
    /// `timing on`: every put prints its journey.
    pub timing: bool,
}

impl App {
    /// A fresh app with a greeting.
    pub fn new(peers: &[String]) -> Self {
        let mut app = Self::default();
        app.info(format!(
            "raft-client: {} nodes ({}). Type help, tour for a guided tour, or try: put greeting hello world",
            peers.len(),
            peers.join(", ")
        ));
        app
    }

    /// Handles a key; returns what the loop must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        self.hint = None;
        if self.touring
            && !ctrl
            && self.input.text().is_empty()
            && let Some(effect) = self.tour_key(key.code)
        {
            return effect;
        }
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('d') if ctrl && self.input.text().is_empty() => self.quit = true,
            KeyCode::Char('q') if !ctrl && self.input.text().is_empty() => self.quit = true,
            KeyCode::Char('w') if ctrl => self.input.delete_word(),
            KeyCode::Char('u') if ctrl => self.input.delete_to_start(),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('l') if ctrl => self.clear_output(),
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Up => self.input.history_up(),
            KeyCode::Down => self.input.history_down(),
            KeyCode::Tab => {
                let choices = self.input.complete();
                if !choices.is_empty() {
                    self.hint = Some(format!("Tab: {}", choices.join("  ")));
                }
            }
            // A page is the pane's height less one row, so consecutive pages overlap by a
            // row and no row is skipped.
            KeyCode::PageUp => {
                let page = self.view.rows.saturating_sub(1).max(1);
                self.scroll_back = (self.scroll_back + page).min(self.max_scroll_back());
            }
            KeyCode::PageDown => {
                let page = self.view.rows.saturating_sub(1).max(1);
                self.scroll_back = self.scroll_back.saturating_sub(page);
            }
            KeyCode::Esc if self.in_flight.is_some() && self.chaos_stop.is_some() => {
                // Not cancelled: it must heal what it broke, and what ran is worth checking.
                if let Some(stop) = &self.chaos_stop {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                self.push(
                    Tone::Info,
                    "  stopping chaos: healing the cluster, then checking what ran…".into(),
                );
            }
            KeyCode::Esc if self.in_flight.is_some() => return Some(Effect::Cancel),
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        None
    }

    /// A key for the tour, on an empty line: `Some(what to do)` if the tour takes it.
    fn tour_key(&mut self, code: KeyCode) -> Option<Option<Effect>> {
        let key = match code {
            KeyCode::Enter => TourKey::Next,
            KeyCode::Char('b') => TourKey::Back,
            KeyCode::Char('q') => TourKey::Leave,
            // Digits answer a step's question (the engine ignores them elsewhere).
            KeyCode::Char(c @ '1'..='9') if self.tour_prompt.is_some() => {
                TourKey::Answer(c as u8 - b'0')
            }
            KeyCode::Esc if self.in_flight.is_none() => TourKey::Leave,
            _ => return None,
        };
        if key != TourKey::Leave && self.tour_prompt.is_none() {
            self.hint =
                Some("the tour is running the step: wait for its check (q leaves the tour)".into());
            return Some(None);
        }
        self.tour_prompt = None;
        Some(Some(Effect::TourKey(key)))
    }

    /// Starts the tour at `chapter` (from 0), after its table of contents.
    pub fn begin_tour(&mut self, chapter: usize) -> Effect {
        self.push(
            Tone::Heading,
            "The tour: Raft's classic scenarios, played on this cluster. Keep the dashboards in view."
                .into(),
        );
        for line in crate::tour::contents() {
            self.info(format!("  {line}"));
        }
        self.touring = true;
        self.tour_prompt = None;
        Effect::Tour(chapter)
    }

    /// The tour shows a line (or, for its prompt, what its keys do now).
    pub fn on_tour_line(&mut self, line: TourLine) {
        let tone = match line.tone {
            TourTone::Prompt => {
                // A hint about a key pressed while the step ran is moot now.
                self.hint = None;
                self.tour_prompt = Some(line.text);
                return;
            }
            TourTone::Title => Tone::Heading,
            TourTone::Text => Tone::Tour,
            TourTone::Command => Tone::Command,
            TourTone::Output => Tone::Trace,
            TourTone::Passed => Tone::Ok,
            TourTone::Failed => Tone::Error,
        };
        self.push(tone, line.text);
    }

    /// The tour ended (finished, or left).
    pub fn on_tour_ended(&mut self) {
        self.touring = false;
        self.tour_prompt = None;
    }

    /// Pasted text goes into the input line.
    pub fn on_paste(&mut self, text: &str) {
        self.input.insert_str(text);
    }

    /// The output pane's size in the frame being drawn.
    pub fn set_view(&mut self, view: View) {
        self.view = view;
        self.scroll_back = self.scroll_back.min(self.max_scroll_back());
    }

    /// Farthest back the pane scrolls: the first row at the top.
    fn max_scroll_back(&self) -> usize {
        let width = self.view.width;
        let total: usize = self.output.iter().map(|l| rows_of(&l.text, width)).sum();
        total.saturating_sub(self.view.rows)
    }

    fn submit(&mut self) -> Option<Effect> {
        if let Some(running) = &self.in_flight
            && !self.input.text().trim().is_empty()
        {
            // Nothing may land between the running command and its result: the line stays
            // in the input, to run with Enter once the request is done.
            if let Ok(Some(Command::Quit)) = command::parse(self.input.text()) {
                self.quit = true;
            } else {
                self.hint = Some(format!(
                    "busy: {:?} is still running; Enter runs this line once it is done (Esc cancels it)",
                    running.label
                ));
            }
            return None;
        }
        let line = self.input.submit();
        let cmd = match command::parse(&line) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return None,
            Err(e) => {
                self.push(Tone::Command, format!("› {line}"));
                self.push(Tone::Error, format!("  {e}"));
                return None;
            }
        };
        self.scroll_back = 0;
        let request = match cmd {
            Command::Quit => {
                self.quit = true;
                return None;
            }
            Command::Clear => {
                self.clear_output();
                return None;
            }
            Command::Help | Command::HelpFaults | Command::HelpMembers => {
                self.push(Tone::Command, format!("› {line}"));
                let (rows, width) = match cmd {
                    Command::Help => (HELP, 20),
                    Command::HelpMembers => (HELP_MEMBERS, 24),
                    _ => (HELP_FAULTS, 26),
                };
                for (usage, what) in rows {
                    self.info(format!("  {usage:<width$} {what}"));
                }
                self.show_last(rows.len() + 1);
                return None;
            }
            Command::Tour(chapter) => {
                self.push(Tone::Command, format!("› {line}"));
                if self.touring {
                    self.push(Tone::Error, "  a tour is running: q leaves it first".into());
                    return None;
                }
                return Some(self.begin_tour(chapter.map_or(0, |c| c - 1)));
            }
            Command::View => {
                self.push(Tone::Command, format!("› {line}"));
                return Some(Effect::View);
            }
            Command::Leader => {
                self.push(Tone::Command, format!("› {line}"));
                let text = match &self.leader_hint {
                    Some(addr) => {
                        format!("  leader: {} (from the last answer)", self.name_of(addr))
                    }
                    None => "  no leader known yet: the next request will find it".to_string(),
                };
                self.info(text);
                return None;
            }
            Command::Timing(on) => {
                self.push(Tone::Command, format!("› {line}"));
                self.timing = on;
                self.info(if on {
                    "  timing on: each put prints its journey, a stamp per step, as µs from the send"
                        .to_string()
                } else {
                    "  timing off".to_string()
                });
                return None;
            }
            Command::Put { key, value, node } => match self.address_of(node) {
                Ok(at) => Request::Put {
                    key,
                    value,
                    at,
                    timed: self.timing,
                },
                Err(e) => return self.refuse(&line, e),
            },
            Command::Get { key, stale, node } => match self.address_of(node) {
                Ok(at) => Request::Get { key, stale, at },
                Err(e) => return self.refuse(&line, e),
            },
            Command::Delete { key, node } => match self.address_of(node) {
                Ok(at) => Request::Delete { key, at },
                Err(e) => return self.refuse(&line, e),
            },
            Command::Status => Request::Status,
            Command::Fault(f) => Request::Fault(f),
            Command::Step(s) => Request::Step(s),
            Command::Lab(l) => Request::Lab(l),
            Command::Member(m) => Request::Member(m),
            Command::Chaos(opts) => {
                let stop = StopFlag::default();
                self.chaos_stop = Some(std::sync::Arc::clone(&stop.0));
                Request::Chaos(opts, stop)
            }
        };
        self.push(Tone::Command, format!("› {line}"));
        self.in_flight = Some(InFlight {
            label: line,
            write: request.is_write(),
            started: Instant::now(),
            hops_shown: 0,
        });
        Some(Effect::Run(request))
    }

    /// One attempt of the request in flight ended: show it now.
    pub fn on_hop(&mut self, hop: &Hop) {
        if let Some(f) = &mut self.in_flight {
            f.hops_shown += 1;
            self.show_hop(hop);
        }
    }

    /// The request in flight was cancelled.
    pub fn on_cancelled(&mut self) {
        self.end_run();
        if let Some(f) = self.in_flight.take() {
            let what = if f.write {
                "cancelled: the write's outcome is unknown (it may still be applied)"
            } else {
                "cancelled"
            };
            self.push(
                Tone::Error,
                format!("  ✗ {what} after {}", ms(f.started.elapsed())),
            );
        }
    }

    /// A put's or delete's result.
    fn on_write(
        &mut self,
        result: Result<Reply<WriteResponse>, ClientError>,
        elapsed: Duration,
        shown: usize,
    ) {
        match result {
            Ok(reply) => {
                self.trace(&reply.trace, shown);
                let r = &reply.value;
                let dup = if r.duplicate {
                    ", already applied: not applied again"
                } else {
                    ""
                };
                self.push(
                    Tone::Ok,
                    format!(
                        "  ✓ OK (index {}, term {}, {}{}{dup})",
                        r.index,
                        r.term,
                        ms(elapsed),
                        summary(&reply.trace)
                    ),
                );
            }
            Err(e) => self.failure(e, elapsed, shown),
        }
    }

    /// A request finished.
    pub fn on_outcome(&mut self, outcome: Outcome, elapsed: Duration, leader_hint: Option<String>) {
        let shown = self.in_flight.take().map_or(0, |f| f.hops_shown);
        self.leader_hint = leader_hint;
        match outcome {
            Outcome::TimedWrite(result, lines) => {
                let ok = result.is_ok();
                self.on_write(result, elapsed, shown);
                if ok {
                    for l in lines {
                        self.info(format!("  {l}"));
                    }
                }
            }
            Outcome::Write(result) => self.on_write(result, elapsed, shown),
            Outcome::Read(result) => match result {
                Ok(reply) => {
                    self.trace(&reply.trace, shown);
                    let r = &reply.value;
                    let text = if r.found {
                        format!(
                            "  ✓ {} (applied index {}, node {}, {}{})",
                            printable(&r.value),
                            r.applied_index,
                            r.node_id,
                            ms(elapsed),
                            summary(&reply.trace)
                        )
                    } else {
                        format!("  ✓ (not found) (node {}, {})", r.node_id, ms(elapsed))
                    };
                    self.push(Tone::Ok, text);
                }
                Err(e) => self.failure(e, elapsed, shown),
            },
            Outcome::Status(reports) => {
                for line in status_table(&reports).lines() {
                    self.info(format!("  {line}"));
                }
                self.on_cluster(reports, Instant::now());
            }
            Outcome::Chaos(result) => {
                self.chaos_stop = None;
                match result {
                    Ok(r) => {
                        let width = self.view.width.saturating_sub(2).max(40);
                        for line in r.lines(width, false) {
                            let tone = if line.starts_with("verdict: LINEARIZABLE") {
                                Tone::Ok
                            } else if line.starts_with("verdict:") {
                                Tone::Error
                            } else {
                                Tone::Info
                            };
                            self.push(tone, format!("  {line}"));
                        }
                    }
                    Err(e) => self.push(Tone::Error, format!("  ✗ {e}")),
                }
            }
            Outcome::Admin(report) => {
                for line in &report.lines {
                    let tone = if line.error { Tone::Error } else { Tone::Ok };
                    let mark = if line.error { "✗" } else { "✓" };
                    self.push(tone, format!("  {mark} {}", line.text));
                }
                if let Some(json) = &report.json {
                    self.info(format!("  {json}"));
                }
                match report.ending {
                    Ending::Done => {}
                    Ending::Unreachable => self.push(
                        Tone::Error,
                        "  (a node involved was unreachable: the rest was applied)".into(),
                    ),
                    Ending::Refused => {
                        self.push(Tone::Error, "  (refused: nothing was changed)".into());
                    }
                }
            }
        }
    }

    /// A membership command finished a step.
    pub fn on_step(&mut self, text: &str) {
        self.push(Tone::Ok, format!("  ✓ {text}"));
    }

    /// A background status refresh arrived.
    pub fn on_cluster(&mut self, reports: Vec<NodeReport>, at: Instant) {
        for r in &reports {
            if let Ok(s) = &r.status {
                self.known_ids.insert(r.api_addr.clone(), s.id);
            }
        }
        self.cluster = reports;
        self.cluster_at = Some(at);
    }

    fn failure(&mut self, e: ClientError, elapsed: Duration, shown: usize) {
        if let ClientError::Unavailable { trace, .. } = &e {
            self.trace(trace, shown);
        }
        self.end_run();
        self.push(Tone::Error, format!("  ✗ {e} ({})", ms(elapsed)));
    }

    /// Shows the attempts of a finished request not shown while it ran.
    fn trace(&mut self, trace: &Trace, shown: usize) {
        for hop in trace.hops.iter().skip(shown) {
            self.show_hop(hop);
        }
        self.end_run();
    }

    /// One attempt: its own line, or, when it could not connect either, the count on the
    /// line of the refusals just before it.
    fn show_hop(&mut self, hop: &Hop) {
        let HopOutcome::Refused(reason) = &hop.outcome else {
            self.end_run();
            let line = self.hop_line(hop);
            self.push(Tone::Trace, line);
            return;
        };
        let last = self.output.back().map(|l| l.text.as_str());
        match self.run.take() {
            Some(mut run) if run.reason == *reason && last == Some(run.shown.as_str()) => {
                run.count += 1;
                if !run.addrs.contains(&hop.addr) {
                    run.addrs.push(hop.addr.clone());
                }
                run.shown = self.run_line(&run, true);
                self.replace_last(run.shown.clone());
                self.run = Some(run);
            }
            _ => {
                let line = self.hop_line(hop);
                self.push(Tone::Trace, line.clone());
                self.run = Some(RefusedRun {
                    addrs: vec![hop.addr.clone()],
                    count: 1,
                    reason: reason.clone(),
                    shown: line,
                });
            }
        }
    }

    /// The run of refusals is over: its line stops saying "retrying".
    fn end_run(&mut self) {
        if let Some(run) = self.run.take()
            && run.count > 1
            && self.output.back().is_some_and(|l| l.text == run.shown)
        {
            let done = self.run_line(&run, false);
            self.replace_last(done);
        }
    }

    /// `→ nodes 1–3 refused the connection, 20 times; retrying…`
    fn run_line(&self, run: &RefusedRun, going_on: bool) -> String {
        let what = if run.reason.to_lowercase().contains("refused") {
            "refused the connection".to_string()
        } else {
            format!("could not be reached ({})", run.reason)
        };
        let more = if going_on { "; retrying…" } else { "" };
        format!(
            "  → {} {what}, {} times{more}",
            self.names_of(&run.addrs),
            run.count
        )
    }

    /// `node 2`, `nodes 1–3`, `nodes 1, 3`, or the addresses of nodes not known by id.
    fn names_of(&self, addrs: &[String]) -> String {
        let ids: Option<Vec<u64>> = addrs
            .iter()
            .map(|a| self.known_ids.get(a).copied())
            .collect();
        let Some(mut ids) = ids else {
            return addrs.join(", ");
        };
        ids.sort_unstable();
        match ids.as_slice() {
            [one] => format!("node {one}"),
            [first, .., last] if ids.len() > 2 && last - first + 1 == ids.len() as u64 => {
                format!("nodes {first}–{last}")
            }
            _ => {
                let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                format!("nodes {}", ids.join(", "))
            }
        }
    }

    fn hop_line(&self, hop: &Hop) -> String {
        let why = match hop.reason {
            Reason::KnownLeader => "hint",
            Reason::Redirect => "redirect",
            Reason::NextPeer => "next",
            Reason::AnyMember => "any",
        };
        let resent = if hop.resent { ", resent" } else { "" };
        format!(
            "  → {} ({why}{resent}): {} · {}",
            self.name_of(&hop.addr),
            hop.outcome,
            ms(hop.elapsed)
        )
    }

    /// The API address of node `id`, from what the nodes said about themselves.
    fn address_of(&self, id: Option<u64>) -> Result<Option<String>, String> {
        let Some(id) = id else { return Ok(None) };
        if let Some((addr, _)) = self.known_ids.iter().find(|(_, known)| **known == id) {
            return Ok(Some(addr.clone()));
        }
        // Members listed by any node that answered, down ones included.
        for r in &self.cluster {
            if let Ok(s) = &r.status
                && let Some(p) = s
                    .peers
                    .iter()
                    .find(|p| p.id == id && !p.api_addr.is_empty())
            {
                return Ok(Some(p.api_addr.clone()));
            }
        }
        let mut known: Vec<u64> = self.known_ids.values().copied().collect();
        known.sort_unstable();
        let known: Vec<String> = known.iter().map(u64::to_string).collect();
        Err(if known.is_empty() {
            format!("node {id} is not known yet: wait for the cluster bar to show the nodes")
        } else {
            format!("unknown node {id}: the nodes are {}", known.join(", "))
        })
    }

    /// Shows a command line and why it cannot run.
    fn refuse(&mut self, line: &str, why: String) -> Option<Effect> {
        self.push(Tone::Command, format!("› {line}"));
        self.push(Tone::Error, format!("  {why}"));
        None
    }

    /// `node 3` when a status answer said which node serves `addr`, else the address.
    pub fn name_of(&self, addr: &str) -> String {
        self.known_ids
            .get(addr)
            .map_or_else(|| addr.to_string(), |id| format!("node {id}"))
    }

    fn clear_output(&mut self) {
        self.output.clear();
        self.scroll_back = 0;
    }

    fn info(&mut self, text: String) {
        self.push(Tone::Info, text);
    }

    fn push(&mut self, tone: Tone, text: String) {
        if self.output.len() == OUTPUT_LINES {
            self.output.pop_front();
        }
        // A pane scrolled back stays on what it shows while new rows arrive below.
        if self.scroll_back > 0 {
            self.scroll_back += rows_of(&text, self.view.width);
        }
        self.output.push_back(OutLine { tone, text });
    }

    /// Rewrites the newest line (a run of refusals counting up).
    fn replace_last(&mut self, text: String) {
        if let Some(last) = self.output.back_mut() {
            let before = rows_of(&last.text, self.view.width);
            let after = rows_of(&text, self.view.width);
            if self.scroll_back > 0 {
                self.scroll_back = (self.scroll_back + after).saturating_sub(before);
            }
            last.text = text;
        }
    }

    /// Scrolls so that the last `lines` output lines are read from their start: when they
    /// do not fit the pane, the first of them goes to the top.
    fn show_last(&mut self, lines: usize) {
        let width = self.view.width;
        let rows: usize = self
            .output
            .iter()
            .rev()
            .take(lines)
            .map(|l| rows_of(&l.text, width))
            .sum();
        self.scroll_back = rows.saturating_sub(self.view.rows);
    }
}

/// Screen rows `text` takes in a pane `width` columns wide.
fn rows_of(text: &str, width: usize) -> usize {
    super::ui::wrap(text, width).len()
}

fn summary(trace: &Trace) -> String {
    let mut parts = Vec::new();
    match trace.redirects() {
        0 => {}
        1 => parts.push("1 redirect".to_string()),
        n => parts.push(format!("{n} redirects")),
    }
    let tries = trace.hops.len();
    if tries > 1 {
        parts.push(format!("{tries} attempts"));
    }
    if trace.resends() > 0
        && let Some((client, seq)) = trace.request_id
    {
        parts.push(format!("same request id {client:016x}:{seq} throughout"));
    }
    parts.iter().map(|p| format!(", {p}")).collect()
}

/// A value on one line: invalid UTF-8 replaced, control characters escaped.
fn printable(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
