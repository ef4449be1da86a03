//! The marker file that says which node and cluster a data dir belongs to, written
//! atomically (temp file, fsync, rename, fsync the dir); and the holder file that says which
//! process has the data dir open, so a second one can be told who holds it.

use std::fs;
use std::io::Write as _;
use std::path::Path;

/// The marker's file name in the data dir.
pub(super) const MARKER_FILE: &str = "raft-playground.id";

/// `(node_id, cluster_id)` from the marker's text, if it has both.
pub(super) fn parse_marker(text: &str) -> Option<(u64, u64)> {
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

/// Writes the marker atomically (temp file, fsync, rename, fsync the dir): a crash leaves
/// either no marker or a whole one.
pub(super) fn write_marker(path: &Path, node_id: u64, cluster_id: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("id.tmp");
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "# raft-playground data dir: do not edit")?;
    writeln!(f, "node_id={node_id}")?;
    writeln!(f, "cluster_id={cluster_id}")?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
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
