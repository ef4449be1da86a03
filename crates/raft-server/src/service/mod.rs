//! The gRPC services, thin adapters from protobuf to the node handle and back.
//!
//! - [`api`]: the client API (`KvApi`) on peer port + 1000.
//! - [`admin`]: the admin API (`Admin`: faults, slow motion) on the same port.
//! - [`peer`]: the incoming side of the peer transport (`RaftTransport`).

pub mod admin;
pub mod api;
pub mod peer;
