//! The verifier: sees every apply of every node and checks that the command at each index
//! is the same everywhere, that each node applies in order without gaps, and that a
//! snapshot a node installs hashes to the verified prefix it claims to cover.

#[derive(Default)]
pub(super) struct Verifier {
    /// Command id at each index (index 1 at position 0), as first applied by any node.
    pub(super) canon: Vec<u64>,
    /// Running hash of `canon` through each index.
    pub(super) canon_hash: Vec<u64>,
    /// Per node: (last applied index, running hash).
    pub(super) nodes: Vec<(u64, u64)>,
    pub(super) violations: Vec<String>,
    pub(super) applies: u64,
    pub(super) snapshots_installed: u64,
}

pub(super) fn mix(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn command_id(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let k = data.len().min(8);
    b[..k].copy_from_slice(&data[..k]);
    u64::from_le_bytes(b)
}

impl Verifier {
    pub(super) fn violation(&mut self, msg: String) {
        if self.violations.len() < 20 {
            self.violations.push(msg);
        }
    }

    pub(super) fn restarted(&mut self, node: usize) {
        self.nodes[node] = (0, 0);
    }

    pub(super) fn command(&mut self, node: usize, index: u64, id: u64) {
        self.applies += 1;
        let (applied, hash) = self.nodes[node];
        if index != applied + 1 {
            self.violation(format!(
                "node {node} applied index {index} after {applied} (out of order)"
            ));
            return;
        }
        let k = (index - 1) as usize;
        let hash = mix(hash, id);
        if k < self.canon.len() {
            if self.canon[k] != id {
                self.violation(format!(
                    "node {node} applied command {id:#x} at index {index}, another node applied {:#x}",
                    self.canon[k]
                ));
                return;
            }
        } else {
            self.canon.push(id);
            self.canon_hash.push(hash);
        }
        if self.canon_hash[k] != hash {
            self.violation(format!(
                "node {node}'s applied sequence through {index} differs from the others'"
            ));
            return;
        }
        self.nodes[node] = (index, hash);
    }

    pub(super) fn snapshot(&mut self, node: usize, index: u64, hash: u64) {
        self.snapshots_installed += 1;
        let (applied, _) = self.nodes[node];
        if index < applied {
            self.violation(format!(
                "node {node} installed a snapshot at {index} after applying {applied} (backwards)"
            ));
            return;
        }
        let k = (index - 1) as usize;
        if k >= self.canon.len() || self.canon_hash[k] != hash {
            self.violation(format!(
                "node {node} installed a snapshot at {index} that does not match the applied sequence"
            ));
            return;
        }
        self.nodes[node] = (index, hash);
    }
}
