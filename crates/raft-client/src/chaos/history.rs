//! The recorded history of a chaos run: one [`Operation`] per client request, as the
//! client saw it (invocation and completion times, outcome), and its JSON-lines file
//! format (one operation per line, see [`write_jsonl`] and [`read_jsonl`]).
//!
//! The meaning the checker gives each field is documented here, on the types.

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Write};

/// What a client asked for. JSON names: `"put"`, `"get"`, `"get_stale"`, `"delete"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Write `value` to the key.
    Put,
    /// Linearizable read of the key.
    Get,
    /// Read served without a linearizability guarantee; checked exactly like [`OpKind::Get`],
    /// so a stale answer shows up as a violation.
    GetStale,
    /// Remove the key (its value becomes absent).
    Delete,
}

impl OpKind {
    /// True for [`OpKind::Put`] and [`OpKind::Delete`], the operations that change the register.
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Put | OpKind::Delete)
    }
}

/// How the operation ended, as far as the client knows. JSON: `"ok"`, `"fail"`, `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The client got an answer: the operation took effect between invocation and completion.
    Ok,
    /// The operation certainly did not take effect (or, for a read, gave no answer);
    /// the checker ignores it.
    Fail,
    /// For writes: it may or may not have taken effect, at any time after its invocation,
    /// even after `complete_us`. A read with this outcome carries no information and is
    /// ignored like [`Outcome::Fail`].
    Unknown,
}

/// One client request as recorded by the client.
///
/// Serialised as exactly this JSON object (field order as shown, `kind` is named `op`):
/// `{"process":3,"op":"put","key":"k1","value":"v17","invoke_us":1200,"complete_us":4100,"outcome":"ok"}`,
/// with `"answered_by":2` after `outcome` when the answering node is known (an optional
/// field: older files without it read as 0, and 0 is not written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Client number; a client runs one operation at a time.
    pub process: u64,
    /// What was asked.
    #[serde(rename = "op")]
    pub kind: OpKind,
    /// The key operated on; the checker checks each key on its own.
    pub key: String,
    /// Put: the value written. Get/GetStale: the value read (`None` = not found).
    /// Delete: `None`.
    pub value: Option<String>,
    /// Invocation time, microseconds from the start of the run.
    pub invoke_us: u64,
    /// When the client got its answer or gave up, microseconds from the start of the run.
    pub complete_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Id of the node whose answer the client got (0: unknown, as for an operation that got
    /// no answer). Optional in the file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answered_by: u64,
}

fn is_zero(id: &u64) -> bool {
    *id == 0
}

/// Why a history could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The underlying reader or writer failed.
    #[error("history I/O error: {0}")]
    Io(#[from] io::Error),
    /// A line is not a valid operation (`line` counts from 1).
    #[error("history line {line}: invalid operation: {source}")]
    Parse {
        /// 1-based line number in the input.
        line: usize,
        /// What serde_json objected to.
        source: serde_json::Error,
    },
}

