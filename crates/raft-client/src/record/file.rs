//! Recording files on disk: opening one to write (compressed with zstd when its name ends
//! in `.zst`) and reading one back whole, header checked, up to its last whole record.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use kv_proto::watch as pb;

use super::format::{FORMAT, Header, RecordLine, VERSION};

/// zstd's level for recordings: fast (a recording is written while the cluster runs on the
/// same machine) and still about ten times smaller than the JSON.
const ZSTD_LEVEL: i32 = 3;

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The first line is not a recording's header.
    #[error("{} is not a raft-playground recording (its first line should be {{\"format\":\"{FORMAT}\",...}}; make one with raft-client record FILE)", path.display())]
    NotARecording {
        /// The file.
        path: PathBuf,
    },
    /// A recording of a version this build does not read.
    #[error("{} is a recording of version {found}; this raft-client reads version {VERSION} (use the raft-client that made it)", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u64,
    },
    /// A line in the middle does not parse.
    #[error("{}: line {line} is not a record: {why}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// A recording read back.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Its header.
    pub header: Header,
    /// Its records, in file order.
    pub records: Vec<pb::WatchRecord>,
    /// Set when the last line was cut off (the recorder was killed): what was left out.
    pub cut_off: Option<String>,
}

/// A recording being written: buffered, and zstd-compressed for a `.zst` name.
pub struct Writer {
    inner: Sink,
}

enum Sink {
    Plain(BufWriter<File>),
    Zst(BufWriter<zstd::stream::write::Encoder<'static, File>>),
}

impl Writer {
    /// Opens `path` to write a recording, compressed when the name ends in `.zst`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let inner = if is_zst(path) {
            let encoder = zstd::stream::write::Encoder::new(file, ZSTD_LEVEL)?;
            Sink::Zst(BufWriter::with_capacity(1 << 16, encoder))
        } else {
            Sink::Plain(BufWriter::with_capacity(1 << 16, file))
        };
        Ok(Self { inner })
    }

    /// Writes out what is buffered and ends the file (a compressed one's last frame).
    pub fn finish(self) -> std::io::Result<()> {
        match self.inner {
            Sink::Plain(mut w) => w.flush(),
            Sink::Zst(w) => {
                let encoder = w.into_inner().map_err(|e| e.into_error())?;
                encoder.finish()?.sync_all()
            }
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Sink::Plain(w) => w.write(buf),
            Sink::Zst(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Sink::Plain(w) => w.flush(),
            Sink::Zst(w) => w.flush(),
        }
    }
}

fn is_zst(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// Reads the recording at `path` (`.zst`: compressed) whole.
pub fn read(path: &Path) -> Result<Recording, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if is_zst(path) {
        Box::new(zstd::stream::read::Decoder::new(file).map_err(io)?)
    } else {
        Box::new(file)
    };
    read_from(path, BufReader::with_capacity(1 << 16, reader))
}

