//! Bridges raft-rs's `slog` logging into `tracing`, so `RUST_LOG` controls both.

use std::fmt::Write as _;

use slog::{Drain, KV as _, Never, OwnedKVList, Record};

/// A `slog::Logger` for raft-rs that forwards every record to `tracing` under target `raft`.
pub fn raft_logger(node_id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("node" => node_id))
}

struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        // raft-rs logs every message it sends at debug level, with the whole message as a
        // value: format a record only when tracing would keep it.
        macro_rules! forward {
            ($level:expr) => {
                if tracing::enabled!(target: "raft", $level) {
                    let kv = kv_text(record, values);
                    tracing::event!(target: "raft", $level, "{}{}", record.msg(), kv);
                }
            };
        }
        match record.level() {
            slog::Level::Critical | slog::Level::Error => forward!(tracing::Level::ERROR),
            slog::Level::Warning => forward!(tracing::Level::WARN),
            slog::Level::Info => forward!(tracing::Level::INFO),
            slog::Level::Debug => forward!(tracing::Level::DEBUG),
            slog::Level::Trace => forward!(tracing::Level::TRACE),
        }
        Ok(())
    }
}

/// The record's key-value pairs as ` key=value` text.
fn kv_text(record: &Record<'_>, values: &OwnedKVList) -> String {
    let mut kv = KvText(String::new());
    // Serialising into a String cannot fail; ignore the Result rather than unwrap.
    let _ = record.kv().serialize(record, &mut kv);
    let _ = values.serialize(record, &mut kv);
    kv.0
}

struct KvText(String);

impl slog::Serializer for KvText {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}
