//! The cluster view (`raft-client watch`, `view` in the interactive client): every node of
//! the cluster on one screen, fed by the watch streams of all of them.
//!
//! - [`model`]: the cluster as the records tell it; pure data, no IO.
//! - [`state`]: what the viewer chose (paused, scrolled, filtered) and the keys.
//! - [`ui`]: drawing the model.
//! - [`source`]: the live streams, following the membership.
//! - [`rewind`]: the buffer of what just happened, which the live view rewinds over.
//!
//! This module owns the loop: keys and records in, a frame out at most every
//! [`FRAME_EVERY`], so a burst of records costs one frame, not one per record.

pub mod model;
pub mod rewind;
pub mod source;
pub mod state;
pub mod ui;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::{Terminal, backend::Backend};
use tokio::sync::mpsc;

use crate::SmartClient;
use model::ClusterModel;
use source::Feed;
use state::{Effect, ViewState};

/// The least time between two frames while records pour in.
pub const FRAME_EVERY: Duration = Duration::from_millis(50);
/// Most records taken in before the next frame.
const RECORDS_PER_FRAME: usize = 20_000;

/// Runs the view on a terminal of its own until the viewer leaves.
pub async fn run(client: Arc<SmartClient>) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    terminal.clear()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut events, reader) = crate::tui::spawn_input_reader(Arc::clone(&stop));
    let result = run_on(&mut terminal, client, &mut events).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ratatui::restore();
    let _ = reader.join();
    result
}

/// Runs the view on `terminal`, taking keys from `events`, until the viewer leaves (the
/// interactive client's `view` lends it its own terminal and keys).
pub async fn run_on<B: Backend<Error = std::io::Error>>(
    terminal: &mut Terminal<B>,
    client: Arc<SmartClient>,
    events: &mut mpsc::UnboundedReceiver<Event>,
) -> std::io::Result<()> {
    let (mut feed, supervisor) = source::spawn(Arc::clone(&client));
    // What step commands said (they run beside the loop, which keeps drawing).
    let (said_tx, mut said_rx) = mpsc::unbounded_channel::<String>();
    let mut model = ClusterModel::new();
    let mut buffer = rewind::Buffer::new();
    // Rewound: a replay of the buffer, with the replay's keys, until `f`.
    let mut rewound: Option<crate::replay::player::Player> = None;
    let opened = Instant::now();
    let mut st = ViewState::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    let mut drawn: Option<Instant> = None;
    let result = loop {
        if drawn.is_none_or(|t| t.elapsed() >= FRAME_EVERY) {
            let frame = match rewound.as_mut() {
                Some(player) => {
                    player.advance(opened.elapsed());
                    st.replay = Some(format!("rewound: {} (f: live)", player.title()));
                    terminal.draw(|f| crate::replay::draw(f, player, &mut st))
                }
                None => terminal.draw(|f| ui::draw(f, &model, &mut st, crate::view::now_us())),
            };
            if let Err(e) = frame {
                break Err(e);
            }
            drawn = Some(Instant::now());
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    drawn = None;
                    if let Some(player) = rewound.as_mut() {
                        if key.code == KeyCode::Char('f') && !st.help {
                            rewound = None;
                            st.replay = None;
                            st.paused_at = None;
                        } else if player.on_key(key, opened.elapsed(), &mut st) == Some(Effect::Quit) {
                            break Ok(());
                        }
                        continue;
                    }
                    if rewinds(key) && !st.help && !buffer.is_empty() {
                        let mut player = crate::replay::player::Player::new(buffer.timeline());
                        player.said = "rewound: the view stands at this moment, the cluster goes on".into();
                        if key.code != KeyCode::Char(' ') {
                            let _ = player.on_key(key, opened.elapsed(), &mut st);
                        }
                        rewound = Some(player);
                        continue;
                    }
                    match st.on_key(key, &model) {
                        Some(Effect::Quit) => break Ok(()),
                        Some(Effect::Step(cmd)) => {
                            let (client, tx) = (Arc::clone(&client), said_tx.clone());
                            tokio::spawn(async move {
                                let report = crate::step::run(&client, cmd).await;
                                let text: Vec<&str> =
                                    report.lines.iter().map(|l| l.text.as_str()).collect();
                                let _ = tx.send(text.join("; "));
                            });
                        }
                        None => {}
                    }
                    drawn = None;
                }
                Some(Event::Resize(..)) => drawn = None,
                Some(_) => {}
                None => break Ok(()),
            },
            Some(first) = feed.recv() => {
                take(&mut model, &mut buffer, first);
                for _ in 0..RECORDS_PER_FRAME {
                    match feed.try_recv() {
                        Ok(next) => take(&mut model, &mut buffer, next),
                        Err(_) => break,
                    }
                }
            }
            Some(said) = said_rx.recv() => {
                st.said = Some(said);
                drawn = None;
            }
            _ = ticker.tick() => {}
        }
    };
    supervisor.abort();
    result
}

/// The keys that rewind the live view: Space (pause here), Shift+← / `[` (back to the last
/// notable moment).
fn rewinds(key: KeyEvent) -> bool {
    match key.code {
        KeyCode::Char(' ') | KeyCode::Char('[') => true,
        KeyCode::Left => key.modifiers.contains(KeyModifiers::SHIFT),
        _ => false,
    }
}

fn take(model: &mut ClusterModel, buffer: &mut rewind::Buffer, feed: Feed) {
    match feed {
        Feed::Record(r) => {
            model.apply(&r);
            buffer.push(*r);
        }
        Feed::Down(id, _) => model.set_connected(id, false),
    }
}

/// Microseconds since the Unix epoch, the clock the nodes stamp records with.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
