//! What one frame shows, gathered from the node at a cost bounded by the screen: the visible
//! log rows are read from raft-engine by index range, the visible keys from the state
//! machine by key range, the visible messages from the transport's tap by sequence number.
//! [`DataSource`] lets render tests and benchmarks supply fixed data.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, EntryType, MessageType};

use crate::command::{Command, Op};
use crate::driver::NodeHandle;
use crate::membership::describe_change;
pub use crate::state_machine::KvPreview;
use crate::state_machine::KvStateMachine;

/// Bytes of each value the dashboard reads: more than a row ever shows, and a 1 MiB value
/// costs a frame no more than a short one.
pub const VALUE_PREVIEW_BYTES: usize = 256;
use crate::status::NodeStatus;
pub use crate::status::human_size;
use crate::storage::EngineStorage;
use crate::transport::fault::{FaultFilter, NetFaults};
pub use crate::transport::tap::{Direction, Fate, MessageRecord, TypeCounts};

/// Fixed facts about the node, for the header.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Where the data lives.
    pub data_dir: PathBuf,
    /// Peer address.
    pub peer_addr: String,
    /// Client API address.
    pub api_addr: String,
}

/// The kind of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A client command.
    Command,
    /// The empty entry a new leader appends to commit entries of earlier terms.
    Empty,
    /// A membership change.
    ConfChange,
}

/// One row of the log panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Log index.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// What kind of entry.
    pub kind: EntryKind,
    /// The decoded command (`PUT k = v`, `DEL k`), or a description.
    pub text: String,
    /// Applied as a recognised duplicate (or an older request): it changed nothing.
    pub no_effect: bool,
}

impl LogRow {
    /// Decodes a raft-rs entry for display; values are escaped and cut to `max_value`.
    pub fn from_entry(e: &Entry, max_value: usize) -> Self {
        let (kind, text) = match e.get_entry_type() {
            // The members' data dir incarnations, recorded by a leader (see membership).
            EntryType::EntryNormal if e.data.is_empty() && !e.context.is_empty() => {
                let dirs: Vec<String> = crate::membership::decode_context(&e.context)
                    .iter()
                    .map(|m| format!("{}:{:04x}", m.id, m.incarnation >> 48))
                    .collect();
                (
                    EntryKind::ConfChange,
                    format!("DATA DIRS recorded {}", dirs.join(" ")),
                )
            }
            EntryType::EntryNormal if e.data.is_empty() => {
                (EntryKind::Empty, "(new leader's no-op)".to_string())
            }
            // The request id (the client's first 4 hex digits and its sequence number) shows
            // a write resent after a failover: the same id twice, applied once.
            EntryType::EntryNormal => match Command::decode(&e.data) {
                Ok(Command {
                    op: Op::Put { key, value },
                    client_id,
                    seq,
                    ..
                }) => (
                    EntryKind::Command,
                    format!(
                        "PUT {} = {} [{}]",
                        escape(key.as_bytes(), 64),
                        escape(&value, max_value),
                        request_id(client_id, seq)
                    ),
                ),
                Ok(Command {
                    op: Op::Delete { key },
                    client_id,
                    seq,
                    ..
                }) => (
                    EntryKind::Command,
                    format!(
                        "DEL {} [{}]",
                        escape(key.as_bytes(), 64),
                        request_id(client_id, seq)
                    ),
                ),
                Err(_) => (EntryKind::Command, "(undecodable)".to_string()),
            },
            EntryType::EntryConfChangeV2 => {
                use protobuf::Message as _;
                let text = match raft::eraftpb::ConfChangeV2::parse_from_bytes(&e.data) {
                    Ok(cc) => format!("CONF {}", describe_change(&cc, &e.context)),
                    Err(_) => "CONF (undecodable)".to_string(),
                };
                (EntryKind::ConfChange, text)
            }
            EntryType::EntryConfChange => {
                (EntryKind::ConfChange, "CONF (old-style change)".to_string())
            }
        };
        Self {
            index: e.index,
            term: e.term,
            kind,
            text,
            no_effect: false,
        }
    }
}

/// A request id as the log panel shows it: `3f53:12` (the client id's first four hex digits,
/// the sequence number), matching the start of what the client prints.
pub fn request_id(client_id: u64, seq: u64) -> String {
    format!("{:04x}:{seq}", client_id >> 48)
}

