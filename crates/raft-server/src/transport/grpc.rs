//! The gRPC transport: one long-lived client stream per peer, fed by a bounded queue.
//!
//! The driver's `send` only pushes onto each peer's queue (dropping when it is full), so it
//! never waits on the network. A task per peer connects, batches what is queued into
//! `RaftBatch`es, and on any failure drops what it cannot deliver, reports the peer
//! unreachable to Raft and reconnects with exponential backoff.
//!
//! A peer's address may be a host name: it is looked up before every connect, so a name
//! that does not resolve yet (a container not started) or moved (restarted with a new IP)
//! is followed. A lookup that fails is a link failure like a refused connection, said once
//! in the node's events and log ("cannot resolve node4: ...") until the name resolves.
//!
//! Every message passes the node's [`FaultFilter`] before it is queued: a dropped one never
//! reaches the queue, a delayed one reaches it through a [`DelayLines`] thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use kv_proto::peer::RaftBatch;
use kv_proto::peer::raft_transport_client::RaftTransportClient;
use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::delay::DelayLines;
use super::fault::{FaultFilter, Verdict};
use super::{Transport, is_snapshot};
use crate::addr::HostPort;
use crate::config::Peer;
use crate::driver::NodeHandle;
use crate::service::peer::{REMOVED_PREFIX, REPLACED_PREFIX};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// Batches in flight on one stream before new ones are dropped.
const STREAM_WINDOW: usize = 64;
/// Most messages and bytes per batch (a batch always takes at least one message).
const BATCH_MESSAGES: usize = 512;
const BATCH_BYTES: usize = 4 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A stream open this long resets the backoff.
const STABLE_LINK: Duration = Duration::from_secs(1);
/// Largest batch a peer accepts. A snapshot (the whole state machine) travels as one
/// message, so this is also the largest state machine a lagging follower can catch up from.
pub const MAX_PEER_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// Sends to peers over gRPC streams; see the module doc.
pub struct GrpcTransport {
    me: u64,
    cluster_id: Arc<AtomicU64>,
    queues: Arc<Queues>,
    links: HashMap<u64, Link>,
    filter: FaultFilter,
    delays: DelayLines<Outgoing>,
    shutdown: CancellationToken,
    /// The runtime the links run on: membership changes open links from the driver's
    /// thread, outside any runtime.
    runtime: tokio::runtime::Handle,
}

/// The sending side of the link to one peer, as the transport tracks it.
struct Link {
    addr: HostPort,
    up: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// A message on its way to a peer, with its watch id (0: not watched).
type Outgoing = (Message, u64);

/// The per-peer queues, shared with the delay lines that feed them.
struct Queues {
    by_peer: RwLock<HashMap<u64, mpsc::Sender<Outgoing>>>,
    node: NodeHandle,
}

impl Queues {
    /// Queues `msg` for its peer; a full queue drops it and tells Raft.
    fn push(&self, out: Outgoing) {
        let to = out.0.to;
        let by_peer = self.by_peer.read().unwrap_or_else(PoisonError::into_inner);
        match by_peer.get(&to) {
            Some(queue) => {
                if let Err(TrySendError::Full((msg, _))) = queue.try_send(out) {
                    self.node.report_unreachable(to);
                    if is_snapshot(&msg) {
                        self.node.report_snapshot(to, false);
                    }
                }
            }
            None => tracing::debug!("no route to node {to}: not a member with an address"),
        }
    }
}

impl GrpcTransport {
    /// Starts a sender task per peer in `peers` on the current tokio runtime; every message
    /// passes `filter` first. Batches carry `cluster_id` (0 until a joining node learns it).
    pub fn start(
        me: u64,
        cluster_id: Arc<AtomicU64>,
        peers: &[Peer],
        node: NodeHandle,
        filter: FaultFilter,
        shutdown: CancellationToken,
    ) -> Self {
        let queues = Arc::new(Queues {
            by_peer: RwLock::new(HashMap::new()),
            node,
        });
        let sink = Arc::clone(&queues);
        let mut transport = Self {
            me,
            cluster_id,
            queues,
            links: HashMap::new(),
            filter,
            delays: DelayLines::new(format!("node-{me}-out"), move |msg| sink.push(msg)),
            shutdown,
            runtime: tokio::runtime::Handle::current(),
        };
        transport.set_members(peers);
        transport
    }

