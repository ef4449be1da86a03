//! Durable Raft storage on raft-engine: the log, hard state and conf state of one node.
//!
//! Owns the data dir. One engine per node holds everything under a single Raft group;
//! [`EngineStorage::persist`] writes a Ready's entries and hard state as one synced batch
//! (group commit), and raft-engine's memtable drops a conflicting suffix when an append
//! starts inside it. A marker file names the node and cluster the dir belongs to, so a
//! node never starts on another node's data. Implements [`raft::Storage`] for `RawNode`.
//!
//! Snapshots: a snapshot's data (the whole state machine, possibly hundreds of MiB) lives in
//! a file of its own under `snap/`, written and fsynced before anything refers to it
//! ([`EngineStorage::write_snapshot_file`], callable from any thread); raft-engine holds
//! only its metadata. raft-engine keeps every key-value it stores in memory and rewrites it
//! when it purges, so the data itself does not belong there.
//!
//! Compaction: [`EngineStorage::record_snapshot`] records a snapshot whose file is on disk
//! and drops the log up to a point behind it, remembering that point's index and term (the
//! "truncated state", which answers `term(first_index - 1)`), in one synced write. A
//! follower too far behind gets the snapshot instead of entries: `Storage::snapshot` never
//! reads the file on the caller's (the driver's) thread; a loader thread reads it and raft-rs
//! asks again. [`EngineStorage::apply_snapshot`] installs one from the leader.

mod cache;
mod marker;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use cache::EntryCache;
use marker::{MARKER_FILE, Marker, new_incarnation, parse_marker, write_marker};
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};
use raft_engine::{
    Command as EngineCommand, Config as EngineConfig, Engine, LogBatch, MessageExt, ReadableSize,
};

/// All of a node's data lives in this one raft-engine group.
const GROUP: u64 = 1;
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
/// A whole snapshot, data included: how data dirs made before snapshot files kept it
/// (moved to a file when such a dir is opened).
const KEY_SNAPSHOT: &[u8] = b"snapshot";
/// The latest snapshot's metadata (a `Snapshot` without data); the data is in its file.
const KEY_SNAPSHOT_META: &[u8] = b"snapshot_meta";
/// Where snapshot files live, inside the data dir.
const SNAP_DIR: &str = "snap";
/// Index and term of the last entry compacted away (16 bytes, big-endian).
const KEY_TRUNCATED: &[u8] = b"truncated";

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
    #[error(
        "data dir {path} belongs to node {found}, not node {expected}; use --id {found} or another --data-dir"
    )]
    OtherNode {
        /// The data dir.
        path: PathBuf,
        /// The node this process was started as.
        expected: u64,
        /// The node the dir belongs to.
        found: u64,
    },
    /// The stored truncated state is damaged.
    #[error("the stored log truncation point is damaged; move the data dir away to start afresh")]
    BadTruncatedState,
    /// The marker file cannot be parsed.
    #[error("{0} is damaged; move the data dir away to start this node afresh")]
    BadMarker(PathBuf),
    /// The file system holding the data dir is full. Named apart from other raft-engine
    /// errors because raft-engine reports it as "IO Error: nospace" or "TryAgain", which
    /// says little to someone who has to make room.
    #[error("no space left on device in {0}")]
    NoSpace(PathBuf),
    /// Another process holds the data dir's lock. Named apart because raft-engine says it
    /// with an internal source path and its own wording; the second field says by whom.
    #[error(
        "data dir {0} is in use by another process ({1}); stop that one first, or give this \
         node another --data-dir"
    )]
    InUse(PathBuf, String),
    /// A snapshot file cannot be written or read.
    #[error("snapshot file {path}: {source}")]
    SnapshotFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// raft-engine failed.
    #[error("raft-engine: {0}")]
    Engine(#[from] raft_engine::Error),
}

