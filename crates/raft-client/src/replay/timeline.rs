//! A recording as a timeline: a position between its records, the cluster model at that
//! position, and moves (a record on or back, to a time, to the next or previous notable
//! moment). Going back starts from the nearest checkpoint (a model kept every
//! [`CHECKPOINT_EVERY`] records when the recording is opened) and replays forward, so any
//! move costs at most that many records. Pure: no terminal, no files.

use kv_proto::watch as pb;

use super::moments::{self, Moment};
use crate::view::model::ClusterModel;

/// Records between two kept models.
pub const CHECKPOINT_EVERY: usize = 50_000;

/// See the module doc.
pub struct Timeline {
    records: Vec<pb::WatchRecord>,
    moments: Vec<Moment>,
    /// `checkpoints[k]` is the model after the first `k * CHECKPOINT_EVERY` records.
    checkpoints: Vec<ClusterModel>,
    /// Records applied to `model`: it shows the cluster after `records[..pos]`.
    pos: usize,
    model: ClusterModel,
}

impl Timeline {
    /// The timeline of `records`, at its start.
    pub fn new(records: Vec<pb::WatchRecord>) -> Self {
        Self::starting_from(ClusterModel::new(), records)
    }

    /// The timeline of `records` after `start` (the model before the first of them: a
    /// live view's rewind over its buffer), at its start.
    pub fn starting_from(start: ClusterModel, mut records: Vec<pb::WatchRecord>) -> Self {
        // A recorder writes in time order; a file that is not, is put in order (stable: a
        // node's records keep their stream order).
        if !records.is_sorted_by_key(|r| r.t_us) {
            records.sort_by_key(|r| r.t_us);
        }
        let moments = moments::find(&records);
        let mut checkpoints = Vec::with_capacity(records.len() / CHECKPOINT_EVERY + 1);
        let mut model = start;
        for (i, r) in records.iter().enumerate() {
            if i % CHECKPOINT_EVERY == 0 {
                checkpoints.push(model.clone());
            }
            model.apply(r);
        }
        // A recording of a whole number of intervals (none, too) has its end as a
        // checkpoint: `seek(len)` starts there.
        if records.len().is_multiple_of(CHECKPOINT_EVERY) {
            checkpoints.push(model);
        }
        let model = checkpoints[0].clone();
        Self {
            records,
            moments,
            checkpoints,
            pos: 0,
            model,
        }
    }

    /// The model at the current position.
    pub fn model(&self) -> &ClusterModel {
        &self.model
    }

    /// Records applied so far (0 to [`Timeline::len`]).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Records in the recording.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True for a recording without records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The notable moments, in order.
    pub fn moments(&self) -> &[Moment] {
        &self.moments
    }

    /// The first record's time (µs), 0 for none.
    pub fn start_us(&self) -> u64 {
        self.records.first().map_or(0, |r| r.t_us)
    }

    /// The last record's time (µs), 0 for none.
    pub fn end_us(&self) -> u64 {
        self.records.last().map_or(0, |r| r.t_us)
    }

