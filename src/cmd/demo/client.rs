//! A client: proposes bursts of commands to the node it believes leads, and follows
//! redirects.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self};
use std::sync::Arc;
use std::thread::{self};
use std::time::{Duration, Instant};

use super::node::NodeInput;
use super::shared::Shared;

pub(super) fn run_client(cid: u64, shared: Arc<Shared>, burst: usize, size: usize) {
    let mut counter = 0u64;
    let mut target = shared.leader.load(Ordering::Relaxed);
    let n = shared.n;
    while !shared.stop_clients.load(Ordering::Relaxed) {
        // Stay within a bounded distance of what is committed.
        let ahead = shared
            .accepted
            .load(Ordering::Relaxed)
            .saturating_sub(shared.committed.load(Ordering::Relaxed));
        if ahead > 20_000 {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..burst {
            let mut c = vec![0u8; size.max(8)];
            let id = (cid << 48) | counter;
            counter += 1;
            c[..8].copy_from_slice(&id.to_le_bytes());
            if shared.senders[target]
                .send(NodeInput::Propose(c, tx.clone()))
                .is_err()
            {
                break;
            }
        }
        drop(tx);
        let mut rejected = false;
        let deadline = Instant::now() + Duration::from_millis(500);
        for _ in 0..burst {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(_)) => {
                    shared.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) | Err(_) => {
                    rejected = true;
                    break;
                }
            }
        }
        if rejected {
            let hint = shared.leader.load(Ordering::Relaxed);
            target = if hint != target {
                hint
            } else {
                (target + 1) % n
            };
            thread::sleep(Duration::from_millis(5));
        }
    }
}
