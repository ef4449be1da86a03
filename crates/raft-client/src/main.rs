//! `raft-client`: one-shot commands against a cluster (`put`/`get`/`delete`/`status`, the
//! fault commands), with the exit codes of the contract; no subcommand opens the TUI;
//! `completions <SHELL>` prints a shell completion script.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand};
use raft_client::admin::Report;
use raft_client::chaos::{self, ChaosError, ChaosOptions, FaultKind};
use raft_client::client::DEFAULT_PEERS;
use raft_client::faults::{self, FaultCommand};
use raft_client::members::{self, MemberCommand};
use raft_client::output::{status_json, status_table};
use raft_client::read_from::ReadFrom;
use raft_client::step::StepCommand;
use raft_client::trace::Trace;
use raft_client::{ClientError, SmartClient};

/// Smart client for a raft-playground cluster: finds the leader by itself.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Smart client for a raft-playground cluster: finds the leader by itself.\n\
             Without a subcommand it opens the interactive client (type help there).",
    after_help = EXAMPLES
)]
struct Args {
    /// Client API addresses of the nodes (peer port + 1000), comma separated.
    #[arg(long, default_value = DEFAULT_PEERS, value_delimiter = ',', global = true)]
    peers: Vec<String>,
    /// Seconds the whole command may take, retries included.
    /// [default: 5; `member add` of a voter: 120, it waits for the node to catch up]
    #[arg(long, value_parser = parse_timeout, global = true)]
    timeout: Option<f64>,
    /// Print every node tried, and why, to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Where linearizable gets go first: the leader, or any member (a random one, which
    /// asks the leader for its read index and answers itself). Both are linearizable.
    #[arg(long, value_enum, default_value_t = ReadFrom::Leader, global = true)]
    read_from: ReadFrom,
    /// Open the interactive client with the guided tour started (at CHAPTER, from 1).
    #[arg(long, value_name = "CHAPTER", num_args = 0..=1, default_missing_value = "1")]
    tour: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Set KEY to VALUE; succeeds once the write is committed and applied.
    Put {
        /// The key (1 byte to 4 KiB).
        key: String,
        /// The value (up to 1 MiB).
        #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
        value: Option<String>,
        /// Read the value from this file instead (for large or binary values).
        #[arg(long)]
        value_file: Option<std::path::PathBuf>,
        /// The write's journey: every node stamps each step (received, proposed, appended
        /// and fsynced, sent, stored and fsynced on each follower, acknowledged, committed,
        /// applied, answered), printed after the result as `+<µs> node <id> <step>` from
        /// the client's send.
        #[arg(long)]
        timing: bool,
        /// One JSON object: index, term, node, and with --timing the steps.
        #[arg(long)]
        json: bool,
    },
    /// Print the value of KEY (exit 1 if it does not exist).
    Get {
        /// The key.
        key: String,
        /// Answer from any node's own state machine, possibly stale.
        #[arg(long)]
        stale: bool,
        /// Ask node ID alone: it answers itself, leader or not (linearizable: a follower
        /// asks the leader for its read index; refused when it knows no leader).
        #[arg(long, value_name = "ID")]
        node: Option<u64>,
    },
    /// Remove KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Show every node's role, term and indexes.
    Status {
        /// One JSON array, one object per address.
        #[arg(long)]
        json: bool,
    },
    /// Break the cluster on purpose: cut links, lose, delay or freeze messages.
    Fault {
        #[command(subcommand)]
        action: FaultAction,
    },
    /// Who is in the cluster; add, promote and remove members (joint consensus).
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
    /// Hand leadership to node ID (a voter), or to the most up-to-date voter.
    Transfer {
        /// The node to lead next.
        id: Option<u64>,
    },
    /// Closed-loop throughput and latency of this cluster, or of etcd (--target etcd); with
    /// --op failover, the time without a leader after the leader crashes (the Raft paper's
    /// Figure 16, on clusters of its own).
    Bench(raft_client::bench::BenchArgs),
    /// Jepsen in a box: a concurrent workload under faults, checked for linearizability.
    Chaos(ChaosArgs),
    /// The cluster view: every node's state and election timer, the logs side by side, the
    /// messages between the nodes as a diagram, live (? in it lists the keys).
    Watch {
        /// Also record every member's watch stream to FILE while viewing (as `record`
        /// does; `.zst`: compressed).
        #[arg(long, value_name = "FILE")]
        record: Option<std::path::PathBuf>,
    },
    /// Record every member's watch stream to FILE (JSON lines), until Ctrl+C or --seconds.
    Record {
        /// Where to write the recording.
        file: std::path::PathBuf,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// The cluster view over a recording, with a timeline (Space plays, ←/→ a record,
    /// Shift+←/→ the notable moments; ? lists the keys); or, with --export svg|shiviz -o OUT,
    /// the recording (--from/--to: a window of it) as a diagram or a ShiViz log, no terminal.
    Replay {
        /// The recording (from record, watch --record or chaos --record).
        file: std::path::PathBuf,
        /// Open at this many seconds after the recording's start.
        #[arg(long, value_name = "SECONDS")]
        at: Option<f64>,
        #[command(flatten)]
        export: raft_client::record::export::cli::ExportArgs,
    },
    /// Step mode: every node's clock stopped and every Raft message held, to deliver one at
    /// a time (`on`, `next`, `drop`, `tick ID`, `off`).
    Step {
        #[command(subcommand)]
        action: StepAction,
    },
    /// A lab on the running cluster: every node (or --node ID) runs from now on as if started
    /// with these server flags (--no-pre-vote, --no-check-quorum, --read-mode safe|lease,
    /// --unsafe forget-vote|ack-on-append); `lab none` turns every protection back on, `lab`
    /// alone shows each node's. Exit 0 done, 3 a node unreachable, 4 refused.
    Lab {
        /// `none`, or the flags.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "FLAGS"
        )]
        flags: Vec<String>,
    },
    /// Slow motion: every node's tick interval times FACTOR (1 = normal speed, up to 100).
    Slow {
        /// The factor; election and heartbeat timeouts stretch with it.
        #[arg(allow_negative_numbers = true)]
        factor: i64,
    },
    /// Print a completion script for SHELL to stdout (see the examples below).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `step ...`: exit 0 done, 3 a node unreachable, 4 refused (not in step mode, nothing held).