/// Where the dashboard reads the log and the keys.
pub trait DataSource {
    /// Log rows with index in `[low, high)` that exist.
    fn log_rows(&self, low: u64, high: u64) -> Vec<LogRow>;
    /// Up to `n` keys from the first key `>= from` (or the first key), with the start of
    /// each value (enough to fill a row) and its length.
    fn kv_from(&self, from: Option<&str>, n: usize) -> Vec<KvPreview>;
    /// Up to `n` keys before `before` (or the last keys), ascending.
    fn keys_before(&self, before: Option<&str>, n: usize) -> Vec<String>;
    /// Up to `n` of the newest recorded peer messages with `seq <= up_to` (all when
    /// `None`), oldest first.
    fn messages(&self, _n: usize, _up_to: Option<u64>) -> Vec<MessageRecord> {
        Vec::new()
    }
    /// The oldest and newest recorded message seq, if any.
    fn message_seqs(&self) -> Option<(u64, u64)> {
        None
    }
    /// Messages sent and received so far, by type.
    fn message_counts(&self) -> TypeCounts {
        TypeCounts::default()
    }
    /// This node's network faults.
    fn faults(&self) -> NetFaults {
        NetFaults::default()
    }
    /// What the node takes on disk and in memory (all zero when not known).
    fn resources(&self) -> Resources {
        Resources::default()
    }
}

/// What a node takes on disk and in memory, for the header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes of the data dir on disk (raft-engine's files and snapshot files).
    pub disk_bytes: u64,
    /// Resident memory of the process (0: not known).
    pub rss_bytes: u64,
}

/// The real data source: a node's log storage, state machine and fault filter.
#[derive(Clone)]
pub struct NodeData {
    /// The node's raft-engine storage.
    pub storage: EngineStorage,
    /// The node's state machine.
    pub sm: Arc<RwLock<KvStateMachine>>,
    /// The node's fault filter and message tap.
    pub filter: FaultFilter,
    /// The latest [`Resources`] and when they were measured.
    resources: Arc<Mutex<Option<(Instant, Resources)>>>,
}

/// How long measured [`Resources`] are shown before they are measured again: they change
/// slowly, and measuring lists the data dir, not a thing to do on every frame.
const RESOURCES_EVERY: Duration = Duration::from_secs(1);

impl NodeData {
    /// The data of a running node.
    pub fn of(node: &NodeHandle, filter: FaultFilter) -> Self {
        Self::new(node.storage().clone(), node.state_machine(), filter)
    }

    /// The data of `storage`, `sm` and `filter`.
    pub fn new(
        storage: EngineStorage,
        sm: Arc<RwLock<KvStateMachine>>,
        filter: FaultFilter,
    ) -> Self {
        Self {
            storage,
            sm,
            filter,
            resources: Arc::default(),
        }
    }
}

impl DataSource for NodeData {
    fn log_rows(&self, low: u64, high: u64) -> Vec<LogRow> {
        match self.storage.read_entries(low, high) {
            Ok(entries) => {
                let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
                entries
                    .iter()
                    .map(|e| LogRow {
                        no_effect: sm.changed_nothing(e.index),
                        ..LogRow::from_entry(e, 48)
                    })
                    .collect()
            }
            Err(e) => {
                // Usually a compaction between reading the bounds and the entries: the
                // next frame reads the new bounds.
                tracing::debug!("dashboard cannot read log entries {low}..{high}: {e}");
                Vec::new()
            }
        }
    }

    fn kv_from(&self, from: Option<&str>, n: usize) -> Vec<KvPreview> {
        let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
        sm.range_from(from, n, VALUE_PREVIEW_BYTES)
    }

    fn keys_before(&self, before: Option<&str>, n: usize) -> Vec<String> {
        let sm = self.sm.read().unwrap_or_else(PoisonError::into_inner);
        sm.keys_before(before, n)
    }

    fn messages(&self, n: usize, up_to: Option<u64>) -> Vec<MessageRecord> {
        self.filter.tap().recent(n, up_to)
    }

    fn message_seqs(&self) -> Option<(u64, u64)> {
        self.filter.tap().seq_range()
    }

