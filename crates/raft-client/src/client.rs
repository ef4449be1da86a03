//! The smart client: finds the leader, follows its hints, retries with backoff and the
//! same request id, and never runs past its deadline.
//!
//! One [`SmartClient`] serves both the one-shot commands and the TUI. Writes carry a
//! `(client_id, seq)`; every retry of one write reuses it, so the cluster applies it at
//! most once however often it is resent.
//!
//! How long to wait: the node believed to lead gets the request's whole remaining deadline
//! (a slow commit is not a dead leader), unless it says otherwise; any other node a short
//! attempt. Every 1.5 s of silence the node is asked (`Status`, answered beside Raft)
//! whether it leads and is not frozen (`fault freeze`): if it says so, the same call goes
//! on waiting, so a slow commit is not re-proposed elsewhere; if it says it no longer leads
//! or is frozen, the client moves on. A node that is gone (or a process that is paused) is
//! told apart by its connection, not by its silence: it refuses or does not accept one
//! within 500 ms, or stops answering HTTP/2 pings while a call waits. Only such a node is
//! skipped when a hint names it.
//!
//! The cluster changes shape: the client starts from `--peers` and learns the API address
//! of every member it hears of (a hint naming a node it did not know, the members a node's
//! `Status` lists, looked up now and then after a success), so it keeps working after the
//! nodes it was started with are removed.
//!
//! Addresses are `host:port`, the host a name or an IP address; names are looked up at
//! each connect. One that does not resolve counts as a node that refused the connection
//! (nothing was sent), and once every address known has failed to resolve, the request
//! ends at once saying so, rather than retrying names until the deadline.
//!
//! [`SmartClient::watching`] tells a caller about each attempt as soon as it ends, so the TUI
//! can show the client looking for the leader while it looks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kv_proto::kv::kv_api_client::KvApiClient;
use kv_proto::kv::{self as pb};
use prost::Message as _;
use rand::Rng as _;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::read_from::ReadFrom;
use crate::trace::{Hop, HopOutcome, Reason, Trace};

/// The default client API addresses.
pub const DEFAULT_PEERS: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";
/// Longest an attempt at a node not known to lead may take: a live node that does not lead
/// answers at once (naming the leader), so one that is silent this long is stuck or busy,
/// and the next node is asked. The known leader gets the whole deadline (see `call`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// While a call waits, its connection is pinged (HTTP/2 PING) this often, and dropped when
/// a ping is not answered within [`KEEPALIVE_TIMEOUT`]. A node's gRPC server answers pings
/// whatever its Raft thread is doing, so this tells a node that is gone or frozen (SIGSTOP,
/// a dead host) from one that is slow to commit, within about a second and a half.
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_millis(1000);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Longest pause between attempts: short, so a write lands soon after an election ends.
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster refused the request as bad input; retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// No node completed the request before the deadline. For a write the outcome is
    /// unknown (it may or may not have been applied), unless no attempt ever connected.
    #[error("{}", unavailable_message(*.write, *.timeout, .last, .trace))]
    Unavailable {
        /// Was the request a write.
        write: bool,
        /// The deadline it ran out of.
        timeout: Duration,
        /// The last thing a node said.
        last: String,
        /// Every attempt.
        trace: Trace,
    },
    /// The cluster applied a newer write of this client first; this one was not applied
    /// then, and whether it was applied before is unknown. Not retried.
    #[error("{0}")]
    Superseded(String),
    /// The one node asked (a pinned client) is not the leader: nothing was written there, or
    /// it cannot confirm a value is current.
    #[error("{}", not_leader_here(.said, *.write))]
    NotLeaderHere {
        /// What the node said.
        said: String,
        /// Was the request a write.
        write: bool,
    },
    /// An address in `--peers` is not usable.
    #[error("{}", bad_address_message(.0))]
    BadAddress(String),
}

