//! Unit tests of the raft-engine storage: appends, overwrites, hard state, reopen,
//! snapshots and compaction, and the data-dir checks.

use protobuf::Message as _;
use raft::Storage as _;

use super::*;

const NODE: u64 = 1;
const CLUSTER: u64 = 42;
const VOTERS: &[u64] = &[1, 2, 3];

fn open(dir: &Path) -> (EngineStorage, Recovered) {
    EngineStorage::open(dir, NODE, CLUSTER, VOTERS).expect("open storage")
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index} of term {term}").into_bytes().into(),
        ..Entry::default()
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

fn all(s: &EngineStorage) -> Vec<Entry> {
    let last = s.last_index().expect("last_index");
    s.entries(1, last + 1, None, GetEntriesContext::empty(false))
        .expect("entries")
}

fn is_unavailable(r: raft::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(raft::Error::Store(raft::StorageError::Unavailable)))
}

#[test]
fn fresh_dir_starts_from_the_voters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, rec) = open(dir.path());
    assert_ne!(rec.incarnation, 0, "a new dir has an incarnation");
    assert_eq!(rec.incarnation, s.incarnation());
    assert_eq!(
        rec,
        Recovered {
            fresh: true,
            cluster_id: CLUSTER,
            last_index: 0,
            term: 0,
            commit: 0,
            snapshot_index: 0,
            incarnation: rec.incarnation,
        }
    );
    let state = s.initial_state().expect("initial_state");
    assert_eq!(state.conf_state.voters, VOTERS);
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!(s.first_index().expect("first_index"), 1);
    assert_eq!(s.last_index().expect("last_index"), 0);
    assert_eq!(s.term(0).expect("term 0"), 0);
    assert!(is_unavailable(s.term(1)));
    assert!(s.read_entries(0, 10).expect("read_entries").is_empty());
    assert!(dir.path().join(MARKER_FILE).is_file());
}

#[test]
fn appends_entries_and_hard_state_in_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    let written = entries(1..=5, 1);
    s.persist(&written, Some(&hard_state(1, 1, 3)))
        .expect("persist");

    assert_eq!(s.first_index().expect("first_index"), 1);
    assert_eq!(s.last_index().expect("last_index"), 5);
    assert_eq!(all(&s), written);
    assert_eq!(
        s.entries(2, 4, None, GetEntriesContext::empty(false))
            .expect("entries 2..4"),
        written[1..3]
    );
    for i in 1..=5 {
        assert_eq!(s.term(i).expect("term"), 1, "term of {i}");
    }
    assert!(is_unavailable(s.term(6)), "past the last index");
    assert!(
        is_unavailable(s.entries(1, 7, None, GetEntriesContext::empty(false))),
        "high past last + 1"
    );
    assert_eq!(s.hard_state(), hard_state(1, 1, 3));
    assert_eq!(
        s.initial_state().expect("initial_state").hard_state,
        hard_state(1, 1, 3)
    );
    // read_entries clips to what is on disk instead of failing.
    assert_eq!(s.read_entries(0, 100).expect("read_entries"), written);
    assert_eq!(s.read_entries(4, 100).expect("read_entries"), written[3..]);
    assert!(s.read_entries(6, 100).expect("read_entries").is_empty());
}

#[test]
fn entries_honours_max_size_but_returns_at_least_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    let written = entries(1..=5, 1);
    s.persist(&written, None).expect("persist");
    let size = u64::from(written[0].compute_size());
    let ctx = || GetEntriesContext::empty(false);

    assert_eq!(s.entries(1, 6, 0, ctx()).expect("max 0"), written[..1]);
    assert_eq!(s.entries(1, 6, size, ctx()).expect("max 1"), written[..1]);
    assert_eq!(
        s.entries(1, 6, 2 * size, ctx()).expect("max 2"),
        written[..2]
    );
    assert_eq!(
        s.entries(1, 6, 2 * size + 1, ctx()).expect("max 2+"),
        written[..2]
    );
    assert_eq!(s.entries(1, 6, u64::MAX, ctx()).expect("no max"), written);
}

