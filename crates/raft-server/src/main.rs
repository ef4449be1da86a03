//! `raft-server`: parses the command line, sets up logging, runs one node until Ctrl+C or
//! SIGTERM. `--completions <SHELL>` prints a shell completion script instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use raft_server::addr::HostPort;
use raft_server::config::{
    DEFAULT_PEERS, DEFAULT_SNAPSHOT_EVERY, NodeConfig, PeerMap, Protections, ReadMode, Timing,
    api_addr_of,
};
use raft_server::dashboard::{self, view::NodeInfo};
use raft_server::fault_control::FaultControl;
use raft_server::server::{self, ServerError};
use tokio_util::sync::CancellationToken;

/// One node of a raft-playground cluster.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    override_usage = "raft-server --id <ID> [OPTIONS]\n       raft-server --completions <SHELL>",
    after_help = EXAMPLES
)]
struct Args {
    /// This node's id: one of the ids in --peers.
    #[arg(long, required_unless_present = "completions")]
    id: Option<u64>,
    /// Every voter of the cluster, as id=host:port (the peer port; clients use port + 1000).
    /// Hosts are names or IP addresses; names are looked up when connecting.
    #[arg(long, default_value = DEFAULT_PEERS)]
    peers: String,
    /// Listen for peers here (e.g. 0.0.0.0:6001 behind NAT or in a container) and for clients
    /// on the same host at port + 1000; the others still reach the node at its --peers
    /// address [default: this node's --peers address]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Where to keep the log and hard state [default: data/node-<ID>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run without the dashboard, logging to stderr.
    #[arg(long)]
    headless: bool,
    /// Milliseconds between Raft ticks.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    tick_ms: u64,
    /// Ticks without a leader before a follower campaigns: the least election timeout
    /// (each one is drawn at random up to --max-election-ticks).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=1000))]
    election_ticks: u64,
    /// The end of the election timeout's range: each timeout is drawn uniformly from
    /// [--election-ticks, this), as raft-rs does; more than --election-ticks
    /// [default: twice --election-ticks].
    #[arg(long, value_parser = clap::value_parser!(u64).range(3..=10_000))]
    max_election_ticks: Option<u64>,
    /// Ticks between leader heartbeats; must be less than --election-ticks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1000))]
    heartbeat_ticks: u64,
    /// Snapshot the state machine and compact the log every N applied entries (0: never).
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// Longest a client request may wait inside the server, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    request_timeout_ms: u64,
    /// Refuse every fault command (fault ..., slow) from clients and the dashboard.
    #[arg(long)]
    no_faults: bool,
    /// A node new to an existing cluster: start with no membership and wait to be added
    /// (`raft-client member add <ID> <PEER_ADDR>`). --peers lists the existing nodes and this one.
    #[arg(long)]
    join: bool,
    /// Stop a few seconds after this node learns it was removed from the cluster, with exit
    /// code 10 (the playground uses it: a removed node takes no part, and its pane then
    /// says how to bring it back).
    #[arg(long)]
    exit_when_removed: bool,
    /// Lab: no pre-vote. A node whose election timer fires raises its term at once, so one
    /// cut off for a while comes back with a higher term and deposes a healthy leader.
    #[arg(long)]
    no_pre_vote: bool,
    /// Lab: no check-quorum. A leader that cannot reach a majority keeps calling itself
    /// leader, and followers answer vote requests even while they hear from a leader.
    #[arg(long)]
    no_check_quorum: bool,
    /// How a leader confirms it still leads before a linearizable read: safe (a heartbeat
    /// round, raft-rs ReadIndex) or lease (no round while its lease lasts; a leader paused
    /// past its election timeout then serves stale reads). lease needs check-quorum.
    #[arg(long, value_enum, default_value_t = ReadModeArg::Safe)]
    read_mode: ReadModeArg,
    /// Lab, UNSAFE: forget-vote (the vote is not written to disk: restarted, the node may
    /// vote twice in one term) or ack-on-append (a write is acknowledged once the leader
    /// has appended it, before it commits). May be given twice.
    #[arg(long = "unsafe", value_enum, value_name = "MODE")]
    unsafe_modes: Vec<UnsafeArg>,
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<clap_complete::Shell>,
}

