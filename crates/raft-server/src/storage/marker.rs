//! The marker file that says which node and cluster a data dir belongs to, written
//! atomically (temp file, fsync, rename, fsync the dir).

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
