//! The interactive smart client: type commands, watch how each request finds the leader.
//!
//! - [`command`]: the command language (shell-like quoting) and Tab completion.
//! - [`input`]: the line editor (graphemes, history, Ctrl+W/Ctrl+U).
//! - [`app`]: state, keys -> effects, results -> output lines.
//! - [`ui`]: pure rendering.
//!
//! This module owns the terminal and the loop. Requests run as background tasks with the
//! same [`SmartClient`] rules as the one-shot commands, so the UI keeps answering keys; Esc
//! aborts the task. Each attempt is reported as it ends, on the same channel as the result
//! (so it is shown before the result). A second task refreshes the cluster bar with
//! `Status` calls.

pub mod app;
pub mod command;
pub mod input;
pub mod ui;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event};
use ratatui::crossterm::execute;
use ratatui::layout::Rect;
use ratatui::{Terminal, backend::Backend};
use tokio::sync::mpsc;

use crate::SmartClient;
use crate::tour::engine::{Key as TourKey, Line as TourLine};
use crate::trace::Hop;
use app::{App, Effect, Outcome, Request};

/// How often the cluster bar asks every node for its status.
const REFRESH: Duration = Duration::from_secs(1);

/// Runs the TUI until the user quits, with the tour started at chapter `tour` (from 0) if
/// given. Restores the terminal, also after a panic (ratatui's panic hook).
pub async fn run(client: Arc<SmartClient>, tour: Option<usize>) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    // Whatever a killed process left on the screen goes (ratatui draws only differences).
    terminal.clear()?;
    let _ = execute!(std::io::stdout(), EnableBracketedPaste);
    let result = event_loop(&mut terminal, client, tour).await;
    let _ = execute!(std::io::stdout(), DisableBracketedPaste);
    ratatui::restore();
    result
}