/// Writes `ops` as JSON lines: one operation per line, each line ending in `\n`.
pub fn write_jsonl<'a>(
    ops: impl IntoIterator<Item = &'a Operation>,
    mut out: impl Write,
) -> Result<(), HistoryError> {
    for op in ops {
        // Serialising this plain struct can only fail on I/O; serde_json reports that as
        // its own error type, which we turn back into an I/O error.
        serde_json::to_writer(&mut out, op).map_err(io::Error::from)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads a JSON-lines history; blank lines are skipped.
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<Operation>, HistoryError> {
    let mut ops = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op = serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
            line: i + 1,
            source,
        })?;
        ops.push(op);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        process: u64,
        kind: OpKind,
        value: Option<&str>,
        invoke_us: u64,
        complete_us: u64,
        outcome: Outcome,
    ) -> Operation {
        Operation {
            process,
            kind,
            key: "k1".into(),
            value: value.map(str::to_string),
            invoke_us,
            complete_us,
            outcome,
            answered_by: 0,
        }
    }

    #[test]
    fn exact_line_format() {
        let o = op(3, OpKind::Put, Some("v17"), 1200, 4100, Outcome::Ok);
        let mut buf = Vec::new();
        write_jsonl([&o], &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"process\":3,\"op\":\"put\",\"key\":\"k1\",\"value\":\"v17\",\"invoke_us\":1200,\"complete_us\":4100,\"outcome\":\"ok\"}\n"
        );
    }

    #[test]
    fn answered_by_is_an_optional_field() {
        let mut o = op(3, OpKind::GetStale, Some("v1"), 5, 9, Outcome::Ok);
        o.answered_by = 2;
        let mut buf = Vec::new();
        write_jsonl([&o], &mut buf).unwrap();
        let line = String::from_utf8(buf.clone()).unwrap();
        assert!(
            line.ends_with(",\"outcome\":\"ok\",\"answered_by\":2}\n"),
            "{line}"
        );
        assert_eq!(read_jsonl(buf.as_slice()).unwrap(), vec![o]);
        // A line without it (an older file) reads as unknown.
        let old = r#"{"process":1,"op":"get","key":"k1","value":null,"invoke_us":1,"complete_us":2,"outcome":"ok"}"#;
        assert_eq!(read_jsonl(old.as_bytes()).unwrap()[0].answered_by, 0);
    }

    #[test]
    fn null_values_and_enum_names() {
        let ops = [
            op(1, OpKind::Get, None, 1, 2, Outcome::Ok),
            op(1, OpKind::Delete, None, 3, 4, Outcome::Unknown),
            op(2, OpKind::GetStale, Some("x"), 5, 6, Outcome::Fail),
        ];
        let mut buf = Vec::new();
        write_jsonl(&ops, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"process":1,"op":"get","key":"k1","value":null,"invoke_us":1,"complete_us":2,"outcome":"ok"}"#
        );
        assert!(lines[1].contains(r#""op":"delete""#) && lines[1].contains(r#""value":null"#));
        assert!(lines[1].ends_with(r#""outcome":"unknown"}"#));
        assert!(lines[2].contains(r#""op":"get_stale""#) && lines[2].contains(r#""fail""#));
    }

    #[test]
    fn round_trip() {
        let ops: Vec<Operation> = (0..50)
            .map(|i| {
                let kind = [OpKind::Put, OpKind::Get, OpKind::GetStale, OpKind::Delete][i % 4];
                let outcome = [Outcome::Ok, Outcome::Fail, Outcome::Unknown][i % 3];
                let value = (kind != OpKind::Delete && i % 5 != 0).then(|| format!("v{i}"));
                op(
                    i as u64 % 7,
                    kind,
                    value.as_deref(),
                    i as u64 * 10,
                    i as u64 * 10 + 7,
                    outcome,
                )
            })
            .collect();
        let mut buf = Vec::new();
        write_jsonl(&ops, &mut buf).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), ops.len());
        let back = read_jsonl(buf.as_slice()).unwrap();
        assert_eq!(back, ops);
    }

    #[test]
    fn reads_hand_written_lines_and_skips_blanks() {
        let text = "\n{\"process\":3,\"op\":\"put\",\"key\":\"k1\",\"value\":\"v17\",\"invoke_us\":1200,\"complete_us\":4100,\"outcome\":\"ok\"}\n\n  \n{\"outcome\":\"fail\",\"process\":0,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"invoke_us\":0,\"complete_us\":1}\n";
        let ops = read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[0],
            op(3, OpKind::Put, Some("v17"), 1200, 4100, Outcome::Ok)
        );
        assert_eq!(ops[1].outcome, Outcome::Fail);
        assert_eq!(ops[1].key, "a");
    }

    #[test]
    fn parse_error_names_the_line() {
        let text = "{\"process\":3,\"op\":\"put\",\"key\":\"k1\",\"value\":\"v\",\"invoke_us\":1,\"complete_us\":2,\"outcome\":\"ok\"}\n{\"process\":3,\"op\":\"append\"}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err();
        match &err {
            HistoryError::Parse { line, .. } => assert_eq!(*line, 2),
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().starts_with("history line 2:"));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn is_write() {
        assert!(OpKind::Put.is_write() && OpKind::Delete.is_write());
        assert!(!OpKind::Get.is_write() && !OpKind::GetStale.is_write());
    }
}