impl StorageError {
    /// Classifies an error of raft-engine working in `dir`: a full disk becomes
    /// [`StorageError::NoSpace`], whatever raft-engine wrapped it in.
    fn engine(dir: &Path, e: raft_engine::Error) -> Self {
        if is_no_space(&e) {
            Self::NoSpace(dir.to_path_buf())
        } else if matches!(&e, raft_engine::Error::Other(_))
            && e.to_string().contains("Failed to lock file")
        {
            // raft-engine's only way of saying its LOCK file is held (flock) elsewhere.
            Self::InUse(dir.to_path_buf(), marker::holder(dir))
        } else {
            Self::Engine(e)
        }
    }
}

/// True when `e`, or anything in its source chain, says the disk is full. raft-engine hands
/// ENOSPC on as `Io` (kind `StorageFull`, message "nospace"), as `TryAgain` with that message
/// in its text (after rotating to a new file failed to help), or inside `Other`.
fn is_no_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC))
        {
            return true;
        }
        if let Some(raft_engine::Error::TryAgain(text)) = err.downcast_ref::<raft_engine::Error>()
            && text.contains("nospace")
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// Linux's errno for "no space left on device" (kept here rather than pulling in libc for
/// one constant; `StorageFull` covers the platforms where the number differs).
const ENOSPC: i32 = 28;

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
    /// Index of the latest snapshot (0: none).
    pub snapshot_index: u64,
    /// The data dir's incarnation (see the marker).
    pub incarnation: u64,
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
    /// Index and term of the last entry compacted away ((0, 0): none).
    truncated: (u64, u64),
    /// The stored snapshot's metadata (its data is in its file).
    snapshot: Option<SnapshotMetadata>,
}

/// The latest snapshot with its data, once a loader thread has read it for raft-rs.
#[derive(Default)]
struct SnapCache {
    /// The snapshot, data included (the data is shared: clones are cheap).
    loaded: Option<Snapshot>,
    /// A loader thread is reading the file.
    loading: bool,
}

/// raft-engine backed [`raft::Storage`]. Clones share the engine and the cached state.
#[derive(Clone)]
pub struct EngineStorage {
    engine: Arc<Engine>,
    meta: Arc<RwLock<Meta>>,
    /// The data dir, named in errors.
    dir: Arc<Path>,
    /// Failures injected by tests (see [`EngineStorage::fail_writes`]).
    faults: Arc<Faults>,
    /// Set when raft-rs asked for a snapshot the stored one cannot serve (it predates the
    /// receiver's membership): the driver takes a fresh one.
    snapshot_wanted: Arc<std::sync::atomic::AtomicBool>,
    /// The latest snapshot's data, read on demand for followers that need it.
    snap_cache: Arc<Mutex<SnapCache>>,
    /// The newest entries on disk, so raft-rs's reads of them cost no file read.
    entry_cache: Arc<Mutex<EntryCache>>,
    /// This data dir's incarnation (see the marker).
    incarnation: u64,
    /// The oldest snapshot each member may be sent, by id: the index of the change that
    /// (last) added it. An older snapshot may list the same id, as it was before a removal.
    snapshot_floors: Arc<RwLock<BTreeMap<u64, u64>>>,
}

/// OS errors that reads or writes fail with on demand (0: none).
#[derive(Default)]
struct Faults {
    write: AtomicI32,
    read: AtomicI32,
}

/// The injected failure in `slot`, if any.
fn injected(slot: &AtomicI32) -> Option<std::io::Error> {
    match slot.load(Ordering::Relaxed) {
        0 => None,
        errno => Some(std::io::Error::from_raw_os_error(errno)),
    }
}

