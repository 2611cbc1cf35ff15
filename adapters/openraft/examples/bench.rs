//! Client writes/s and latency through the leader of a 3-node in-process openraft cluster,
//! with raftwal as every node's log store, against the same cluster over an in-memory log
//! store (`MemLogStore`: no disk, the ceiling), in one run, interleaved round by round.
//!
//! ```text
//! cargo run --release -p raftwal-openraft --example bench -- [SECONDS] [ROUNDS] [VALUE_BYTES]
//! ```
//!
//! Each cell runs `clients` concurrent writers (1 and 16) for SECONDS after a short warm-up;
//! latency is per `client_write`, from the call to its response (committed on a quorum
//! and applied on the leader). fdatasyncs per write counts the file syncs of all three
//! nodes' WALs (`Wal::stats`) over the writes, and how many of them were HEADER updates
//! (the vote, and openraft's `save_committed` once per applied batch); the state
//! machines' snapshots are off.
//!
//! The disk's limit is measured in the same run, before the cells: a loop of 4 KiB
//! `pwrite` + `fdatasync` overwriting one block of a file in the same directory, for one
//! second — the most sequential durable writes per second one writer can see. A client
//! write needs at least one on the leader's log before it commits, so one client's
//! writes/s are compared with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use raftwal_openraft::router::{KvRaft, Router};
use raftwal_openraft::{KvConfig, KvRequest, KvStateMachine, MemLogStore, WalLogStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Per (clients, store): each round's (writes/s, p50 ms, p99 ms, fdatasyncs per write,
/// HEADER fdatasyncs per write).
type Results = BTreeMap<(usize, &'static str), Vec<[f64; 5]>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    Wal,
    Mem,
}

struct Cluster {
    rafts: Vec<KvRaft>,
    logs: Vec<WalLogStore<KvConfig>>,
    _dir: tempfile::TempDir,
}

async fn start(store: Store) -> Result<Cluster, BoxError> {
    let dir = tempfile::tempdir()?;
    let config = Arc::new(
        Config {
            cluster_name: "bench".into(),
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: SnapshotPolicy::Never,
            ..Default::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let (mut rafts, mut logs) = (Vec::new(), Vec::new());
    for id in 1..=3u64 {
        let node = dir.path().join(format!("node{id}"));
        let sm = KvStateMachine::open(node.join("sm"))?;
        let raft = match store {
            Store::Wal => {
                let log: WalLogStore<KvConfig> =
                    WalLogStore::open(node.join("log"), raftwal::Options::default())?;
                logs.push(log.clone());
                KvRaft::new(id, Arc::clone(&config), router.clone(), log, sm).await?
            }
            Store::Mem => {
                let log = MemLogStore::<KvConfig>::default();
                KvRaft::new(id, Arc::clone(&config), router.clone(), log, sm).await?
            }
        };
        router.add(id, raft.clone());
        rafts.push(raft);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|i| (i, BasicNode::default())).collect();
    rafts[0].initialize(members).await?;
    rafts[0]
        .wait(Some(Duration::from_secs(10)))
        .state(ServerState::Leader, "node 1 leads")
        .await?;
    Ok(Cluster {
        rafts,
        logs,
        _dir: dir,
    })
}

struct Cell {
    writes: u64,
    secs: f64,
    latencies: Vec<Duration>,
    /// File syncs, and of them HEADER updates (one fdatasync each), of all three WALs.
    syncs: (u64, u64),
}

fn file_syncs(c: &Cluster) -> (u64, u64) {
    c.logs.iter().fold((0, 0), |(f, h), l| {
        let s = l.with_wal(|w| w.stats());
        (f + s.file_syncs, h + s.header_updates)
    })
}

/// `pwrite` + `fdatasync` of one 4 KiB block, overwritten in place, per second, for one
/// second in a file under `dir`: the disk's limit for one durable write at a time.
fn raw_fdatasyncs_per_sec(dir: &std::path::Path) -> Result<f64, BoxError> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(dir.join("raw-fdatasync"))?;
    let block = vec![7u8; 4096];
    f.write_all_at(&block, 0)?;
    f.sync_all()?;
    let (started, mut n) = (Instant::now(), 0u64);
    while started.elapsed() < Duration::from_secs(1) {
        f.write_all_at(&block, 0)?;
        f.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// `clients` writers for `secs` through node 1 (the leader).
async fn measure(
    c: &Cluster,
    clients: usize,
    secs: f64,
    value_bytes: usize,
) -> Result<Cell, BoxError> {
    let run = |until: Instant| {
        let mut set = tokio::task::JoinSet::new();
        for client in 0..clients {
            let leader = c.rafts[0].clone();
            let value = "v".repeat(value_bytes);
            set.spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while Instant::now() < until {
                    let req = KvRequest::Set {
                        key: format!("c{client}-{i}"),
                        value: value.clone(),
                    };
                    let t = Instant::now();
                    leader.client_write(req).await.map_err(|e| e.to_string())?;
                    lat.push(t.elapsed());
                    i += 1;
                }
                Ok::<_, String>(lat)
            });
        }
        set
    };
    let mut warm = run(Instant::now() + Duration::from_millis(300));
    while let Some(r) = warm.join_next().await {
        r??;
    }
    let syncs = file_syncs(c);
    let started = Instant::now();
    let mut set = run(started + Duration::from_secs_f64(secs));
    let mut latencies = Vec::new();
    while let Some(r) = set.join_next().await {
        latencies.extend(r??);
    }
    Ok(Cell {
        writes: latencies.len() as u64,
        secs: started.elapsed().as_secs_f64(),
        latencies,
        syncs: {
            let end = file_syncs(c);
            (end.0 - syncs.0, end.1 - syncs.1)
        },
    })
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().map_or(Ok(3.0), |a| a.parse())?;
    let rounds: usize = args.get(1).map_or(Ok(3), |a| a.parse())?;
    let value_bytes: usize = args.get(2).map_or(Ok(256), |a| a.parse())?;
    println!(
        "openraft 0.9.25, 3 nodes in one process, {value_bytes}-byte values, {secs} s per \
         cell, {rounds} rounds interleaved; directory {}",
        std::env::temp_dir().display()
    );
    let scratch = tempfile::tempdir()?;
    let raw = raw_fdatasyncs_per_sec(scratch.path())?;
    println!("  disk limit: {raw:.0} fdatasyncs/s (4 KiB pwrite + fdatasync, one writer)");
    let mut results = Results::new();
    for round in 0..rounds {
        for clients in [1usize, 16] {
            for store in [Store::Mem, Store::Wal] {
                let c = start(store).await?;
                let cell = measure(&c, clients, secs, value_bytes).await?;
                for r in &c.rafts {
                    r.shutdown().await?;
                }
                let mut lat = cell.latencies;
                lat.sort();
                let rate = cell.writes as f64 / cell.secs;
                let per_write = cell.syncs.0 as f64 / cell.writes.max(1) as f64;
                let header_per_write = cell.syncs.1 as f64 / cell.writes.max(1) as f64;
                let name = if store == Store::Wal {
                    "raftwal"
                } else {
                    "in-memory"
                };
                println!(
                    "  round {round} {name:>9} × {clients:>2} clients: {rate:>8.0} writes/s, \
                     p50 {:.2} ms, p99 {:.2} ms, {per_write:.2} fdatasyncs/write \
                     ({header_per_write:.2} HEADER)",
                    pct(&lat, 0.5),
                    pct(&lat, 0.99)
                );
                let row = [
                    rate,
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    per_write,
                    header_per_write,
                ];
                results.entry((clients, name)).or_default().push(row);
            }
        }
    }
    print_table(&results, raw);
    Ok(())
}

fn print_table(results: &Results, raw: f64) {
    println!(
        "\n| clients | log store | writes/s | p50 ms | p99 ms | fdatasyncs per write (3 nodes) \
         | of them HEADER | × in-memory | × disk limit ({raw:.0} fdatasyncs/s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for clients in [1usize, 16] {
        let col =
            |name: &str, k: usize| median(results[&(clients, name)].iter().map(|r| r[k]).collect());
        let mem = col("in-memory", 0);
        for name in ["in-memory", "raftwal"] {
            let rate = col(name, 0);
            let disk = |k: usize| {
                if name == "raftwal" {
                    format!("{:.2}", col(name, k))
                } else {
                    "—".into()
                }
            };
            println!(
                "| {clients} | {name} | {rate:.0} | {:.2} | {:.2} | {} | {} | {:.2} | {:.2} |",
                col(name, 1),
                col(name, 2),
                disk(3),
                disk(4),
                rate / mem,
                rate / raw
            );
        }
    }
}