#[test]
fn append_inside_the_log_replaces_the_conflicting_suffix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    s.persist(&entries(1..=5, 1), Some(&hard_state(1, 1, 2)))
        .expect("persist term 1");
    s.persist(&entries(3..=4, 2), Some(&hard_state(2, 2, 2)))
        .expect("persist term 2");

    assert_eq!(s.last_index().expect("last_index"), 4);
    assert_eq!(s.term(2).expect("term 2"), 1);
    assert_eq!(s.term(3).expect("term 3"), 2);
    assert_eq!(s.term(4).expect("term 4"), 2);
    assert!(is_unavailable(s.term(5)), "entry 5 is gone");
    let mut expected = entries(1..=2, 1);
    expected.extend(entries(3..=4, 2));
    assert_eq!(all(&s), expected);

    // The truncation is durable, not just in the memtable.
    drop(s);
    let (s, rec) = open(dir.path());
    assert_eq!(rec.last_index, 4);
    assert_eq!(all(&s), expected);
    assert!(is_unavailable(s.term(5)));
}

#[test]
fn reopen_recovers_entries_hard_state_and_conf_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = entries(1..=5, 3);
    let incarnation = {
        let (s, _) = open(dir.path());
        s.persist(&written, Some(&hard_state(3, 2, 4)))
            .expect("persist");
        s.incarnation()
    };
    // Other voters are ignored on reopen: the dir keeps the membership (and incarnation)
    // it has.
    let (s, rec) =
        EngineStorage::open(dir.path(), NODE, CLUSTER + 1, &[1, 2, 3, 4, 5]).expect("reopen");
    assert_eq!(
        rec,
        Recovered {
            fresh: false,
            cluster_id: CLUSTER,
            last_index: 5,
            term: 3,
            commit: 4,
            snapshot_index: 0,
            incarnation,
        }
    );
    let state = s.initial_state().expect("initial_state");
    assert_eq!(state.hard_state, hard_state(3, 2, 4));
    assert_eq!(state.conf_state.voters, VOTERS);
    assert_eq!(all(&s), written);
    assert_eq!(s.term(5).expect("term 5"), 3);
}

#[test]
fn the_initial_conf_state_is_the_latest_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=10, 1), Some(&hard_state(1, 1, 10)))
            .expect("persist");
        // A snapshot taken after node 4 was added: a restart rebuilds from it, so raft-rs
        // must start from its configuration (later changes are replayed from the log).
        let mut snap = snapshot_at(8, 1, b"state at 8");
        snap.mut_metadata()
            .mut_conf_state()
            .set_voters(vec![1, 2, 3, 4]);
        s.save_snapshot(&snap, 5).expect("save snapshot");
    }
    let (s, _) = open(dir.path());
    let state = s.initial_state().expect("initial_state");
    assert_eq!(state.conf_state.voters, [1, 2, 3, 4]);
}

#[test]
fn a_joining_node_starts_with_no_members_and_adopts_a_cluster_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, rec) = EngineStorage::open(dir.path(), 4, 0, &[]).expect("open");
        assert!(rec.fresh);
        assert_eq!(rec.cluster_id, 0);
        let state = s.initial_state().expect("initial_state");
        assert!(state.conf_state.voters.is_empty());
        s.adopt_cluster_id(4, CLUSTER).expect("adopt");
    }
    let (_, rec) = EngineStorage::open(dir.path(), 4, 0, &[]).expect("reopen");
    assert_eq!(rec.cluster_id, CLUSTER);
}

#[test]
fn set_commit_reaches_disk_on_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=5, 1), Some(&hard_state(1, 1, 2)))
            .expect("persist");
        s.set_commit(5);
        s.set_commit(3); // never moves back
        assert_eq!(s.hard_state().commit, 5);
        s.flush().expect("flush");
    }
    let (s, rec) = open(dir.path());
    assert_eq!(rec.commit, 5);
    assert_eq!(s.hard_state(), hard_state(1, 1, 5));
}