impl EngineStorage {
    /// Opens (or creates) the data dir of node `node_id`. A new dir gets `voters` as its
    /// conf state (none for a node that joins an existing cluster) and `cluster_id` in its
    /// marker (0: not known yet, see [`EngineStorage::adopt_cluster_id`]); an existing one
    /// keeps what it has. The conf state [`raft::Storage::initial_state`] returns is the
    /// latest snapshot's when there is one: see `open`'s comment.
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
        let (fresh, found) = match fs::read_to_string(&marker) {
            Ok(text) => {
                let mut found =
                    parse_marker(&text).ok_or_else(|| StorageError::BadMarker(marker.clone()))?;
                if found.node_id != node_id {
                    return Err(StorageError::OtherNode {
                        path: dir.to_path_buf(),
                        expected: node_id,
                        found: found.node_id,
                    });
                }
                if found.incarnation == 0 {
                    // Made before incarnations: it gets one now, once.
                    found.incarnation = new_incarnation();
                    write_marker(&marker, &found).map_err(dir_err)?;
                }
                (false, found)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Empty, or holding only a marker that a crash left half-written.
                let leftover = marker.with_extension("id.tmp");
                for item in fs::read_dir(dir).map_err(dir_err)? {
                    if item.map_err(dir_err)?.path() != leftover {
                        return Err(StorageError::Foreign(dir.to_path_buf()));
                    }
                }
                let made = Marker {
                    node_id,
                    cluster_id,
                    incarnation: new_incarnation(),
                };
                write_marker(&marker, &made).map_err(dir_err)?;
                (true, made)
            }
            Err(e) => return Err(dir_err(e)),
        };
        let (cluster_id, incarnation) = (found.cluster_id, found.incarnation);

        let cfg = EngineConfig {
            dir: dir.join("raft-engine").to_string_lossy().into_owned(),
            // raft-engine only purges once its log passes `purge_threshold` (10 GiB by
            // default); a playground node should give back compacted space long before.
            target_file_size: ReadableSize::mb(16),
            purge_threshold: ReadableSize::mb(64),
            ..EngineConfig::default()
        };
        let engine_err = |e| StorageError::engine(dir, e);
        let engine = Arc::new(Engine::open(cfg).map_err(engine_err)?);
        marker::note_holder(dir);
        let snap_dir = dir.join(SNAP_DIR);
        if !snap_dir.is_dir() {
            // Made durable before any snapshot recorded in the log can point into it.
            fs::create_dir_all(&snap_dir).map_err(dir_err)?;
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(dir_err)?;
        }
        let snapshot = match engine.get_message::<Snapshot>(GROUP, KEY_SNAPSHOT_META)? {
            Some(snap) => Some(snap),
            None => match engine.get_message::<Snapshot>(GROUP, KEY_SNAPSHOT)? {
                Some(whole) => Some(move_snapshot_to_file(&engine, dir, whole)?),
                None => None,
            },
        };
        // Left by a crash: a file being written, or one written but never recorded.
        remove_snapshot_files(&snap_dir, |name| {
            name.ends_with(".tmp")
                || snapshot
                    .as_ref()
                    .is_none_or(|s| name != snap_file_name(s.get_metadata()))
        });
        let mut meta = Meta {
            hard_state: engine
                .get_message::<HardState>(GROUP, KEY_HARD_STATE)?
                .unwrap_or_default(),
            // raft-rs starts from the configuration as of the index it is told is applied:
            // the snapshot's. The conf changes applied after it are in the log and are
            // applied again as the state machine is rebuilt.
            conf_state: match &snapshot {
                Some(snap) => snap.get_metadata().get_conf_state().clone(),
                None => engine
                    .get_message::<ConfState>(GROUP, KEY_CONF_STATE)?
                    .unwrap_or_default(),
            },
            commit_dirty: false,
            truncated: match engine.get(GROUP, KEY_TRUNCATED) {
                None => (0, 0),
                Some(bytes) => decode_truncated(&bytes).ok_or(StorageError::BadTruncatedState)?,
            },
            snapshot: snapshot.as_ref().map(|s| s.get_metadata().clone()),
        };
        if meta.conf_state.voters.is_empty() && !voters.is_empty() {
            // First start: the cluster's membership comes from --peers. Written before any
            // vote or entry, so a restart always finds it.
            meta.conf_state.voters = voters.to_vec();
            let mut batch = LogBatch::default();
            batch.put_message(GROUP, KEY_CONF_STATE.to_vec(), &meta.conf_state)?;
            engine.write(&mut batch, true).map_err(engine_err)?;
        }
        let recovered = Recovered {
            fresh,
            cluster_id,
            last_index: engine.last_index(GROUP).unwrap_or(meta.truncated.0),
            term: meta.hard_state.term,
            commit: meta.hard_state.commit,
            snapshot_index: meta.snapshot.as_ref().map_or(0, |s| s.index),
            incarnation,
        };
        let storage = Self {
            engine,
            meta: Arc::new(RwLock::new(meta)),
            dir: Arc::from(dir),
            faults: Arc::default(),
            snapshot_wanted: Arc::default(),
            snap_cache: Arc::default(),
            entry_cache: Arc::default(),
            incarnation,
            snapshot_floors: Arc::default(),
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
        self.write(&mut batch)?;
        self.entries_cache().append(entries);
        Ok(())
    }