/// Reads a recording from `reader`; `path` names it in errors.
pub fn read_from(path: &Path, mut reader: impl BufRead) -> Result<Recording, ReadError> {
    let not_one = || ReadError::NotARecording {
        path: path.to_path_buf(),
    };
    let mut line = Vec::new();
    // A compressed file cut off mid-frame reads as an error at its end: what came before
    // stands, as with a plain file cut mid-line.
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, String> {
        line.clear();
        match reader.read_until(b'\n', line) {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if line.is_empty() => Err(e.to_string()),
            Err(_) => Ok(true),
        }
    };
    match next_line(&mut line) {
        Ok(true) => {}
        Ok(false) => return Err(not_one()),
        Err(why) => {
            return Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(why),
            });
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&line).map_err(|_| not_one())?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(not_one());
    }
    let found = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if found != u64::from(VERSION) {
        return Err(ReadError::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    let header: Header = serde_json::from_value(value).map_err(|_| not_one())?;
    let mut records = Vec::new();
    let mut cut_off = None;
    let mut number = 1;
    loop {
        let more = match next_line(&mut line) {
            Ok(more) => more,
            Err(why) => {
                cut_off = Some(format!("the file ends early ({why})"));
                break;
            }
        };
        if !more {
            break;
        }
        number += 1;
        let whole = line.last() == Some(&b'\n');
        match serde_json::from_slice::<RecordLine>(&line) {
            // (A last line without its newline, but whole, counts.)
            Ok(r) => records.push(r.into_record()),
            // The last line, cut off where the recorder stopped.
            Err(e) if !whole || e.is_eof() => {
                cut_off = Some(format!(
                    "line {number} is cut off ({} bytes): the recording ends before it",
                    line.len()
                ));
                break;
            }
            // A kind a newer build writes, in a file of this version: skipped.
            Err(e) if e.is_data() && is_unknown_kind(&line) => {}
            Err(e) => {
                return Err(ReadError::BadLine {
                    path: path.to_path_buf(),
                    line: number,
                    why: e.to_string(),
                });
            }
        }
    }
    Ok(Recording {
        header,
        records,
        cut_off,
    })
}

/// True for a line whose `kind` this build does not know ("more fields may be added":
/// and kinds, which an older reader passes over).
fn is_unknown_kind(line: &[u8]) -> bool {
    const KNOWN: [&str; 9] = [
        "state", "entry", "truncate", "compact", "send", "recv", "event", "fault", "missed",
    ];
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("kind")?.as_str().map(|k| !KNOWN.contains(&k)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        r#"{"format":"raft-playground-record","version":1,"nodes":[{"id":1,"api_addr":"a:1"}]}"#;
    const EVENT: &str = r#"{"t_us":5,"node":1,"kind":"event","text":"became leader"}"#;

    fn read_str(s: &str) -> Result<Recording, ReadError> {
        read_from(Path::new("run.jsonl"), s.as_bytes())
    }

    #[test]
    fn a_recording_reads_back_and_a_cut_off_last_line_is_said() {
        let whole = read_str(&format!("{HEADER}\n{EVENT}\n{EVENT}\n")).expect("read");
        assert_eq!(whole.records.len(), 2);
        assert_eq!(whole.header.nodes[0].id, 1);
        assert!(whole.cut_off.is_none());
        let cut = read_str(&format!("{HEADER}\n{EVENT}\n{}", &EVENT[..20])).expect("read");
        assert_eq!(cut.records.len(), 1);
        assert!(
            cut.cut_off
                .as_deref()
                .is_some_and(|c| c.contains("line 3 is cut off")),
            "{:?}",
            cut.cut_off
        );
        // A kind of a later build is passed over.
        let later = read_str(&format!(
            "{HEADER}\n{{\"t_us\":6,\"node\":1,\"kind\":\"hologram\"}}\n{EVENT}\n"
        ))
        .expect("read");
        assert_eq!(later.records.len(), 1);
    }

    #[test]
    fn other_files_and_versions_are_refused_in_one_line() {
        for (text, says) in [
            ("", "is not a raft-playground recording"),
            ("hello\n", "is not a raft-playground recording"),
            (
                "{\"format\":\"other\"}\n",
                "is not a raft-playground recording",
            ),
            (
                "{\"format\":\"raft-playground-record\",\"version\":2,\"nodes\":[]}\n",
                "is a recording of version 2; this raft-client reads version 1",
            ),
        ] {
            let e = read_str(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let bad =
            read_str(&format!("{HEADER}\n{{\"t_us\":\"x\"}}\n{EVENT}\n")).expect_err("a bad line");
        assert!(bad.to_string().contains("line 2 is not a record"), "{bad}");
    }

    #[test]
    fn a_zst_recording_is_compressed_and_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.jsonl.zst");
        {
            let mut out = Writer::create(&path).expect("create");
            writeln!(out, "{HEADER}").expect("write");
            for _ in 0..1000 {
                writeln!(out, "{EVENT}").expect("write");
            }
            out.finish().expect("finish");
        }
        let size = std::fs::metadata(&path).expect("metadata").len();
        assert!(size < 1000, "1000 alike lines compress: {size} bytes");
        let back = read(&path).expect("read");
        assert_eq!(back.records.len(), 1000);
    }
}
