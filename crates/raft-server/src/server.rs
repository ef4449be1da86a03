//! Wires a node together: binds both ports, opens the data dir, starts the driver thread,
//! the peer transport and both gRPC services, and stops them all on shutdown.
//!
//! Ports are bound before the data dir is touched, so a busy port fails fast and leaves
//! nothing behind.
//!
//! The node binds its own `--peers` address, or `--listen` when given. A host name there
//! is looked up once, at start, and the node listens on every address it resolves to
//! (`localhost` is often both 127.0.0.1 and ::1, and a client may try either). A name that
//! does not resolve, or resolves to no address of this machine, stops the start with one
//! line naming it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread;

use kv_proto::admin::admin_server::AdminServer;
use kv_proto::kv::kv_api_server::KvApiServer;
use kv_proto::peer::raft_transport_server::RaftTransportServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::addr::{HostPort, ResolveError};
use crate::config::{ConfigError, NodeConfig};
use crate::driver::{DriverError, NodeDriver, NodeHandle};
use crate::fault_control::FaultControl;
use crate::service::admin::AdminService;
use crate::service::api::ApiService;
use crate::service::peer::PeerService;
use crate::storage::{EngineStorage, StorageError};
use crate::transport::fault::FaultFilter;
use crate::transport::grpc::{GrpcTransport, MAX_PEER_MESSAGE_BYTES};

/// How long shutdown waits for open gRPC calls to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `--id` or `--peers` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address to listen on is a name that does not resolve.
    #[error("{source} ({whose}); {hint}")]
    Resolve {
        /// Where the name comes from: this node's `--peers` entry, or `--listen`.
        whose: String,
        /// What the resolver said.
        source: ResolveError,
        /// How to fix it.
        hint: String,
    },
    /// A port is taken or cannot be bound.
    #[error("cannot listen for {what} on {addr}: {source}{hint}")]
    Bind {
        /// "peers" or "clients".
        what: &'static str,
        /// The address, and the name it was resolved from, if any.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
        /// How to fix it.
        hint: String,
    },
    /// The data dir cannot be used.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The driver failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The terminal could not be driven.
    #[error("dashboard: {0}")]
    Dashboard(std::io::Error),
    /// A thread or task could not be started or failed.
    #[error("node driver thread: {0}")]
    Thread(String),
    /// The driver panicked (raft-rs panics on what it considers impossible).
    #[error("the node driver panicked: {0}")]
    DriverPanicked(String),
}

/// What the driver thread ends with: its own result, or the message of its panic.
type DriverExit = Result<Result<(), DriverError>, String>;

/// A started node: its handle for views, and what to wait on.
pub struct RunningNode {
    /// Talk to the node.
    pub handle: NodeHandle,
    /// The node's fault filter (its network faults and message tap).
    pub faults: FaultFilter,
    shutdown: CancellationToken,
    driver_done: oneshot::Receiver<DriverExit>,
    servers: tokio::task::JoinSet<Result<(), tonic::transport::Error>>,
}

/// Accepted connections of one or more listeners, as tonic takes them.
type Incoming = Pin<Box<dyn Stream<Item = std::io::Result<TcpStream>> + Send>>;

/// Where this node listens: the addresses (at the peer port) of `peer`, the host of
/// `--listen` or of its own `--peers` entry, looked up once.
async fn listen_ips(cfg: &NodeConfig, peer: &HostPort) -> Result<Vec<SocketAddr>, ServerError> {
    peer.resolve().await.map_err(|source| {
        let port = peer.port();
        let (whose, hint) = if cfg.listen.is_some() {
            (
                format!("--listen {peer}"),
                format!("give a name or address of this machine, e.g. --listen 0.0.0.0:{port}"),
            )
        } else {
            (
                format!("this node's address {peer} in --peers"),
                format!(
                    "check the name, or listen on another address with --listen (e.g. \
                     --listen 0.0.0.0:{port}) while the others reach this node by that name"
                ),
            )
        };
        ServerError::Resolve {
            whose,
            source,
            hint,
        }
    })
}