    fn entries_cache(&self) -> std::sync::MutexGuard<'_, EntryCache> {
        self.entry_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every later write fail with OS error `errno` (28, ENOSPC, is what a full disk
    /// does), or succeed again with `None`. Lets tests reach the failure paths of a running
    /// node; the error goes through the same handling as one from raft-engine.
    pub fn fail_writes(&self, errno: Option<i32>) {
        self.faults
            .write
            .store(errno.unwrap_or(0), Ordering::Relaxed);
    }

    /// Makes every later read of the log by raft-rs fail with OS error `errno` (5, EIO, is
    /// what a failing disk does), or succeed again with `None`. For tests, like
    /// [`EngineStorage::fail_writes`].
    pub fn fail_reads(&self, errno: Option<i32>) {
        self.faults
            .read
            .store(errno.unwrap_or(0), Ordering::Relaxed);
    }

    /// One synced write to raft-engine.
    fn write(&self, batch: &mut LogBatch) -> Result<(), StorageError> {
        let result = match injected(&self.faults.write) {
            Some(e) => Err(raft_engine::Error::Io(e)),
            None => self.engine.write(batch, true).map(drop),
        };
        result.map_err(|e| StorageError::engine(&self.dir, e))
    }

    /// The injected read failure, as raft-rs sees a failed read.
    fn read_fault(&self) -> raft::Result<()> {
        match injected(&self.faults.read) {
            Some(e) => Err(raft::Error::Store(raft::StorageError::Other(Box::new(e)))),
            None => Ok(()),
        }
    }

    /// Records a commit index learned from a light ready; it reaches disk with the next batch.
    pub fn set_commit(&self, commit: u64) {
        let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        if commit > meta.hard_state.commit {
            meta.hard_state.commit = commit;
            meta.commit_dirty = true;
        }
    }

    /// Records the cluster id of a node that joined without one (`--join`): learned from the
    /// first batch its new peers sent. Written atomically to the marker.
    pub fn adopt_cluster_id(&self, node_id: u64, cluster_id: u64) -> Result<(), StorageError> {
        let marker = self.dir.join(MARKER_FILE);
        let m = Marker {
            node_id,
            cluster_id,
            incarnation: self.incarnation,
        };
        write_marker(&marker, &m).map_err(|source| StorageError::Dir {
            path: self.dir.to_path_buf(),
            source,
        })
    }

    /// Writes the data of the snapshot at `index` and `term` to its file: `write` fills it,
    /// then it is fsynced and renamed into place (a crash leaves no half file under the
    /// final name). Callable from any thread; the snapshot counts only once
    /// [`EngineStorage::record_snapshot`] records it. Returns the file's size.
    pub fn write_snapshot_file(
        &self,
        index: u64,
        term: u64,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<u64, StorageError> {
        let md = SnapshotMetadata {
            index,
            term,
            ..SnapshotMetadata::default()
        };
        let path = self.dir.join(SNAP_DIR).join(snap_file_name(&md));
        write_file_durably(&path, write).map_err(|source| {
            if source.kind() == std::io::ErrorKind::StorageFull
                || source.raw_os_error() == Some(ENOSPC)
            {
                StorageError::NoSpace(self.dir.to_path_buf())
            } else {
                StorageError::SnapshotFile { path, source }
            }
        })
    }

    /// Writes `snapshot`'s file and records it: [`EngineStorage::write_snapshot_file`] then
    /// [`EngineStorage::record_snapshot`], on the caller's thread.
    pub fn save_snapshot(&self, snapshot: &Snapshot, compact_to: u64) -> Result<(), StorageError> {
        let md = snapshot.get_metadata();
        self.write_snapshot_file(md.index, md.term, |w| w.write_all(snapshot.get_data()))?;
        self.record_snapshot(md, compact_to)
    }

    /// Records the snapshot described by `md`, whose file
    /// [`EngineStorage::write_snapshot_file`] wrote (taken from this node's own state
    /// machine at an applied, hence committed and persisted, index), and drops the log up
    /// to `compact_to`, which must be at most the snapshot's index. One synced write. Older
    /// snapshot files go with the next [`EngineStorage::purge`].
    pub fn record_snapshot(
        &self,
        md: &SnapshotMetadata,
        compact_to: u64,
    ) -> Result<(), StorageError> {
        let index = md.index;
        let compact_to = compact_to.min(index);
        let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, KEY_SNAPSHOT_META.to_vec(), &meta_only(md))?;
        batch.delete(GROUP, KEY_SNAPSHOT.to_vec());
        // A restart restores the state machine to the snapshot's index and tells raft-rs it
        // is applied; the commit on disk must not be behind it.
        if meta.hard_state.commit < index {
            meta.hard_state.commit = index;
        }
        batch.put_message(GROUP, KEY_HARD_STATE.to_vec(), &meta.hard_state)?;
        let mut truncated = meta.truncated;
        if compact_to > meta.truncated.0 {
            let term = self
                .engine
                .get_entry::<EntryExt>(GROUP, compact_to)?
                .map(|e| e.term);
            if let Some(term) = term {
                truncated = (compact_to, term);
                batch.put(GROUP, KEY_TRUNCATED.to_vec(), encode_truncated(truncated))?;
                batch.add_command(
                    GROUP,
                    EngineCommand::Compact {
                        index: compact_to + 1,
                    },
                );
            }
        }
        self.write(&mut batch)?;
        self.entries_cache().compact_to(truncated.0);
        meta.truncated = truncated;
        meta.snapshot = Some(md.clone());
        meta.commit_dirty = false;
        drop(meta);
        // After the metadata: a loader that finishes later sees the new index and keeps
        // nothing of the old snapshot.
        self.evict_snapshot_data();
        Ok(())
    }

    /// Installs a snapshot received from the leader, with the Ready's hard state (if any):
    /// it replaces the whole log and the membership. Its file first, then one synced write.
    pub fn apply_snapshot(
        &self,
        snapshot: &Snapshot,
        hard_state: Option<&HardState>,
    ) -> Result<(), StorageError> {
        let md = snapshot.get_metadata();
        self.write_snapshot_file(md.index, md.term, |w| w.write_all(snapshot.get_data()))?;
        let mut meta = self.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, KEY_SNAPSHOT_META.to_vec(), &meta_only(md))?;
        batch.delete(GROUP, KEY_SNAPSHOT.to_vec());
        batch.put_message(GROUP, KEY_CONF_STATE.to_vec(), md.get_conf_state())?;
        let truncated = (md.index, md.term);
        batch.put(GROUP, KEY_TRUNCATED.to_vec(), encode_truncated(truncated))?;
        // Every entry goes, including any after the snapshot: the log now starts after it.
        let last = self.engine.last_index(GROUP).unwrap_or(0);
        batch.add_command(
            GROUP,
            EngineCommand::Compact {
                index: last.max(md.index) + 1,
            },
        );
        if let Some(hs) = hard_state {
            meta.hard_state = hs.clone();
        }
        // The log now ends at the snapshot, so on disk the commit does too. The Ready's
        // own commit may be past it, counting entries that follow the snapshot in the same
        // Ready: `persist` writes those with that hard state right after this. Written
        // here, a crash between the two writes would leave a commit beyond the last
        // index, which raft-rs refuses on every start.
        meta.hard_state.commit = md.index;
        batch.put_message(GROUP, KEY_HARD_STATE.to_vec(), &meta.hard_state)?;
        self.write(&mut batch)?;
        self.entries_cache().clear();
        meta.conf_state = md.get_conf_state().clone();
        meta.truncated = truncated;
        meta.snapshot = Some(md.clone());
        meta.commit_dirty = false;
        drop(meta);
        self.evict_snapshot_data();
        Ok(())
    }