const EXAMPLES: &str = "\
Examples:
  raft-server --id 1        node 1 of the default three-node cluster (peers on :6001,
                            clients on :7001), with its dashboard; start 2 and 3 likewise
  raft-server --id 2 --peers 1=10.0.0.1:6001,2=10.0.0.2:6001,3=10.0.0.3:6001 --headless
  raft-server --id 2 --peers 1=node1:6001,2=node2:6001,3=node3:6001 --listen 0.0.0.0:6001
                            node 2 on host node2, listening on all its interfaces
  raft-server --completions bash > ~/.local/share/bash-completion/completions/raft-server

Ctrl+C, q in the dashboard, or SIGTERM stop the node; start it again with the same
arguments and it recovers its log from --data-dir.";

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(shell) = args.completions {
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "raft-server",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    match config(&args) {
        Ok(cfg) => {
            use std::io::IsTerminal as _;
            let headless = args.headless || !std::io::stdout().is_terminal();
            run(cfg, headless, args.exit_when_removed)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--read-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReadModeArg {
    Safe,
    Lease,
}

/// `--unsafe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum UnsafeArg {
    ForgetVote,
    AckOnAppend,
}

fn protections(args: &Args) -> anyhow::Result<Protections> {
    let read_mode = match args.read_mode {
        ReadModeArg::Safe => ReadMode::Safe,
        ReadModeArg::Lease => ReadMode::Lease,
    };
    let p = Protections {
        pre_vote: !args.no_pre_vote,
        check_quorum: !args.no_check_quorum,
        read_mode,
        forget_vote: args.unsafe_modes.contains(&UnsafeArg::ForgetVote),
        ack_on_append: args.unsafe_modes.contains(&UnsafeArg::AckOnAppend),
    };
    p.check().map_err(anyhow::Error::msg)?;
    Ok(p)
}

fn config(args: &Args) -> anyhow::Result<NodeConfig> {
    if args.heartbeat_ticks >= args.election_ticks {
        anyhow::bail!(
            "--heartbeat-ticks ({}) must be less than --election-ticks ({})",
            args.heartbeat_ticks,
            args.election_ticks
        );
    }
    if let Some(max) = args.max_election_ticks
        && max <= args.election_ticks
    {
        anyhow::bail!(
            "--max-election-ticks ({max}) must be more than --election-ticks ({}): timeouts \
             are drawn from [--election-ticks, --max-election-ticks)",
            args.election_ticks
        );
    }
    // clap requires --id unless --completions, which never gets here.
    let id = args.id.context("--id is required")?;
    let peers = PeerMap::parse(&args.peers)?;
    peers.require(id)?;
    let listen = match &args.listen {
        None => None,
        Some(text) => {
            let addr: HostPort = text
                .parse()
                .map_err(|e| anyhow::anyhow!("--listen {text:?} is not host:port: {e}"))?;
            if api_addr_of(&addr).is_none() {
                anyhow::bail!(
                    "--listen port {} is too high: the client API needs port + 1000 <= 65535",
                    addr.port()
                );
            }
            Some(addr)
        }
    };
    Ok(NodeConfig {
        id,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("data/node-{id}"))),
        peers,
        timing: Timing {
            tick: Duration::from_millis(args.tick_ms),
            election_ticks: usize::try_from(args.election_ticks)?,
            heartbeat_ticks: usize::try_from(args.heartbeat_ticks)?,
            max_election_ticks: args.max_election_ticks.map(usize::try_from).transpose()?,
        },
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        snapshot_every: args.snapshot_every,
        faults_enabled: !args.no_faults,
        join: args.join,
        listen,
        protections: protections(args)?,
    })
}

