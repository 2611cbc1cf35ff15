//! What the node, client and cluster threads share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard};

use super::node::NodeInput;
use super::verifier::Verifier;

pub(super) struct Shared {
    pub(super) n: usize,
    pub(super) senders: Vec<Sender<NodeInput>>,
    pub(super) verifier: Mutex<Verifier>,
    pub(super) committed: AtomicU64,
    pub(super) leader: AtomicUsize,
    pub(super) stop_clients: AtomicBool,
    pub(super) accepted: AtomicU64,
    pub(super) snapshot_every: u64,
}

impl Shared {
    pub(super) fn verifier(&self) -> MutexGuard<'_, Verifier> {
        self.verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
