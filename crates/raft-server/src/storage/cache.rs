//! The most recent log entries, kept in memory beside raft-engine.
//!
//! raft-rs reads recent entries back all the time: the term of an index on every append
//! and append response, the committed entries it hands out to apply, the entries it sends
//! a follower that fell a little behind. raft-engine answers each of those from its file
//! (a read, a checksum and a decode, and the decompression of the whole batch when it was
//! compressed). The cache answers them from memory. It is bounded in entries and bytes;
//! anything older is read from raft-engine as before. Entries share their data with the
//! caller (`Bytes`), so caching one costs no copy of its payload.

use std::collections::VecDeque;

use protobuf::Message as _;
use raft::eraftpb::Entry;

/// Most entries kept.
const MAX_ENTRIES: usize = 8192;
/// Most bytes of entry data kept.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// A contiguous run of the newest entries on disk.
#[derive(Default)]
pub(super) struct EntryCache {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// What an entry costs in the cache: its payload and a fixed overhead.
fn cost(e: &Entry) -> usize {
    e.data.len() + e.context.len() + std::mem::size_of::<Entry>()
}

impl EntryCache {
    fn first(&self) -> Option<u64> {
        self.entries.front().map(|e| e.index)
    }

    fn last(&self) -> Option<u64> {
        self.entries.back().map(|e| e.index)
    }

    /// Entries just written (contiguous, ascending). Those that start inside the cache
    /// replace its suffix from there, as raft-engine does on disk.
    pub fn append(&mut self, new: &[Entry]) {
        let Some(start) = new.first().map(|e| e.index) else {
            return;
        };
        match (self.first(), self.last()) {
            (Some(first), Some(last)) if start > first && start <= last + 1 => {
                while self.last().is_some_and(|l| l >= start) {
                    if let Some(e) = self.entries.pop_back() {
                        self.bytes -= cost(&e);
                    }
                }
            }
            // Replacing everything, or after a gap: the cache starts again here.
            _ => self.clear(),
        }
        for e in new {
            self.bytes += cost(e);
            self.entries.push_back(e.clone());
        }
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= cost(&e),
                None => break,
            }
        }
    }

    /// The log was compacted up to `index`: entries up to it go.
    pub fn compact_to(&mut self, index: u64) {
        while self.first().is_some_and(|f| f <= index) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= cost(&e);
            }
        }
    }

    /// Forgets everything (a snapshot replaced the log).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.first()?;
        let offset = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(offset)
    }

    /// The term of the entry at `index`, if it is cached.
    pub fn term(&self, index: u64) -> Option<u64> {
        self.get(index).map(|e| e.term)
    }

    /// Entries `[low, high)` if all of them are cached: as many as fit in `max_size` bytes
    /// (encoded), and at least one, like `raft::Storage::entries`.
    pub fn entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Option<Vec<Entry>> {
        if low >= high || low < self.first()? || high - 1 > self.last()? {
            return None;
        }
        let first = self.first()?;
        let from = usize::try_from(low - first).ok()?;
        let to = usize::try_from(high - first).ok()?;
        let mut out = Vec::with_capacity(to - from);
        let mut size = 0u64;
        for e in self.entries.range(from..to) {
            size += u64::from(e.compute_size());
            if !out.is_empty() && max_size.is_some_and(|max| size > max) {
                break;
            }
            out.push(e.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![0; 10].into(),
            ..Entry::default()
        }
    }

    fn run(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|i| entry(i, term)).collect()
    }

    #[test]
    fn keeps_recent_entries_and_follows_overwrites_and_compaction() {
        let mut c = EntryCache::default();
        c.append(&run(1..=10, 1));
        assert_eq!(c.term(10), Some(1));
        assert_eq!(c.term(11), None);
        // A new leader's entries from 6 on replace 6..=10.
        c.append(&run(6..=7, 2));
        assert_eq!(
            (c.term(5), c.term(6), c.term(7), c.term(8)),
            (Some(1), Some(2), Some(2), None)
        );
        // A gap (a snapshot was installed elsewhere) starts the cache again.
        c.append(&run(20..=21, 3));
        assert_eq!((c.term(7), c.term(20)), (None, Some(3)));
        c.append(&run(22..=30, 3));
        c.compact_to(25);
        assert_eq!((c.term(25), c.term(26)), (None, Some(3)));
        let got = c.entries(26, 31, None).expect("cached");
        assert_eq!(
            got.iter().map(|e| e.index).collect::<Vec<_>>(),
            [26, 27, 28, 29, 30]
        );
        assert!(c.entries(24, 27, None).is_none(), "partly compacted");
        assert!(c.entries(29, 32, None).is_none(), "partly beyond the end");
        // max_size: at least one entry, then what fits.
        assert_eq!(c.entries(26, 31, Some(0)).expect("cached").len(), 1);
        let one = u64::from(entry(26, 3).compute_size());
        assert_eq!(c.entries(26, 31, Some(2 * one)).expect("cached").len(), 2);
        c.clear();
        assert_eq!((c.bytes(), c.term(30)), (0, None));
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut c = EntryCache::default();
        let mut end = 0;
        for start in (1..=3 * MAX_ENTRIES as u64).step_by(100) {
            end = start + 99;
            c.append(&run(start..=end, 1));
        }
        assert!(c.entries.len() <= MAX_ENTRIES);
        assert_eq!(c.last(), Some(end));
        assert_eq!(c.bytes(), c.entries.iter().map(cost).sum::<usize>());
    }
}
