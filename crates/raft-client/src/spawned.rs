//! A cluster of a command's own (`chaos --spawn N`, `bench --op failover --spawn N`): N
//! `raft-server` processes (the binary beside `raft-client`) on free loopback ports in a
//! temporary directory, which the command may SIGKILL and restart, and spare ids beside
//! them that chaos adds to the cluster (started with `--join`), removes and adds again.
//! Everything is killed and removed when it is dropped. What the processes are asked to do
//! is the command's business, not this module's.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No `raft-server` beside this binary.
    #[error(
        "--spawn needs the raft-server binary beside raft-client ({0} does not exist): build \
         both (cargo build), or leave out --spawn and give --peers of a running cluster"
    )]
    NoServer(PathBuf),
    /// No free ports.
    #[error("no free ports for {0} nodes on 127.0.0.1")]
    NoPorts(usize),
    /// The temporary directory or a process could not be made.
    #[error("cannot start the cluster: {0}")]
    Io(#[from] std::io::Error),
}

/// A running cluster of the chaos run's own.
pub struct SpawnedCluster {
    dir: PathBuf,
    server: PathBuf,
    base: u16,
    /// The initial voters are ids `1..=initial`; the slots after them are spares.
    initial: usize,
    children: Vec<Option<Child>>,
    /// Started with `--join` (a spare, or a node wiped and added again): it keeps that
    /// command line on every restart.
    joined: Vec<bool>,
    /// More arguments for every node (`--server-args`).
    extra: Vec<String>,
}

impl SpawnedCluster {
    /// Starts `n` nodes, with room for `spares` more ids.
    pub fn start(n: usize, spares: usize, extra: &[String]) -> Result<Self, SpawnError> {
        let exe = std::env::current_exe()?;
        let server = exe.with_file_name(format!("raft-server{}", std::env::consts::EXE_SUFFIX));
        if !server.exists() {
            return Err(SpawnError::NoServer(server));
        }
        let slots = n + spares;
        let base = free_base(slots).ok_or(SpawnError::NoPorts(slots))?;
        let dir = std::env::temp_dir().join(format!(
            "raft-chaos-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Self {
            dir,
            server,
            base,
            initial: n,
            children: (0..slots).map(|_| None).collect(),
            joined: vec![false; slots],
            extra: extra.to_vec(),
        };
        for id in 1..=n as u64 {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// A node that has exited (a server argument it refused, say): its id and the last
    /// line of its log.
    pub fn exited(&mut self) -> Option<(u64, String)> {
        for (slot, child) in self.children.iter_mut().enumerate() {
            let Some(c) = child else { continue };
            if let Ok(Some(_)) = c.try_wait() {
                let id = slot as u64 + 1;
                let log = std::fs::read_to_string(self.dir.join(format!("node-{id}.log")))
                    .unwrap_or_default();
                let last = log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                return Some((id, last.to_string()));
            }
        }
        None
    }

    /// The client API addresses of every id, spares included.
    pub fn api_addrs(&self) -> Vec<String> {
        (1..=self.children.len() as u64)
            .map(|id| self.api_addr(id))
            .collect()
    }

    /// Node `id`'s client API address.
    pub fn api_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", u64::from(self.base) + 1000 + id)
    }

    /// Node `id`'s peer address.
    pub fn peer_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", u64::from(self.base) + id)
    }

    /// Every id this cluster has a slot for.
    pub fn ids(&self) -> Vec<u64> {
        (1..=self.children.len() as u64).collect()
    }

    /// `--peers` of ids `1..=n`.
    fn peers(&self, n: usize) -> String {
        (1..=n as u64)
            .map(|id| format!("{id}={}", self.peer_addr(id)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `id` (again, with its data and the command line it started with).
    pub fn spawn(&mut self, id: u64) -> Result<(), SpawnError> {
        let slot = id as usize - 1;
        let joined = self.joined.get(slot).copied().unwrap_or(true);
        // An initial voter names the initial voters (its first start makes them the
        // configuration); a node that joins knows every slot.
        let peers = if joined {
            self.peers(self.children.len())
        } else {
            self.peers(self.initial)
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))?;
        let mut cmd = Command::new(&self.server);
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--peers")
            .arg(peers)
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--headless");
        if joined {
            cmd.arg("--join");
        }
        cmd.args(&self.extra);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        if let Some(s) = self.children.get_mut(slot) {
            *s = Some(child);
        }
        Ok(())
    }

    /// The README's way back for node `id`, or a spare's first start: stops it if it runs,
    /// empties its data dir and starts it with `--join`, waiting to be added.
    pub fn wipe_and_join(&mut self, id: u64) -> Result<(), SpawnError> {
        self.wipe(id)?;
        if let Some(j) = self.joined.get_mut(id as usize - 1) {
            *j = true;
        }
        self.spawn(id)
    }

    /// Stops node `id` if it runs and empties its data dir (a lost disk).
    pub fn wipe(&mut self, id: u64) -> Result<(), SpawnError> {
        self.kill(id);
        let dir = self.data_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// SIGKILLs node `id`; true if it was running.
    pub fn kill(&mut self, id: u64) -> bool {
        match self
            .children
            .get_mut(id as usize - 1)
            .and_then(Option::take)
        {
            Some(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
                true
            }
            None => false,
        }
    }

    /// True while node `id` has a process (started and not killed).
    pub fn is_running(&self, id: u64) -> bool {
        self.children
            .get(id as usize - 1)
            .is_some_and(Option::is_some)
    }
}

impl Drop for SpawnedCluster {
    fn drop(&mut self) {
        for id in 1..=self.children.len() as u64 {
            self.kill(id);
        }
        // RAFT_CHAOS_KEEP_DIR=1 keeps the nodes' logs and data dirs for a post-mortem.
        if std::env::var_os("RAFT_CHAOS_KEEP_DIR").is_some() {
            eprintln!(
                "kept the cluster's data dirs and logs in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A base port whose peer ports `base+1..=base+n` and API ports (+1000) are all free.
fn free_base(n: usize) -> Option<u16> {
    let n = u16::try_from(n).ok()?;
    for _ in 0..200 {
        let base = 30_000 + (rand::random::<u16>() % 20_000);
        let free = (1..=n).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + 1000 + i)).is_ok()
        });
        if free {
            return Some(base);
        }
    }
    None
}
