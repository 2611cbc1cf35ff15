//! A 3-node openraft cluster on raftwal in one process: writes, a follower crashes (no
//! shutdown) and restarts from its directories, catches up, and every state machine is
//! checked against every acknowledged write. The scenario is
//! [`raftwal_openraft::demo::run_cluster`]; `tests/cluster.rs` runs it small in CI.
//!
//! ```text
//! cargo run --release -p raftwal-openraft --example cluster -- [WRITES] [SEED] [DIR]
//! ```
//! WRITES keys are written before the crash and as many while the follower is down
//! (default 5000); DIR (default: a temporary directory, removed afterwards) gets
//! `node1`..`node3`, each with `log/` and `sm/`.

use raftwal_openraft::demo::{run_cluster, Scenario};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let mut sc = Scenario {
        progress: true,
        ..Scenario::default()
    };
    if let Some(n) = args.next() {
        sc.writes_before_crash = n.parse()?;
        sc.writes_while_down = sc.writes_before_crash;
    }
    if let Some(seed) = args.next() {
        sc.seed = seed.parse()?;
    }
    let tmp;
    let root = match args.next() {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    println!(
        "raftwal + openraft: 3 nodes, {} writes, then a follower crashes and {} more",
        sc.writes_before_crash, sc.writes_while_down
    );
    let report = run_cluster(&root, &sc).await?;
    println!("--- report ---\n{report}");
    Ok(())
}
