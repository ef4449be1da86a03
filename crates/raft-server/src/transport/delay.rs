//! Hands items on after a delay, in order per link: the mechanism behind the delay fault.
//!
//! Each link (peer) that ever needs a delay gets a small thread that sleeps until each
//! item's time and delivers it. An item's time never goes below the previous one's on the
//! same link, and an undelayed item waits behind delayed ones still in flight, so a link
//! never reorders (Raft tolerates reordering, but a learner watching the messages panel
//! should see what a slow network does, not a shuffled one). Threads, not tasks: the
//! in-process transport calls from the driver's thread, outside any async runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

type Deliver<T> = Arc<dyn Fn(T) + Send + Sync>;

struct Line<T> {
    tx: Sender<(Instant, T)>,
    /// Time of the last item queued.
    last: Instant,
    /// Items queued and not yet delivered.
    waiting: Arc<AtomicUsize>,
}

/// Delay lines by link; see the module doc.
pub struct DelayLines<T: Send + 'static> {
    name: String,
    lines: HashMap<u64, Line<T>>,
    deliver: Deliver<T>,
}

impl<T: Send + 'static> DelayLines<T> {
    /// Lines that end in `deliver`; `name` labels their threads.
    pub fn new(name: impl Into<String>, deliver: impl Fn(T) + Send + Sync + 'static) -> Self {
        Self {
            name: name.into(),
            lines: HashMap::new(),
            deliver: Arc::new(deliver),
        }
    }

    /// Delivers `item` for `link` after `delay`, or now when there is no delay and nothing
    /// of that link is still waiting.
    pub fn pass(&mut self, link: u64, delay: Option<Duration>, item: T) {
        let now = Instant::now();
        let busy = self
            .lines
            .get(&link)
            .is_some_and(|l| l.waiting.load(Ordering::Acquire) > 0);
        if delay.is_none() && !busy {
            (self.deliver)(item);
            return;
        }
        let at = now + delay.unwrap_or_default();
        if !self.lines.contains_key(&link) {
            match self.spawn(link) {
                Some(line) => {
                    self.lines.insert(link, line);
                }
                None => {
                    // No thread to wait on: delivering now beats losing the message.
                    (self.deliver)(item);
                    return;
                }
            }
        }
        let Some(line) = self.lines.get_mut(&link) else {
            return;
        };
        let at = at.max(line.last);
        line.last = at;
        line.waiting.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = line.tx.send((at, item)) {
            // The thread is gone (it only ends when the sender is dropped, so this is a
            // panic in `deliver`); deliver here and start a fresh line next time.
            line.waiting.fetch_sub(1, Ordering::AcqRel);
            self.lines.remove(&link);
            let (_, item) = e.0;
            (self.deliver)(item);
        }
    }

    fn spawn(&self, link: u64) -> Option<Line<T>> {
        let (tx, rx) = channel::<(Instant, T)>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let deliver = Arc::clone(&self.deliver);
        let count = Arc::clone(&waiting);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-delay-{link}", self.name))
            .spawn(move || {
                for (at, item) in rx {
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    deliver(item);
                    count.fetch_sub(1, Ordering::AcqRel);
                }
            });
        match spawned {
            Ok(_) => Some(Line {
                tx,
                last: Instant::now(),
                waiting,
            }),
            Err(e) => {
                tracing::warn!("cannot start a delay thread: {e}; delivering without delay");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn delays_keep_order_per_link() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        let mut lines = DelayLines::new("test", move |x: (u64, u32)| {
            sink.lock().expect("lock").push((x, Instant::now()));
        });
        let start = Instant::now();
        lines.pass(1, Some(Duration::from_millis(60)), (1, 0));
        // Shorter delay and no delay behind a longer one: still after it.
        lines.pass(1, Some(Duration::from_millis(5)), (1, 1));
        lines.pass(1, None, (1, 2));
        // Another link is not held up by link 1.
        lines.pass(2, None, (2, 0));
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().expect("lock").len() < 4 {
            assert!(Instant::now() < deadline, "items never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let got = got.lock().expect("lock");
        let order: Vec<(u64, u32)> = got.iter().map(|(x, _)| *x).collect();
        assert_eq!(order, [(2, 0), (1, 0), (1, 1), (1, 2)]);
        assert!(got[1].1 - start >= Duration::from_millis(60));
    }
}
