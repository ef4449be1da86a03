//! The gRPC services, thin adapters from protobuf to the node handle and back.
//!
//! - [`api`]: the client API (`KvApi`) on peer port + 1000.
//! - [`admin`]: the admin API (`Admin`: faults, slow motion, membership) on the same port.
//! - [`new_member`]: what the leader asks a node before adding it.
//! - [`watch`]: the watch stream (`Watch`) on the client port, for the cluster view.
//! - [`peer`]: the incoming side of the peer transport (`RaftTransport`).

pub mod admin;
pub mod api;
pub mod new_member;
pub mod peer;
pub mod watch;
