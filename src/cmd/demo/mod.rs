//! `raftwal demo`: a Raft cluster in this process, in real time, each node persisting to a
//! real WAL directory; nodes crash (dropped without a clean shutdown) and restart from their
//! directories at random while clients propose commands. At the end every node must have
//! applied the same sequence.
//!
//! Each node is a thread driving the same sans-IO `raftwal_raft::Raft` the simulator drives:
//! it drains its channel (messages, client proposals), hands the burst to
//! `Raft::handle_batch` (one persist, so one fsync for the burst: group commit), and only
//! then sends the messages and answers the clients. A tick every 10 ms drives timeouts.
//!
//! The verifier sees every apply of every node: the command at each index must be the same
//! on every node, every node applies indices in order without gaps, and a snapshot a node
//! installs must hash to the verified prefix it claims to cover.

mod client;
mod cluster;
mod node;
mod report;
mod shared;
mod verifier;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::CmdResult;
use client::run_client;
use cluster::Cluster;
use report::report;

/// Arguments of `raftwal demo`.
/// Arguments of `raftwal demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// How long clients propose and nodes crash, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Seed of the crash schedule and the election timeouts (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the WAL directories under this directory (default: a temporary directory,
    /// removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Proposals a client sends before waiting for the answers.
    #[arg(long, default_value_t = 32)]
    pub burst: usize,
    /// Mean time between crashes in milliseconds (0: no crashes).
    #[arg(long, default_value_t = 1500)]
    pub crash_every_ms: u64,
    /// Bytes per command.
    #[arg(long, default_value_t = 64)]
    pub command_size: usize,
    /// The service snapshots after every this many applied commands (0: never).
    #[arg(long, default_value_t = 5000)]
    pub snapshot_every: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `raftwal demo`.
pub fn run(args: Args) -> CmdResult {
    if args.nodes == 0 || args.clients == 0 || args.burst == 0 {
        return Err("--nodes, --clients and --burst must be at least 1".into());
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let temp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let n = args.nodes;
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    println!(
        "raftwal demo: {n} nodes, {:.1} s, seed {seed}, {} clients, WAL directories in {}",
        duration.as_secs_f64(),
        args.clients,
        root.display()
    );
    println!(
        "same crash schedule and election timeouts (thread timing differs): raftwal demo --nodes {n} --duration {} --seed {seed}",
        args.duration
    );
    let mut cluster = Cluster::new(root, n, args.snapshot_every);
    for i in 0..n {
        cluster.start(i, &mut rng)?;
    }
    let initial = cluster.initial_recoveries();
    let t_start = Instant::now();
    let clients: Vec<JoinHandle<()>> = (0..args.clients)
        .map(|c| {
            let shared = std::sync::Arc::clone(&cluster.shared);
            let (burst, size) = (args.burst, args.command_size);
            thread::spawn(move || run_client(c as u64 + 1, shared, burst, size))
        })
        .collect();
    let pb = progress_bar(duration, args.quiet);
    let down = crash_and_restart(&mut cluster, &args, duration, &pb, &mut rng)?;
    let run_time = t_start.elapsed();
    cluster.shared.stop_clients.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let committed_at_stop = cluster.shared.committed.load(Ordering::Relaxed);
    if let Some((victim, since)) = down {
        cluster.restart(victim, since.elapsed(), &mut rng)?;
    }
    pb.set_message("waiting for every node to apply everything".to_string());
    let catch_up = catch_up(&mut cluster);
    for i in 0..n {
        cluster.crash(i);
    }
    pb.finish_and_clear();
    let ok = report(&cluster, &initial, committed_at_stop, run_time, catch_up);
    if ok {
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!("verification            FAILED (seed {seed})");
        Ok(std::process::ExitCode::FAILURE)
    }
}

fn progress_bar(duration: Duration, quiet: bool) -> ProgressBar {
    let len = duration.as_millis() as u64;
    let pb = if quiet {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new(len)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// The run proper: a node crashes about every `--crash-every-ms` (one at a time), stays down
/// 200–1000 ms and restarts from its directory, until the time is up or an error. Returns
/// the node still down at the end, and since when.
fn crash_and_restart(
    cluster: &mut Cluster,
    args: &Args,
    duration: Duration,
    pb: &ProgressBar,
    rng: &mut StdRng,
) -> Result<Option<(usize, Instant)>, String> {
    let t_start = Instant::now();
    let mean_gap = args.crash_every_ms as f64;
    let gap = |rng: &mut StdRng| Duration::from_millis((mean_gap * rng.gen_range(0.5..1.5)) as u64);
    let mut next_crash = (args.crash_every_ms > 0).then(|| t_start + gap(rng));
    let mut down: Option<(usize, Instant, Instant)> = None;
    while t_start.elapsed() < duration && cluster.errors.is_empty() {
        thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if down.is_none() && next_crash.is_some_and(|t| now >= t) {
            let victim = rng.gen_range(0..cluster.len());
            cluster.crash(victim);
            down = Some((
                victim,
                now,
                now + Duration::from_millis(rng.gen_range(200..1000)),
            ));
        }
        if let Some((victim, since, back)) = down {
            if now >= back {
                cluster.restart(victim, since.elapsed(), rng)?;
                down = None;
                next_crash = Some(now + gap(rng));
            }
        }
        cluster.drain_recoveries();
        cluster.collect_finished();
        pb.set_position(t_start.elapsed().as_millis() as u64);
        pb.set_message(format!(
            "committed {} | restarts {} | leader {}",
            cluster.shared.committed.load(Ordering::Relaxed),
            cluster.restarts.len() + usize::from(down.is_some()),
            cluster.shared.leader.load(Ordering::Relaxed)
        ));
    }
    Ok(down.map(|(victim, since, _)| (victim, since)))
}

/// Waits (up to 20 s) until every node has applied the same last index and it stopped
/// moving for 300 ms. Returns how long it waited, or `None` if they never caught up.
fn catch_up(cluster: &mut Cluster) -> Result<Duration, Duration> {
    let start = Instant::now();
    let mut stable_since: Option<(u64, Instant)> = None;
    while cluster.errors.is_empty() && start.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(20));
        cluster.drain_recoveries();
        let v = cluster.shared.verifier();
        let max = v.canon.len() as u64;
        let all = v.nodes.iter().all(|&(a, _)| a == max);
        drop(v);
        if !all {
            stable_since = None;
            continue;
        }
        match stable_since {
            Some((m, t)) if m == max && t.elapsed() > Duration::from_millis(300) => {
                return Ok(start.elapsed());
            }
            Some((m, _)) if m == max => {}
            _ => stable_since = Some((max, Instant::now())),
        }
    }
    Err(start.elapsed())
}
