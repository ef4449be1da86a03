//! The live view's buffer of what just happened: the newest records (at most
//! [`MAX_RECORDS`]) and the model as it was before the oldest of them, so that the view
//! can rewind: a replay's timeline over the buffer, starting from that model (nodes,
//! logs and all), with the replay's keys; `f` leaves it for live again.

use std::collections::VecDeque;

use kv_proto::watch as pb;

use super::model::ClusterModel;
use crate::replay::timeline::Timeline;

/// Records kept for a rewind: about a minute of a busy 3-node cluster's heartbeats and
/// ticks, or some seconds under a heavy write load.
pub const MAX_RECORDS: usize = 200_000;

/// See the module doc.
#[derive(Default)]
pub struct Buffer {
    /// The model before `records[0]`.
    base: ClusterModel,
    records: VecDeque<pb::WatchRecord>,
}

impl Buffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `r`; the oldest record, past the bound, goes into the base model.
    pub fn push(&mut self, r: pb::WatchRecord) {
        self.records.push_back(r);
        while self.records.len() > MAX_RECORDS {
            if let Some(old) = self.records.pop_front() {
                self.base.apply(&old);
            }
        }
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A timeline over what is kept, at its end (the present).
    pub fn timeline(&self) -> Timeline {
        let mut t =
            Timeline::starting_from(self.base.clone(), self.records.iter().cloned().collect());
        t.seek(t.len());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_proto::watch::watch_record::Kind;

    #[test]
    fn a_rewind_at_its_end_is_the_live_model() {
        let mut live = ClusterModel::new();
        let mut buffer = Buffer::new();
        for i in 0..(MAX_RECORDS as u64 + 500) {
            let r = pb::WatchRecord {
                t_us: 1_000 + i,
                seq: i,
                node: 1 + i % 3,
                kind: Some(Kind::Entry(pb::LogEntry {
                    index: 1 + i / 3,
                    term: 2,
                    kind: "cmd".into(),
                    summary: format!("PUT k = v{i}"),
                })),
            };
            live.apply(&r);
            buffer.push(r);
        }
        assert_eq!(buffer.len(), MAX_RECORDS);
        let t = buffer.timeline();
        for id in 1..=3 {
            assert_eq!(
                t.model().node(id).map(|n| &n.log),
                live.node(id).map(|n| &n.log),
                "node {id}'s log"
            );
        }
    }
}
