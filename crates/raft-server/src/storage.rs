//! Durable Raft storage on raft-engine: the log, hard state and conf state of one node.
//!
//! Owns the data dir. One engine per node holds everything under a single Raft group;
//! [`EngineStorage::persist`] writes a Ready's entries and hard state as one synced batch
//! (group commit), and raft-engine's memtable drops a conflicting suffix when an append
//! starts inside it. A marker file names the node and cluster the dir belongs to, so a
//! node never starts on another node's data. Implements [`raft::Storage`] for `RawNode`.
//!
//! Log compaction and snapshots are not done yet: the log is kept whole, so
//! [`raft::Storage::snapshot`] is never needed (raft-rs only asks for one when a follower
//! needs entries before `first_index`, which stays 1).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState};
use raft_engine::{Config as EngineConfig, Engine, LogBatch, MessageExt};

/// All of a node's data lives in this one raft-engine group.
const GROUP: u64 = 1;
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
/// Names the node and cluster a data dir belongs to.
const MARKER_FILE: &str = "raft-playground.id";

/// What went wrong opening or writing the data dir.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data dir cannot be created, listed or read.
    #[error("cannot use data dir {path}: {source}; check that it is a directory you can write")]
    Dir {
        /// The data dir.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The dir holds files but no marker: it is not a raft-playground data dir.
    #[error(
        "{0} is not empty and is not a raft-playground data dir (no {MARKER_FILE}); \
         pass an empty or new --data-dir"
    )]
    Foreign(PathBuf),
    /// The marker names another node.
    #[error("data dir {path} belongs to node {found}, not node {expected}; use --id {found} or another --data-dir")]
    OtherNode {
        /// The data dir.
        path: PathBuf,
        /// The node this process was started as.
        expected: u64,
        /// The node the dir belongs to.
        found: u64,
    },
    /// The marker file cannot be parsed.
    #[error("{0} is damaged; move the data dir away to start this node afresh")]
    BadMarker(PathBuf),
    /// raft-engine failed.
    #[error("raft-engine: {0}")]
    Engine(#[from] raft_engine::Error),
}

/// What the data dir held when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// True when the dir was new and has been initialised from `--peers`.
    pub fresh: bool,
    /// The cluster id recorded in the marker (the one from `--peers` when fresh).
    pub cluster_id: u64,
    /// Last log index on disk.
    pub last_index: u64,
    /// Hard state on disk.
    pub term: u64,
    /// Commit index recorded in the hard state.
    pub commit: u64,
}

/// Tells raft-engine how to find the index of a raft-rs entry.
#[derive(Clone, Copy)]
pub struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(e: &Entry) -> u64 {
        e.index
    }
}

#[derive(Default)]
struct Meta {
    hard_state: HardState,
    conf_state: ConfState,
    /// Set when the commit index moved on without a hard state from a Ready; written with
    /// the next batch (a stale commit on disk is safe: Raft learns it again).
    commit_dirty: bool,
}

/// raft-engine backed [`raft::Storage`]. Clones share the engine and the cached state.
#[derive(Clone)]
pub struct EngineStorage {
    engine: Arc<Engine>,
    meta: Arc<RwLock<Meta>>,
}

impl EngineStorage {
    /// Opens (or creates) the data dir of node `node_id`. A new dir gets `voters` as its
    /// conf state and `cluster_id` in its marker; an existing one keeps what it has.
    pub fn open(
        dir: &Path,
        node_id: u64,
        cluster_id: u64,
        voters: &[u64],
    ) -> Result<(Self, Recovered), StorageError> {
        let dir_err = |source| StorageError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(dir_err)?;
        let marker = dir.join(MARKER_FILE);
        let (fresh, cluster_id) = match fs::read_to_string(&marker) {
            Ok(text) => {
                let (found, stored_cluster) =
                    parse_marker(&text).ok_or_else(|| StorageError::BadMarker(marker.clone()))?;
                if found != node_id {
                    return Err(StorageError::OtherNode {
                        path: dir.to_path_buf(),
                        expected: node_id,
                        found,
                    });
                }
                (false, stored_cluster)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut listing = fs::read_dir(dir).map_err(dir_err)?;
                if listing.next().is_some() {
                    return Err(StorageError::Foreign(dir.to_path_buf()));
                }
                write_marker(&marker, node_id, cluster_id).map_err(dir_err)?;
                (true, cluster_id)
            }
            Err(e) => return Err(dir_err(e)),
        };

        let cfg = EngineConfig {
            dir: dir.join("raft-engine").to_string_lossy().into_owned(),
            ..EngineConfig::default()
        };
        let engine = Arc::new(Engine::open(cfg)?);
        let mut meta = Meta {
            hard_state: engine
                .get_message::<HardState>(GROUP, KEY_HARD_STATE)?
                .unwrap_or_default(),
            conf_state: engine
                .get_message::<ConfState>(GROUP, KEY_CONF_STATE)?
                .unwrap_or_default(),
            commit_dirty: false,
        };
        if meta.conf_state.voters.is_empty() {
            // First start: the cluster's membership comes from --peers. Written before any
            // vote or entry, so a restart always finds it.
            meta.conf_state.voters = voters.to_vec();
            let mut batch = LogBatch::default();
            batch.put_message(GROUP, KEY_CONF_STATE.to_vec(), &meta.conf_state)?;
            engine.write(&mut batch, true)?;
        }
        let recovered = Recovered {
            fresh,
            cluster_id,
            last_index: engine.last_index(GROUP).unwrap_or(0),
            term: meta.hard_state.term,
            commit: meta.hard_state.commit,
        };
        let storage = Self {
            engine,
            meta: Arc::new(RwLock::new(meta)),
        };
        Ok((storage, recovered))
    }

