//! The live view's source of records: one watch stream per member, each reconnecting
//! (with backoff) when its node goes away and comes back, and a supervisor that follows
//! the membership (the leader's member list, and the `Status` of the nodes in `--peers`),
//! opening a stream to a node that joins and closing the one of a node that leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kv_proto::watch::{self as pb, watch_client::WatchClient};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::SmartClient;
use crate::members;

/// How often the supervisor looks at the membership.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// Log entries each stream asks for first.
const TAIL: u32 = 256;

/// What the streams say.
#[derive(Debug)]
pub enum Feed {
    /// A record from a node (boxed: records are large, and most of what flows).
    Record(Box<pb::WatchRecord>),
    /// Node `id`'s stream is down, and why.
    Down(u64, String),
}

/// Starts the supervisor; records come out of the returned channel. Aborting the handle
/// ends every stream.
pub fn spawn(client: Arc<SmartClient>) -> (mpsc::Receiver<Feed>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4096);
    let supervisor = tokio::spawn(async move {
        let mut streams: BTreeMap<u64, (String, JoinHandle<()>)> = BTreeMap::new();
        loop {
            let wanted = members_now(&client).await;
            for (id, addr) in &wanted {
                let stale = streams.get(id).is_some_and(|(a, _)| a != addr);
                if stale && let Some((_, task)) = streams.remove(id) {
                    task.abort();
                }
                if !streams.contains_key(id) {
                    let task = tokio::spawn(stream(*id, addr.clone(), tx.clone()));
                    streams.insert(*id, (addr.clone(), task));
                }
            }
            if !wanted.is_empty() {
                streams.retain(|id, (_, task)| {
                    let keep = wanted.contains_key(id);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
            }
            if tx.is_closed() {
                break;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
        for (_, (_, task)) in streams {
            task.abort();
        }
    });
    (rx, supervisor)
}

/// The members and their client addresses: the leader's list when there is a leader, else
/// what the nodes in `--peers` say of themselves.
async fn members_now(client: &SmartClient) -> BTreeMap<u64, String> {
    let reports = client.status_all_within(Duration::from_millis(800)).await;
    let mut out: BTreeMap<u64, String> = reports
        .iter()
        .filter_map(|r| r.status.as_ref().ok().map(|s| (r, s)))
        .filter(|(_, s)| s.removed_at == 0)
        .map(|(r, s)| (s.id, r.api_addr.clone()))
        .collect();
    if let Ok(list) = members::list(client).await {
        let listed: BTreeMap<u64, String> = list
            .members
            .into_iter()
            .filter(|m| !m.api_addr.is_empty())
            .map(|m| (m.id, m.api_addr))
            .collect();
        if !listed.is_empty() {
            out = listed;
        }
    }
    out
}

/// Pauses between attempts to reach a node whose stream broke: a node that restarts is
/// watched again within half a second (what it does before that is not seen).
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_millis(500);

/// Node `id`'s stream at `addr`, forever: every record to `tx`, a `Down` when it breaks,
/// then again after a pause (short again once a stream has worked).
async fn stream(id: u64, addr: String, tx: mpsc::Sender<Feed>) {
    let mut backoff = RETRY_MIN;
    loop {
        let mut streamed = false;
        let why = match watch_once(&addr, &tx, &mut streamed).await {
            Ok(()) => "the node ended the stream".to_string(),
            Err(why) => why,
        };
        if tx.send(Feed::Down(id, why)).await.is_err() {
            return;
        }
        if streamed {
            backoff = RETRY_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

async fn watch_once(
    addr: &str,
    tx: &mpsc::Sender<Feed>,
    streamed: &mut bool,
) -> Result<(), String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_millis(800))
        .connect()
        .await
        .map_err(|e| last_cause(&e))?;
    let mut stream = WatchClient::new(channel)
        .watch(pb::WatchRequest { log_tail: TAIL })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    *streamed = true;
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        for record in batch.records {
            if tx.send(Feed::Record(Box::new(record))).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The innermost cause of an error (tonic's own text for a failed connect is "transport
/// error"; the cause, "Connection refused", is what a person wants).
fn last_cause(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}
