//! `chaos --spawn N`: a cluster of its own, N `raft-server` processes (the binary beside
//! `raft-client`) on free loopback ports in a temporary directory, which the nemesis may
//! SIGKILL and restart. Everything is killed and removed when it is dropped.

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
    children: Vec<Option<Child>>,
}

impl SpawnedCluster {
    /// Starts `n` nodes.
    pub fn start(n: usize) -> Result<Self, SpawnError> {
        let exe = std::env::current_exe()?;
        let server = exe.with_file_name(format!("raft-server{}", std::env::consts::EXE_SUFFIX));
        if !server.exists() {
            return Err(SpawnError::NoServer(server));
        }
        let base = free_base(n).ok_or(SpawnError::NoPorts(n))?;
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
            children: (0..n).map(|_| None).collect(),
        };
        for id in 1..=n as u64 {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// The client API addresses of every node.
    pub fn api_addrs(&self) -> Vec<String> {
        (1..=self.children.len() as u16)
            .map(|i| format!("127.0.0.1:{}", self.base + 1000 + i))
            .collect()
    }

    fn peers(&self) -> String {
        (1..=self.children.len() as u16)
            .map(|i| format!("{i}=127.0.0.1:{}", self.base + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `id` (again, with its data).
    pub fn spawn(&mut self, id: u64) -> Result<(), SpawnError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))?;
        let child = Command::new(&self.server)
            .arg("--id")
            .arg(id.to_string())
            .arg("--peers")
            .arg(self.peers())
            .arg("--data-dir")
            .arg(self.dir.join(format!("node-{id}")))
            .arg("--headless")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        if let Some(slot) = self.children.get_mut(id as usize - 1) {
            *slot = Some(child);
        }
        Ok(())
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

    /// Ids of the nodes not running now.
    pub fn down(&self) -> Vec<u64> {
        (1..=self.children.len() as u64)
            .filter(|id| self.children[*id as usize - 1].is_none())
            .collect()
    }
}

impl Drop for SpawnedCluster {
    fn drop(&mut self) {
        for id in 1..=self.children.len() as u64 {
            self.kill(id);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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