    /// The stored snapshot with its data, read from its file (on start).
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, StorageError> {
        let Some(md) = self.snapshot_metadata() else {
            return Ok(None);
        };
        let path = self.dir.join(SNAP_DIR).join(snap_file_name(&md));
        let data = fs::read(&path).map_err(|source| StorageError::SnapshotFile { path, source })?;
        let mut snap = Snapshot::default();
        snap.set_metadata(md);
        snap.set_data(data.into());
        Ok(Some(snap))
    }

    /// The stored snapshot's metadata, if there is one.
    pub fn snapshot_metadata(&self) -> Option<SnapshotMetadata> {
        self.meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot
            .clone()
    }

    /// Forgets the snapshot data read for followers (it is read again when needed): called
    /// once no follower waits for a snapshot, so that memory holds one copy of the state.
    pub fn evict_snapshot_data(&self) {
        self.snap_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .loaded = None;
    }

    /// Bytes of snapshot data held in memory for followers (0 when none is loaded).
    pub fn snapshot_data_in_memory(&self) -> u64 {
        self.snap_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .loaded
            .as_ref()
            .map_or(0, |s| s.get_data().len() as u64)
    }

    /// Bytes this storage holds in memory: cached entries and snapshot data read for
    /// followers.
    pub fn memory_bytes(&self) -> u64 {
        self.snapshot_data_in_memory() + self.entries_cache().bytes() as u64
    }

