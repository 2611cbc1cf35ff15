//! How a raft-rs [`Entry`] is kept in a [`raftwal::Entry`]: index and term are the WAL's
//! own fields; the WAL's payload carries the rest.
//!
//! ```text
//! off  size  field
//!   0     1  flags: bits 0-1 entry type (0 normal, 1 conf change, 2 conf change v2),
//!            bit 2 `sync_log` (deprecated in raft-rs, kept for a faithful round trip)
//!   1     n  context length, LEB128 (one byte 0 when empty, raft-rs's usual case)
//!   1+n   c  context
//!   ...      data, to the end of the payload
//! ```
//!
//! Two bytes of overhead for the common entry; the payload is never larger than the
//! entry's protobuf encoding (`compute_size`), which the byte-bounded reads rely on (see
//! [`crate::storage`]).

use protobuf::ProtobufEnum;
use raft::eraftpb::{Entry, EntryType};

const TYPE_MASK: u8 = 0b11;
const SYNC_LOG: u8 = 0b100;

/// The WAL record of `e`.
pub(crate) fn encode(e: &Entry) -> raftwal::Entry {
    let mut data = Vec::with_capacity(e.data.len() + e.context.len() + 2);
    let mut flags = e.entry_type.value() as u8 & TYPE_MASK;
    if e.sync_log {
        flags |= SYNC_LOG;
    }
    data.push(flags);
    put_varint(&mut data, e.context.len() as u64);
    data.extend_from_slice(&e.context);
    data.extend_from_slice(&e.data);
    raftwal::Entry {
        index: e.index,
        term: e.term,
        data,
    }
}

/// The raft-rs entry a WAL record holds; `Err` names what is wrong (the record verified,
/// so this is a record some other writer put in the WAL, or a bug).
pub(crate) fn decode(w: raftwal::Entry) -> Result<Entry, String> {
    let b = &w.data;
    let flags = *b.first().ok_or("empty payload")?;
    let entry_type = EntryType::from_i32(i32::from(flags & TYPE_MASK))
        .ok_or_else(|| format!("unknown entry type {}", flags & TYPE_MASK))?;
    let (ctx_len, n) = get_varint(&b[1..]).ok_or("truncated context length")?;
    let start = 1 + n;
    let end = usize::try_from(ctx_len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&end| end <= b.len())
        .ok_or_else(|| format!("context of {ctx_len} bytes in a payload of {}", b.len()))?;
    Ok(Entry {
        entry_type,
        sync_log: flags & SYNC_LOG != 0,
        index: w.index,
        term: w.term,
        context: b[start..end].to_vec().into(),
        data: b[end..].to_vec().into(),
        ..Entry::default()
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The value and the bytes it took; `None` if truncated or longer than a `u64`.
fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;

    fn entry(ty: EntryType, ctx: &[u8], data: &[u8]) -> Entry {
        Entry {
            entry_type: ty,
            index: 7,
            term: 3,
            context: ctx.to_vec().into(),
            data: data.to_vec().into(),
            ..Entry::default()
        }
    }

    #[test]
    fn round_trips_and_never_exceeds_the_protobuf_size() {
        let big_ctx = vec![9u8; 300];
        for e in [
            entry(EntryType::EntryNormal, b"", b""),
            entry(EntryType::EntryNormal, b"", b"put x 1"),
            entry(EntryType::EntryConfChange, b"ctx", b"cc"),
            entry(EntryType::EntryConfChangeV2, &big_ctx, b"v2"),
        ] {
            let w = encode(&e);
            assert!(w.data.len() as u32 <= e.compute_size(), "{e:?}");
            assert_eq!(decode(w).unwrap(), e);
        }
    }

    #[test]
    fn rejects_damaged_payloads() {
        let w = |data: Vec<u8>| raftwal::Entry {
            index: 1,
            term: 1,
            data,
        };
        assert!(decode(w(vec![])).is_err());
        assert!(decode(w(vec![3])).is_err());
        assert!(decode(w(vec![0, 0x80])).is_err());
        assert!(decode(w(vec![0, 5, 1])).is_err());
    }
}