#[test]
fn set_commit_rides_along_with_the_next_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=3, 1), Some(&hard_state(1, 1, 1)))
            .expect("persist");
        s.set_commit(3);
        // Entries only, no hard state: the pending commit is written with them.
        s.persist(&entries(4..=4, 1), None).expect("persist");
    }
    let (_, rec) = open(dir.path());
    assert_eq!((rec.last_index, rec.commit), (4, 3));
}

#[test]
fn refuses_another_nodes_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let err = EngineStorage::open(dir.path(), 2, CLUSTER, VOTERS)
        .err()
        .expect("node 2 must not open node 1's dir");
    assert!(
        matches!(
            err,
            StorageError::OtherNode {
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("belongs to node 1"), "{err}");
}

#[test]
fn refuses_a_foreign_dir_and_leaves_it_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "mine").expect("write notes");
    let err = EngineStorage::open(dir.path(), NODE, CLUSTER, VOTERS)
        .err()
        .expect("a foreign dir must be refused");
    assert!(matches!(err, StorageError::Foreign(_)), "{err:?}");
    assert_eq!(fs::read_to_string(&notes).expect("read notes"), "mine");
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("list dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

#[test]
fn refuses_a_regular_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").expect("write file");
    let err = EngineStorage::open(&file, NODE, CLUSTER, VOTERS)
        .err()
        .expect("a file is not a data dir");
    assert!(matches!(err, StorageError::Dir { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(&file).expect("read file"), "x");
}

#[test]
fn refuses_a_damaged_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(MARKER_FILE), "node_id=one\n").expect("write marker");
    let err = EngineStorage::open(dir.path(), NODE, CLUSTER, VOTERS)
        .err()
        .expect("a damaged marker must be refused");
    assert!(matches!(err, StorageError::BadMarker(_)), "{err:?}");
}

fn snapshot_at(index: u64, term: u64, data: &[u8]) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.set_data(data.to_vec().into());
    let md = snap.mut_metadata();
    md.index = index;
    md.term = term;
    md.mut_conf_state().set_voters(VOTERS.to_vec());
    snap
}

/// What `Storage::snapshot` serves peer `to` once its loader thread has read the file: the
/// first asks answer "temporarily unavailable" (raft-rs asks again at its next heartbeat).
fn loaded_snapshot(s: &EngineStorage, to: u64) -> Snapshot {
    let start = std::time::Instant::now();
    loop {
        match s.snapshot(0, to) {
            Ok(snap) => return snap,
            Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable)) => {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(20),
                    "the snapshot was never loaded"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("snapshot: {e}"),
        }
    }
}

fn snap_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(SNAP_DIR))
        .expect("snap dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_file_that_fails_half_way_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    let before = snap_files(dir.path());
    let err = s
        .write_snapshot_file(30, 2, |w| {
            w.write_all(&[7; 4096])?;
            Err(std::io::Error::other("the disk went away"))
        })
        .expect_err("the write fails");
    assert!(err.to_string().contains("the disk went away"), "{err}");
    assert_eq!(
        snap_files(dir.path()),
        before,
        "a failed write leaves its temp file"
    );
}