    fn open(&mut self, peer: &Peer) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let up = Arc::new(AtomicBool::new(false));
        let stop = self.shutdown.child_token();
        let link = PeerLink {
            me: self.me,
            cluster_id: Arc::clone(&self.cluster_id),
            peer: peer.clone(),
            queue: rx,
            node: self.queues.node.clone(),
            shutdown: stop.clone(),
            up: Arc::clone(&up),
            held: None,
            my_addr: self
                .queues
                .node
                .membership()
                .addr(self.me)
                .map(|p| p.peer_addr.to_string())
                .unwrap_or_default(),
        };
        self.runtime.spawn(link.run());
        self.queues
            .by_peer
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer.id, tx);
        self.links.insert(
            peer.id,
            Link {
                addr: peer.peer_addr.clone(),
                up,
                stop,
            },
        );
    }

    fn close(&mut self, id: u64) {
        if let Some(link) = self.links.remove(&id) {
            link.stop.cancel();
        }
        self.queues
            .by_peer
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

impl Transport for GrpcTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        self.send_numbered(msgs.into_iter().map(|m| (m, 0)).collect());
    }

    fn send_numbered(&mut self, msgs: Vec<(Message, u64)>) {
        for (msg, id) in msgs {
            let (verdict, id) = self.filter.outgoing_as(&msg, id);
            match verdict {
                Verdict::Deliver => self.delays.pass(msg.to, None, (msg, id)),
                Verdict::Delay(d) => self.delays.pass(msg.to, Some(d), (msg, id)),
                Verdict::Drop => {
                    // raft-rs holds a peer until it hears about its snapshot.
                    if is_snapshot(&msg) {
                        self.queues.node.report_snapshot(msg.to, false);
                    }
                }
            }
        }
    }

    fn link_up(&self, peer: u64) -> Option<bool> {
        self.links.get(&peer).map(|l| l.up.load(Ordering::Relaxed))
    }

    fn set_members(&mut self, peers: &[Peer]) {
        let wanted: HashMap<u64, &Peer> = peers
            .iter()
            .filter(|p| p.id != self.me)
            .map(|p| (p.id, p))
            .collect();
        let gone: Vec<u64> = self
            .links
            .iter()
            .filter(|(id, l)| wanted.get(id).is_none_or(|p| p.peer_addr != l.addr))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.close(id);
        }
        for (id, peer) in wanted {
            if !self.links.contains_key(&id) {
                self.open(peer);
            }
        }
    }
}

/// The sending side of the link to one peer.
struct PeerLink {
    me: u64,
    cluster_id: Arc<AtomicU64>,
    peer: Peer,
    queue: mpsc::Receiver<Outgoing>,
    node: NodeHandle,
    shutdown: CancellationToken,
    /// True while a stream to the peer is open.
    up: Arc<AtomicBool>,
    /// A snapshot taken off the queue while filling a batch: it goes alone, next.
    held: Option<Outgoing>,
    /// This node's own peer address, which its batches carry.
    my_addr: String,
}

