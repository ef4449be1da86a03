//! raft-server: one node of a raft-playground cluster.
//!
//! # Layout
//! - [`addr`]: `host:port` addresses (names or IP addresses) and their lookup.
//! - [`config`]: `--peers`, the node's addresses, Raft timing; validation of all of it.
//! - [`storage`]: raft-engine backed `raft::Storage` (log, hard state, conf state).
//! - [`command`]: the replicated write and its encoding in a log entry.
//! - [`membership`]: who is in the cluster and where (replicated, from snapshots and conf
//!   changes; `--peers` only seeds it).
//! - [`state_machine`]: the pure key-value state machine with at-most-once sessions.
//! - [`driver`]: the node driver, sole owner of the `RawNode`, and its [`driver::NodeHandle`].
//! - [`status`]: the status view the driver publishes for the dashboard and `Status` RPC.
//! - [`transport`]: the `Transport` trait, its gRPC and in-process implementations, the
//!   fault filter every peer message passes and the message tap.
//! - [`service`]: the gRPC services (client API, admin API, incoming peer streams).
//! - [`fault_control`]: the one place that changes this node's faults (admin API, keys).
//! - [`server`]: wiring of all the above into a running node.
//! - [`dashboard`]: the live ratatui dashboard of one node.
//! - [`watch`]: the watch stream's records (state, log, messages, events) and the rings of
//!   the nodes' watchers; nothing is built while nobody watches.
//! - [`raft_logger`]: raft-rs's slog output, forwarded to `tracing`.

pub mod addr;
pub mod command;
pub mod config;
pub mod dashboard;
pub mod driver;
pub mod fault_control;
pub mod membership;
pub mod raft_logger;
pub mod server;
pub mod service;
pub mod state_machine;
pub mod status;
pub mod storage;
pub mod transport;
pub mod watch;