    /// Appends `entries` (replacing any conflicting suffix) and records `hard_state`, in one
    /// synced write. Returns once the data is on disk.
    pub fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), StorageError> {
        let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut batch = LogBatch::default();
        if !entries.is_empty() {
            batch.add_entries::<EntryExt>(GROUP, entries)?;
        }
        if let Some(hs) = hard_state {
            meta.hard_state = hs.clone();
        }
        if hard_state.is_some() || meta.commit_dirty {
            batch.put_message(GROUP, KEY_HARD_STATE.to_vec(), &meta.hard_state)?;
            meta.commit_dirty = false;
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.engine.write(&mut batch, true)?;
        Ok(())
    }

    /// Records a commit index learned from a light ready; it reaches disk with the next batch.
    pub fn set_commit(&self, commit: u64) {
        let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        if commit > meta.hard_state.commit {
            meta.hard_state.commit = commit;
            meta.commit_dirty = true;
        }
    }

    /// Records a new conf state (after a conf change is applied), synced.
    pub fn set_conf_state(&self, conf_state: &ConfState) -> Result<(), StorageError> {
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, KEY_CONF_STATE.to_vec(), conf_state)?;
        self.engine.write(&mut batch, true)?;
        self.meta
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .conf_state = conf_state.clone();
        Ok(())
    }

    /// Writes any pending commit index; called on shutdown.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.persist(&[], None)
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .hard_state
            .clone()
    }

    /// Entries `[low, high)` clipped to what is on disk, for display. Costs only the
    /// entries asked for.
    pub fn read_entries(&self, low: u64, high: u64) -> Result<Vec<Entry>, StorageError> {
        let (first, last) = (self.first(), self.last());
        let (low, high) = (low.max(first), high.min(last + 1));
        let mut out = Vec::new();
        if low < high {
            self.engine
                .fetch_entries_to::<EntryExt>(GROUP, low, high, None, &mut out)?;
        }
        Ok(out)
    }

    fn first(&self) -> u64 {
        self.engine.first_index(GROUP).unwrap_or(1)
    }

    fn last(&self) -> u64 {
        self.engine.last_index(GROUP).unwrap_or(0)
    }
}

fn engine_err(e: raft_engine::Error) -> raft::Error {
    match e {
        raft_engine::Error::EntryCompacted => raft::Error::Store(raft::StorageError::Compacted),
        raft_engine::Error::EntryNotFound => raft::Error::Store(raft::StorageError::Unavailable),
        other => raft::Error::Store(raft::StorageError::Other(Box::new(other))),
    }
}

impl raft::Storage for EngineStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let meta = self.meta.read().unwrap_or_else(PoisonError::into_inner);
        Ok(RaftState::new(
            meta.hard_state.clone(),
            meta.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        let max = max_size.into().map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        let mut out = Vec::with_capacity((high - low) as usize);
        self.engine
            .fetch_entries_to::<EntryExt>(GROUP, low, high, max, &mut out)
            .map_err(engine_err)?;
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        // Nothing is compacted yet, so index 0 is the only index before the first entry.
        if idx == 0 {
            return Ok(0);
        }
        match self
            .engine
            .get_entry::<EntryExt>(GROUP, idx)
            .map_err(engine_err)?
        {
            Some(e) => Ok(e.term),
            None if idx < self.first() => Err(raft::Error::Store(raft::StorageError::Compacted)),
            None => Err(raft::Error::Store(raft::StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Never reached while the log is never compacted (see the module doc). If it were,
        // "temporarily unavailable" makes raft-rs retry later instead of failing the node.
        Err(raft::Error::Store(
            raft::StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

fn parse_marker(text: &str) -> Option<(u64, u64)> {
    let mut node = None;
    let mut cluster = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("node_id", v)) => node = v.trim().parse().ok(),
            Some(("cluster_id", v)) => cluster = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((node?, cluster?))
}

fn write_marker(path: &Path, node_id: u64, cluster_id: u64) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    writeln!(f, "# raft-playground data dir: do not edit")?;
    writeln!(f, "node_id={node_id}")?;
    writeln!(f, "cluster_id={cluster_id}")?;
    f.sync_all()?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
