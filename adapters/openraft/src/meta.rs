//! What the log store keeps in the WAL header's application metadata
//! ([`raftwal::Wal::set_app_meta`]): openraft's whole vote, the committed log id and the
//! last purged log id. One blob, so a change to any of them is one slot write and one
//! `fdatasync`, and after a crash the blob is the old one or the new one.
//!
//! ```text
//! off  size  field (little-endian)
//!   0     1  version = 1
//!   1     1  flags: bit 0 vote present, bit 1 vote committed, bit 2 committed log id
//!            present, bit 3 purged log id present
//!   2    16  vote: leader term (u64), leader node id (u64)
//!  18    24  committed log id: leader term, leader node id, index (u64 each)
//!  42    24  purged log id: leader term, leader node id, index
//! ```
//! 66 bytes, within the header's 256.

use openraft::{LeaderId, LogId, Vote};

const VERSION: u8 = 1;
const LEN: usize = 66;
const F_VOTE: u8 = 1;
const F_COMMITTED_VOTE: u8 = 2;
const F_COMMITTED: u8 = 4;
const F_PURGED: u8 = 8;

/// The log store's durable metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub vote: Option<Vote<u64>>,
    pub committed: Option<LogId<u64>>,
    pub purged: Option<LogId<u64>>,
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        let mut flags = 0;
        if let Some(v) = self.vote {
            flags |= F_VOTE;
            if v.committed {
                flags |= F_COMMITTED_VOTE;
            }
            put(&mut b, 2, v.leader_id.term);
            put(&mut b, 10, v.leader_id.node_id);
        }
        if let Some(c) = self.committed {
            flags |= F_COMMITTED;
            put_log_id(&mut b, 18, c);
        }
        if let Some(p) = self.purged {
            flags |= F_PURGED;
            put_log_id(&mut b, 42, p);
        }
        b[1] = flags;
        b
    }

    /// Decodes a blob; an empty one (a new directory) is the default. `Err` names what is
    /// wrong (the blob is checksummed by the header, so this is a version mismatch or a bug).
    pub(crate) fn decode(b: &[u8]) -> Result<Self, String> {
        if b.is_empty() {
            return Ok(Meta::default());
        }
        if b.len() != LEN || b[0] != VERSION {
            return Err(format!(
                "log store metadata of {} bytes, version {}: this build reads {LEN} bytes, \
                 version {VERSION}",
                b.len(),
                b[0]
            ));
        }
        let flags = b[1];
        let vote = (flags & F_VOTE != 0).then(|| Vote {
            leader_id: LeaderId::new(get(b, 2), get(b, 10)),
            committed: flags & F_COMMITTED_VOTE != 0,
        });
        Ok(Meta {
            vote,
            committed: (flags & F_COMMITTED != 0).then(|| get_log_id(b, 18)),
            purged: (flags & F_PURGED != 0).then(|| get_log_id(b, 42)),
        })
    }
}

fn put(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn put_log_id(b: &mut [u8], at: usize, id: LogId<u64>) {
    put(b, at, id.leader_id.term);
    put(b, at + 8, id.leader_id.node_id);
    put(b, at + 16, id.index);
}

fn get_log_id(b: &[u8], at: usize) -> LogId<u64> {
    LogId::new(LeaderId::new(get(b, at), get(b, at + 8)), get(b, at + 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_combination() {
        let id = |t, n, i| Some(LogId::new(LeaderId::new(t, n), i));
        for vote in [None, Some(Vote::new(5, 2)), Some(Vote::new_committed(7, 3))] {
            for committed in [None, id(3, 1, 40)] {
                for purged in [None, id(2, 9, u64::MAX - 1)] {
                    let m = Meta {
                        vote,
                        committed,
                        purged,
                    };
                    assert_eq!(Meta::decode(&m.encode()), Ok(m));
                }
            }
        }
        assert_eq!(Meta::decode(&[]), Ok(Meta::default()));
        assert!(Meta::decode(&[2; LEN]).is_err());
        assert!(Meta::decode(&[1; 10]).is_err());
    }
}
