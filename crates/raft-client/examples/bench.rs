//! Write throughput and latency against a running cluster, through the smart client.
//!
//! ```text
//! cargo run --release -p raft-client --example bench -- --clients 16 --seconds 10
//! ```
//! Each of `--clients` tasks has its own `SmartClient` (its own client id) and puts
//! `--value-size`-byte values to distinct keys back to back for `--seconds`. Prints writes/s
//! and latency percentiles; a failed write is counted and reported, not retried further.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use raft_client::SmartClient;
use raft_client::client::DEFAULT_PEERS;

#[derive(Parser)]
struct Args {
    /// Client API addresses.
    #[arg(long, default_value = DEFAULT_PEERS, value_delimiter = ',')]
    peers: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// How long to write.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run_for = Duration::from_secs_f64(args.seconds);
    let value = Arc::new(vec![b'v'; args.value_size]);
    // Warm up: find the leader once so the first writes do not measure discovery.
    SmartClient::new(args.peers.clone(), Duration::from_secs(5))?
        .put("bench-warmup", b"x")
        .await?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let client = SmartClient::new(args.peers.clone(), Duration::from_secs(5))?;
        let value = Arc::clone(&value);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            let mut i = 0u64;
            while start.elapsed() < run_for {
                let t0 = Instant::now();
                match client.put(&format!("bench-{c}-{i}"), &value).await {
                    Ok(_) => latencies.push(t0.elapsed()),
                    Err(_) => failures += 1,
                }
                i += 1;
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    while let Some(res) = tasks.join_next().await {
        let (l, f) = res?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "clients={} value_size={}B writes={} failed={} elapsed={:.1}s writes/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        args.clients,
        args.value_size,
        latencies.len(),
        failures,
        elapsed,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
    Ok(())
}
