//! What the storage keeps in the WAL header's application metadata
//! ([`raftwal::Wal::set_app_meta`]): the commit index and the `ConfState`. Term and vote
//! are the WAL's own hard state ([`raftwal::Wal::set_hard_state`]).
//!
//! ```text
//! off  size  field
//!   0     1  version = 1
//!   1     8  commit index (u64, little-endian)
//!   9     n  ConfState, protobuf-encoded (voters, learners, outgoing voters, next
//!            learners, auto_leave), to the end of the blob
//! ```
//!
//! The blob is at most [`raftwal::APP_META_MAX`] (256) bytes, so the `ConfState` at most
//! 247: a node id takes one protobuf varint (1 byte below 128, 2 below 16,384, up to 10
//! for a full `u64`) plus a few bytes per list, so about 120 members with ids below 128,
//! 80 below 16,384, and 24 with random 64-bit ids. A `ConfState` that does not fit is
//! refused with [`crate::Error::ConfStateTooLarge`] before anything is written.

use protobuf::Message;
use raft::eraftpb::ConfState;

const VERSION: u8 = 1;
const FIXED: usize = 9;

/// The storage's durable metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Meta {
    pub commit: u64,
    pub conf_state: ConfState,
}

impl Meta {
    /// The blob; `Err(bytes)` if it would not fit in the header (its size).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, usize> {
        let cs = self
            .conf_state
            .write_to_bytes()
            .expect("encoding a ConfState into memory cannot fail");
        let mut b = Vec::with_capacity(FIXED + cs.len());
        b.push(VERSION);
        b.extend_from_slice(&self.commit.to_le_bytes());
        b.extend_from_slice(&cs);
        if b.len() > raftwal::APP_META_MAX {
            return Err(b.len());
        }
        Ok(b)
    }

    /// Decodes a blob; an empty one (a new directory) is the default. `Err` names what is
    /// wrong (the header checksums the blob, so this is another version's, or a bug).
    pub(crate) fn decode(b: &[u8]) -> Result<Self, String> {
        if b.is_empty() {
            return Ok(Meta::default());
        }
        if b.len() < FIXED || b[0] != VERSION {
            return Err(format!(
                "storage metadata of {} bytes, version {}: this build reads version {VERSION}, \
                 at least {FIXED} bytes",
                b.len(),
                b[0]
            ));
        }
        let commit = u64::from_le_bytes(b[1..FIXED].try_into().expect("8 bytes"));
        let conf_state = ConfState::parse_from_bytes(&b[FIXED..])
            .map_err(|e| format!("storage metadata: ConfState does not decode: {e}"))?;
        Ok(Meta { commit, conf_state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m = Meta {
            commit: 42,
            conf_state: ConfState::from((vec![1, 2, 3], vec![4])),
        };
        assert_eq!(Meta::decode(&m.encode().unwrap()).unwrap(), m);
        assert_eq!(Meta::decode(&[]).unwrap(), Meta::default());
        assert!(Meta::decode(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn a_conf_state_too_large_for_the_header_is_refused() {
        let fits = Meta {
            commit: 1,
            conf_state: ConfState::from((1..=100u64, Vec::new())),
        };
        assert!(fits.encode().is_ok());
        let too_big = Meta {
            commit: 1,
            conf_state: ConfState::from(((1..=30u64).map(|i| u64::MAX - i), Vec::new())),
        };
        assert!(too_big.encode().unwrap_err() > raftwal::APP_META_MAX);
    }
}
