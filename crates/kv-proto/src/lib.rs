//! Protobuf and gRPC definitions shared by `raft-server` and `raft-client`.
//!
//! - [`kv`]: the client API (`KvApi`: Put, Get, Delete, Status), the leader hint a non-leader
//!   returns, and the `Command` that travels through the Raft log.
//! - [`admin`]: the admin API (`Admin`: faults and slow motion), served beside `KvApi`.
//! - [`watch`]: the watch stream (`Watch`): what a node does, as it happens, for the cluster
//!   view and recordings.
//! - [`peer`]: the peer transport (`RaftTransport`), whose batches carry raft-rs messages as
//!   protobuf 2 bytes so raft-rs's types never meet prost's.
//! - [`etcd`]: the slice of etcd v3's API (`KV.Put`, `KV.Range`, `Maintenance.Status`) that
//!   `raft-client bench --target etcd` drives, so both systems are measured by one client.

/// The client API and the replicated command.
pub mod kv {
    tonic::include_proto!("kv");

    impl Protections {
        /// What a node runs without, as the dashboard, the cluster view and chaos's verdict
        /// say it (in red): `NO PRE-VOTE`, `NO CHECK-QUORUM`, `LEASE READS`,
        /// `UNSAFE: forget-vote`, ...
        pub fn off(&self) -> Vec<String> {
            let mut out = Vec::new();
            if !self.pre_vote {
                out.push("NO PRE-VOTE".to_string());
            }
            if !self.check_quorum {
                out.push("NO CHECK-QUORUM".to_string());
            }
            if self.read_mode == "lease" {
                out.push("LEASE READS".to_string());
            }
            out.extend(self.r#unsafe.iter().map(|m| format!("UNSAFE: {m}")));
            out
        }
    }
}

/// The admin API: faults and slow motion (later membership and leader transfer).
pub mod admin {
    tonic::include_proto!("admin");
}

/// The watch stream of a node.
pub mod watch {
    tonic::include_proto!("watch");
}

/// The peer-to-peer Raft transport.
pub mod peer {
    tonic::include_proto!("peer");
}

/// etcd v3's `etcdserverpb` package, cut down to what the benchmark needs (see `etcd.proto`).
pub mod etcd {
    tonic::include_proto!("etcdserverpb");
}

/// Largest key the cluster accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 4 * 1024;
/// Largest value the cluster accepts, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// gRPC message limit: a maximal key and value plus framing fit with room to spare.
pub const MAX_GRPC_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Checks a key against the cluster's limits; the message says what is wrong.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("key must not be empty".to_string());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "key is {} bytes, the limit is {MAX_KEY_BYTES} bytes (4 KiB)",
            key.len()
        ));
    }
    Ok(())
}

/// Checks a value against the cluster's limits; the message says what is wrong.
pub fn validate_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "value is {} bytes, the limit is {MAX_VALUE_BYTES} bytes (1 MiB)",
            value.len()
        ));
    }
    Ok(())
}
