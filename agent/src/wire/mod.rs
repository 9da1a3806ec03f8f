//! Bytes <-> typed packets, smoltcp style: a checked view over a buffer
//! (`Packet::new_checked`, then accessors that cannot panic) and a small
//! `Repr` with `parse` / `emit` / `buffer_len`. Checksums are explicit.

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod icmpv6;
pub mod ip;
pub mod vrrp;

/// Why bytes were not accepted as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header or the lengths it announces.
    #[error("{what} truncated: needs {needed} bytes, has {got}")]
    Truncated {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{what}: bad {field} ({value})")]
    Field {
        what: &'static str,
        field: &'static str,
        value: u32,
    },
    /// The checksum does not match the bytes.
    #[error("{what}: checksum mismatch")]
    Checksum { what: &'static str },
}

impl Error {
    /// A short stable name for counters and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Truncated { .. } => "truncated",
            Error::Field { field, .. } => field,
            Error::Checksum { .. } => "checksum",
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;

/// Byte ranges of header fields (smoltcp's `mod field` habit).
pub type Field = core::ops::Range<usize>;

pub(crate) fn need(what: &'static str, buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        return Err(Error::Truncated {
            what,
            needed,
            got: buf.len(),
        });
    }
    Ok(())
}

pub(crate) fn be16(buf: &[u8], field: Field) -> u16 {
    u16::from_be_bytes([buf[field.start], buf[field.start + 1]])
}

pub(crate) fn put_be16(buf: &mut [u8], field: Field, value: u16) {
    buf[field].copy_from_slice(&value.to_be_bytes());
}