    fn message_counts(&self) -> TypeCounts {
        self.filter.tap().counts()
    }

    fn faults(&self) -> NetFaults {
        self.filter.faults()
    }

    fn resources(&self) -> Resources {
        let mut last = self
            .resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match *last {
            Some((at, measured)) if now.duration_since(at) < RESOURCES_EVERY => measured,
            _ => {
                let measured = Resources {
                    disk_bytes: self.storage.disk_bytes(),
                    rss_bytes: crate::status::process_rss_bytes().unwrap_or(0),
                };
                *last = Some((now, measured));
                measured
            }
        }
    }
}

/// Everything one frame draws.
#[derive(Debug, Clone)]
pub struct FrameData {
    /// The node's status view.
    pub status: NodeStatus,
    /// Visible log rows, ascending.
    pub log: Vec<LogRow>,
    /// Visible keys with the start of their values, ascending.
    pub kv: Vec<KvPreview>,
    /// Visible peer messages, oldest first (empty unless the messages panel is open).
    pub messages: Vec<MessageRecord>,
    /// This node's network faults.
    pub faults: NetFaults,
    /// Disk and memory use.
    pub resources: Resources,
    /// Messages per second by type over the last second, busiest first: `(type, out, in)`.
    pub rates: Vec<(MessageType, u64, u64)>,
    /// Node facts.
    pub info: NodeInfo,
    /// Time since the dashboard started.
    pub uptime: Duration,
    /// "Now", for ages of last-heard times.
    pub now: Instant,
}

/// Shows bytes safely: valid UTF-8 as text with control characters escaped, other bytes
/// as `\xNN`, cut to `max` characters with a `…` and the full size. Reads only as much
/// of `bytes` as it shows.
pub fn escape(bytes: &[u8], max: usize) -> String {
    escape_head(bytes, bytes.len(), max)
}

/// [`escape`] for the first bytes `head` of a value `len` bytes long.
pub fn escape_head(head: &[u8], len: usize, max: usize) -> String {
    let mut out = String::new();
    let mut width = 0;
    for piece in escaped_pieces(head) {
        let w = piece.chars().count();
        if width + w > max {
            return format!("{out}… ({})", human_size(len));
        }
        width += w;
        out.push_str(&piece);
    }
    if len > head.len() {
        out = format!("{out}… ({})", human_size(len));
    }
    out
}

fn escaped_pieces(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes.utf8_chunks().flat_map(|chunk| {
        let text = chunk.valid().chars().map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_debug().collect()
            } else {
                c.to_string()
            }
        });
        let raw = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        text.chain(raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rows_name_the_request_like_the_client_does() {
        use crate::command::{Command, Op};
        let cmd = Command {
            client_id: 0x3f53_e096_9bd7_0fe0,
            seq: 2,
            timestamp_ms: 0,
            op: Op::Put {
                key: "x".into(),
                value: b"once".to_vec(),
            },
        };
        let entry = Entry {
            index: 12,
            term: 3,
            data: cmd.encode().into(),
            ..Entry::default()
        };
        // The client prints the id as 3f53e0969bd70fe0:2.
        assert_eq!(LogRow::from_entry(&entry, 48).text, "PUT x = once [3f53:2]");
    }

    #[test]
    fn escapes_and_truncates_values() {
        assert_eq!(escape(b"hello", 10), "hello");
        assert_eq!(escape("héllo ✓".as_bytes(), 10), "héllo ✓");
        assert_eq!(escape(b"a\nb\tc", 10), "a\\nb\\tc");
        assert_eq!(escape(&[0x66, 0xff, 0x6f], 10), "f\\xffo");
        assert_eq!(escape(b"abcdefghijkl", 5), "abcde… (12 B)");
        assert_eq!(escape(&vec![b'x'; 2048], 3), "xxx… (2.0 KiB)");
        assert_eq!(escape(b"", 5), "");
        // Only the head of a long value was read: the size shown is the whole value's.
        assert_eq!(escape_head(b"abc", 2048, 10), "abc… (2.0 KiB)");
        assert_eq!(escape_head(b"abcdefghijkl", 1 << 20, 5), "abcde… (1.0 MiB)");
        assert_eq!(escape_head(b"abc", 3, 10), "abc");
    }
}
