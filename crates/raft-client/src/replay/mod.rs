//! Replays (`raft-client replay FILE`): the cluster view over a recording, with a timeline.
//!
//! - [`moments`]: the notable moments of a recording.
//! - [`timeline`]: a position in the recording and the model there; moves.
//! - [`player`]: play, pause, speed and the keys over a timeline; the timeline bar.
//!
//! This module owns the loop: keys and the clock in, a frame out.

pub mod moments;
pub mod player;
pub mod timeline;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{Event, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};

use crate::record::file::{self, ReadError, Recording};
use crate::view::state::{Effect, ViewState};
use crate::view::ui;
use player::Player;
use timeline::Timeline;

/// How often a playing replay draws a frame.
const FRAME_EVERY: Duration = Duration::from_millis(50);

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file is not a recording this build reads (exit 2).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// A recording opened for replay, and what opening it took.
pub struct Opened {
    /// The player at the start (or at `--at`).
    pub player: Player,
    /// Set when the recording was cut off: why it ends early.
    pub cut_off: Option<String>,
    /// How long reading and indexing took.
    pub took: Duration,
}

/// Reads `path` and indexes it (checkpoints, moments); at `at` seconds when given.
pub fn open(path: &Path, at: Option<f64>) -> Result<Opened, ReadError> {
    let started = Instant::now();
    let Recording {
        records, cut_off, ..
    } = file::read(path)?;
    let mut player = Player::new(Timeline::new(records));
    if let Some(s) = at {
        player.seek_seconds(s);
    }
    if let Some(why) = &cut_off {
        player.said = format!("the recording was cut off: {why}");
    }
    Ok(Opened {
        player,
        cut_off,
        took: started.elapsed(),
    })
}

/// Runs the replay of `opened` on a terminal of its own until the viewer leaves.
pub async fn run(opened: Opened) -> Result<(), ReplayError> {
    let mut terminal = ratatui::try_init()?;
    terminal.clear()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut events, reader) = crate::tui::spawn_input_reader(Arc::clone(&stop));
    let result = run_on(&mut terminal, opened.player, &mut events).await;
    stop.store(true, Ordering::Relaxed);
    ratatui::restore();
    let _ = reader.join();
    result.map_err(ReplayError::from)
}

/// Runs the replay on `terminal`, taking keys from `events`.
pub async fn run_on<B: ratatui::backend::Backend<Error = std::io::Error>>(
    terminal: &mut ratatui::Terminal<B>,
    mut player: Player,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> std::io::Result<()> {
    let opened = Instant::now();
    let mut st = ViewState::default();
    let mut ticker = tokio::time::interval(FRAME_EVERY);
    loop {
        player.advance(opened.elapsed());
        st.replay = Some(player.title());
        terminal.draw(|f| draw(f, &player, &mut st))?;
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    if player.on_key(key, opened.elapsed(), &mut st) == Some(Effect::Quit) {
                        return Ok(());
                    }
                }
                Some(_) => {}
                None => return Ok(()),
            },
            _ = ticker.tick() => {}
        }
    }
}

/// The view over the model at the player's position, the timeline below it.
pub fn draw(frame: &mut ratatui::Frame<'_>, player: &Player, st: &mut ViewState) {
    let [view, bar]: [Rect; 2] =
        Layout::vertical([Constraint::Min(10), Constraint::Length(2)]).areas(frame.area());
    let timeline = &player.timeline;
    ui::draw_in(frame, view, timeline.model(), st, timeline.now_us());
    player.draw(frame, bar);
}