/// Binds `host`'s port on every address in `ips` (what its name resolved to) and merges
/// what they accept. A port taken on any of them fails; an address that is not this
/// machine's is skipped as long as another one binds (`localhost` resolving to ::1 on a
/// host without IPv6). `peer_port` is for the hints.
async fn bind(
    what: &'static str,
    host: &HostPort,
    ips: &[SocketAddr],
    peer_port: u16,
) -> Result<(Incoming, Vec<SocketAddr>), ServerError> {
    let port = host.port();
    let name = |addr: SocketAddr| {
        if host.is_name() {
            format!("{addr} ({}:{port})", host.host())
        } else {
            addr.to_string()
        }
    };
    let mut incoming: Incoming = Box::pin(tokio_stream::empty());
    let mut bound = Vec::new();
    let mut first_error = None;
    for ip in ips {
        let addr = SocketAddr::new(ip.ip(), port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                use tokio_stream::StreamExt as _;
                bound.push(listener.local_addr().unwrap_or(addr));
                incoming = Box::pin(incoming.merge(nodelay(listener)));
            }
            Err(source) => {
                let in_use = source.kind() == std::io::ErrorKind::AddrInUse;
                let hint = match source.kind() {
                    std::io::ErrorKind::AddrInUse => " (is another raft-server running? stop \
                         it, or choose other ports in --peers)"
                        .to_string(),
                    std::io::ErrorKind::AddrNotAvailable => format!(
                        " (not an address of this machine: behind NAT or in a container, listen \
                         on all interfaces with --listen 0.0.0.0:{peer_port})"
                    ),
                    _ => String::new(),
                };
                let error = ServerError::Bind {
                    what,
                    addr: name(addr),
                    source,
                    hint,
                };
                if in_use {
                    return Err(error);
                }
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) if bound.is_empty() => Err(error),
        Some(error) => {
            tracing::warn!("{error}; listening on {bound:?} only");
            Ok((incoming, bound))
        }
        None => Ok((incoming, bound)),
    }
}

/// A name that resolves to loopback only cannot be reached from other machines: on
/// Debian-like hosts a machine's own name resolves to 127.0.1.1 in /etc/hosts.
fn warn_if_loopback_only(host: &HostPort, ips: &[SocketAddr]) {
    let loopback_name = host.host() == "localhost" || host.host().ends_with(".localhost");
    if host.is_name() && !loopback_name && ips.iter().all(|a| a.ip().is_loopback()) {
        tracing::warn!(
            "{} resolves to {:?} here, loopback only: other machines cannot reach this node \
             there; listen on all interfaces with --listen 0.0.0.0:{}",
            host.host(),
            ips.iter().map(|a| a.ip()).collect::<Vec<_>>(),
            host.port()
        );
    }
}

