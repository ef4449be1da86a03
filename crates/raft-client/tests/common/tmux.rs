//! A tmux server of the test's own (its own socket), for driving real TUIs: type keys,
//! read the screen with `capture-pane`, poll it with a deadline. Killed on drop, with
//! everything running inside it, and its socket file removed (tmux leaves it behind).

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// A private tmux server.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts nothing yet; fails clearly when tmux is missing.
    pub fn new() -> Self {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is required for this test: apt-get install tmux (.ci/run does it)"
        );
        Self {
            socket: format!("raft-test-{}-{}", std::process::id(), rand::random::<u32>()),
        }
    }

    /// The `-L` socket name, for programs that start the server themselves.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Where tmux keeps this server's socket: `$TMUX_TMPDIR` (or /tmp), `tmux-<uid>/`, then
    /// the name. The server's own answer when it runs, else that rule.
    pub fn socket_path(&self) -> PathBuf {
        let asked = self.run(&["display-message", "-p", "#{socket_path}"]);
        let said = String::from_utf8_lossy(&asked.stdout).trim().to_string();
        if asked.status.success() && !said.is_empty() {
            return PathBuf::from(said);
        }
        let tmp = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        // /proc/self belongs to the user this process runs as: tmux's uid in the path.
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        PathBuf::from(tmp)
            .join(format!("tmux-{uid}"))
            .join(&self.socket)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// A `width` x `height` session named `name` running a plain shell with prompt `$ `.
    pub fn shell(&self, name: &str, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w,
            "-y",
            &h,
            "env PS1='$ ' bash --norc --noprofile",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    /// Types `text` literally.
    pub fn type_text(&self, pane: &str, text: &str) {
        self.run(&["send-keys", "-t", pane, "-l", text]);
    }

    /// Types `line` and presses Enter.
    pub fn type_line(&self, pane: &str, line: &str) {
        self.type_text(pane, line);
        self.key(pane, "Enter");
    }

    /// Presses a key by tmux name (`Enter`, `Escape`, `C-c`, ...).
    pub fn key(&self, pane: &str, key: &str) {
        self.run(&["send-keys", "-t", pane, key]);
    }

    /// The pane's screen as text.
    pub fn screen(&self, pane: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", pane]).stdout).into_owned()
    }

    /// The pane's screen with wrapped lines joined (a long command line as one line).
    pub fn screen_joined(&self, pane: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-t", pane]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's whole history and screen, wrapped lines joined (what a full-screen
    /// program drew on the alternate screen is not in it).
    pub fn history(&self, pane: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", pane]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the shell shows its prompt again (the program in front has exited).
    pub fn wait_prompt(&self, pane: &str) {
        self.wait_screen(pane, "the shell prompt", |s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::trim)
                == Some("$")
        });
    }

    /// Polls the pane until `check` accepts its screen; fails with the screen otherwise.
    pub fn wait_screen(&self, pane: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(pane);
            if check(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "pane {pane}: timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let path = self.socket_path();
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_file(path);
    }
}
