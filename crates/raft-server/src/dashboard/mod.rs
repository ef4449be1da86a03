//! The live dashboard of one node: header (with its faults), log, state machine, cluster and
//! events panels, and the messages panel in place of the log and the keys on `m`.
//!
//! - [`view`]: what a frame shows, read from the node at a cost bounded by the screen.
//! - [`app`]: dashboard state and what each key does.
//! - [`ui`]: pure rendering of a frame.
//!
//! This module owns the terminal and the loop: keys come from a reader thread, status
//! updates from the driver's `watch` channel. It never blocks the driver: it reads the
//! published view, raft-engine and the state machine's read lock, and redraws at most
//! every [`FRAME`] (plus once a second for the clocks), not once per status change.

pub mod app;
pub mod ui;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};
use ratatui::layout::Rect;
use ratatui::{DefaultTerminal, Terminal, backend::Backend};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::driver::{AdminCommand, NodeHandle, TimeControl};
use crate::fault_control::FaultControl;
use crate::transport::fault::FaultChange;
use app::{App, Operator};
use view::{DataSource as _, NodeData, NodeInfo};

/// Shortest time between two frames caused by status changes.
const FRAME: Duration = Duration::from_millis(50);

/// Runs the dashboard until the user quits (which cancels `shutdown`, stopping the node) or
/// `shutdown` is cancelled elsewhere. Restores the terminal in both cases; ratatui's panic
/// hook restores it after a panic too.
pub async fn run(
    node: NodeHandle,
    control: FaultControl,
    info: NodeInfo,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut terminal: DefaultTerminal = ratatui::try_init()?;
    // A dashboard killed with -9 left its frame on the screen, and ratatui draws only what
    // differs from an empty one: start from a clear screen.
    terminal.clear()?;
    let result = event_loop(&mut terminal, &node, &control, &info, &shutdown).await;
    ratatui::restore();
    shutdown.cancel();
    result
}

async fn event_loop<B: Backend<Error = std::io::Error>>(
    terminal: &mut Terminal<B>,
    node: &NodeHandle,
    control: &FaultControl,
    info: &NodeInfo,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let (mut keys, reader) = spawn_input_reader(Arc::clone(&stop));
    let (notice_tx, mut notices) = mpsc::unbounded_channel::<String>();
    let mut status_rx = node.status();
    let data = NodeData::of(node, control.filter().clone());
    let mut app = App::default();
    let started = Instant::now();
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut changed = true;
    let mut last_draw = Instant::now();
    // Page sizes of the last frame drawn: a resize redraws before the next key is read.
    let mut pages = app::PageSizes::default();
    let result = loop {
        let now = Instant::now();
        if changed || now.duration_since(last_draw) >= Duration::from_secs(1) {
            app.rates.sample(data.message_counts(), now);
            match draw(terminal, &app, &data, info, started, &mut status_rx) {
                Ok(drawn) => pages = drawn,
                Err(e) => break Err(e),
            }
            changed = false;
            last_draw = now;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            ev = keys.recv() => match ev {
                Some(Event::Key(key)) => {
                    if let Some(action) = App::action_for(key) {
                        let status = status_rx.borrow().clone();
                        if let Some(op) = app.update(action, &status, pages, &data) {
                            let (node, control, tx) =
                                (node.clone(), control.clone(), notice_tx.clone());
                            tokio::spawn(async move {
                                let _ = tx.send(operate(&node, &control, op).await);
                            });
                        }
                        if app.quit {
                            break Ok(());
                        }
                        changed = true;
                    }
                }
                Some(Event::Resize(..)) => changed = true,
                Some(_) => {}
                None => break Ok(()),
            },
            Some(text) = notices.recv() => {
                app.notify(text, Instant::now());
                changed = true;
            }
            // A status change is drawn on the next frame tick, so a busy node costs at most
            // one frame per FRAME.
            _ = frames.tick() => {
                if status_rx.has_changed().unwrap_or(false) {
                    changed = true;
                }
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    // At most one poll interval (100 ms).
    let _ = reader.join();
    result
}

/// Carries out what a key asked for; the answer is a line for the footer.
async fn operate(node: &NodeHandle, control: &FaultControl, op: Operator) -> String {
    let answer = match op {
        Operator::Campaign => return node.admin(AdminCommand::Campaign).await,
        Operator::Transfer => return node.admin(AdminCommand::TransferLeader).await,
        Operator::Isolate => control.network(FaultChange::Isolate),
        Operator::Heal => control.heal().await,
        Operator::Freeze => control.time(TimeControl::Freeze).await,
        Operator::Thaw => control.time(TimeControl::Thaw).await,
    };
    match answer {
        Ok(said) if said.is_empty() => "no fault to clear".to_string(),
        Ok(said) => said,
        Err(e) => e.to_string(),
    }
}

fn screen<B: Backend<Error = std::io::Error>>(terminal: &Terminal<B>) -> std::io::Result<Rect> {
    let size = terminal.size()?;
    Ok(Rect::new(0, 0, size.width, size.height))
}

fn draw<B: Backend<Error = std::io::Error>>(
    terminal: &mut Terminal<B>,
    app: &App,
    source: &NodeData,
    info: &NodeInfo,
    started: Instant,
    status_rx: &mut tokio::sync::watch::Receiver<crate::status::NodeStatus>,
) -> std::io::Result<app::PageSizes> {
    let status = status_rx.borrow_and_update().clone();
    let pages = ui::page_sizes(screen(terminal)?, app.show_messages);
    let now = Instant::now();
    let data = app.frame(status, pages, source, info, started.elapsed(), now);
    let notice = app.current_notice(now);
    terminal.draw(|f| ui::draw(f, app, &data, notice))?;
    Ok(pages)
}

/// Reads terminal events on a thread (crossterm's reads block) until `stop` is set or the
/// receiver is gone. Join it before giving the terminal back: while it runs it would read
/// (and lose) what the user types at the shell next.
fn spawn_input_reader(
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