fn not_leader_here(said: &str, write: bool) -> String {
    if write {
        format!("{said}; asked only that node: nothing was written")
    } else {
        format!(
            "{said}; asked only that node: it knows no leader to confirm with that its copy is \
             current (get --stale reads its copy anyway)"
        )
    }
}

fn bad_address_message(addr: &str) -> String {
    if addr.contains('=') {
        format!(
            "bad address {addr:?} in --peers: the client takes the nodes' client API addresses \
             without ids, host:port,... (e.g. 127.0.0.1:7001,127.0.0.1:7002); id=host:port is \
             raft-server's --peers"
        )
    } else {
        format!("bad address {addr:?} in --peers: use host:port, e.g. 127.0.0.1:7001")
    }
}

/// How to start the cluster, for a client that found nobody listening.
const START_HINT: &str = "is the cluster running? Start it with ./playground, or with \
     cargo run -p raft-server -- --id N for N = 1, 2, 3 in three terminals";

fn unavailable_message(write: bool, timeout: Duration, last: &str, trace: &Trace) -> String {
    let secs = timeout.as_secs_f64();
    let addrs = || {
        let mut seen: Vec<&str> = Vec::new();
        for h in &trace.hops {
            if !seen.contains(&h.addr.as_str()) {
                seen.push(&h.addr);
            }
        }
        seen.join(", ")
    };
    let hops = &trace.hops;
    let unresolved = |h: &Hop| matches!(h.outcome, HopOutcome::Unresolved(_));
    if !hops.is_empty() && hops.iter().all(unresolved) {
        let what = if write {
            "nothing was written"
        } else {
            "no node was asked"
        };
        let mut whys: Vec<&str> = Vec::new();
        for h in hops {
            if let HopOutcome::Unresolved(m) = &h.outcome
                && !whys.contains(&m.as_str())
            {
                whys.push(m);
            }
        }
        return format!(
            "{what}: {}; check the host names in --peers",
            whys.join("; ")
        );
    }
    if !hops.is_empty() && hops.iter().all(|h| h.outcome == HopOutcome::NotClientApi) {
        return format!(
            "{} {} not serve the client API: peer ports? A node serves clients on its peer \
             port + 1000 (--peers {})",
            addrs(),
            if distinct(hops) > 1 { "do" } else { "does" },
            client_ports(hops)
        );
    }
    if !hops.is_empty() && hops.iter().all(|h| !h.outcome.reached_node()) {
        let what = if write {
            "nothing was written: no node accepted a connection"
        } else {
            "no node accepted a connection"
        };
        let why = match &hops[hops.len() - 1].outcome {
            HopOutcome::Refused(m) | HopOutcome::Unresolved(m) => m.as_str(),
            _ => "",
        };
        return format!(
            "{what} within {secs:.1}s ({}: {why}); {START_HINT}",
            addrs()
        );
    }
    let what = if write {
        "the write's outcome is unknown: no leader confirmed it"
    } else {
        "no node could answer"
    };
    format!("{what} within {secs:.1}s (last: {last})")
}

/// How many different addresses the hops went to.
fn distinct(hops: &[Hop]) -> usize {
    let mut seen: Vec<&str> = hops.iter().map(|h| h.addr.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// The addresses tried with 1000 added to each port: the client API of a peer port.
fn client_ports(hops: &[Hop]) -> String {
    let mut out: Vec<String> = Vec::new();
    for h in hops {
        let guess = match h.addr.rsplit_once(':') {
            Some((host, port)) => {
                match port.parse::<u16>().ok().and_then(|p| p.checked_add(1000)) {
                    Some(p) => format!("{host}:{p}"),
                    None => h.addr.clone(),
                }
            }
            None => h.addr.clone(),
        };
        if !out.contains(&guess) {
            out.push(guess);
        }
    }
    out.join(",")
}

/// A finished request: the answer and how it was reached.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// The answer.
    pub value: T,
    /// The attempts.
    pub trace: Trace,
}

/// The answer of one node to `Status`, or why there was none.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The address asked.
    pub api_addr: String,
    /// The node's status, or the error.
    pub status: Result<pb::StatusResponse, String>,
}

