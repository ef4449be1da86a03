//! raft-client: the smart client of a raft-playground cluster, as a library.
//!
//! # Layout
//! - [`client`]: [`client::SmartClient`]: leader hints, redirects, retries with the same
//!   request id, deadlines. Used by the one-shot commands and the TUI alike.
//! - [`read_from`]: `--read-from leader|any`: where linearizable reads go first.
//! - [`trace`]: the record of every node a request tried and what it said.
//! - [`output`]: the `status` table and the `status --json` contract.
//! - [`admin`]: what the admin commands share: ids -> addresses, reports and exit codes.
//! - [`faults`]: the fault commands (`fault ...`, `slow`).
//! - [`members`]: the membership commands (`member ...`, `transfer`).
//! - [`chaos`]: `chaos`: a workload under faults, checked for linearizability.
//! - [`spawned`]: a cluster of raft-server processes of a command's own (`chaos --spawn`,
//!   `bench --op failover`), killed and removed when dropped.
//! - [`bench`]: `raft-client bench`, a closed-loop load generator for this cluster or etcd.
//! - [`tour`]: the guided tour: Raft's classic scenarios, played and checked on the cluster.
//! - [`tui`]: the interactive client (`raft-client` with no subcommand).
//! - [`view`]: the cluster view (`raft-client watch`, `view` in the interactive client).
//! - [`record`]: recordings of the watch streams (`raft-client record`) and their format.
//! - [`replay`]: the cluster view over a recording, with a timeline (`raft-client replay`).
//! - [`step`]: step mode (`raft-client step ...`): the clock stopped, messages delivered
//!   one at a time.

pub mod admin;
pub mod bench;
pub mod chaos;
pub mod client;
pub mod faults;
pub mod journey;
pub mod lab;
pub mod members;
pub mod output;
pub mod read_from;
pub mod record;
pub mod replay;
pub mod spawned;
pub mod step;
pub mod tour;
pub mod trace;
pub mod tui;
pub mod view;

pub use client::{ClientError, SmartClient};
