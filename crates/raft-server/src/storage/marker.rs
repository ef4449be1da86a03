//! The marker file that says which node and cluster a data dir belongs to, written
//! atomically (temp file, fsync, rename, fsync the dir); and the holder file that says which
//! process has the data dir open, so a second one can be told who holds it.

use std::fs;
use std::io::Write as _;
use std::path::Path;

/// The marker's file name in the data dir.
pub(super) const MARKER_FILE: &str = "raft-playground.id";

/// What the marker says: whose data dir this is, of which cluster, and which incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marker {
    pub node_id: u64,
    /// 0: not known yet (a node waiting to be added).
    pub cluster_id: u64,
    /// Made at random with the data dir, never changed: a wiped and restarted node has
    /// another one, which is how the members tell it lost its log and vote. 0 in markers
    /// written before incarnations existed (`open` gives them one).
    pub incarnation: u64,
}

/// The marker's fields from its text, if it has a node and a cluster id.
pub(super) fn parse_marker(text: &str) -> Option<Marker> {
    let mut node = None;
    let mut cluster = None;
    let mut incarnation = 0;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("node_id", v)) => node = v.trim().parse().ok(),
            Some(("cluster_id", v)) => cluster = v.trim().parse().ok(),
            Some(("incarnation", v)) => {
                incarnation = u64::from_str_radix(v.trim(), 16).unwrap_or(0);
            }
            _ => {}
        }
    }
    Some(Marker {
        node_id: node?,
        cluster_id: cluster?,
        incarnation,
    })
}

/// Writes the marker atomically (temp file, fsync, rename, fsync the dir): a crash leaves
/// either no marker or a whole one.
pub(super) fn write_marker(path: &Path, m: &Marker) -> std::io::Result<()> {
    let tmp = path.with_extension("id.tmp");
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "# raft-playground data dir: do not edit")?;
    writeln!(f, "node_id={}", m.node_id)?;
    writeln!(f, "cluster_id={}", m.cluster_id)?;
    writeln!(f, "incarnation={:016x}", m.incarnation)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// A new incarnation: random and never 0. std's `RandomState` is seeded from the OS's
/// randomness; mixing in the time and pid keeps two dirs made in one process apart.
pub(super) fn new_incarnation() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// The holder file's name in the data dir: the pid of the process that has it open.
const HOLDER_FILE: &str = "raft-playground.pid";

/// Notes that this process holds `dir` (best effort: it only improves a later message).
pub(super) fn note_holder(dir: &Path) {
    let _ = fs::write(dir.join(HOLDER_FILE), format!("{}\n", std::process::id()));
}

/// Who holds `dir`, in words for an error message: the process named in its holder file
/// if that process still runs (`raft-server, pid 4242`), else a guess.
pub(super) fn holder(dir: &Path) -> String {
    let running = fs::read_to_string(dir.join(HOLDER_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .and_then(|pid| {
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some(format!("{}, pid {pid}", name.trim()))
        });
    running.unwrap_or_else(|| "another raft-server with this --data-dir?".to_string())
}
