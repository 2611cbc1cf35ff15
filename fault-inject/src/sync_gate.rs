//! [`hold_each_sync`]: runs an operation on another thread with each of its file syncs held
//! until the test has done something — a disk that is slow exactly when the test wants it,
//! without sleeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::SimFs;

/// What [`hold_each_sync`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSyncs {
    /// File syncs the operation started (each held until `on_held` returned).
    pub held: usize,
    /// A held sync was let go because `on_held` did not return within the patience: what
    /// it did waited for the sync (a lock held across it, say).
    pub timed_out: bool,
}

enum Step {
    Held,
    Done,
}

/// Runs `op` on another thread; each file sync it starts on `fs` (`sync_data`/`sync_all`)
/// is held, before it takes effect, while `on_held` runs on this thread, and let go when
/// `on_held` returns — or after `patience`, which is then reported (`on_held` is still
/// waited for). Returns once `op` has returned. The sync hook is removed afterwards.
pub fn hold_each_sync(
    fs: &SimFs,
    patience: Duration,
    op: impl FnOnce() + Send,
    mut on_held: impl FnMut(),
) -> HeldSyncs {
    let (step_tx, step_rx) = mpsc::channel::<Step>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let timed_out = Arc::new(AtomicBool::new(false));
    let to = Arc::clone(&timed_out);
    let gate = Mutex::new((step_tx.clone(), release_rx));
    fs.set_sync_hook(Some(Arc::new(move || {
        let g = gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.0.send(Step::Held).is_ok() && g.1.recv_timeout(patience).is_err() {
            to.store(true, Ordering::SeqCst);
        }
    })));
    let mut held = 0;
    std::thread::scope(|s| {
        s.spawn(move || {
            op();
            let _ = step_tx.send(Step::Done);
        });
        while let Ok(Step::Held) = step_rx.recv() {
            on_held();
            held += 1;
            let _ = release_tx.send(());
        }
    });
    fs.set_sync_hook(None);
    HeldSyncs {
        held,
        timed_out: timed_out.load(Ordering::SeqCst),
    }
}
