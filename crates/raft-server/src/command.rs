//! The replicated command: the domain type and its encoding in a Raft entry (prost).
//!
//! The one place that converts between [`kv_proto::kv::Command`] and [`Command`].

use kv_proto::kv as pb;
use prost::Message as _;

/// A write, as the state machine applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client that sent the write.
    pub client_id: u64,
    /// The client's sequence number for it; a retry reuses it.
    pub seq: u64,
    /// The proposing leader's wall clock in ms since the Unix epoch (set by the driver
    /// when it proposes; 0 before).
    pub timestamp_ms: u64,
    /// What to do.
    pub op: Op,
}

/// The operation of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// An entry's data is not a command.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a valid protobuf `kv.Command`.
    #[error("entry data is not a kv.Command: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A `kv.Command` without an operation.
    #[error("kv.Command has no operation")]
    NoOp,
}

impl Command {
    /// The key the command touches.
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }

    /// Encodes the command as a Raft entry's data.
    pub fn encode(&self) -> Vec<u8> {
        let op = match &self.op {
            Op::Put { key, value } => pb::command::Op::Put(pb::Put {
                key: key.clone(),
                value: value.clone(),
            }),
            Op::Delete { key } => pb::command::Op::Delete(pb::Delete { key: key.clone() }),
        };
        pb::Command {
            id: Some(pb::RequestId {
                client_id: self.client_id,
                seq: self.seq,
            }),
            op: Some(op),
            timestamp_ms: self.timestamp_ms,
        }
        .encode_to_vec()
    }

    /// Decodes a Raft entry's data.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let cmd = pb::Command::decode(data)?;
        let id = cmd.id.unwrap_or_default();
        let op = match cmd.op.ok_or(DecodeError::NoOp)? {
            pb::command::Op::Put(p) => Op::Put {
                key: p.key,
                value: p.value,
            },
            pb::command::Op::Delete(d) => Op::Delete { key: d.key },
        };
        Ok(Self {
            client_id: id.client_id,
            seq: id.seq,
            timestamp_ms: cmd.timestamp_ms,
            op,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for op in [
            Op::Put {
                key: "k".into(),
                value: vec![0, 255, 1],
            },
            Op::Delete { key: "k".into() },
        ] {
            let cmd = Command {
                client_id: 7,
                seq: 9,
                timestamp_ms: 1_795_000_000_000,
                op,
            };
            assert_eq!(Command::decode(&cmd.encode()).expect("decodes"), cmd);
        }
        assert!(Command::decode(&[0xff, 0xff]).is_err());
        assert!(matches!(Command::decode(&[]), Err(DecodeError::NoOp)));
    }
}
