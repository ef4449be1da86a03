//! Liveness as one node sees it: how many elections it took part in as a candidate and how
//! often its leader changed in the last minute, and how long it has been without a known
//! leader. A healthy cluster shows zeros; a one-way partition or a missing protection shows
//! churn.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window counted.
pub const WINDOW: Duration = Duration::from_secs(60);

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct Liveness {
    /// When this node started to campaign (pre-vote or vote), within the window.
    elections: VecDeque<Instant>,
    /// When the leader it knows changed to another node (not to "none"), within the window.
    leader_changes: VecDeque<Instant>,
    /// The last leader it knew (0: none yet).
    last_leader: u64,
    /// When it last knew a leader (`None`: never); `Some` and current while it knows one.
    leader_known_at: Option<Instant>,
    knows_leader: bool,
}

/// The liveness figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LivenessView {
    /// Elections this node started in the last minute.
    pub elections: u32,
    /// Times its leader changed in the last minute.
    pub leader_changes: u32,
    /// Milliseconds without a known leader (0: it knows one now; `None`: it never knew one).
    pub leaderless_ms: Option<u64>,
}

impl Liveness {
    /// This node began to campaign.
    pub(super) fn campaign(&mut self, now: Instant) {
        self.elections.push_back(now);
    }

    /// The leader this node knows is `leader` (0: none).
    pub(super) fn leader(&mut self, leader: u64, now: Instant) {
        if leader != 0 {
            if self.last_leader != 0 && leader != self.last_leader {
                self.leader_changes.push_back(now);
            }
            self.last_leader = leader;
            self.knows_leader = true;
            self.leader_known_at = Some(now);
        } else if self.knows_leader {
            self.knows_leader = false;
            self.leader_known_at = Some(now);
        }
    }

    /// The figures at `now` (old entries go).
    pub(super) fn view(&mut self, now: Instant) -> LivenessView {
        for q in [&mut self.elections, &mut self.leader_changes] {
            while q.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
                q.pop_front();
            }
        }
        let leaderless_ms = match (self.knows_leader, self.leader_known_at) {
            (true, _) => Some(0),
            (false, Some(t)) => {
                Some(u64::try_from(now.duration_since(t).as_millis()).unwrap_or(u64::MAX))
            }
            (false, None) => None,
        };
        LivenessView {
            elections: u32::try_from(self.elections.len()).unwrap_or(u32::MAX),
            leader_changes: u32::try_from(self.leader_changes.len()).unwrap_or(u32::MAX),
            leaderless_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_minute_and_the_time_without_a_leader() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert_eq!(l.view(t0).leaderless_ms, None);
        l.leader(1, t0);
        l.campaign(t0 + Duration::from_secs(1));
        l.leader(0, t0 + Duration::from_secs(1));
        let v = l.view(t0 + Duration::from_secs(3));
        assert_eq!((v.elections, v.leader_changes), (1, 0));
        assert_eq!(v.leaderless_ms, Some(2000));
        l.leader(2, t0 + Duration::from_secs(3));
        let v = l.view(t0 + Duration::from_secs(4));
        assert_eq!(
            (v.elections, v.leader_changes, v.leaderless_ms),
            (1, 1, Some(0))
        );
        let v = l.view(t0 + Duration::from_secs(70));
        assert_eq!((v.elections, v.leader_changes), (0, 0), "a minute later");
    }
}