async fn event_loop<B: Backend<Error = std::io::Error>>(
    terminal: &mut Terminal<B>,
    client: Arc<SmartClient>,
    start_tour: Option<usize>,
) -> std::io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let (mut events, reader) = spawn_input_reader(Arc::clone(&stop));
    let (cluster_tx, mut cluster_rx) = mpsc::unbounded_channel();
    let refresher = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            loop {
                let reports = client.status_all_within(Duration::from_millis(800)).await;
                if cluster_tx.send(reports).is_err() {
                    break;
                }
                tokio::time::sleep(REFRESH).await;
            }
        })
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<FromRequest>();
    // The request in flight: its number and task. A result that arrives for another number
    // (one cancelled with Esc just as it finished) is dropped.
    let mut running: Option<(u64, tokio::task::JoinHandle<()>)> = None;
    let mut next_request = 0u64;
    let mut app = App::new(&client.peers());
    // The tour, while one runs: where its keys go, and its task.
    let mut tour: Option<(mpsc::UnboundedSender<TourKey>, tokio::task::JoinHandle<()>)> = None;
    if let Ok(size) = terminal.size() {
        app.set_view(ui::output_view(Rect::new(0, 0, size.width, size.height)));
    }
    if let Some(chapter) = start_tour
        && let Effect::Tour(chapter) = app.begin_tour(chapter)
    {
        tour = Some(spawn_tour(
            &client,
            chapter,
            app.view.width,
            done_tx.clone(),
        ));
    }
    let mut spinner = tokio::time::interval(Duration::from_millis(100));
    let mut spin = 0usize;
    let result = loop {
        match terminal.size() {
            Ok(size) => app.set_view(ui::output_view(Rect::new(0, 0, size.width, size.height))),
            Err(e) => break Err(e),
        }
        if let Err(e) = terminal.draw(|f| ui::draw(f, &app, Instant::now(), spin)) {
            break Err(e);
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Key(key)) => match app.on_key(key) {
                    Some(Effect::Run(req)) => {
                        next_request += 1;
                        let task = spawn_request(Arc::clone(&client), req, next_request, done_tx.clone());
                        running = Some((next_request, task));
                    }
                    Some(Effect::Cancel) => {
                        if let Some((_, task)) = running.take() {
                            task.abort();
                        }
                        app.on_cancelled();
                    }
                    Some(Effect::Tour(chapter)) => {
                        tour = Some(spawn_tour(&client, chapter, app.view.width, done_tx.clone()));
                    }
                    Some(Effect::TourKey(key)) => {
                        if let Some((keys, _)) = &tour {
                            let _ = keys.send(key);
                        }
                    }
                    Some(Effect::View) => {
                        // The view takes the terminal and the keys until it is left.
                        if let Err(e) = crate::view::run_on(terminal, Arc::clone(&client), &mut events).await {
                            break Err(e);
                        }
                        terminal.clear()?;
                    }
                    None => {}
                },
                Some(Event::Paste(text)) => app.on_paste(&text),
                Some(_) => {}
                None => break Ok(()),
            },
            Some(news) = done_rx.recv() => match news {
                FromRequest::Hop(id, hop) => {
                    if running.as_ref().is_some_and(|(running, _)| *running == id) {
                        app.on_hop(&hop);
                    }
                }
                FromRequest::Step(id, text) => {
                    if running.as_ref().is_some_and(|(running, _)| *running == id) {
                        app.on_step(&text);
                    }
                }
                FromRequest::Tour(line) => app.on_tour_line(line),
                FromRequest::TourEnded => {
                    tour = None;
                    app.on_tour_ended();
                }
                FromRequest::Done(done) => {
                    if running.as_ref().is_some_and(|(id, _)| *id == done.id) {
                        running = None;
                        app.on_outcome(done.outcome, done.elapsed, client.leader_hint());
                    }
                }
            },
            Some(reports) = cluster_rx.recv() => app.on_cluster(reports, Instant::now()),
            _ = spinner.tick(), if app.in_flight.is_some() => spin = spin.wrapping_add(1),
        }
        if app.quit {
            break Ok(());
        }
    };
    if let Some((_, task)) = running {
        task.abort();
    }
    refresher.abort();
    if let Some((_, task)) = tour {
        // Quitting mid-tour: what the chapter broke is healed before the client goes.
        task.abort();
        crate::tour::heal(&client).await;
    }
    stop.store(true, Ordering::Relaxed);
    // At most one poll interval (100 ms).
    let _ = reader.join();
    result
}

/// What a request's task reports: each attempt as it ends, then the result.
enum FromRequest {
    /// Request `id` made an attempt.
    Hop(u64, Hop),
    /// Request `id` (a membership command) finished a step.
    Step(u64, String),
    /// A request finished.
    Done(Finished),
    /// The tour shows a line.
    Tour(TourLine),
    /// The tour ended.
    TourEnded,
}

/// Starts the tour at `chapter` on its own client of the same nodes; its lines (made to fit
/// an output pane `width` columns wide) and its end come back on `done`.
fn spawn_tour(
    client: &SmartClient,
    chapter: usize,
    width: usize,
    done: mpsc::UnboundedSender<FromRequest>,
) -> (mpsc::UnboundedSender<TourKey>, tokio::task::JoinHandle<()>) {
    let (keys, rx) = mpsc::unbounded_channel();
    let peers = client.peers();
    let task = tokio::spawn(async move {
        match crate::tour::live::LiveCluster::new(peers, width.saturating_sub(4)) {
            Ok(cluster) => {
                let lines = done.clone();
                let show = move |line: TourLine| {
                    let _ = lines.send(FromRequest::Tour(line));
                };
                let chapters = crate::tour::chapters::chapters();
                crate::tour::engine::play(Arc::new(cluster), &chapters, chapter, rx, &show).await;
            }
            Err(e) => {
                let _ = done.send(FromRequest::Tour(TourLine {
                    tone: crate::tour::engine::Tone::Failed,
                    text: format!("✗ the tour cannot start: {e}"),
                }));
            }
        }
        let _ = done.send(FromRequest::TourEnded);
    });
    (keys, task)
}