#[derive(clap::Subcommand, Debug)]
enum StepAction {
    /// Stop every member's clock and hold every Raft message they send.
    On,
    /// Send what is held, in order, and start the clocks again.
    Off,
    /// Deliver the oldest held message (the one held first, on any node).
    Next,
    /// Drop the oldest held message.
    Drop,
    /// Advance node ID's clock by one tick (its election or heartbeat timer).
    Tick {
        /// The node.
        id: u64,
    },
}

/// `chaos`: exit 0 linearizable, 5 not linearizable, 6 unknown, 3 no cluster.
#[derive(clap::Args, Debug)]
struct ChaosArgs {
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Keys (k0, k1, ...): few keys, much contention.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// Faults to inject, comma separated, of isolate,cut,drop,delay,freeze,transfer,kill,
    /// membership,wipe,step [default: all that apply; kill, membership and wipe only with
    /// --spawn]
    #[arg(long, value_delimiter = ',', value_parser = parse_fault_kind)]
    faults: Option<Vec<FaultKind>>,
    /// Start a cluster of N nodes of its own (the raft-server beside raft-client, in a temp
    /// dir on free ports), which it can also SIGKILL; without it, --peers' cluster.
    #[arg(long, value_name = "N")]
    spawn: Option<usize>,
    /// Mix in get --stale (one node's own copy): expected to fail the check.
    #[arg(long)]
    stale_reads: bool,
    /// With --spawn: more arguments for every raft-server it starts, in one string (a lab:
    /// "--read-mode lease", "--unsafe ack-on-append", "--no-pre-vote").
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    server_args: Option<String>,
    /// Seed of every random choice [default: a random one, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Write the history here, one JSON object per operation and line.
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
    /// Record every member's watch stream here for the whole run (as `record FILE`).
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_fault_kind(s: &str) -> Result<FaultKind, String> {
    s.parse()
}

/// Membership changes go through the leader, one at a time.
#[derive(Subcommand, Debug)]
enum MemberAction {
    /// Every member with its role, as the leader knows them.
    List {
        /// One JSON array, one object per member.
        #[arg(long)]
        json: bool,
    },
    /// Add node ID, listening for peers at PEER_ADDR: as a learner, then (unless --learner)
    /// promoted to voter once it has caught up. Start it first with `raft-server --join`.
    Add {
        /// The new node's id.
        id: u64,
        /// Its peer address, host:port (its client API is on port + 1000).
        peer_addr: String,
        /// Add it as a learner only.
        #[arg(long)]
        learner: bool,
    },
    /// Make learner ID a voter (it must have caught up).
    Promote {
        /// The learner.
        id: u64,
    },
    /// Remove member ID (the leader hands leadership over first).
    Remove {
        /// The member.
        id: u64,
    },
}

impl From<MemberAction> for MemberCommand {
    fn from(action: MemberAction) -> Self {
        match action {
            MemberAction::List { json } => MemberCommand::List { json },
            MemberAction::Add {
                id,
                peer_addr,
                learner,
            } => MemberCommand::Add {
                id,
                peer_addr,
                learner,
            },
            MemberAction::Promote { id } => MemberCommand::Promote(id),
            MemberAction::Remove { id } => MemberCommand::Remove(id),
        }
    }
}

/// Faults live in each node's memory: restarting a node clears its own.
#[derive(Subcommand, Debug)]
enum FaultAction {
    /// Cut every link of node ID, both directions.
    Isolate {
        /// The node.
        id: u64,
    },
    /// Cut the link between nodes A and B, both directions (--one-way: A's messages to B
    /// only; B's still reach A).
    Cut {
        /// One node.
        a: u64,
        /// The other.
        b: u64,
        /// Drop A's messages to B only.
        #[arg(long)]
        one_way: bool,
    },
    /// Node ID drops PERCENT (0-100) of its peer messages, in and out (0 stops it).
    Drop {
        /// The node.
        id: u64,
        /// Percentage of messages lost.
        #[arg(allow_negative_numbers = true)]
        percent: i64,
    },
    /// Node ID delays its peer messages by MS milliseconds, in and out (0 stops it).
    Delay {
        /// The node.
        id: u64,
        /// Milliseconds (up to 10000), plus up to 10% jitter.
        #[arg(allow_negative_numbers = true)]
        ms: i64,
    },
    /// Node ID stops ticking and handling messages and requests (they wait) until thawed.
    Freeze {
        /// The node.
        id: u64,
    },
    /// A frozen node resumes.
    Thaw {
        /// The node.
        id: u64,
    },
    /// Clear every fault of node ID (and the cuts towards it), or of every node.
    Heal {
        /// The node (all nodes when left out).
        id: Option<u64>,
    },
    /// Show every node's faults and what they have dropped or delayed.
    List {
        /// One JSON array, one object per reachable node.
        #[arg(long)]
        json: bool,
    },
}

impl From<FaultAction> for FaultCommand {
    fn from(action: FaultAction) -> Self {
        match action {
            FaultAction::Isolate { id } => FaultCommand::Isolate(id),
            FaultAction::Cut {
                a,
                b,
                one_way: false,
            } => FaultCommand::Cut(a, b),
            FaultAction::Cut {
                a,
                b,
                one_way: true,
            } => FaultCommand::CutOneWay(a, b),
            FaultAction::Drop { id, percent } => FaultCommand::Drop(id, percent),
            FaultAction::Delay { id, ms } => FaultCommand::Delay(id, ms),
            FaultAction::Freeze { id } => FaultCommand::Freeze(id),
            FaultAction::Thaw { id } => FaultCommand::Thaw(id),
            FaultAction::Heal { id } => FaultCommand::Heal(id),
            FaultAction::List { json } => FaultCommand::List { json },
        }
    }
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

const EXAMPLES: &str = "\
Examples:
  raft-client                             the interactive client (no subcommand)
  raft-client --tour                      the same, with the guided tour of Raft started
  raft-client put greeting 'hello world'  write a key; exit 0 once it is applied
  raft-client -v get greeting             read it, showing every node tried
  raft-client get greeting --node 2       linearizable at node 2 (a follower asks the leader)
  raft-client status --json               every node's role, term and indexes
  raft-client completions bash > ~/.local/share/bash-completion/completions/raft-client

Exit codes: 0 done, 1 key not found, 2 usage, 3 unavailable (a write: outcome unknown
unless the message says nothing was written), 4 rejected.";

const EXIT_NOT_FOUND: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNAVAILABLE: u8 = 3;
const EXIT_REJECTED: u8 = 4;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Completions { shell }) = args.command {
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "raft-client",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let chapters = raft_client::tour::chapters::chapters().len();
    match (args.tour, &args.command) {
        (Some(_), Some(_)) => {
            eprintln!("error: --tour opens the interactive client: give it without a subcommand");
            return ExitCode::from(EXIT_USAGE);
        }
        (Some(n), None) if !(1..=chapters).contains(&n) => {
            eprintln!("error: --tour {n}: there is no such chapter; give 1 to {chapters}");
            return ExitCode::from(EXIT_USAGE);
        }
        _ => {}
    }
    let peers: Vec<String> = args.peers.iter().map(|p| p.trim().to_string()).collect();
    let timeout = args.timeout.unwrap_or(match &args.command {
        Some(Command::Member {
            action: MemberAction::Add { learner: false, .. },
        }) => 120.0,
        _ => 5.0,
    });
    let client = match SmartClient::new(peers, Duration::from_secs_f64(timeout)) {
        Ok(c) => c.with_read_from(args.read_from),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            // Not 1: that means "key not found" to scripts.
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    match args.command {
        Some(Command::Watch { record }) => watch(client, record.as_deref(), &rt),
        Some(Command::Record { file, seconds }) => rt.block_on(record(client, &file, seconds)),
        Some(Command::Replay { file, at, export }) => {
            if export.wanted() {
                ExitCode::from(raft_client::record::export::cli::run(&file, at, &export))
            } else {
                replay(&file, at, &rt)
            }
        }
        Some(command) => rt.block_on(run(&client, command, args.verbose)),
        None => interactive(client, &rt, args.tour.map(|n| n - 1)),
    }
}

/// `record FILE`: the cluster's watch streams into FILE.
async fn record(client: SmartClient, file: &std::path::Path, seconds: Option<f64>) -> ExitCode {
    if let Some(s) = seconds
        && !(s > 0.0 && s <= 86_400.0)
    {
        eprintln!("error: --seconds {s} is out of range: give more than 0, up to 86400");
        return ExitCode::from(EXIT_USAGE);
    }
    let client = std::sync::Arc::new(client);
    let started = std::time::Instant::now();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match raft_client::record::record(client, file, seconds, stop, None).await {
        Ok(s) => {
            eprintln!(
                "recorded {} records of {} nodes in {:.1} s into {} ({})",
                s.records,
                s.nodes,
                started.elapsed().as_secs_f64(),
                file.display(),
                s.size()
            );
            ExitCode::SUCCESS
        }
        Err(e @ raft_client::record::RecordError::Unavailable(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNAVAILABLE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `replay FILE`: the cluster view over a recording, when stdout is a terminal.
fn replay(file: &std::path::Path, at: Option<f64>, rt: &tokio::runtime::Runtime) -> ExitCode {
    use std::io::IsTerminal as _;
    if let Some(s) = at
        && !(s >= 0.0 && s.is_finite())
    {
        eprintln!("error: --at {s} is out of range: give the seconds after the recording's start");
        return ExitCode::from(EXIT_USAGE);
    }
    let opened = match raft_client::replay::open(file, at) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !std::io::stdout().is_terminal() {
        eprintln!("error: the replay needs a terminal");
        return ExitCode::from(EXIT_USAGE);
    }
    let cut_off = opened.cut_off.clone();
    let result = rt.block_on(raft_client::replay::run(opened));
    if let Some(why) = cut_off {
        eprintln!("note: the recording was cut off: {why}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `watch`: the cluster view, when stdout is a terminal.
fn watch(
    client: SmartClient,
    record: Option<&std::path::Path>,
    rt: &tokio::runtime::Runtime,
) -> ExitCode {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        eprintln!("error: the cluster view needs a terminal");
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(file) = record
        && let Err(e) = std::fs::File::create(file)
    {
        eprintln!(
            "error: cannot write the recording {}: {e}: give a file in a writable directory",
            file.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let client = std::sync::Arc::new(client);
    // The recording runs beside the view, on streams of its own, until the view closes.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let recording = record.map(|file| {
        let (client, file) = (std::sync::Arc::clone(&client), file.to_path_buf());
        rt.spawn(async move {
            let stop = async {
                let _ = stopped.await;
            };
            raft_client::record::record(client, &file, None, stop, None).await
        })
    });
    let viewed = rt.block_on(raft_client::view::run(client));
    let _ = stop.send(());
    let mut code = ExitCode::SUCCESS;
    if let (Some(task), Some(file)) = (recording, record) {
        match rt.block_on(task) {
            Ok(Ok(s)) => eprintln!(
                "recorded {} records of {} nodes into {} ({})",
                s.records,
                s.nodes,
                file.display(),
                s.size()
            ),
            Ok(Err(e)) => {
                eprintln!("error: the recording failed: {e}");
                code = ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("error: the recording failed: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    match viewed {
        Ok(()) => code,
        Err(e) => {
            eprintln!("error: terminal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// No subcommand: the TUI, when stdin and stdout are a terminal.
fn interactive(client: SmartClient, rt: &tokio::runtime::Runtime, tour: Option<usize>) -> ExitCode {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!(
            "error: the interactive client needs a terminal; use a subcommand (put, get, delete, status) in scripts"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    match rt.block_on(raft_client::tui::run(std::sync::Arc::new(client), tour)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: terminal: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(client: &SmartClient, command: Command, verbose: bool) -> ExitCode {
    match command {
        Command::Put {
            key,
            value,
            value_file,
            timing,
            json,
        } => {
            let value = match (value, value_file) {
                (Some(v), _) => v.into_bytes(),
                (None, Some(path)) => match std::fs::read(&path) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("error: cannot read --value-file {}: {e}", path.display());
                        return ExitCode::from(EXIT_USAGE);
                    }
                },
                (None, None) => Vec::new(),
            };
            let sent_us = raft_client::journey::now_us();
            let result = if timing {
                client.put_timed(&key, &value).await
            } else {
                client.put(&key, &value).await
            };
            let steps = match (&result, timing) {
                (Ok(r), true) => raft_client::journey::collect(client, &r.value, sent_us).await,
                _ => Vec::new(),
            };
            finish(result, verbose, |r| {
                if json {
                    let mut out = serde_json::json!({
                        "index": r.index, "term": r.term, "node": r.node_id,
                        "duplicate": r.duplicate,
                    });
                    if timing {
                        out["timing"] = serde_json::json!(steps);
                    }
                    println!("{out}");
                    return ExitCode::SUCCESS;
                }
                println!(
                    "OK (index {}, term {}, node {})",
                    r.index, r.term, r.node_id
                );
                for line in raft_client::journey::lines(&steps, &client.peers()) {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            })
        }
        Command::Delete { key } => {
            let result = client.delete(&key).await;
            finish(result, verbose, |r| {
                let what = if r.existed {
                    "deleted"
                } else {
                    "key did not exist"
                };
                println!(
                    "OK, {what} (index {}, term {}, node {})",
                    r.index, r.term, r.node_id
                );
                ExitCode::SUCCESS
            })
        }
        Command::Get { key, stale, node } => {
            let result = match node {
                None => client.get(&key, stale).await,
                Some(id) => {
                    let map = raft_client::admin::ClusterMap::discover(client).await;
                    let addr = match map.require(id) {
                        Ok(addr) => addr.to_string(),
                        Err(line) => {
                            eprintln!("error: {line}");
                            return ExitCode::from(if map.nodes.is_empty() {
                                EXIT_UNAVAILABLE
                            } else {
                                EXIT_USAGE
                            });
                        }
                    };
                    match SmartClient::new(vec![addr], client.timeout()) {
                        Ok(one) => one.pinned().get(&key, stale).await,
                        Err(e) => Err(e),
                    }
                }
            };
            finish(result, verbose, |r| {
                if r.found {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&r.value);
                    let _ = out.write_all(b"\n");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("key {key:?} not found");
                    ExitCode::from(EXIT_NOT_FOUND)
                }
            })
        }
        Command::Status { json } => {
            let reports = client.status_all().await;
            if json {
                println!("{}", status_json(&reports));
            } else {
                print!("{}", status_table(&reports));
            }
            if reports.iter().any(|r| r.status.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_UNAVAILABLE)
            }
        }
        Command::Fault { action } => print_report(&faults::run(client, &action.into()).await),
        Command::Bench(bench) => ExitCode::from(raft_client::bench::run_cli(client, bench).await),
        Command::Chaos(args) => chaos(client, args).await,
        // Handled in main: they own the client.
        Command::Watch { .. } => ExitCode::from(EXIT_USAGE),
        Command::Record { .. } | Command::Replay { .. } => ExitCode::from(EXIT_USAGE),
        Command::Slow { factor } => {
            print_report(&faults::run(client, &FaultCommand::Slow(factor)).await)
        }
        Command::Lab { flags } => match raft_client::lab::parse(&flags) {
            Ok(cmd) => print_report(&raft_client::lab::run(client, &cmd).await),
            Err(e) => {
                eprintln!("raft-client lab: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Step { action } => {
            let cmd = match action {
                StepAction::On => StepCommand::On,
                StepAction::Off => StepCommand::Off,
                StepAction::Next => StepCommand::Next(None),
                StepAction::Drop => StepCommand::Drop(None),
                StepAction::Tick { id } => StepCommand::Tick(id),
            };
            print_report(&raft_client::step::run(client, cmd).await)
        }
        Command::Member { action } => {
            // Each step is printed as it happens; the report repeats them, so only its
            // errors and JSON are printed at the end.
            let report = members::run(client, &action.into(), &mut |line| println!("{line}")).await;
            print_report(&Report {
                lines: report.lines.into_iter().filter(|l| l.error).collect(),
                ..report
            })
        }
        Command::Transfer { id } => {
            let report = members::run(client, &MemberCommand::Transfer(id), &mut |line| {
                println!("{line}")
            })
            .await;
            print_report(&Report {
                lines: report.lines.into_iter().filter(|l| l.error).collect(),
                ..report
            })
        }
        // Handled in main, before any client is made.
        Command::Completions { .. } => ExitCode::SUCCESS,
    }
}

/// `chaos`: runs, prints progress to stderr, the report (or `--json`) to stdout, writes the
/// history, exits with the verdict's code.
async fn chaos(client: &SmartClient, args: ChaosArgs) -> ExitCode {
    use std::io::IsTerminal as _;
    let opts = ChaosOptions {
        seconds: args.seconds,
        clients: args.clients,
        keys: args.keys,
        faults: args.faults,
        spawn: args.spawn,
        stale_reads: args.stale_reads,
        read_from: client.read_from(),
        seed: args.seed,
        record: args.record,
        server_args: args
            .server_args
            .as_deref()
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = |line: &str| eprintln!("{line}");
    let result = match chaos::run(client.peers(), &opts, stop, &progress).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(match e {
                ChaosError::Usage(_) => EXIT_USAGE,
                ChaosError::Spawn(_) | ChaosError::Unavailable(_) => EXIT_UNAVAILABLE,
            });
        }
    };
    if let Some(path) = &args.history {
        let written = std::fs::File::create(path)
            .map_err(chaos::history::HistoryError::from)
            .and_then(|f| chaos::history::write_jsonl(&result.ops, std::io::BufWriter::new(f)));
        if let Err(e) = written {
            eprintln!("error: cannot write the history to {}: {e}", path.display());
        }
    }
    if args.json {
        println!("{}", result.json());
    } else {
        let color = std::io::stdout().is_terminal();
        for line in result.lines(100, color) {
            println!("{line}");
        }
    }
    ExitCode::from(result.exit_code())
}

/// Prints an admin command's report: lines to stdout, errors to stderr, then the JSON.
fn print_report(report: &Report) -> ExitCode {
    for line in &report.lines {
        if line.error {
            eprintln!("error: {}", line.text);
        } else {
            println!("{}", line.text);
        }
    }
    if let Some(json) = &report.json {
        println!("{json}");
    }
    ExitCode::from(report.ending.exit_code())
}

fn finish<T>(
    result: Result<raft_client::client::Reply<T>, ClientError>,
    verbose: bool,
    ok: impl FnOnce(&T) -> ExitCode,
) -> ExitCode {
    match result {
        Ok(reply) => {
            if verbose {
                print_trace(&reply.trace);
            }
            ok(&reply.value)
        }
        Err(e) => {
            if let (true, ClientError::Unavailable { trace, .. }) = (verbose, &e) {
                print_trace(trace);
            }
            eprintln!("error: {e}");
            ExitCode::from(match e {
                ClientError::Rejected(_) => EXIT_REJECTED,
                ClientError::Unavailable { .. }
                | ClientError::Superseded(_)
                | ClientError::NotLeaderHere { .. } => EXIT_UNAVAILABLE,
                ClientError::BadAddress(_) => EXIT_USAGE,
            })
        }
    }
}

fn print_trace(trace: &Trace) {
    if let Some((client, seq)) = trace.request_id {
        eprintln!("request id: client {client:016x}, seq {seq}");
    }
    for (i, hop) in trace.hops.iter().enumerate() {
        eprintln!("  {}. {hop}", i + 1);
    }
}