    /// Reads the stored snapshot's file on a thread of its own, for `Storage::snapshot`.
    fn load_snapshot_in_background(&self, md: SnapshotMetadata) {
        {
            let mut cache = self
                .snap_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if cache.loading {
                return;
            }
            cache.loading = true;
        }
        let storage = self.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot-load".to_string())
            .spawn(move || {
                let path = storage.dir.join(SNAP_DIR).join(snap_file_name(&md));
                let read = fs::read(&path);
                let mut cache = storage
                    .snap_cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                cache.loading = false;
                match read {
                    // Kept only if it is still the latest (a newer one may have been
                    // recorded meanwhile; its file is read on the next ask).
                    Ok(data) if storage.snapshot_index() == md.index => {
                        let mut snap = Snapshot::default();
                        snap.set_metadata(md);
                        snap.set_data(data.into());
                        cache.loaded = Some(snap);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot read snapshot file {}: {e}", path.display()),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread to read the snapshot: {e}");
            self.snap_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .loading = false;
        }
    }

    /// True (once) when raft-rs asked for a snapshot the stored one could not serve.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// This data dir's incarnation (made with it, never changed).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The oldest snapshot index each member may be sent (see `snapshot_floors`); the
    /// driver sets it whenever the membership changes.
    pub fn set_snapshot_floors(&self, floors: BTreeMap<u64, u64>) {
        *self
            .snapshot_floors
            .write()
            .unwrap_or_else(PoisonError::into_inner) = floors;
    }

    /// Index of the stored snapshot (0: none).
    pub fn snapshot_index(&self) -> u64 {
        self.meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot
            .as_ref()
            .map_or(0, |s| s.index)
    }

    /// Bytes the data dir takes on disk: raft-engine's files and the snapshot files. Lists
    /// a few dozen files: for views and the `Status` RPC, not for the driver's loop.
    pub fn disk_bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }

    /// Reclaims the disk space of compacted entries (raft-engine rewrites or deletes old
    /// files). Safe to call from any thread.
    pub fn purge(&self) {
        if let Err(e) = self.engine.purge_expired_files() {
            tracing::warn!("raft-engine purge failed: {e}");
        }
        // Snapshot files older than the recorded one. Newer ones are left alone: one may
        // be a snapshot being written right now, not recorded yet.
        let current = self.snapshot_index();
        remove_snapshot_files(&self.dir.join(SNAP_DIR), |name| {
            snap_file_index(name).is_some_and(|index| index < current)
        });
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

    /// The last index on disk (the truncation point when the log is empty).
    pub fn last_index_stored(&self) -> u64 {
        self.last()
    }

    fn truncated(&self) -> (u64, u64) {
        self.meta
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .truncated
    }

    fn first(&self) -> u64 {
        let after_truncation = self.truncated().0 + 1;
        self.engine
            .first_index(GROUP)
            .map_or(after_truncation, |f| f.max(after_truncation))
    }

    fn last(&self) -> u64 {
        self.engine
            .last_index(GROUP)
            .unwrap_or_else(|| self.truncated().0)
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
        self.read_fault()?;
        if low < self.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        let max_size = max_size.into();
        if let Some(cached) = self.entries_cache().entries(low, high, max_size) {
            return Ok(cached);
        }
        let max = max_size.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        // No capacity hint: `max_size` may cut the range to a fraction of it.
        let mut out = Vec::new();
        self.engine
            .fetch_entries_to::<EntryExt>(GROUP, low, high, max, &mut out)
            .map_err(engine_err)?;
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.read_fault()?;
        // The last compacted entry's term is kept (for index 0 it is 0): raft-rs matches
        // the entry before the first one against it.
        let (t_index, t_term) = self.truncated();
        if idx == t_index {
            return Ok(t_term);
        }
        if idx < t_index {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if let Some(term) = self.entries_cache().term(idx) {
            return Ok(term);
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

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // The latest snapshot is always at least as new as the compacted log, so it is what
        // a follower that needs compacted entries gets, unless it predates the receiver's
        // membership (a node just added): raft-rs on the receiver ignores a snapshot whose
        // configuration does not include it. Then a fresh one is asked of the driver.
        // A snapshot from before the change that (last) added the receiver is not enough
        // either, even when it lists the id: that is the id before an earlier removal, and
        // the receiver would replay its own removal from the log after it.
        // "Temporarily unavailable" makes raft-rs ask again later (at the next heartbeat
        // response): also how the data is read without blocking this (the driver's) thread.
        let unavailable = || {
            Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ))
        };
        let Some(md) = self.snapshot_metadata() else {
            return unavailable();
        };
        if md.index < request_index {
            return unavailable();
        }
        let floor = self
            .snapshot_floors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&to)
            .copied()
            .unwrap_or(0);
        let cs = md.get_conf_state();
        let member = md.index >= floor
            && [
                &cs.voters,
                &cs.learners,
                &cs.voters_outgoing,
                &cs.learners_next,
            ]
            .iter()
            .any(|ids| ids.contains(&to));
        if !member {
            self.snapshot_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return unavailable();
        }
        let loaded = self
            .snap_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .loaded
            .clone();
        match loaded {
            // The data is shared with the cache: this clone costs no copy of it.
            Some(snap) if snap.get_metadata().index == md.index => Ok(snap),
            _ => {
                self.load_snapshot_in_background(md);
                unavailable()
            }
        }
    }
}

/// `snapshot-<index>-<term>.bin`, zero-padded so names sort by index.
fn snap_file_name(md: &SnapshotMetadata) -> String {
    format!("snapshot-{:020}-{:020}.bin", md.index, md.term)
}

/// The index in a snapshot file's name.
fn snap_file_index(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(".bin")?;
    rest.split('-').next()?.parse().ok()
}

/// A snapshot as raft-engine keeps it: the metadata alone.
fn meta_only(md: &SnapshotMetadata) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.set_metadata(md.clone());
    snap
}

