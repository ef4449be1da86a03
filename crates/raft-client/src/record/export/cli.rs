//! `raft-client replay FILE --export svg|shiviz -o OUT [--from SECONDS] [--to SECONDS]`: the
//! flags, their checks, and what the command says and exits with: 0 written (one line on
//! stderr), 2 a usage error or a file that is not a readable recording (one line), 1 OUT
//! not writable (one line). No terminal is needed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Format, Selection, Window};
use crate::record::file;

/// Exit code of a usage error or an unreadable recording.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when OUT cannot be written.
pub const EXIT_WRITE: u8 = 1;

/// The export flags of `replay`. Checked here, not by clap, so that each mistake gets one
/// line and exit 2.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct ExportArgs {
    /// Write the recording to -o OUT instead of opening the view: svg, a space-time
    /// diagram for a browser; shiviz, a log with vector clocks for ShiViz.
    #[arg(long, value_name = "FORMAT")]
    pub export: Option<Format>,
    /// The file --export writes.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Export from this many seconds after the recording's first record (default 0).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub from: Option<f64>,
    /// Export up to this many seconds after the recording's first record (default: its end).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub to: Option<f64>,
}

impl ExportArgs {
    /// True when any export flag is given: then `replay` exports instead of opening.
    pub fn wanted(&self) -> bool {
        self.export.is_some() || self.output.is_some() || self.from.is_some() || self.to.is_some()
    }

    /// The window `--from`/`--to` give.
    pub fn window(&self) -> Window {
        Window {
            from_s: self.from,
            to_s: self.to,
        }
    }
}

/// Runs `replay FILE` with export flags (`at`: its `--at`, refused here); returns the exit
/// code.
pub fn run(file: &Path, at: Option<f64>, args: &ExportArgs) -> u8 {
    match run_inner(file, at, args) {
        Ok(line) => {
            eprintln!("{line}");
            0
        }
        Err((code, why)) => {
            eprintln!("error: {why}");
            code
        }
    }
}

fn run_inner(file: &Path, at: Option<f64>, args: &ExportArgs) -> Result<String, (u8, String)> {
    let usage = |why: String| (EXIT_USAGE, why);
    let Some(format) = args.export else {
        return Err(usage(
            "-o, --from and --to go with --export svg|shiviz (replay FILE --export svg -o OUT)"
                .into(),
        ));
    };
    let Some(out) = &args.output else {
        return Err(usage(
            "--export needs -o OUT, the file to write (replay FILE --export svg -o OUT)".into(),
        ));
    };
    if at.is_some() {
        return Err(usage(
            "--at opens the replay at a moment; with --export give the window with --from/--to"
                .into(),
        ));
    }
    let window = args.window();
    window.check().map_err(|e| usage(e.to_string()))?;
    let recording = file::read(file).map_err(|e| usage(e.to_string()))?;
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let selection = Selection::new(&recording, &name, &window).map_err(|e| usage(e.to_string()))?;
    let cannot = |e: std::io::Error| (EXIT_WRITE, format!("cannot write {}: {e}", out.display()));
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).map_err(cannot)?);
    let summary = super::write(&selection, format, &mut w).map_err(cannot)?;
    w.flush().map_err(cannot)?;
    if let Some(why) = &recording.cut_off {
        eprintln!("note: the recording was cut off: {why}");
    }
    Ok(summary.line(&out.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        export: Option<Format>,
        out: Option<&str>,
        from: Option<f64>,
        to: Option<f64>,
    ) -> ExportArgs {
        ExportArgs {
            export,
            output: out.map(PathBuf::from),
            from,
            to,
        }
    }

    #[test]
    fn export_mistakes_are_usage_errors_of_one_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let not_one = dir.path().join("notes.txt");
        std::fs::write(&not_one, "hello\n").expect("write");
        let out = dir.path().join("out.svg");
        let out = out.to_str().expect("utf-8 path");
        let svg = Some(Format::Svg);
        for (a, at, says) in [
            (args(svg, None, None, None), None, "--export needs -o OUT"),
            (args(None, Some(out), None, None), None, "go with --export"),
            (
                args(svg, Some(out), None, None),
                Some(1.0),
                "--at opens the replay",
            ),
            (
                args(svg, Some(out), Some(2.0), Some(1.0)),
                None,
                "--from 2 is not before --to 1",
            ),
            (
                args(svg, Some(out), Some(-1.0), None),
                None,
                "--from -1 is out of range",
            ),
            (
                args(svg, Some(out), None, None),
                None,
                "is not a raft-playground recording",
            ),
        ] {
            let (code, why) = run_inner(&not_one, at, &a).expect_err(says);
            assert_eq!(code, EXIT_USAGE, "{why}");
            assert!(why.contains(says) && !why.contains('\n'), "{says}: {why}");
        }
        assert!(!Path::new(out).exists(), "nothing written on a usage error");
    }
}
