//! `raft-server`: parses the command line, sets up logging, runs one node until Ctrl+C or
//! SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use raft_server::config::{DEFAULT_PEERS, NodeConfig, PeerMap, Timing};
use raft_server::server::{self, ServerError};
use tokio_util::sync::CancellationToken;

/// One node of a raft-playground cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This node's id: one of the ids in --peers.
    #[arg(long)]
    id: u64,
    /// Every voter of the cluster, as id=host:port (the peer port; clients use port + 1000).
    #[arg(long, default_value = DEFAULT_PEERS)]
    peers: String,
    /// Where to keep the log and hard state [default: data/node-<ID>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run without the dashboard, logging to stderr.
    #[arg(long)]
    headless: bool,
    /// Milliseconds between Raft ticks.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    tick_ms: u64,
    /// Ticks without a leader before a follower campaigns (randomised up to twice this).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=1000))]
    election_ticks: u64,
    /// Ticks between leader heartbeats; must be less than --election-ticks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1000))]
    heartbeat_ticks: u64,
    /// Longest a client request may wait inside the server, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    request_timeout_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match config(&args) {
        Ok(cfg) => run(cfg),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn config(args: &Args) -> anyhow::Result<NodeConfig> {
    if args.heartbeat_ticks >= args.election_ticks {
        anyhow::bail!(
            "--heartbeat-ticks ({}) must be less than --election-ticks ({})",
            args.heartbeat_ticks,
            args.election_ticks
        );
    }
    let peers = PeerMap::parse(&args.peers)?;
    peers.require(args.id)?;
    Ok(NodeConfig {
        id: args.id,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("data/node-{}", args.id))),
        peers,
        timing: Timing {
            tick: Duration::from_millis(args.tick_ms),
            election_ticks: usize::try_from(args.election_ticks)?,
            heartbeat_ticks: usize::try_from(args.heartbeat_ticks)?,
        },
        request_timeout: Duration::from_millis(args.request_timeout_ms),
    })
}

fn run(cfg: NodeConfig) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        // Every ServerError message already ends with its cause; kept as anyhow's source,
        // `{e:#}` below would print that cause a second time.
        .and_then(|rt| rt.block_on(serve(cfg)).map_err(|e| anyhow::anyhow!("{e}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: NodeConfig) -> Result<(), ServerError> {
    let shutdown = CancellationToken::new();
    // Handlers first: a signal while the node starts is then a clean shutdown as well,
    // not the default action (death by signal, exit 143) halfway through opening the data dir.
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let node = server::start(cfg, shutdown.clone()).await?;
    node.wait().await
}

/// Installs the Ctrl+C and SIGTERM handlers now (not when first polled) and returns a
/// future that cancels `shutdown` on either.
fn signal_shutdown(shutdown: CancellationToken) -> impl Future<Output = ()> {
    #[cfg(unix)]
    let [int, term] = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::interrupt(), SignalKind::terminate()].map(|kind| signal(kind).ok())
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = recv(int) => {}
            _ = recv(term) => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    }
}

/// Waits for `signal`; one whose handler could not be installed never fires.
#[cfg(unix)]
async fn recv(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
