//! Recordings: every member's watch stream, merged in time order, in a file of JSON lines.
//!
//! - [`format`]: the header and the record lines, to and from the watch records.
//! - [`file`]: writing a file (zstd for a `.zst` name) and reading one back.
//! - [`export`]: a window of a recording as an SVG diagram or a ShiViz log
//!   (`raft-client replay FILE --export svg|shiviz -o OUT`).
//!
//! [`record`] writes one (`raft-client record FILE`): the streams of the view's source
//! (which follows the membership), each held until the others have passed its records'
//! time, so that records of several nodes go out in time order.

pub mod export;
pub mod file;
pub mod format;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use format::{Header, NodeAddr, RecordLine};
use kv_proto::watch as pb;

use crate::SmartClient;
use crate::view::source::{self, Feed};

/// How long records wait for a stream that says nothing (every live node sends its state
/// at each tick, so only a frozen or departed node's stream is that quiet).
const MAX_HOLD: Duration = Duration::from_secs(2);
/// How long after Ctrl+C what the nodes sent before is still taken.
const DRAIN: Duration = Duration::from_millis(300);

/// Why a recording could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No node answered.
    #[error(
        "no node answered at {0}: is the cluster running? (the client API is on peer port + 1000)"
    )]
    Unavailable(String),
}

/// What a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Records written.
    pub records: u64,
    /// Bytes of JSON written.
    pub bytes: u64,
    /// Bytes of the file (fewer when compressed).
    pub disk_bytes: u64,
    /// Nodes heard from.
    pub nodes: usize,
}

impl Summary {
    /// Its size in words: `68.1 MB`, or `68.1 MB of JSON, 6.2 MB compressed`.
    pub fn size(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        if self.disk_bytes < self.bytes {
            format!(
                "{:.1} MB of JSON, {:.1} MB compressed",
                mb(self.bytes),
                mb(self.disk_bytes)
            )
        } else {
            format!("{:.1} MB", mb(self.bytes))
        }
    }
}

/// Records held to be put in time order: each node's in the order its stream sent them
/// (the node stamps them in that order), merged by time.
#[derive(Default)]
struct Held {
    by_node: BTreeMap<u64, VecDeque<pb::WatchRecord>>,
    /// The latest stamp each live stream has given: nothing earlier comes from it now.
    seen: BTreeMap<u64, u64>,
}

impl Held {
    fn push(&mut self, r: pb::WatchRecord) {
        let seen = self.seen.entry(r.node).or_default();
        *seen = (*seen).max(r.t_us);
        self.by_node.entry(r.node).or_default().push_back(r);
    }

    /// Node `id`'s stream is down: it no longer holds the others back.
    fn down(&mut self, id: u64) {
        self.seen.remove(&id);
    }

    /// Up to when records can go out at `now_us`: what every live stream has passed, or,
    /// for a stream that says nothing (a frozen node, one that left), [`MAX_HOLD`] ago.
    fn ripe(&self, now_us: u64) -> u64 {
        let waited = now_us.saturating_sub(MAX_HOLD.as_micros() as u64);
        self.seen.values().copied().min().unwrap_or(0).max(waited)
    }

    /// The earliest of the nodes' next records, if it is no later than `ripe`.
    fn pop(&mut self, ripe: Option<u64>) -> Option<pb::WatchRecord> {
        let (_, queue) = self
            .by_node
            .iter_mut()
            .filter_map(|(_, q)| q.front().map(|r| r.t_us).map(|t| (t, q)))
            .filter(|(t, _)| ripe.is_none_or(|r| *t <= r))
            .min_by_key(|(t, _)| *t)?;
        queue.pop_front()
    }
}

/// Records the cluster to `path` until `seconds` pass (if given) or `stop` resolves.
/// `ready`, if given, is told once every node the recording started with has sent its
/// first record: from then on the file holds each one's state (chaos waits for it
/// before its workload starts, so no operation falls before the recording).
pub async fn record(
    client: Arc<SmartClient>,
    path: &Path,
    seconds: Option<f64>,
    stop: impl std::future::Future<Output = ()>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Summary, RecordError> {
    let write_err = |source| RecordError::Write {
        path: path.to_path_buf(),
        source,
    };
    let reports = client.status_all_within(Duration::from_secs(2)).await;
    let nodes: Vec<NodeAddr> = reports
        .iter()
        .filter_map(|r| {
            r.status.as_ref().ok().map(|s| NodeAddr {
                id: s.id,
                api_addr: r.api_addr.clone(),
            })
        })
        .collect();
    if nodes.is_empty() {
        return Err(RecordError::Unavailable(client.peers().join(", ")));
    }
    let started_with: std::collections::BTreeSet<u64> = nodes.iter().map(|n| n.id).collect();
    let mut out = Counting {
        inner: file::Writer::create(path).map_err(write_err)?,
        bytes: 0,
    };
    serde_json::to_writer(&mut out, &Header::new(nodes))
        .map_err(|e| write_err(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(write_err)?;
    let (mut feed, supervisor) = source::spawn(client);
    let mut deadline = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut held = Held::default();
    let mut summary = Summary {
        records: 0,
        bytes: 0,
        disk_bytes: 0,
        nodes: 0,
    };
    let mut heard = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(stop);
    let mut stopping = false;
    let mut last_sync = Instant::now();
    let result = loop {
        let until_end = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            // Stopped: what the nodes sent before is still on its way; take it for as
            // long as records are held, then end.
            () = &mut stop, if !stopping => {
                stopping = true;
                deadline = Some(Instant::now() + DRAIN);
            }
            () = tokio::time::sleep(until_end.unwrap_or(Duration::MAX)), if until_end.is_some() => break Ok(()),
            f = feed.recv() => match f {
                Some(Feed::Record(r)) => {
                    heard.insert(r.node);
                    held.push(*r);
                    // Only until told: after that, no set comparison per record.
                    if let Some(tell) = ready.take_if(|_| started_with.is_subset(&heard)) {
                        let _ = tell.send(());
                    }
                }
                Some(Feed::Down(id, _)) => held.down(id),
                None => break Ok(()),
            },
            _ = tick.tick() => {
                let ripe = held.ripe(crate::view::now_us());
                if let Err(e) = flush(&mut held, Some(ripe), &mut out, &mut summary) {
                    break Err(write_err(e));
                }
                // To the file once a second: a recorder killed loses at most that much.
                if last_sync.elapsed() >= Duration::from_secs(1) {
                    last_sync = Instant::now();
                    if let Err(e) = std::io::Write::flush(&mut out) {
                        break Err(write_err(e));
                    }
                }
            }
        }
    };
    supervisor.abort();
    result?;
    flush(&mut held, None, &mut out, &mut summary).map_err(write_err)?;
    summary.bytes = out.bytes;
    out.inner.finish().map_err(write_err)?;
    summary.disk_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    summary.nodes = heard.len();
    Ok(summary)
}

/// Writes the held records older than `ripe` (all when `None`), earliest first.
fn flush(
    held: &mut Held,
    ripe: Option<u64>,
    out: &mut impl Write,
    summary: &mut Summary,
) -> std::io::Result<()> {
    while let Some(r) = held.pop(ripe) {
        if let Some(line) = RecordLine::of(&r) {
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
            summary.records += 1;
        }
    }
    Ok(())
}

/// A writer that counts what it wrote.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
