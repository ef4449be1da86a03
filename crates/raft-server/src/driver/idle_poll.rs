//! How the driver waits for its next message. Blocking on the channel costs a wake-up
//! each time a message arrives: on a small machine (a VM's vCPUs in particular) the
//! woken thread runs tens of microseconds later, and a lone client's write crosses four
//! such wake-ups on its path (the request at the leader, the append at each follower, the
//! acknowledgement back). So while the node is lightly loaded, the driver first polls the
//! channel for a short while, giving the CPU to any other thread that wants it between
//! polls, and only then blocks. Under load it blocks at once: there the CPU it would spend
//! polling is what the gRPC threads need, and messages rarely leave it waiting anyway.
//!
//! Measured on a 2-vCPU VM (`raft-client bench --clients 1`, 3 release nodes, three
//! rounds each, blocking against polling): puts p50 0.62-0.66 ms against 0.46-0.50 ms,
//! linearizable gets 0.29 against 0.19 ms. Polling on every wait, load or not, lost 10-30 %
//! of the put throughput at 16 and 64 clients (the polling took the CPU the gRPC threads
//! needed); with the load test below those stay within the runs' noise. `perf sched` put
//! the cost of a wake-up here at 30-40 µs between the wake and the run.
//!
//! The budget can be changed (or polling switched off, 0) with the environment variable
//! `RAFT_SERVER_IDLE_POLL_US`, to measure what it gains.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// How long a lightly loaded driver polls before it blocks: a little more than a
/// follower's round trip (append, fsync, acknowledgement) takes on an idle machine.
pub const POLL_FOR: Duration = Duration::from_micros(300);
/// The poll budget: [`POLL_FOR`], or `RAFT_SERVER_IDLE_POLL_US` microseconds when set
/// (0: always block).
pub fn budget() -> Duration {
    std::env::var("RAFT_SERVER_IDLE_POLL_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(POLL_FOR, Duration::from_micros)
}

/// A loop that handled more messages than this, or stored more entries, is a busy one.
const LIGHT_MESSAGES: usize = 3;
const LIGHT_ENTRIES: usize = 1;
/// Light loops in a row before the driver polls again after a busy one.
const QUIET_LOOPS: u32 = 2;

/// The driver's wait: poll first while the load is light, else block.
#[derive(Debug)]
pub struct IdlePoll {
    budget: Duration,
    quiet: u32,
    entries: usize,
}

impl IdlePoll {
    /// Polls for up to `budget` (zero: always block).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            quiet: 0,
            entries: 0,
        }
    }

    /// The loop stored `n` entries.
    pub fn stored(&mut self, n: usize) {
        self.entries += n;
    }

    /// The loop ended, having handled `handled` messages.
    pub fn loop_done(&mut self, handled: usize) {
        if handled > LIGHT_MESSAGES || self.entries > LIGHT_ENTRIES {
            self.quiet = 0;
        } else {
            self.quiet = self.quiet.saturating_add(1);
        }
        self.entries = 0;
    }

    /// Whether the next wait polls first.
    pub fn polls(&self) -> bool {
        !self.budget.is_zero() && self.quiet >= QUIET_LOOPS
    }

    /// The next message, waiting up to `wait` (zero: only what is there).
    pub fn recv<T>(&self, rx: &Receiver<T>, wait: Duration) -> Result<T, RecvTimeoutError> {
        let polled = |r: Result<T, TryRecvError>| {
            r.map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        };
        if wait.is_zero() {
            return polled(rx.try_recv());
        }
        if !self.polls() {
            return rx.recv_timeout(wait);
        }
        let start = Instant::now();
        let until = start + self.budget.min(wait);
        loop {
            match polled(rx.try_recv()) {
                Err(RecvTimeoutError::Timeout) => {}
                done => return done,
            }
            let now = Instant::now();
            if now >= until {
                return rx.recv_timeout(wait.saturating_sub(now - start));
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn polls_only_after_quiet_loops() {
        let mut p = IdlePoll::new(POLL_FOR);
        assert!(!p.polls(), "a new driver has not seen its load yet");
        for _ in 0..QUIET_LOOPS {
            p.stored(1);
            p.loop_done(1);
        }
        assert!(p.polls());
        p.stored(5);
        p.loop_done(1);
        assert!(
            !p.polls(),
            "a loop that stored a batch of entries is a busy one"
        );
        for _ in 0..QUIET_LOOPS {
            p.loop_done(0);
        }
        assert!(p.polls());
        p.loop_done(LIGHT_MESSAGES + 1);
        assert!(!p.polls(), "a loop with many messages is a busy one");
        assert!(!IdlePoll::new(Duration::ZERO).polls());
    }

    #[test]
    fn receives_what_arrives_while_polling_and_times_out_after_blocking() {
        let mut p = IdlePoll::new(POLL_FOR);
        for _ in 0..QUIET_LOOPS {
            p.loop_done(0);
        }
        let (tx, rx) = sync_channel(4);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(50));
            tx.send(7u32).expect("send");
            tx
        });
        assert_eq!(p.recv(&rx, Duration::from_secs(5)), Ok(7));
        let tx = sender.join().expect("sender");
        assert_eq!(
            p.recv(&rx, Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(p.recv(&rx, Duration::ZERO), Err(RecvTimeoutError::Timeout));
        drop(tx);
        assert_eq!(
            p.recv(&rx, Duration::from_millis(20)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