impl PeerLink {
    async fn run(mut self) {
        let uri = format!("http://{}", self.peer.peer_addr);
        let endpoint = match Endpoint::from_shared(uri) {
            Ok(e) => e
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2))
                .keep_alive_while_idle(true),
            Err(e) => {
                tracing::error!("peer {} address is not a valid URI: {e}", self.peer.id);
                return;
            }
        };
        let mut backoff = BACKOFF_MIN;
        let mut was_connected = true;
        // The resolver's last complaint, said once until the name resolves again.
        let mut unresolved: Option<String> = None;
        loop {
            // tonic would look the name up too, but its failure is a generic "transport
            // error": looking it up first says which name failed and why.
            let resolved = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = self.peer.peer_addr.resolve() => r,
            };
            let connected = match resolved {
                Ok(_) => {
                    if unresolved.take().is_some() {
                        // The events timeline is logged too.
                        self.node.note(format!(
                            "{} resolves now: connecting to node {}",
                            self.peer.peer_addr.host(),
                            self.peer.id
                        ));
                    }
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        c = endpoint.connect() => c.map_err(|e| error_chain(&e)),
                    }
                }
                Err(e) => {
                    let why = format!(
                        "{e} (node {}'s address {})",
                        self.peer.id, self.peer.peer_addr
                    );
                    if unresolved.as_ref() != Some(&why) {
                        self.node
                            .note(format!("link to node {} down: {why}", self.peer.id));
                        unresolved = Some(why.clone());
                        was_connected = false;
                    }
                    Err(why)
                }
            };
            let reason = match connected {
                Ok(channel) => {
                    tracing::debug!("connected to peer {}", self.peer.id);
                    self.up.store(true, Ordering::Relaxed);
                    let opened = Instant::now();
                    let streamed = self.stream(channel).await;
                    self.up.store(false, Ordering::Relaxed);
                    // Only a stream that stayed up counts as a working link: a peer that
                    // accepts TCP and then refuses us (another cluster) keeps backing off.
                    if opened.elapsed() >= STABLE_LINK {
                        backoff = BACKOFF_MIN;
                        was_connected = true;
                    }
                    match streamed {
                        Ok(()) => return,
                        Err(reason) => reason,
                    }
                }
                Err(reason) => reason,
            };
            // Whatever is queued cannot be delivered now; Raft resends what matters.
            let held = self.held.take();
            let queued = std::iter::from_fn(|| self.queue.try_recv().ok());
            for (msg, _) in held.into_iter().chain(queued) {
                if is_snapshot(&msg) {
                    self.node.report_snapshot(self.peer.id, false);
                }
            }
            self.node.report_unreachable(self.peer.id);
            if was_connected {
                tracing::info!(
                    "link to peer {} at {} down: {reason}",
                    self.peer.id,
                    self.peer.peer_addr
                );
                was_connected = false;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Streams batches until the stream fails (Err with why) or the node stops (Ok).
    async fn stream(&mut self, channel: Channel) -> Result<(), String> {
        let (tx, rx) = mpsc::channel::<RaftBatch>(STREAM_WINDOW);
        let mut client = RaftTransportClient::new(channel)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES);
        let call = client.stream(ReceiverStream::new(rx));
        tokio::pin!(call);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return Ok(()),
                done = &mut call => {
                    return Err(match done {
                        Ok(_) => "peer closed the stream".to_string(),
                        Err(status) => {
                            self.refused(&status);
                            format!("{}: {}", status.code(), status.message())
                        }
                    });
                }
                msg = next_message(&mut self.held, &mut self.queue) => {
                    let Some(first) = msg else { return Ok(()) };
                    let (batch, snapshot) = self.batch(first);
                    let sent = tx.try_send(batch);
                    // raft-rs holds the peer until it hears about a snapshot. The stream is
                    // ordered: by the time the peer answers anything sent after this, it has
                    // installed the snapshot.
                    if snapshot {
                        self.node.report_snapshot(self.peer.id, sent.is_ok());
                    }
                    match sent {
                        Ok(()) => {}
                        // The peer is not reading (stopped, or far behind): drop.
                        Err(TrySendError::Full(_)) => self.node.report_unreachable(self.peer.id),
                        Err(TrySendError::Closed(_)) => return Err("stream closed".to_string()),
                    }
                }
            }
        }
    }

    /// What a peer's refusal tells this node: that it was removed (a member that applied
    /// its removal says so), or that its data dir is not the one the members know.
    fn refused(&self, status: &tonic::Status) {
        let index_after = |prefix: &str| {
            status
                .message()
                .strip_prefix(prefix)
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse::<u64>().ok())
        };
        match status.code() {
            tonic::Code::FailedPrecondition => {
                if let Some(index) = index_after(REMOVED_PREFIX) {
                    self.node.removed_by_peer(index);
                }
            }
            tonic::Code::PermissionDenied => {
                if let Some(as_of) = index_after(REPLACED_PREFIX) {
                    // A member that has not applied this node's (re-)addition yet knows an
                    // older data dir of the id: that passes once it catches up.
                    let added_at = self.node.membership().with(|m| m.added_at(self.me));
                    if added_at == 0 || as_of >= added_at {
                        let why = status.message().split_once(": ").map_or("", |(_, w)| w);
                        self.node.refused_by_peer(Some(format!(
                            "refused by node {}: {why}",
                            self.peer.id
                        )));
                    }
                }
            }
            _ => {}
        }
    }

    /// `first` plus whatever else is already queued, within the batch limits; and whether
    /// it carries a snapshot.
    fn batch(&mut self, first: Outgoing) -> (RaftBatch, bool) {
        let mut batch = RaftBatch {
            cluster_id: self.cluster_id.load(Ordering::Relaxed),
            from: self.me,
            to: self.peer.id,
            messages: Vec::new(),
            incarnation: self.node.incarnation(),
            from_addr: self.my_addr.clone(),
            msg_ids: Vec::new(),
        };
        let mut ids = Vec::new();
        let mut bytes = 0;
        let mut snapshot = false;
        let mut next = Some(first);
        while let Some((msg, id)) = next {
            // A snapshot (the whole state machine) always travels alone, so a batch never
            // exceeds what the peer accepts by more than one message.
            if is_snapshot(&msg) && !batch.messages.is_empty() {
                self.held = Some((msg, id));
                break;
            }
            match msg.write_to_bytes() {
                Ok(encoded) => {
                    bytes += encoded.len();
                    batch.messages.push(encoded);
                    ids.push(id);
                    snapshot |= is_snapshot(&msg);
                }
                Err(e) => {
                    tracing::error!("cannot encode a raft message: {e}");
                    if is_snapshot(&msg) {
                        self.node.report_snapshot(self.peer.id, false);
                    }
                }
            }
            if snapshot || batch.messages.len() >= BATCH_MESSAGES || bytes >= BATCH_BYTES {
                break;
            }
            next = self.queue.try_recv().ok();
        }
        // Only while watched: an unwatched node's batches stay as they were.
        if ids.iter().any(|id| *id != 0) {
            batch.msg_ids = ids;
        }
        (batch, snapshot)
    }
}

/// An error and its causes in one line: tonic's own text for a failed connect is only
/// "transport error", the cause (refused, timed out) is in the chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let cause = s.to_string();
        // Some layers repeat their cause in their own text.
        if !text.ends_with(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    text
}

/// The held snapshot, if any, else the next queued message (waiting for one).
async fn next_message(
    held: &mut Option<Outgoing>,
    queue: &mut mpsc::Receiver<Outgoing>,
) -> Option<Outgoing> {
    match held.take() {
        Some(msg) => Some(msg),
        None => queue.recv().await,
    }
}