/// Removes the files in `dir` whose names `doomed` picks; failures are only logged (a
/// leftover file wastes space, nothing more).
fn remove_snapshot_files(dir: &Path, doomed: impl Fn(&str) -> bool) {
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        // Two purges may meet: a file the other one removed first is gone, as wanted.
        if doomed(&name)
            && let Err(e) = fs::remove_file(item.path())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove old snapshot file {name}: {e}");
        }
    }
}

/// Writes `path` through a temp file: filled by `write`, fsynced, renamed, the dir fsynced.
/// A failed write removes its temp file (a full disk gets its room back; a retry writes
/// under another name).
fn write_file_durably(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let tmp = path.with_extension("tmp");
    let written = write_through(path, &tmp, write);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_through(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let file = SyncingFile {
        file: fs::File::create(tmp)?,
        unsynced: 0,
    };
    let mut out = std::io::BufWriter::with_capacity(1024 * 1024, file);
    write(&mut out)?;
    let file = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .file;
    file.sync_all()?;
    let size = file.metadata()?.len();
    fs::rename(tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(size)
}

/// Flushes a large file to disk a few MiB at a time while it is written. One fsync of
/// hundreds of MiB at the end would hold the disk (and, through the file system's
/// journal, the log's own small fsyncs) for as long as it takes; in steps, a log write
/// waits for a few MiB at most.
struct SyncingFile {
    file: fs::File,
    unsynced: usize,
}

/// Bytes written between two flushes of a [`SyncingFile`].
const SYNC_EVERY: usize = 4 * 1024 * 1024;

impl Write for SyncingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n;
        if self.unsynced >= SYNC_EVERY {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Moves the data of a snapshot stored whole in raft-engine (a data dir from before
/// snapshot files) to its file, and keeps only the metadata in raft-engine.
fn move_snapshot_to_file(
    engine: &Engine,
    dir: &Path,
    whole: Snapshot,
) -> Result<Snapshot, StorageError> {
    let md = whole.get_metadata();
    let path = dir.join(SNAP_DIR).join(snap_file_name(md));
    write_file_durably(&path, |w| w.write_all(whole.get_data()))
        .map_err(|source| StorageError::SnapshotFile { path, source })?;
    let mut batch = LogBatch::default();
    batch.put_message(GROUP, KEY_SNAPSHOT_META.to_vec(), &meta_only(md))?;
    batch.delete(GROUP, KEY_SNAPSHOT.to_vec());
    engine
        .write(&mut batch, true)
        .map_err(|e| StorageError::engine(dir, e))?;
    Ok(meta_only(md))
}

/// Total size of the regular files under `dir`, recursively.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(items) = fs::read_dir(dir) else {
        return 0;
    };
    items
        .flatten()
        .map(|item| match item.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&item.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn encode_truncated((index, term): (u64, u64)) -> Vec<u8> {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend_from_slice(&term.to_be_bytes());
    bytes
}

fn decode_truncated(bytes: &[u8]) -> Option<(u64, u64)> {
    let index = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let term = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((index, term))
}

#[cfg(test)]
mod tests;