#[test]
fn snapshot_data_lives_in_a_file_and_is_served_without_reading_it_inline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    s.persist(&entries(1..=20, 1), Some(&hard_state(1, 1, 20)))
        .expect("persist");
    s.save_snapshot(&snapshot_at(8, 1, b"state at 8"), 5)
        .expect("save snapshot");
    // raft-engine holds the metadata only.
    let stored = s
        .engine
        .get_message::<Snapshot>(GROUP, KEY_SNAPSHOT_META)
        .expect("read")
        .expect("metadata");
    assert!(stored.get_data().is_empty());
    assert_eq!(stored.get_metadata().index, 8);
    // The first ask starts the loader and does not wait for it.
    assert!(matches!(
        s.snapshot(0, 2),
        Err(raft::Error::Store(
            raft::StorageError::SnapshotTemporarilyUnavailable
        ))
    ));
    assert_eq!(loaded_snapshot(&s, 2).get_data(), b"state at 8");
    assert_eq!(s.snapshot_data_in_memory(), 10);
    let with_entries = s.memory_bytes();
    assert!(with_entries > 10, "the cached entries count too");
    s.evict_snapshot_data();
    assert_eq!(s.snapshot_data_in_memory(), 0);
    assert_eq!(s.memory_bytes(), with_entries - 10);

    // A newer snapshot: the older file goes with the purge; one newer than the recorded
    // one (being written, not recorded yet) stays.
    s.save_snapshot(&snapshot_at(12, 1, b"state at 12"), 9)
        .expect("save snapshot");
    s.write_snapshot_file(15, 1, |w| w.write_all(b"being written"))
        .expect("write");
    assert_eq!(snap_files(dir.path()).len(), 3);
    s.purge();
    assert_eq!(
        snap_files(dir.path()),
        [
            "snapshot-00000000000000000012-00000000000000000001.bin",
            "snapshot-00000000000000000015-00000000000000000001.bin"
        ]
    );
    assert_eq!(loaded_snapshot(&s, 2).get_data(), b"state at 12");
    assert!(s.disk_bytes() > 0);
    // A reopen (after a crash) drops files that were never recorded.
    drop(s);
    fs::write(dir.path().join(SNAP_DIR).join("snapshot-x.tmp"), b"half").expect("write");
    let (s, rec) = open(dir.path());
    assert_eq!(rec.snapshot_index, 12);
    assert_eq!(
        snap_files(dir.path()),
        ["snapshot-00000000000000000012-00000000000000000001.bin"]
    );
    let snap = s.latest_snapshot().expect("read").expect("a snapshot");
    assert_eq!(snap.get_data(), b"state at 12");
}

#[test]
fn a_snapshot_kept_whole_in_raft_engine_moves_to_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=10, 1), Some(&hard_state(1, 1, 10)))
            .expect("persist");
        // How a data dir from before snapshot files kept its snapshot.
        let mut batch = LogBatch::default();
        batch
            .put_message(
                GROUP,
                KEY_SNAPSHOT.to_vec(),
                &snapshot_at(8, 1, b"old style"),
            )
            .expect("batch");
        s.engine.write(&mut batch, true).expect("write");
    }
    let (s, rec) = open(dir.path());
    assert_eq!(rec.snapshot_index, 8);
    assert_eq!(s.engine.get(GROUP, KEY_SNAPSHOT), None);
    let snap = s.latest_snapshot().expect("read").expect("a snapshot");
    assert_eq!(snap.get_data(), b"old style");
    assert_eq!(snap_files(dir.path()).len(), 1);
}

fn is_compacted(r: raft::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(raft::Error::Store(raft::StorageError::Compacted)))
}

#[test]
fn save_snapshot_compacts_behind_it_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=10, 1), Some(&hard_state(1, 1, 3)))
            .expect("persist");
        // Snapshot at 8, keep the log from 6 on (compact up to 5).
        s.save_snapshot(&snapshot_at(8, 1, b"state at 8"), 5)
            .expect("save snapshot");
        assert_eq!(s.first_index().expect("first"), 6);
        assert_eq!(s.last_index().expect("last"), 10);
        assert_eq!(s.term(5).expect("term of the truncation point"), 1);
        assert!(is_compacted(s.term(4)));
        assert!(is_compacted(s.entries(
            5,
            7,
            None,
            GetEntriesContext::empty(false)
        )));
        assert_eq!(
            s.entries(6, 11, None, GetEntriesContext::empty(false))
                .expect("entries after it")
                .len(),
            5
        );
        assert_eq!(loaded_snapshot(&s, 2).get_metadata().index, 8);
        // The commit on disk is raised to the snapshot: a restart applies up to it.
        assert_eq!(s.hard_state().commit, 8);
    }
    let (s, rec) = open(dir.path());
    assert_eq!(rec.snapshot_index, 8);
    assert_eq!(rec.commit, 8);
    assert_eq!(s.first_index().expect("first"), 6);
    assert_eq!(s.term(5).expect("term"), 1);
    let snap = s.latest_snapshot().expect("read").expect("a snapshot");
    assert_eq!(snap.get_data(), b"state at 8");
    // Appending after a compaction still works, and overwrites still truncate.
    s.persist(&entries(9..=12, 2), None).expect("overwrite");
    assert_eq!(s.last_index().expect("last"), 12);
    assert_eq!(s.term(9).expect("term"), 2);
}