/// A request that finished: which one, how, and how long it took.
struct Finished {
    id: u64,
    outcome: Outcome,
    elapsed: Duration,
}

fn spawn_request(
    client: Arc<SmartClient>,
    req: Request,
    id: u64,
    done: mpsc::UnboundedSender<FromRequest>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let hops = done.clone();
        let watch = move |hop: &Hop| {
            let _ = hops.send(FromRequest::Hop(id, hop.clone()));
        };
        let outcome = match req {
            Request::Put {
                key,
                value,
                at,
                timed,
            } => match only(&client, at) {
                Ok(c) if timed => {
                    let sent_us = crate::journey::now_us();
                    let result = c
                        .watching(&watch)
                        .put_with(&key, value.as_bytes(), true)
                        .await;
                    let lines = match &result {
                        Ok(r) => {
                            let steps = crate::journey::collect(&client, &r.value, sent_us).await;
                            crate::journey::lines(&steps, &client.peers())
                        }
                        Err(_) => Vec::new(),
                    };
                    Outcome::TimedWrite(result, lines)
                }
                Ok(c) => Outcome::Write(c.watching(&watch).put(&key, value.as_bytes()).await),
                Err(e) => Outcome::Write(Err(e)),
            },
            Request::Delete { key, at } => match only(&client, at) {
                Ok(c) => Outcome::Write(c.watching(&watch).delete(&key).await),
                Err(e) => Outcome::Write(Err(e)),
            },
            Request::Get { key, stale, at } => match only(&client, at) {
                Ok(c) => Outcome::Read(c.watching(&watch).get(&key, stale).await),
                Err(e) => Outcome::Read(Err(e)),
            },
            Request::Status => Outcome::Status(client.status_all().await),
            Request::Fault(cmd) => Outcome::Admin(crate::faults::run(&client, &cmd).await),
            Request::Step(cmd) => Outcome::Admin(crate::step::run(&client, cmd).await),
            Request::Lab(cmd) => Outcome::Admin(crate::lab::run(&client, &cmd).await),
            Request::Chaos(opts, stop) => {
                let steps = done.clone();
                let progress = move |text: &str| {
                    let _ = steps.send(FromRequest::Step(id, text.to_string()));
                };
                let result = crate::chaos::run(client.peers(), &opts, stop.0, &progress).await;
                Outcome::Chaos(result.map_err(|e| e.to_string()))
            }
            Request::Member(cmd) => {
                // Each step shows as it happens; the report then adds only what went wrong.
                let steps = done.clone();
                let mut step = move |text: &str| {
                    let _ = steps.send(FromRequest::Step(id, text.to_string()));
                };
                let report = crate::members::run(&client, &cmd, &mut step).await;
                Outcome::Admin(crate::admin::Report {
                    lines: report.lines.into_iter().filter(|l| l.error).collect(),
                    ..report
                })
            }
        };
        let _ = done.send(FromRequest::Done(Finished {
            id,
            outcome,
            elapsed: started.elapsed(),
        }));
    })
}

/// The client to use: the shared one, or a client of node `at` alone (`--node`), which
/// asks nobody else and follows no hint elsewhere.
fn only(
    client: &Arc<SmartClient>,
    at: Option<String>,
) -> Result<Arc<SmartClient>, crate::ClientError> {
    match at {
        None => Ok(Arc::clone(client)),
        Some(addr) => Ok(Arc::new(
            SmartClient::new(vec![addr], client.timeout())?.pinned(),
        )),
    }
}

/// Reads terminal events on a thread (crossterm's reads block) until `stop` is set. Join
/// it before giving the terminal back: while it runs it would read (and lose) what the user
/// types at the shell next.
pub(crate) fn spawn_input_reader(
    stop: Arc<AtomicBool>,
) -> (mpsc::UnboundedReceiver<Event>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
    (rx, reader)
}