    /// The time at the current position: the last applied record's (the start before any).
    pub fn now_us(&self) -> u64 {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.records.get(i))
            .map_or(self.start_us(), |r| r.t_us)
    }

    /// The last applied record, if any.
    pub fn current(&self) -> Option<&pb::WatchRecord> {
        self.records.get(self.pos.checked_sub(1)?)
    }

    /// Moves to `pos` (clamped to the recording).
    pub fn seek(&mut self, pos: usize) {
        let pos = pos.min(self.records.len());
        let from_checkpoint = pos / CHECKPOINT_EVERY * CHECKPOINT_EVERY;
        if pos < self.pos || from_checkpoint > self.pos {
            self.model = self.checkpoints[pos / CHECKPOINT_EVERY].clone();
            self.pos = from_checkpoint;
        }
        for r in &self.records[self.pos..pos] {
            self.model.apply(r);
        }
        self.pos = pos;
    }

    /// Moves `n` records on (negative: back).
    pub fn step(&mut self, n: i64) {
        let to = if n >= 0 {
            self.pos.saturating_add(n as usize)
        } else {
            self.pos.saturating_sub(n.unsigned_abs() as usize)
        };
        self.seek(to);
    }

    /// Moves to just after the last record at or before `t_us`.
    pub fn seek_time(&mut self, t_us: u64) {
        let pos = self.records.partition_point(|r| r.t_us <= t_us);
        self.seek(pos);
    }

    /// Moves to just after the next notable moment; returns it (`None`: none is left).
    pub fn next_moment(&mut self) -> Option<&Moment> {
        let at = self.moments.partition_point(|m| m.index < self.pos);
        let index = self.moments.get(at)?.index;
        self.seek(index + 1);
        self.moments.get(at)
    }

    /// Moves to just after the notable moment before the current one; returns it.
    pub fn prev_moment(&mut self) -> Option<&Moment> {
        // The moment just passed is the current one: the one before it is wanted.
        let at = self
            .moments
            .partition_point(|m| m.index + 1 < self.pos)
            .checked_sub(1)?;
        let index = self.moments[at].index;
        self.seek(index + 1);
        self.moments.get(at)
    }

    /// The latest moment at or before the current position.
    pub fn last_moment(&self) -> Option<&Moment> {
        let at = self.moments.partition_point(|m| m.index < self.pos);
        self.moments.get(at.checked_sub(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_proto::watch::watch_record::Kind;

    fn records(n: usize) -> Vec<pb::WatchRecord> {
        (0..n)
            .map(|i| pb::WatchRecord {
                t_us: 1_000 + i as u64 * 10,
                seq: i as u64 + 1,
                node: 1 + i as u64 % 3,
                kind: Some(Kind::State(pb::NodeState {
                    role: if i % 1000 == 999 {
                        "Candidate"
                    } else {
                        "Follower"
                    }
                    .into(),
                    term: 1 + i as u64 / 1000,
                    commit: i as u64,
                    voters: vec![1, 2, 3],
                    ..Default::default()
                })),
            })
            .collect()
    }

    fn fingerprint(m: &ClusterModel) -> Vec<(u64, u64, u64, String)> {
        m.nodes()
            .iter()
            .filter_map(|(id, n)| {
                let s = n.state.as_ref()?;
                Some((*id, s.term, s.commit, s.role.clone()))
            })
            .collect()
    }

    #[test]
    fn any_move_gives_the_model_of_applying_the_records_in_order() {
        let recs = records(CHECKPOINT_EVERY * 2 + 123);
        let mut t = Timeline::new(recs.clone());
        let straight = |pos: usize| {
            let mut m = ClusterModel::new();
            for r in &recs[..pos] {
                m.apply(r);
            }
            fingerprint(&m)
        };
        for pos in [
            5,
            CHECKPOINT_EVERY + 7,
            3,
            CHECKPOINT_EVERY * 2 + 123,
            CHECKPOINT_EVERY,
            CHECKPOINT_EVERY - 1,
        ] {
            t.seek(pos);
            assert_eq!(t.pos(), pos);
            assert_eq!(fingerprint(t.model()), straight(pos), "at {pos}");
            assert_eq!(t.model().records(), pos as u64, "at {pos}");
        }
        t.step(-2);
        assert_eq!(fingerprint(t.model()), straight(CHECKPOINT_EVERY - 3));
        t.seek_time(1_000 + 10 * 40);
        assert_eq!(t.pos(), 41);
    }

    #[test]
    fn moments_are_visited_in_order_both_ways() {
        let mut t = Timeline::new(records(3500));
        let all: Vec<usize> = t.moments().iter().map(|m| m.index).collect();
        assert_eq!(all, [999, 1999, 2999], "{:?}", t.moments());
        let mut forward = Vec::new();
        while let Some(m) = t.next_moment() {
            forward.push(m.index);
        }
        assert_eq!(forward, all);
        assert_eq!(t.pos(), 3000);
        let mut back = Vec::new();
        while let Some(m) = t.prev_moment() {
            back.push(m.index);
        }
        assert_eq!(back, [1999, 999]);
        assert_eq!(t.last_moment().map(|m| m.index), Some(999));
    }
}