/// The exit code of a node that stopped because it was removed (`--exit-when-removed`).
const EXIT_REMOVED: u8 = 10;
/// How long a removed node goes on showing REMOVED before `--exit-when-removed` stops it.
const REMOVED_LINGER: Duration = Duration::from_secs(5);

fn run(cfg: NodeConfig, headless: bool, exit_when_removed: bool) -> ExitCode {
    if let Err(e) = init_tracing(&cfg, headless) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        // Every ServerError message already ends with its cause; kept as anyhow's source,
        // `{e:#}` below would print that cause a second time.
        .and_then(|rt| {
            rt.block_on(serve(cfg, headless, exit_when_removed))
                .map_err(|e| anyhow::anyhow!("{e}"))
        });
    match result {
        Ok(Ended::Removed) => ExitCode::from(EXIT_REMOVED),
        Ok(Ended::Shutdown) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Headless: logs go to stderr. With the dashboard they would tear the screen, so they go
/// to `<data-dir>.log` instead (beside the data dir, which must stay ours alone).
fn init_tracing(cfg: &NodeConfig, headless: bool) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if headless {
        // Colours for a terminal only: a log redirected to a file stays plain text.
        use std::io::IsTerminal as _;
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    } else {
        let path = log_file(cfg);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open the log file {}", path.display()))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    Ok(())
}

fn log_file(cfg: &NodeConfig) -> PathBuf {
    let dir = cfg.data_dir.to_string_lossy();
    PathBuf::from(format!("{}.log", dir.trim_end_matches('/')))
}

/// How a node that did not fail ended.
enum Ended {
    /// Ctrl+C, SIGTERM, or q in the dashboard.
    Shutdown,
    /// Removed from the cluster, with `--exit-when-removed`.
    Removed,
}

async fn serve(
    cfg: NodeConfig,
    headless: bool,
    exit_when_removed: bool,
) -> Result<Ended, ServerError> {
    let shutdown = CancellationToken::new();
    // Handlers first: a signal while the node starts is then a clean shutdown as well,
    // not the default action (death by signal, exit 143) halfway through opening the data dir.
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let me = cfg.me()?.clone();
    let info = NodeInfo {
        data_dir: cfg.data_dir.clone(),
        peer_addr: me.peer_addr.to_string(),
        api_addr: me.api_addr.to_string(),
    };
    let node = server::start(cfg, shutdown.clone()).await?;
    let removed = Arc::new(AtomicBool::new(false));
    if exit_when_removed {
        let mut status = node.handle.status();
        let (removed, shutdown) = (Arc::clone(&removed), shutdown.clone());
        tokio::spawn(async move {
            if status.wait_for(|s| s.removed_at.is_some()).await.is_ok() {
                tracing::warn!(
                    "removed from the cluster: stopping in {} s (--exit-when-removed)",
                    REMOVED_LINGER.as_secs()
                );
                tokio::time::sleep(REMOVED_LINGER).await;
                removed.store(true, Ordering::Relaxed);
                shutdown.cancel();
            }
        });
    }
    let ended = |result: Result<(), ServerError>| {
        result.map(|()| {
            if removed.load(Ordering::Relaxed) {
                Ended::Removed
            } else {
                Ended::Shutdown
            }
        })
    };
    if headless {
        return ended(node.wait().await);
    }
    let control = FaultControl::new(node.handle.clone(), node.faults.clone());
    let dashboard = tokio::spawn(dashboard::run(
        node.handle.clone(),
        control,
        info,
        shutdown.clone(),
    ));
    // Quitting the dashboard cancels `shutdown`; a failing node cancels it too, which
    // closes the dashboard and restores the terminal before the error is printed.
    let result = node.wait().await;
    let dashboard = dashboard.await;
    result?;
    match dashboard {
        Ok(Ok(())) => ended(Ok(())),
        Ok(Err(e)) => Err(ServerError::Dashboard(e)),
        Err(e) => Err(ServerError::Thread(format!("the dashboard failed: {e}"))),
    }
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
