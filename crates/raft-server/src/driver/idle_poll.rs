//! How the driver waits for its next message. Blocking on the channel costs a wake-up
//! each time a message arrives: on a small machine (a VM's vCPUs in particular) the
//! woken thread runs tens of microseconds later, and a lone client's write crosses four
//! such wake-ups on its path (the request at the leader, the append at each follower, the
//! acknowledgement back). So while the node is lightly loaded and writing, the driver
//! first polls the channel for a short while, giving the CPU to any other thread that
//! wants it between polls, and only then blocks. Under load it blocks at once: there the
//! CPU it would spend polling is what the gRPC threads need, and messages rarely leave it
//! waiting anyway.
//!
//! Measured on a 2-vCPU VM (`raft-client bench`, 3 release nodes, two or three rounds
//! each, blocking against polling): one client's puts p50 0.56-0.66 ms against 0.44-0.50
//! ms. Polling on every wait cost 10-30 % of the put throughput at 16 and 64 clients (the
//! polling took the CPU the gRPC threads needed), and polling for reads cost a fifth to
//! a third of the gets spread over every member (`--read-from any`) at 16 clients, even
//! with only light loops polling; hence the load test below, and polling only on the write
//! path (within a few loops of storing an entry). With it, puts at 16 and 64 clients and
//! reads stay within the runs' noise (one client's get stays at 0.28 ms; polling for it
//! gave 0.19). `perf sched` put the delay between a wake-up and the run at 30-40 µs here.
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

/// A loop that handled more messages than this, stored more entries, or ended with more
/// client requests waiting, is a busy one.
const LIGHT_MESSAGES: usize = 3;
const LIGHT_ENTRIES: usize = 1;
const LIGHT_REQUESTS: usize = 1;
/// Light loops in a row before the driver polls again after a busy one.
const QUIET_LOOPS: u32 = 2;
/// The driver polls only within this many loops of storing an entry: on the write path.
/// (Reads spread over the members, `--read-from any`, lost a fifth to a third of their
/// throughput at 16 clients when the leader or the followers polled for them.)
const WROTE_WITHIN: u32 = 4;

/// The driver's wait: poll first while the load is light, else block.
#[derive(Debug)]
pub struct IdlePoll {
    budget: Duration,
    quiet: u32,
    entries: usize,
    /// Loops since one stored an entry.
    since_write: u32,
}

impl IdlePoll {
    /// Polls for up to `budget` (zero: always block).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            quiet: 0,
            entries: 0,
            since_write: u32::MAX,
        }
    }

    /// The loop stored `n` entries.
    pub fn stored(&mut self, n: usize) {
        self.entries += n;
    }

    /// The loop ended, having handled `handled` messages, with `waiting` client requests
    /// (writes and reads) not answered yet.
    pub fn loop_done(&mut self, handled: usize, waiting: usize) {
        self.since_write = if self.entries > 0 {
            0
        } else {
            self.since_write.saturating_add(1)
        };
        if handled > LIGHT_MESSAGES || self.entries > LIGHT_ENTRIES || waiting > LIGHT_REQUESTS {
            self.quiet = 0;
        } else {
            self.quiet = self.quiet.saturating_add(1);
        }
        self.entries = 0;
    }

    /// Whether the next wait polls first.
    pub fn polls(&self) -> bool {
        !self.budget.is_zero() && self.quiet >= QUIET_LOOPS && self.since_write < WROTE_WITHIN
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
    fn polls_only_after_quiet_loops_on_the_write_path() {
        let mut p = IdlePoll::new(POLL_FOR);
        assert!(!p.polls(), "a new driver has not seen its load yet");
        for _ in 0..QUIET_LOOPS {
            p.stored(1);
            p.loop_done(1, 1);
        }
        assert!(p.polls());
        p.stored(5);
        p.loop_done(1, 1);
        assert!(!p.polls(), "a loop that stored a batch of entries is busy");
        for _ in 0..QUIET_LOOPS {
            p.stored(1);
            p.loop_done(0, 0);
        }
        assert!(p.polls());
        p.loop_done(LIGHT_MESSAGES + 1, 0);
        assert!(!p.polls(), "a loop with many messages is busy");
        for _ in 0..QUIET_LOOPS {
            p.stored(1);
            p.loop_done(0, 0);
        }
        p.stored(1);
        p.loop_done(1, LIGHT_REQUESTS + 1);
        assert!(!p.polls(), "many clients waiting: a busy node");

        let mut reader = IdlePoll::new(POLL_FOR);
        for _ in 0..QUIET_LOOPS {
            reader.loop_done(1, 0);
        }
        assert!(
            !reader.polls(),
            "a node that stores nothing is off the write path"
        );
        reader.stored(1);
        reader.loop_done(1, 0);
        assert!(reader.polls(), "a node that just stored an entry");
        for _ in 0..WROTE_WITHIN {
            reader.loop_done(1, 0);
        }
        assert!(!reader.polls(), "and no longer, once writes stop");
        assert!(!IdlePoll::new(Duration::ZERO).polls());
    }

    #[test]
    fn receives_what_arrives_while_polling_and_times_out_after_blocking() {
        let mut p = IdlePoll::new(POLL_FOR);
        for _ in 0..QUIET_LOOPS {
            p.stored(1);
            p.loop_done(0, 0);
        }
        assert!(p.polls());
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