/// A client of the whole cluster. Cheap to share behind an `Arc`; all methods take `&self`.
/// Writes from one client run one at a time: the cluster remembers only a client's latest
/// write, so sequence numbers must reach it in order.
pub struct SmartClient {
    writes: tokio::sync::Mutex<()>,
    /// `--peers`, then every member address learned since.
    peers: Mutex<Vec<String>>,
    /// When members were last looked up from a node's `Status`.
    learned_at: Mutex<Option<Instant>>,
    /// The answer of the last lookup, once it arrives.
    pending_status: Mutex<Option<tokio::sync::oneshot::Receiver<pb::StatusResponse>>>,
    timeout: Duration,
    client_id: u64,
    next_seq: AtomicU64,
    leader: Mutex<Option<String>>,
    channels: Mutex<HashMap<String, Channel>>,
    /// Ask only the nodes in `peers`, and take "not the leader" as the answer.
    pinned: bool,
    /// Where linearizable reads go first.
    read_from: ReadFrom,
}

impl SmartClient {
    /// A client of the nodes at `peers` (client API addresses) whose requests each end
    /// within `timeout`, retries included.
    pub fn new(peers: Vec<String>, timeout: Duration) -> Result<Self, ClientError> {
        for p in &peers {
            endpoint(p)?;
        }
        if peers.is_empty() {
            return Err(ClientError::BadAddress(String::new()));
        }
        let mut rng = rand::rng();
        Ok(Self {
            writes: tokio::sync::Mutex::new(()),
            peers: Mutex::new(peers),
            learned_at: Mutex::new(None),
            pending_status: Mutex::new(None),
            timeout,
            client_id: rng.random_range(1..u64::MAX),
            next_seq: AtomicU64::new(1),
            leader: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            pinned: false,
            read_from: ReadFrom::Leader,
        })
    }

    /// This client, sending linearizable reads first where `read_from` says.
    pub fn with_read_from(mut self, read_from: ReadFrom) -> Self {
        self.read_from = read_from;
        self
    }

    /// Where this client sends linearizable reads first.
    pub fn read_from(&self) -> ReadFrom {
        self.read_from
    }

    /// This client, made to ask only its own nodes: a "not the leader" answer ends the
    /// request (no hint is followed elsewhere). For asking one node on purpose.
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// The addresses this client knows: `--peers` and the members learned since.
    pub fn peers(&self) -> Vec<String> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds an address this client did not know.
    fn learn(&self, addr: &str) {
        if addr.is_empty() || endpoint(addr).is_err() {
            return;
        }
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if !peers.iter().any(|p| p == addr) {
            peers.push(addr.to_string());
        }
    }

    /// Learns the members `status` lists.
    pub fn learn_members(&self, status: &pb::StatusResponse) {
        for p in status.peers.iter().filter(|p| !p.role.is_empty()) {
            self.learn(&p.api_addr);
        }
    }