/// Starts the node described by `cfg`; it runs until `shutdown` is cancelled.
pub async fn start(
    cfg: NodeConfig,
    shutdown: CancellationToken,
) -> Result<RunningNode, ServerError> {
    let me = cfg.me()?.clone();
    let (listen_peer, listen_api) = cfg.listen_addrs()?;
    let ips = listen_ips(&cfg, &listen_peer).await?;
    warn_if_loopback_only(&listen_peer, &ips);
    let port = listen_peer.port();
    let (peer_incoming, peer_bound) = bind("peers", &listen_peer, &ips, port).await?;
    let (api_incoming, api_bound) = bind("clients", &listen_api, &ips, port).await?;
    // A node that joins an existing cluster does not know its id yet (0): it takes the one
    // its new peers send (see PeerService). After that, and for every other node, the id
    // recorded in the data dir holds: --peers on a restart only fills in addresses.
    let (bootstrap_cluster, voters) = if cfg.join {
        (0, Vec::new())
    } else {
        (cfg.peers.cluster_id(), cfg.peers.ids())
    };
    let (storage, recovered) =
        EngineStorage::open(&cfg.data_dir, cfg.id, bootstrap_cluster, &voters)?;
    let cluster_id = Arc::new(AtomicU64::new(recovered.cluster_id));
    let transport_shutdown = shutdown.clone();
    let faults = FaultFilter::new(cfg.id, cfg.faults_enabled);
    let transport_cluster = Arc::clone(&cluster_id);
    let (driver, handle) = NodeDriver::new(&cfg, storage, recovered, |node| {
        let links = node.membership().with(|m| m.links());
        Box::new(GrpcTransport::start(
            cfg.id,
            transport_cluster,
            &links,
            node,
            faults.clone(),
            transport_shutdown,
        ))
    })?;

    let (done_tx, driver_done) = oneshot::channel();
    thread::Builder::new()
        .name(format!("node-{}-driver", cfg.id))
        .spawn(move || {
            // Caught so that the reason reaches the user's last line. Unwind safety: the
            // driver is gone after a panic, and what it shared with the handles (the state
            // machine, the status) is only read by views while the node shuts down.
            let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run()))
                .map_err(|payload| panic_message(payload.as_ref()));
            let _ = done_tx.send(exit);
        })
        .map_err(|e| ServerError::Thread(e.to_string()))?;

    let mut servers = tokio::task::JoinSet::new();
    let peer_svc = RaftTransportServer::new(PeerService::new(
        cfg.id,
        Arc::clone(&cluster_id),
        handle.clone(),
        faults.clone(),
        shutdown.clone(),
    ))
    .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES);
    let token = shutdown.clone();
    servers.spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(peer_svc)
            .serve_with_incoming_shutdown(peer_incoming, token.cancelled_owned()),
    );
    // The messages the filter passes go to the watch stream too (while watched).
    handle.watch().attach(&faults);
    let watch_svc = kv_proto::watch::watch_server::WatchServer::new(
        crate::service::watch::WatchService::new(handle.clone()),
    );
    let api_svc = KvApiServer::new(ApiService::new(
        cfg.id,
        handle.clone(),
        faults.clone(),
        Arc::clone(&cluster_id),
    ))
    .max_decoding_message_size(kv_proto::MAX_GRPC_MESSAGE_BYTES);
    let admin_svc = AdminServer::new(AdminService::new(
        cfg.id,
        handle.clone(),
        FaultControl::new(handle.clone(), faults.clone()),
        Arc::clone(&cluster_id),
    ));
    let token = shutdown.clone();
    servers.spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(api_svc)
            .add_service(admin_svc)
            .add_service(watch_svc)
            .serve_with_incoming_shutdown(api_incoming, token.cancelled_owned()),
    );
    tracing::info!(
        "node {} serving peers on {} and clients on {} (listening on {}), data in {}",
        cfg.id,
        me.peer_addr,
        me.api_addr,
        peer_bound
            .iter()
            .chain(&api_bound)
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        cfg.data_dir.display()
    );
    Ok(RunningNode {
        handle,
        faults,
        shutdown,
        driver_done,
        servers,
    })
}

impl RunningNode {
    /// Waits until shutdown is requested or something fails, then stops everything.
    pub async fn wait(mut self) -> Result<(), ServerError> {
        // The driver's result once it is in. A oneshot receiver must not be polled again
        // after it completed (tokio panics), so the driver is awaited below only if the
        // `select!` did not already take its result.
        let mut driver = None;
        let outcome = tokio::select! {
            _ = self.shutdown.cancelled() => Ok(()),
            done = &mut self.driver_done => {
                driver = Some(driver_outcome(done));
                Ok(())
            }
            Some(res) = self.servers.join_next() => match res {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServerError::Grpc(e)),
                Err(e) => Err(ServerError::Thread(e.to_string())),
            },
        };
        self.shutdown.cancel();
        self.handle.shutdown();
        // Let the driver flush.
        let driver = match driver {
            Some(done) => done,
            None => driver_outcome((&mut self.driver_done).await),
        };
        // Graceful shutdown waits for open RPCs; all of ours end on shutdown or by their
        // deadline, and this bound keeps a misbehaving client from holding the exit.
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.servers.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!("gRPC connections still open after {SHUTDOWN_GRACE:?}; closing them");
            self.servers.abort_all();
        }
        // The first failure is the cause; a driver error after a gRPC failure is its echo.
        outcome.and(driver)
    }
}

/// The connections `listener` accepts, with `TCP_NODELAY` set: tonic's
/// `Server::tcp_nodelay` is ignored for a listener of our own. Without it a response's last
/// frame (its trailers, a few bytes written after the rest) waits for the client's
/// delayed ACK: 40 ms, for about one request in a thousand.
fn nodelay(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

fn driver_outcome(done: Result<DriverExit, oneshot::error::RecvError>) -> Result<(), ServerError> {
    match done {
        Ok(Ok(result)) => Ok(result?),
        Ok(Err(message)) => Err(ServerError::DriverPanicked(message)),
        // The thread ended without sending: only possible if the panic could not be caught
        // (a panic while panicking aborts the process anyway).
        Err(_) => Err(ServerError::DriverPanicked(
            "no result from the driver thread".into(),
        )),
    }
}

/// The text of a panic, which is a `&str` or a `String` for every `panic!` with a message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