#[test]
fn applying_a_snapshot_replaces_the_whole_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    s.persist(&entries(1..=5, 1), Some(&hard_state(1, 0, 2)))
        .expect("persist");
    // A leader's snapshot at 20 (term 3): everything here is older or conflicting.
    s.apply_snapshot(&snapshot_at(20, 3, b"leader state"), None)
        .expect("apply");
    assert_eq!(s.first_index().expect("first"), 21);
    assert_eq!(s.last_index().expect("last"), 20);
    assert_eq!(s.term(20).expect("term"), 3);
    assert!(is_compacted(s.term(5)));
    assert_eq!(s.hard_state().commit, 20);
    // The next entries from the leader follow the snapshot.
    s.persist(&entries(21..=22, 3), None)
        .expect("append after snapshot");
    assert_eq!(s.last_index().expect("last"), 22);
    drop(s);
    let (s, rec) = open(dir.path());
    assert_eq!((rec.snapshot_index, rec.last_index), (20, 22));
    assert_eq!(s.first_index().expect("first"), 21);
    assert!(is_unavailable(s.term(23)));
}

#[test]
fn a_snapshot_and_the_entries_after_it_in_one_ready_never_leave_a_commit_past_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = open(dir.path());
        s.persist(&entries(1..=5, 1), Some(&hard_state(1, 0, 2)))
            .expect("persist");
        // One Ready: the leader's snapshot at 20, entries 21..=25 and commit 25. A crash
        // after the snapshot's write and before the entries' leaves what is on disk now.
        s.apply_snapshot(
            &snapshot_at(20, 3, b"leader state"),
            Some(&hard_state(3, 0, 25)),
        )
        .expect("apply");
    }
    let (s, rec) = open(dir.path());
    assert_eq!((rec.last_index, rec.commit), (20, 20));
    // Without the crash, the entries come with the Ready's hard state.
    s.persist(&entries(21..=25, 3), Some(&hard_state(3, 0, 25)))
        .expect("persist after the snapshot");
    drop(s);
    let (_, rec) = open(dir.path());
    assert_eq!((rec.last_index, rec.commit), (25, 25));
}

#[test]
fn a_full_disk_is_named_as_such_whatever_raft_engine_wraps_it_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path());
    s.fail_writes(Some(28));
    let err = s
        .persist(&entries(1..=1, 1), None)
        .expect_err("the disk is full");
    assert_eq!(
        err.to_string(),
        format!("no space left on device in {}", dir.path().display())
    );
    s.fail_writes(None);
    s.persist(&entries(1..=1, 1), None).expect("room again");

    // The shapes raft-engine gives ENOSPC: an io::Error (kind StorageFull, its own message),
    // or its text inside TryAgain once rotating to a new file did not help.
    let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "nospace");
    assert!(is_no_space(&raft_engine::Error::Io(io)));
    let again = raft_engine::Error::TryAgain("error when append [Append:3]: nospace".into());
    assert!(is_no_space(&again));
    let other = std::io::Error::from_raw_os_error(5);
    assert!(!is_no_space(&raft_engine::Error::Io(other)));
}