    /// After a success at `addr`: looks up the members there, at most every few seconds and
    /// in the background, so requests do not wait for it.
    fn refresh_members(&self, addr: &str) {
        const EVERY: Duration = Duration::from_secs(2);
        {
            let mut at = self
                .learned_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if at.is_some_and(|t| t.elapsed() < EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        let Ok(channel) = self.channel(addr) else {
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut api = KvApiClient::new(channel);
            let asked = tokio::time::timeout(EVERY, api.status(pb::StatusRequest {})).await;
            if let Ok(Ok(s)) = asked {
                let _ = tx.send(s.into_inner());
            }
        });
        *self
            .pending_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(rx);
    }

    /// Takes in a member list looked up in the background, if one has arrived.
    fn take_learned(&self) {
        let mut pending = self
            .pending_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = pending.as_mut()
            && let Ok(status) = rx.try_recv()
        {
            *pending = None;
            drop(pending);
            self.learn_members(&status);
        }
    }

    /// The leader address remembered from the last answer, if any.
    pub fn leader_hint(&self) -> Option<String> {
        self.leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// This client's id (the first half of every write's request id).
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Sets `key` to `value`.
    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<Reply<pb::WriteResponse>, ClientError> {
        self.watching(&|_| {}).put(key, value).await
    }

    /// Sets `key` to `value`, asking every node to stamp its journey ([`crate::journey`]).
    pub async fn put_timed(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<Reply<pb::WriteResponse>, ClientError> {
        self.watching(&|_| {}).put_with(key, value, true).await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<Reply<pb::WriteResponse>, ClientError> {
        self.watching(&|_| {}).delete(key).await
    }

    /// Reads `key`: linearizable through the leader, or from any node when `stale`.
    pub async fn get(&self, key: &str, stale: bool) -> Result<Reply<pb::GetResponse>, ClientError> {
        self.watching(&|_| {}).get(key, stale).await
    }

    /// This client, calling `watch` with each attempt of the next request as soon as the
    /// attempt ends (the reply's trace still has them all). Requests behave exactly as
    /// without it.
    pub fn watching<'a>(&'a self, watch: &'a (dyn Fn(&Hop) + Sync)) -> Watched<'a> {
        Watched {
            client: self,
            watch,
        }
    }

    /// Asks every node for its status, in parallel, each within the client's timeout
    /// (capped so one frozen node does not hold up the rest for long).
    pub async fn status_all(&self) -> Vec<NodeReport> {
        self.status_all_within(self.timeout.min(Duration::from_secs(2)))
            .await
    }

    /// Asks every node for its status in parallel, each within `per_node`.
    pub async fn status_all_within(&self, per_node: Duration) -> Vec<NodeReport> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, addr) in self.peers().iter().enumerate() {
            let addr = addr.clone();
            let channel = self.channel(&addr);
            tasks.spawn(async move {
                let status = match channel {
                    Ok(ch) => {
                        let mut c = KvApiClient::new(ch);
                        match tokio::time::timeout(per_node, c.status(pb::StatusRequest {})).await {
                            Ok(Ok(r)) => Ok(r.into_inner()),
                            Ok(Err(s)) => Err(describe_at(&addr, &s)),
                            Err(_) => Err(format!("no answer within {per_node:?}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                (
                    i,
                    NodeReport {
                        api_addr: addr,
                        status,
                    },
                )
            });
        }
        let mut reports: Vec<(usize, NodeReport)> = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(r) = r {
                reports.push(r);
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        for (_, r) in &reports {
            if let Ok(status) = &r.status {
                self.learn_members(status);
            }
        }
        // With no leader known yet, the one these answers name (highest term) is where the
        // next request goes first, not whichever node is first in --peers.
        if self.leader_hint().is_none() {
            let leader = reports
                .iter()
                .filter_map(|(_, r)| r.status.as_ref().ok().map(|s| (r, s)))
                .filter(|(_, s)| s.role == "Leader" && !s.frozen && s.removed_at == 0)
                .max_by_key(|(_, s)| s.term);
            if let Some((r, _)) = leader {
                self.set_leader(Some(r.api_addr.clone()));
            }
        }
        reports.into_iter().map(|(_, r)| r).collect()
    }

    fn request_id(&self) -> pb::RequestId {
        pb::RequestId {
            client_id: self.client_id,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A client of the admin API (faults, slow motion) of the node at `addr`.
    pub fn admin_at(
        &self,
        addr: &str,
    ) -> Result<kv_proto::admin::admin_client::AdminClient<Channel>, ClientError> {
        Ok(kv_proto::admin::admin_client::AdminClient::new(
            self.channel(addr)?,
        ))
    }

    /// The request deadline this client was made with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn channel(&self, addr: &str) -> Result<Channel, ClientError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ch) = channels.get(addr) {
            return Ok(ch.clone());
        }
        let ch = endpoint(addr)?.connect_lazy();
        channels.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }

    fn set_leader(&self, addr: Option<String>) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = addr;
    }

    /// Runs `op` against nodes until one succeeds, the request is rejected, or the
    /// deadline passes; `watch` hears of each attempt as it ends. See the module doc for
    /// the rules. `first` is the node to ask first instead of the leader hint (a read from
    /// any member).
    async fn call<T, F, Fut>(
        &self,
        write_id: Option<pb::RequestId>,
        only_leader_answers: bool,
        first: Option<String>,
        watch: &(dyn Fn(&Hop) + Sync),
        op: F,
    ) -> Result<Reply<T>, ClientError>
    where
        F: Fn(KvApiClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut trace = Trace {
            hops: Vec::new(),
            request_id: write_id.map(|id| (id.client_id, id.seq)),
        };
        self.take_learned();
        let mut peers = self.peers();
        let mut next_peer = rand::rng().random_range(0..peers.len());
        let (mut target, mut reason) = match (first, self.leader_hint()) {
            (Some(addr), _) => (addr, Reason::AnyMember),
            (None, Some(addr)) => (addr, Reason::KnownLeader),
            (None, None) => (peers[next_peer].clone(), Reason::NextPeer),
        };
        let mut backoff = BACKOFF_MIN;
        let mut last = String::from("no attempt made");
        // Addresses that failed to answer during this request. A hint naming one of them is
        // stale (nodes keep naming a dead leader until they elect a new one), so it is not
        // followed at once; the node is still retried in turn.
        let mut failed: Vec<String> = Vec::new();
        // Addresses that answered as something other than the client API: they will not
        // change their mind, so once every address has, the request ends.
        let mut not_api: Vec<String> = Vec::new();
        // Addresses whose host name did not resolve during this request.
        let mut unresolved: Vec<String> = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Unavailable {
                    write: write_id.is_some(),
                    timeout: self.timeout,
                    last,
                    trace,
                });
            }
            // The node believed to lead (it answered as leader last time, or a node just
            // named it) may take the whole remaining deadline: its commit can be slow (a slow
            // disk, a large snapshot being written), and cutting it short would only
            // re-propose elsewhere, be sent back to it, and end in "outcome unknown" for a
            // write that would have succeeded. If it is gone or frozen instead, the
            // connection's keepalive fails the call (a transport error, see `endpoint`).
            let patient = matches!(reason, Reason::KnownLeader | Reason::Redirect);
            let client = KvApiClient::new(self.channel(&target)?)
                .max_decoding_message_size(kv_proto::MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(kv_proto::MAX_GRPC_MESSAGE_BYTES);
            let t0 = Instant::now();
            let call = op(client);
            tokio::pin!(call);
            // Every ATTEMPT_TIMEOUT of silence the node is asked whether it still leads,
            // unfrozen. The node believed to lead goes on waiting unless it says otherwise
            // (a `Status` that does not come is no answer: its connection tells a dead node);
            // any other node only if it says it leads.
            let mut result =
                tokio::time::timeout((deadline - now).min(ATTEMPT_TIMEOUT), &mut call).await;
            while result.is_err() && Instant::now() < deadline {
                let waits = match self.leading(&target).await {
                    Some(leads) => leads,
                    None => patient,
                };
                if !waits {
                    if patient {
                        self.forget_leader(&target);
                    }
                    break;
                }
                // Silent but leading: its commit is slow. Keep waiting on the same call.
                self.set_leader(Some(target.clone()));
                let rest = deadline.saturating_duration_since(Instant::now());
                result = tokio::time::timeout(rest.min(ATTEMPT_TIMEOUT), &mut call).await;
            }
            let mut hop = Hop {
                addr: target.clone(),
                reason,
                // Sent before only if an earlier attempt got as far as a connection.
                resent: write_id.is_some() && trace.hops.iter().any(|h| h.outcome.reached_node()),
                outcome: HopOutcome::Ok,
                elapsed: t0.elapsed(),
            };
            // Where to go next, and whether to pause first.
            let mut redirect = None;
            match result {
                Ok(Ok(resp)) => {
                    if only_leader_answers {
                        self.set_leader(Some(target.clone()));
                    }
                    if !self.pinned {
                        self.refresh_members(&target);
                    }
                    watch(&hop);
                    trace.hops.push(hop);
                    return Ok(Reply {
                        value: resp.into_inner(),
                        trace,
                    });
                }
                Ok(Err(status)) => match status.code() {
                    Code::InvalidArgument => {
                        return Err(ClientError::Rejected(status.message().to_string()));
                    }
                    Code::Aborted => {
                        return Err(ClientError::Superseded(status.message().to_string()));
                    }
                    // A server without the KvApi service (a peer port, most likely), or an
                    // HTTP server that is no gRPC server at all (tonic maps its 404 here).
                    Code::Unimplemented => {
                        hop.outcome = HopOutcome::NotClientApi;
                        self.forget_leader(&target);
                        if !not_api.contains(&target) {
                            not_api.push(target.clone());
                        }
                    }
                    Code::FailedPrecondition => {
                        let hint = pb::LeaderHint::decode(status.details()).unwrap_or_default();
                        let leader = (hint.leader_id != 0 && !hint.api_addr.is_empty())
                            .then(|| (hint.leader_id, hint.api_addr.clone()));
                        hop.outcome = HopOutcome::NotLeader {
                            leader: leader.clone(),
                        };
                        if self.pinned {
                            let said = format!("{}: {}", hop.addr, hop.outcome);
                            // An earlier attempt that timed out or lost leadership may have
                            // been proposed: then the outcome is unknown, not "nothing".
                            let maybe_proposed = write_id.is_some()
                                && trace.hops.iter().any(|h| {
                                    matches!(
                                        h.outcome,
                                        HopOutcome::Timeout | HopOutcome::Unavailable(_)
                                    )
                                });
                            if !maybe_proposed {
                                return Err(ClientError::NotLeaderHere {
                                    said,
                                    write: write_id.is_some(),
                                });
                            }
                            trace.hops.push(hop);
                            return Err(ClientError::Unavailable {
                                write: true,
                                timeout: start.elapsed(),
                                last: said,
                                trace,
                            });
                        }
                        match leader {
                            Some((_, addr)) if addr != target && !failed.contains(&addr) => {
                                redirect = Some(addr)
                            }
                            _ => self.forget_leader(&target),
                        }
                    }
                    _ => {
                        self.forget_leader(&target);
                        hop.outcome = if let Some(why) = dns_failure(&status) {
                            failed.push(target.clone());
                            unresolved.push(target.clone());
                            HopOutcome::Unresolved(format!(
                                "{UNRESOLVED}{}: {why}",
                                host_of(&target)
                            ))
                        } else if is_connect_error(&status) {
                            failed.push(target.clone());
                            HopOutcome::Refused(describe(&status))
                        } else if is_transport_error(&status) {
                            failed.push(target.clone());
                            HopOutcome::Unreachable(describe(&status))
                        } else {
                            HopOutcome::Unavailable(status.message().to_string())
                        };
                    }
                },
                Err(_) => {
                    // Slow, not gone (its connection still answers pings): a hint naming it
                    // is followed, and then it gets the whole deadline.
                    hop.outcome = HopOutcome::Timeout;
                }
            }
            last = format!("{}: {}", hop.addr, hop.outcome);
            watch(&hop);
            trace.hops.push(hop);
            // Nothing left to try: every address is not the client API or its name did not
            // resolve just now (a typo, most likely; a name that comes up later is found by
            // the next command).
            if peers
                .iter()
                .all(|p| not_api.contains(p) || unresolved.contains(p))
            {
                return Err(ClientError::Unavailable {
                    write: write_id.is_some(),
                    timeout: self.timeout,
                    last,
                    trace,
                });
            }
            match redirect {
                // A fresh hint: go there at once, unless we keep bouncing around.
                Some(addr) if trace.redirects() < 2 * peers.len() => {
                    // A leader this client did not know of (a node added since it started).
                    self.learn(&addr);
                    self.set_leader(Some(addr.clone()));
                    target = addr;
                    reason = Reason::Redirect;
                    continue;
                }
                Some(addr) => {
                    target = addr;
                    reason = Reason::Redirect;
                }
                None => {
                    // The next node in the list, skipping the one that just failed.
                    self.take_learned();
                    peers = self.peers();
                    let failed = std::mem::take(&mut target);
                    for _ in 0..peers.len() {
                        next_peer = (next_peer + 1) % peers.len();
                        target = peers[next_peer].clone();
                        if target != failed {
                            break;
                        }
                    }
                    reason = Reason::NextPeer;
                }
            }
            let pause = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
            let pause = pause.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// What the node at `addr` says, within a short bound, of whether it leads and is not
    /// frozen; `None` when it says nothing (no `Status` in time, or none at all). `Status`
    /// is answered beside the node's Raft thread, so a leader busy committing still answers.
    async fn leading(&self, addr: &str) -> Option<bool> {
        let mut api = KvApiClient::new(self.channel(addr).ok()?);
        let asked =
            tokio::time::timeout(Duration::from_millis(300), api.status(pb::StatusRequest {}));
        let s = asked.await.ok()?.ok()?.into_inner();
        Some(s.role == "Leader" && !s.frozen)
    }

    fn forget_leader(&self, addr: &str) {
        let mut leader = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
        if leader.as_deref() == Some(addr) {
            *leader = None;
        }
    }
}

/// Checks a key (and value) against the cluster's limits before sending anything.
fn validate(key: &str, value: Option<&[u8]>) -> Result<(), ClientError> {
    kv_proto::validate_key(key).map_err(ClientError::Rejected)?;
    if let Some(v) = value {
        kv_proto::validate_value(v).map_err(ClientError::Rejected)?;
    }
    Ok(())
}

fn endpoint(addr: &str) -> Result<Endpoint, ClientError> {
    // host:port with a numeric port, and nothing a URI would read as a path or user.
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok || addr.contains(['/', '=', '@']) {
        return Err(ClientError::BadAddress(addr.to_string()));
    }
    Endpoint::from_shared(format!("http://{addr}"))
        .map(|e| {
            e.connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        })
        .map_err(|_| ClientError::BadAddress(addr.to_string()))
}

/// True when the status came from the connection, not from a node's answer.
fn is_transport_error(status: &Status) -> bool {
    use std::error::Error as _;
    // A node's own answers always carry gRPC response headers; connection failures carry
    // the underlying error instead.
    status.source().is_some() || status.metadata().get("content-type").is_none()
}

/// True when no connection could be made, so the request was never sent: hyper's connector
/// failed (refused, no route, or nothing within the connect timeout).
fn is_connect_error(status: &Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(s) = source {
        if s.to_string().starts_with("tcp connect error") {
            return true;
        }
        source = s.source();
    }
    false
}

/// What the resolver said when a connection could not be made because the host name did
/// not resolve: hyper's connector fails with "dns error", caused by getaddrinfo's complaint.
fn dns_failure(status: &Status) -> Option<String> {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(s) = source {
        if s.to_string().starts_with("dns error") {
            // The resolver's own words are at the end of the chain (tonic wraps hyper's
            // error, which wraps the io::Error).
            let mut cause = s.source();
            let mut detail = String::from("the name has no address");
            while let Some(c) = cause {
                detail = c.to_string();
                cause = c.source();
            }
            // std words every failure "failed to lookup address information: <what
            // getaddrinfo said>"; the caller names the host.
            let detail = detail
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&detail);
            return Some(detail.to_string());
        }
        source = s.source();
    }
    None
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One line for a failed call to `addr`: as [`describe`], and naming the host when it
/// did not resolve.
pub fn describe_at(addr: &str, status: &Status) -> String {
    match dns_failure(status) {
        Some(why) => format!("{UNRESOLVED}{}: {why}", host_of(addr)),
        // A server without the client API: a peer port, most likely.
        None if status.code() == Code::Unimplemented => format!(
            "{addr} does not serve the client API: a peer port? A node serves clients on its \
             peer port + 1000"
        ),
        None => describe(status),
    }
}

/// When no node answered because no name in `reports` resolved: the line to print (each
/// report's error then comes from [`describe_at`]). `None` if any answered or failed
/// otherwise.
pub fn all_unresolved(reports: &[NodeReport]) -> Option<String> {
    let mut whys: Vec<&str> = Vec::new();
    for r in reports {
        match &r.status {
            Err(e) if e.starts_with(UNRESOLVED) => whys.push(e),
            _ => return None,
        }
    }
    (!whys.is_empty()).then(|| format!("{}; check the host names in --peers", whys.join("; ")))
}

/// How [`describe_at`] starts for a name that did not resolve.
const UNRESOLVED: &str = "cannot resolve ";

/// One line for a failed call.
pub fn describe(status: &Status) -> String {
    use std::error::Error as _;
    let mut msg = status.message().to_string();
    let mut source = status.source();
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    if msg.is_empty() {
        format!("{}", status.code())
    } else {
        msg
    }
}

/// A client whose next request reports each attempt as it ends (see
/// [`SmartClient::watching`]).
pub struct Watched<'a> {
    client: &'a SmartClient,
    watch: &'a (dyn Fn(&Hop) + Sync),
}

impl Watched<'_> {
    /// Sets `key` to `value`.
    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<Reply<pb::WriteResponse>, ClientError> {
        self.put_with(key, value, false).await
    }

    /// Sets `key` to `value`; with `timing`, every node stamps the write's journey.
    pub async fn put_with(
        &self,
        key: &str,
        value: &[u8],
        timing: bool,
    ) -> Result<Reply<pb::WriteResponse>, ClientError> {
        validate(key, Some(value))?;
        let c = self.client;
        let _one_write_at_a_time = c.writes.lock().await;
        let id = c.request_id();
        let req = pb::PutRequest {
            key: key.to_string(),
            value: value.to_vec(),
            id: Some(id),
            timing,
        };
        c.call(Some(id), true, None, self.watch, move |mut api| {
            let req = req.clone();
            async move { api.put(req).await }
        })
        .await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<Reply<pb::WriteResponse>, ClientError> {
        validate(key, None)?;
        let c = self.client;
        let _one_write_at_a_time = c.writes.lock().await;
        let id = c.request_id();
        let req = pb::DeleteRequest {
            key: key.to_string(),
            id: Some(id),
        };
        c.call(Some(id), true, None, self.watch, move |mut api| {
            let req = req.clone();
            async move { api.delete(req).await }
        })
        .await
    }

    /// Reads `key`: linearizable (first at the leader, or at a random member with
    /// `--read-from any`; a pinned client's one node answers itself), or from any node's
    /// own copy when `stale`.
    pub async fn get(&self, key: &str, stale: bool) -> Result<Reply<pb::GetResponse>, ClientError> {
        validate(key, None)?;
        let c = self.client;
        let any = !stale && (c.read_from == ReadFrom::Any || c.pinned);
        let req = pb::GetRequest {
            key: key.to_string(),
            stale,
            any_member: any,
        };
        let first = if stale || c.pinned {
            None
        } else {
            c.read_from.first_member(&c.peers())
        };
        // Any node answers a stale read or a read from any member, so its success says
        // nothing about the leader.
        c.call(None, !stale && !any, first, self.watch, move |mut api| {
            let req = req.clone();
            async move { api.get(req).await }
        })
        .await
    }
}
